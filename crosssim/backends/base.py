"""What simulator adapters share: the result type, the sample-grid check, the protocol.

The registry of sources (simulators and references alike) is :mod:`crosssim.sources`; the
names here are that registry seen from the simulators' side, kept for the public API
(``from crosssim.backends import run_backend``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from crosssim.errors import BackendUnavailableError
from crosssim.result import TRACE_COLUMNS, RunResult, nominal_grid, results_to_frame
from crosssim.sources import (
    SIMULATOR,
    SourceSpec,
    available_sources,
    known_sources,
    run_source,
    source_spec,
)

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = [
    "TRACE_COLUMNS",
    "Backend",
    "RunResult",
    "available_backends",
    "backend_spec",
    "known_backends",
    "nominal_grid",
    "results_to_frame",
    "run_backend",
]


class Backend(Protocol):
    """What a source module provides: ``run(model, **options) -> RunResult``."""

    def run(self, model: Model, **options: Any) -> RunResult:  # pragma: no cover
        ...


def known_backends() -> list[str]:
    """Every registered simulator (installed or not)."""
    return known_sources(SIMULATOR)


def available_backends() -> list[str]:
    """Registered simulators whose package is installed."""
    return available_sources(SIMULATOR)


def backend_spec(name: str) -> SourceSpec:
    """The registry entry of simulator ``name``; BackendUnavailableError ("unknown backend")
    lists the known and the installed simulators when ``name`` is not one."""
    if name not in known_backends():
        raise BackendUnavailableError(
            name, f"unknown backend; known: {', '.join(known_backends())}; "
            f"installed: {', '.join(available_backends()) or 'none'}")
    return source_spec(name)


def run_backend(name: str, model: Model, **options: Any) -> RunResult:
    """Run ``model`` on source ``name`` and return its checked (finite) result
    (:func:`crosssim.sources.run_source`)."""
    return run_source(name, model, **options)


