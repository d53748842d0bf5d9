"""Simulator backends: a registry of names, imported lazily (see :mod:`crosssim.backends.base`)."""

from crosssim.backends.base import (
    BackendSpec,
    RunResult,
    available_backends,
    backend_spec,
    known_backends,
    load_backend,
    register_backend,
    results_to_frame,
    run_backend,
)

__all__ = [
    "BackendSpec",
    "RunResult",
    "available_backends",
    "backend_spec",
    "known_backends",
    "load_backend",
    "register_backend",
    "results_to_frame",
    "run_backend",
]
