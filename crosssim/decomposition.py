"""Where a simulator's error comes from: implementation, time stepping, space.

With the exact solution of the continuous model (``analytic``), of the CV-discretized system
exact in time (``semidiscrete``) and of the recurrence the simulator steps (``discrete`` or
``discrete_cn``, whichever has the simulator's ``info["scheme"]``), the deviation of a
simulator from the truth splits exactly into three parts, per probe and sample::

    simulator - exact = (simulator - discrete)        implementation
                      + (discrete - semidiscrete)     time stepping (dt)
                      + (semidiscrete - exact)        space (CV size, site placement)

Each part is reported as its largest absolute value over the samples (after the window
start); the dominant part names the fix: a smaller dt, more CVs, or "the simulator does not
compute its own scheme" (implementation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.result import RunResult
    from crosssim.sources import SourceKind

Part = Literal["implementation", "time_stepping", "space"]
PARTS: tuple[Part, ...] = ("implementation", "time_stepping", "space")

#: The change each dominant part calls for.
FIXES: dict[Part, str] = {
    "implementation": ("none in the model: the simulator does not compute its own scheme "
                       "(an implementation fault, or a setting the model does not describe)"),
    "time_stepping": "a smaller simulation.dt_ms",
    "space": ("more CVs (discretization.cvs_per_cell or a smaller max_extent_um), and sites "
              "at CV centres"),
}

__all__ = ["FIXES", "PARTS", "Decomposition", "Part", "decompose", "part_traces"]


@dataclass(frozen=True)
class Decomposition:
    """The error of ``simulator`` at ``probe`` against the exact solution, split in three.

    Every value is the largest |part(t)| in mV over the samples from ``window_start_ms``;
    ``total_mV`` is the largest |simulator - exact|.  ``discrete`` names the reference whose
    recurrence the simulator steps.  ``dominant`` is the largest part.
    """

    simulator: str
    probe: str
    discrete: str
    implementation_mV: float
    time_stepping_mV: float
    space_mV: float
    total_mV: float
    dominant: Part

    @property
    def fix(self) -> str:
        """What the dominant part implies (:data:`FIXES`)."""
        return FIXES[self.dominant]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite values become None)."""
        return {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
                for key, value in asdict(self).items()}


def _references(results: Mapping[str, RunResult]) -> tuple[RunResult, RunResult] | None:
    from crosssim.sources import ANALYTIC, SEMIDISCRETE

    if ANALYTIC in results and SEMIDISCRETE in results:
        return results[ANALYTIC], results[SEMIDISCRETE]
    return None


def _discrete_for(simulator: RunResult, results: Mapping[str, RunResult]) -> RunResult | None:
    """The result of the reference that steps the simulator's own scheme, if it ran."""
    from crosssim.sources import source_spec

    scheme = simulator.info.get("scheme")
    for name, result in results.items():
        if name == simulator.backend or scheme is None:
            continue
        try:
            spec = source_spec(name)
        except Exception:  # noqa: BLE001 - a file source is no registered source
            continue
        if spec.steps_like_simulators and result.info.get("scheme") == scheme:
            return result
    return None


def part_traces(simulator: RunResult, discrete: RunResult, semidiscrete: RunResult,
                exact: RunResult, probe: str) -> dict[Part | Literal["total"], np.ndarray]:
    """The three parts (and the total) as traces in mV at ``probe``, on the model's grid."""
    sim, disc = simulator.trace(probe), discrete.trace(probe)
    semi, true = semidiscrete.trace(probe), exact.trace(probe)
    return {"implementation": sim - disc, "time_stepping": disc - semi,
            "space": semi - true, "total": sim - true}


def decompose(model: Model, results: Mapping[str, RunResult],
              kinds: Mapping[str, SourceKind], *, window_start_ms: float = 0.0,
              ) -> list[Decomposition]:
    """The decomposition of every simulator at every probe, when ``analytic``,
    ``semidiscrete`` and the simulator's ``discrete`` reference all ran (else none for it).

    All results are on the model's sample grid (every registered source is)."""
    references = _references(results)
    if references is None:
        return []
    exact, semidiscrete = references
    labels = [probe.label for probe in model.effective_probes()]
    found = []
    for name, kind in kinds.items():
        if kind != "simulator" or name not in results:
            continue
        simulator = results[name]
        discrete = _discrete_for(simulator, results)
        if discrete is None or simulator.times_ms.shape != exact.times_ms.shape:
            continue
        keep = simulator.times_ms >= window_start_ms - 1e-9
        for probe in labels:
            parts = part_traces(simulator, discrete, semidiscrete, exact, probe)
            worst = {part: float(np.max(np.abs(trace[keep]), initial=0.0))
                     for part, trace in parts.items()}
            dominant = max(PARTS, key=lambda part: worst[part])
            found.append(Decomposition(
                simulator=name, probe=probe, discrete=discrete.backend,
                implementation_mV=worst["implementation"],
                time_stepping_mV=worst["time_stepping"], space_mV=worst["space"],
                total_mV=worst["total"], dominant=dominant))
    return found
