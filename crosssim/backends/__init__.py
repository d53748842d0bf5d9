"""Simulator adapters, one package each (``arbor/``, ``neuron/``); they register as sources
in :mod:`crosssim.sources` and are imported only when they run."""

from crosssim.backends.base import (
    RunResult,
    available_backends,
    known_backends,
    results_to_frame,
    run_backend,
)

__all__ = [
    "RunResult",
    "available_backends",
    "known_backends",
    "results_to_frame",
    "run_backend",
]
