"""The result every source returns: sampled membrane voltages on the model's grid.

Every source (simulator or reference) returns a :class:`RunResult` on the model's sample
grid: ``t = k * sample_dt_ms`` for ``k = 0 .. t_stop_ms / sample_dt_ms``, both ends included
(NEURON's convention; the Arbor adapter runs one extra step to get the sample at
``t_stop_ms``).  Times are stored as the exact nominal grid, not the simulator's rounded
floats; each adapter checks its raw times lie within 1e-6 * dt of the grid
(:func:`nominal_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from crosssim.errors import BackendError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from crosssim.model import Model

#: Column names of the long-form trace table.
TRACE_COLUMNS = ("backend", "probe", "t_ms", "v_mV")


@dataclass
class RunResult:
    """Sampled membrane voltages of one source.

    ``times_ms``: shape (n_samples,), the nominal grid in ms.
    ``values_mV``: shape (n_probes, n_samples), voltages in mV, row i is ``probes[i]``.
    ``wall_time_s``: seconds the source took (build + run), ``info``: versions, CV counts,
    numerical method and anything else worth reporting (JSON-serialisable values only).
    """

    backend: str
    probes: list[str]
    times_ms: np.ndarray
    values_mV: np.ndarray
    wall_time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.times_ms = np.asarray(self.times_ms, dtype=float)
        self.values_mV = np.asarray(self.values_mV, dtype=float)
        if self.values_mV.ndim != 2 or self.values_mV.shape != (
            len(self.probes),
            self.times_ms.shape[0],
        ):
            raise ValueError(
                f"{self.backend}: values_mV has shape {self.values_mV.shape}, expected "
                f"({len(self.probes)}, {self.times_ms.shape[0]})"
            )

    def trace(self, probe: str) -> np.ndarray:
        """The voltage trace of ``probe`` in mV."""
        return self.values_mV[self.probes.index(probe)]

    def check_finite(self) -> None:
        """Raise BackendError if any sample is NaN or infinite (names the first one)."""
        bad = ~np.isfinite(self.values_mV)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise BackendError(
                self.backend,
                f"non-finite voltage ({self.values_mV[row, col]}) at probe "
                f"{self.probes[row]!r}, t = {self.times_ms[col]:g} ms "
                f"({int(bad.sum())} non-finite samples in all)",
            )

    def to_frame(self) -> pd.DataFrame:
        """Long-form table with columns ``backend, probe, t_ms, v_mV``."""
        import pandas as pd

        n_probes, n_samples = self.values_mV.shape
        return pd.DataFrame(
            {
                "backend": pd.Categorical([self.backend] * (n_probes * n_samples)),
                "probe": pd.Categorical(np.repeat(np.asarray(self.probes, dtype=object),
                                                  n_samples), categories=self.probes),
                "t_ms": np.tile(self.times_ms, n_probes),
                "v_mV": self.values_mV.reshape(-1),
            }
        )


def results_to_frame(results: list[RunResult]) -> pd.DataFrame:
    """Concatenate several results into one long-form table (``backend, probe, t_ms, v_mV``)."""
    import pandas as pd

    if not results:
        return pd.DataFrame({name: [] for name in TRACE_COLUMNS})
    frames = [result.to_frame() for result in results]
    frame = pd.concat(frames, ignore_index=True)
    frame["backend"] = frame["backend"].astype(str)
    frame["probe"] = frame["probe"].astype(str)
    return frame


def nominal_grid(raw_times_ms: np.ndarray, model: Model, backend: str) -> np.ndarray:
    """Check ``raw_times_ms`` lies on the model's sample grid; return the exact grid.

    Raises BackendError if the count differs or any time is off by more than 1e-6 * dt.
    """
    grid = model.simulation.sample_times_ms()
    raw = np.asarray(raw_times_ms, dtype=float)
    if raw.shape != grid.shape:
        raise BackendError(
            backend, f"returned {raw.shape[0]} samples, expected {grid.shape[0]} "
            f"(t = 0 .. {model.simulation.t_stop_ms:g} ms every "
            f"{model.simulation.sample_interval_ms:g} ms)")
    worst = float(np.max(np.abs(raw - grid))) if raw.size else 0.0
    # rounding of t += dt accumulates ~eps * t per step over n_steps steps
    allowed = max(1e-6 * model.simulation.dt_ms,
                  8 * np.finfo(float).eps * model.simulation.n_steps * model.simulation.t_stop_ms)
    if worst > allowed:
        raise BackendError(backend, f"sample times drift {worst:g} ms from the grid")
    return grid
