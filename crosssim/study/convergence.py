"""Convergence studies: error against the exact cable solution as dt and the CV size shrink.

Two one-dimensional studies per backend share one sample grid:

* the **dt study** runs every dt at the finest space level;
* the **space study** runs every space level (CVs per cell, or largest CV length) at the
  finest dt.

Every level samples every ``sample_dt_ms`` (default: the coarsest dt, which every dt must
divide), so the exact cable solution (``analytic``) is computed once and every level is
compared with it on the same times.  Per level and probe the error is the largest and the
RMS deviation from it (mV).  The observed order is the least-squares slope of log(error)
against log(step) (dt in ms, or the largest CV length in um over the cells), with the
error taken as the largest over the probes.  Richardson extrapolation of the two finest
levels, ``u_R = u_fine + (u_fine - u_coarse) / (r**p - 1)`` with the refinement ratio
``r`` and the observed order ``p``, estimates the converged trace: its error against the
exact solution shows how much of the finest level's error is the discretisation's, and
``|u_R - u_fine|`` estimates that error without knowing the exact solution.

Active models (``model.is_active``) have no exact solution: the study measures **spike
times** instead of voltages (``metric = "spike_time_ms"``; the passive study's is
``"voltage_mV"``).  Spikes are found by crosssim in each level's own samples
(:func:`crosssim.spikes.detect_spikes`, ``model.spikes``, from the window start on).  Each
simulator is its own reference, per study: the spike times of its two finest levels,
Richardson-extrapolated at the order the levels show against the finest one
(:func:`fit_order_against_finest`); with fewer than three levels, spike counts that differ
between the two finest, or no usable order, the finest level itself is the reference (with
a note).  A level's error per probe is the largest (and the mean) |spike time - reference
spike time| over the matched spikes, in ms; a level whose spike count differs from the
reference's is kept in the table with the reason and left out of the fit.  The orders are
fitted as above over the remaining levels.  As each study is measured against its own
extrapolation, the other discretisation's error is a common offset and sets no floor;
floors are detected from the local orders only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from crosssim.errors import UsageError
from crosssim.files import json_ready
from crosssim.sources import ANALYTIC, DISCRETE, SEMIDISCRETE

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from crosssim.model import Model
    from crosssim.result import RunResult
    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import Executor, TaskProgress

__all__ = [
    "SPIKE_TIME",
    "VOLTAGE",
    "ConvergenceResult",
    "Level",
    "OrderFit",
    "SpikeReference",
    "SpikeTimeFit",
    "converge",
    "fit_order",
    "fit_order_against_finest",
    "richardson",
    "space_step_um",
]

Study = Literal["dt", "space"]
SpaceParameter = Literal["cvs_per_cell", "max_extent_um"]
#: What a study measures: voltages against the exact cable solution (passive models) or
#: spike times against each simulator's extrapolated spike times (active models).
Metric = Literal["voltage_mV", "spike_time_ms"]
VOLTAGE: Metric = "voltage_mV"
SPIKE_TIME: Metric = "spike_time_ms"
#: The reference of a spike-time study: the two finest levels extrapolated, or the finest.
RICHARDSON = "richardson"
FINEST_LEVEL = "finest level"

#: A local order below this fraction of the fitted one marks an error floor.
_FLOOR_FRACTION = 0.5
#: A fitted order below this marks an error floor over the whole study (every scheme here
#: is at least first order in dt and in CV size once it is the dominant error).
_FLOOR_ORDER = 0.5
#: Richardson extrapolation is skipped below this observed order (it would amplify noise).
_MIN_RICHARDSON_ORDER = 0.5
#: The other discretisation's measured error above this fraction of a study's finest error
#: marks a floor: the study's last levels no longer measure their own step.
_OTHER_FRACTION = 0.5


def fit_order(steps: Sequence[float] | np.ndarray, errors: Sequence[float] | np.ndarray, *,
              count: bool = False) -> float:
    """Order of convergence: least-squares slope of log(error) against log(step); NaN with
    fewer than 2 usable points.

    ``steps`` are step sizes (dt, CV length): error ~ step**order.  With ``count`` True they
    are counts (CVs per cell) and error ~ count**(-order).  Points whose step or error is
    not positive and finite are left out.
    """
    x = np.asarray(steps, dtype=float)
    y = np.asarray(errors, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if np.count_nonzero(keep) < 2 or np.unique(x[keep]).size < 2:
        return math.nan
    slope = float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])
    return -slope if count else slope


def fit_order_against_finest(steps: Sequence[float] | np.ndarray,
                             differences: Sequence[float] | np.ndarray,
                             finest_step: float) -> float:
    """Order of convergence seen against the study's own finest level; NaN with fewer than
    two usable levels.

    ``differences`` are ``|u(h_i) - u(finest_step)|`` of the coarser levels ``steps``.  For
    ``u(h) = u* + C h**p`` they are ``|C| (h_i**p - finest_step**p)``, not a power of
    ``h_i``, so the plain log-log slope is biased (2.32 instead of 2 at steps 0.05, 0.025
    against 0.0125).  This fits ``log d_i = log A + log(h_i**p - finest_step**p)`` by least
    squares in ``p`` (a scan of p in 0.02..12, then Gauss-Newton): exact for that law at any
    refinement ratios.  Levels whose step is not above ``finest_step`` or whose difference is
    not positive and finite are left out.
    """
    x = np.asarray(steps, dtype=float)
    y = np.asarray(differences, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > finest_step) & (y > 0)
    if not (finest_step > 0 and math.isfinite(finest_step)) or np.unique(x[keep]).size < 2:
        return math.nan
    log_y, log_h = np.log(y[keep]), np.log(x[keep])
    log_q = math.log(finest_step) - log_h  # log(finest / h_i) < 0

    def model(p: float) -> tuple[np.ndarray, np.ndarray]:
        """log(h_i**p - finest**p) and its derivative in p."""
        q_p = np.exp(p * log_q)
        return p * log_h + np.log1p(-q_p), log_h - q_p * log_q / (1.0 - q_p)

    def residuals(p: float) -> np.ndarray:
        r = log_y - model(p)[0]
        return r - r.mean()  # log A eliminated

    def cost(p: float) -> float:
        return float(np.sum(residuals(p) ** 2))

    grid = np.linspace(0.02, 12.0, 600)
    p = float(grid[int(np.argmin([cost(value) for value in grid]))])
    for _ in range(100):  # Gauss-Newton, halving steps that do not lower the cost
        r = residuals(p)
        slope = model(p)[1]
        jacobian = -(slope - slope.mean())
        norm = float(np.dot(jacobian, jacobian))
        if norm == 0.0:
            break
        step = -float(np.dot(jacobian, r)) / norm
        before = cost(p)
        while step and (p + step <= 0 or cost(p + step) > before):
            step /= 2
            if abs(step) < 1e-15:
                step = 0.0
        p += step
        if abs(step) <= 1e-14 * max(1.0, p):
            break
    return p


def local_orders(steps: Sequence[float], errors: Sequence[float]) -> list[float]:
    """The order between each pair of successive levels (coarse to fine): log ratio / log ratio."""
    orders = []
    for (h1, e1), (h2, e2) in zip(zip(steps, errors), list(zip(steps, errors))[1:]):
        if min(h1, h2, e1, e2) > 0 and h1 != h2 and all(map(math.isfinite, (e1, e2))):
            orders.append(math.log(e1 / e2) / math.log(h1 / h2))
        else:
            orders.append(math.nan)
    return orders


def richardson(coarse: np.ndarray, fine: np.ndarray, ratio: float, order: float) -> np.ndarray:
    """Richardson extrapolation ``fine + (fine - coarse) / (ratio**order - 1)``."""
    return fine + (fine - coarse) / (ratio ** order - 1.0)


def space_step_um(model: Model) -> float:
    """The largest CV length over the cells' sections in um (the step of the space study)."""
    return max(section.length_um / count for cell in model.cells
               for section, count in zip(cell.tree(), model.section_cvs(cell)))


@dataclass
class Level:
    """One run: a backend at one (dt, space) level, its errors per probe: voltages in mV
    (passive models) or spike times in ms (active models)."""

    study: Study
    backend: str
    dt_ms: float
    space_parameter: SpaceParameter
    space_value: float
    cv_length_um: float
    cvs_per_cell: int
    max_abs_mV: dict[str, float] = field(default_factory=dict)
    t_max_abs_ms: dict[str, float] = field(default_factory=dict)
    rms_mV: dict[str, float] = field(default_factory=dict)
    final_abs_mV: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    cached: bool = False
    result: RunResult | None = field(default=None, repr=False)
    #: Spike-time studies: per probe the spikes found in this level's samples (ms), their
    #: count and the reference's, and the largest and mean |spike time - reference spike
    #: time| over the matched spikes (ms; absent when no spike pair).
    spike_times_ms: dict[str, list[float]] = field(default_factory=dict)
    spike_counts: dict[str, int] = field(default_factory=dict)
    reference_spike_counts: dict[str, int] = field(default_factory=dict)
    spike_error_ms: dict[str, float] = field(default_factory=dict)
    spike_mean_error_ms: dict[str, float] = field(default_factory=dict)
    #: Why a level that ran is left out of the order fit (its spike count differs from the
    #: reference's); None when it is used.
    excluded: str | None = None

    @property
    def step(self) -> float:
        """dt in ms for the dt study, the largest CV length in um for the space study."""
        return self.dt_ms if self.study == "dt" else self.cv_length_um

    @property
    def worst_max_mV(self) -> float:
        return max(self.max_abs_mV.values()) if self.max_abs_mV else math.nan

    @property
    def worst_rms_mV(self) -> float:
        return max(self.rms_mV.values()) if self.rms_mV else math.nan

    @property
    def worst_spike_error_ms(self) -> float:
        """The largest spike-time error over the probes (ms), NaN without spike pairs."""
        return max(self.spike_error_ms.values()) if self.spike_error_ms else math.nan

    @property
    def worst_spike_mean_error_ms(self) -> float:
        """The largest mean spike-time error over the probes (ms), NaN without spike pairs."""
        return max(self.spike_mean_error_ms.values()) if self.spike_mean_error_ms else math.nan


def _falls_short(order: float, local: Sequence[float]) -> bool:
    """The error-floor test shared by both metrics: the fitted order below
    :data:`_FLOOR_ORDER`, or the last local order below :data:`_FLOOR_FRACTION` of it."""
    if not local or not math.isfinite(order):
        return False
    if order < _FLOOR_ORDER:
        return True
    last = local[-1]
    return math.isfinite(last) and last < _FLOOR_FRACTION * order


@dataclass
class OrderFit:
    """The observed order of one backend in one study, and its Richardson estimate."""

    backend: str
    study: Study
    parameter: str
    fixed: dict[str, float]
    steps: list[float]
    errors_max_mV: list[float]
    errors_rms_mV: list[float]
    order_max: float
    order_rms: float
    local_orders: list[float]
    richardson: dict[str, dict[str, float]]
    #: The other discretisation's error at the finest levels (mV), measured directly: for
    #: the dt study the space part (semidiscrete - exact), for the space study the time part
    #: (discrete - semidiscrete); None when it could not be measured.
    other_error_mV: float | None = None

    @property
    def floor(self) -> bool:
        """True at an error floor: the other discretisation's measured error is at least
        :data:`_OTHER_FRACTION` of this study's finest error, or the last local order is far
        below the fitted one, or the fitted order itself is below :data:`_FLOOR_ORDER` (the
        error hardly falls at all over the study: the other error dominates from the start)."""
        if (self.other_error_mV is not None and self.errors_max_mV
                and self.other_error_mV >= _OTHER_FRACTION * self.errors_max_mV[-1]):
            return True
        return _falls_short(self.order_max, self.local_orders)

    def to_dict(self) -> dict[str, Any]:
        return json_ready({
            "backend": self.backend, "study": self.study, "parameter": self.parameter,
            "fixed": self.fixed, "steps": self.steps, "errors_max_mV": self.errors_max_mV,
            "errors_rms_mV": self.errors_rms_mV, "order_max": self.order_max,
            "order_rms": self.order_rms, "local_orders": self.local_orders,
            "error_floor": self.floor, "other_error_mV": self.other_error_mV,
            "richardson": self.richardson,
        })


@dataclass
class SpikeReference:
    """The spike times one simulator's levels are measured against, in one study.

    ``method``: ``"richardson"`` (the two finest levels, ``steps`` coarse then fine,
    extrapolated at ``order``) or ``"finest level"`` (the finest level itself; ``note``
    says why).  ``spike_times_ms`` and ``spike_counts`` per probe.
    """

    method: str
    order: float | None
    steps: list[float]
    spike_times_ms: dict[str, list[float]]
    spike_counts: dict[str, int]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return json_ready({"method": self.method, "order": self.order, "steps": self.steps,
                           "spike_counts": self.spike_counts,
                           "spike_times_ms": self.spike_times_ms, "note": self.note})


@dataclass
class SpikeTimeFit:
    """The observed order of one simulator's spike times in one study (active models).

    ``errors_max_ms`` / ``errors_mean_ms``: per fitted level (``steps``, coarse to fine)
    the largest over the probes of the largest / mean |spike time - reference spike time|
    over matched spikes.  Levels whose spike count differs from the reference's are in
    ``excluded`` (step, reason), not in the fit.
    """

    backend: str
    study: Study
    parameter: str
    fixed: dict[str, float]
    steps: list[float]
    errors_max_ms: list[float]
    errors_mean_ms: list[float]
    order_max: float
    order_mean: float
    local_orders: list[float]
    reference: SpikeReference
    excluded: list[tuple[float, str]] = field(default_factory=list)

    @property
    def floor(self) -> bool:
        """True at an error floor: the fitted order is below :data:`_FLOOR_ORDER` or the last
        local order below :data:`_FLOOR_FRACTION` of it."""
        return _falls_short(self.order_max, self.local_orders)

    def to_dict(self) -> dict[str, Any]:
        return json_ready({
            "backend": self.backend, "study": self.study, "parameter": self.parameter,
            "fixed": self.fixed, "steps": self.steps, "errors_max_ms": self.errors_max_ms,
            "errors_mean_ms": self.errors_mean_ms, "order_max": self.order_max,
            "order_mean": self.order_mean, "local_orders": self.local_orders,
            "error_floor": self.floor, "reference": self.reference.to_dict(),
            "excluded_levels": [{"step": step, "reason": reason}
                                for step, reason in self.excluded],
        })


#: A fitted study: voltages (passive models) or spike times (active models).
Fit = OrderFit | SpikeTimeFit


@dataclass
class ConvergenceResult:
    """Everything a convergence study produced.

    ``metric`` says what was measured: ``"voltage_mV"`` (``orders`` are :class:`OrderFit`,
    ``reference`` the exact cable solution) or ``"spike_time_ms"`` (``orders`` are
    :class:`SpikeTimeFit`, ``reference`` None: each fit has its own).  ``notes``: sentences
    for the reader (sources left out of the study).
    """

    model: Model
    dts: list[float]
    space_parameter: SpaceParameter
    space_values: list[float]
    sample_dt_ms: float
    backends: list[str]
    levels: list[Level]
    orders: list[Fit]
    reference: RunResult | None
    failures: dict[str, str]
    computed: int
    cached: int
    wall_time_s: float
    executor: str = ""
    metric: Metric = VOLTAGE
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the reference and every level ran."""
        return not self.failures

    def order(self, backend: str, study: Study, metric: str = "max") -> float:
        """The fitted order of ``backend`` in ``study``: ``metric`` ``max``, or ``rms``
        (voltage studies) / ``mean`` (spike-time studies)."""
        for fit in self.orders:
            if fit.backend == backend and fit.study == study:
                if metric == "max":
                    return fit.order_max
                if metric == "rms" and isinstance(fit, OrderFit):
                    return fit.order_rms
                if metric == "mean" and isinstance(fit, SpikeTimeFit):
                    return fit.order_mean
                raise KeyError(f"no {metric!r} order in a {self.metric} study; allowed: max, "
                               + ("rms" if self.metric == VOLTAGE else "mean"))
        raise KeyError(f"no {study} study for backend {backend!r}")

    def to_frame(self) -> pd.DataFrame:
        """One row per (study, backend, level, probe); failed levels have ``error`` set.
        Spike-time studies have the columns ``spike_count``, ``reference_spike_count``,
        ``spike_error_ms``, ``spike_mean_error_ms`` and ``excluded`` instead of the mV ones."""
        import pandas as pd

        if self.metric == SPIKE_TIME:
            return pd.DataFrame(self._spike_rows())
        rows = []
        for level in self.levels:
            base = {"study": level.study, "backend": level.backend, "dt_ms": level.dt_ms,
                    "space_parameter": level.space_parameter,
                    "space_value": level.space_value, "cvs_per_cell": level.cvs_per_cell,
                    "cv_length_um": level.cv_length_um, "cached": level.cached}
            if level.error is not None:
                rows.append({**base, "probe": None, "max_abs_mV": math.nan,
                             "t_max_abs_ms": math.nan, "rms_mV": math.nan,
                             "final_abs_mV": math.nan, "error": level.error})
                continue
            for probe in level.max_abs_mV:
                rows.append({**base, "probe": probe, "max_abs_mV": level.max_abs_mV[probe],
                             "t_max_abs_ms": level.t_max_abs_ms[probe],
                             "rms_mV": level.rms_mV[probe],
                             "final_abs_mV": level.final_abs_mV[probe], "error": None})
        return pd.DataFrame(rows)

    def _spike_rows(self) -> list[dict[str, Any]]:
        rows = []
        for level in self.levels:
            base = {"study": level.study, "backend": level.backend, "dt_ms": level.dt_ms,
                    "space_parameter": level.space_parameter,
                    "space_value": level.space_value, "cvs_per_cell": level.cvs_per_cell,
                    "cv_length_um": level.cv_length_um, "cached": level.cached}
            if level.error is not None:
                rows.append({**base, "probe": None, "spike_count": None,
                             "reference_spike_count": None, "spike_error_ms": math.nan,
                             "spike_mean_error_ms": math.nan, "excluded": None,
                             "error": level.error})
                continue
            for probe, count in level.spike_counts.items():
                rows.append({**base, "probe": probe, "spike_count": count,
                             "reference_spike_count": level.reference_spike_counts.get(probe),
                             "spike_error_ms": level.spike_error_ms.get(probe, math.nan),
                             "spike_mean_error_ms": level.spike_mean_error_ms.get(probe,
                                                                                  math.nan),
                             "excluded": level.excluded, "error": None})
        return rows

    def figure_table(self) -> list[dict[str, Any]]:
        """Rows for :func:`crosssim.report.figures.plot_convergence` (parameter, value,
        error_mV, source, probe); spike-time studies have ``error_ms`` instead of
        ``error_mV`` and only the fitted levels (not those whose spike count differs)."""
        if self.metric == SPIKE_TIME:
            return [{"parameter": "dt_ms" if level.study == "dt" else "cv_length_um",
                     "value": level.step, "error_ms": error, "source": level.backend,
                     "probe": probe}
                    for level in self.levels if level.error is None and level.excluded is None
                    for probe, error in level.spike_error_ms.items()]
        rows = []
        for level in self.levels:
            parameter = "dt_ms" if level.study == "dt" else "cv_length_um"
            for probe, error in level.max_abs_mV.items():
                rows.append({"parameter": parameter, "value": level.step, "error_mV": error,
                             "source": level.backend, "probe": probe})
        return rows

    def to_document(self) -> dict[str, Any]:
        """The JSON document (``converge.json`` and ``--format json``); ``metric`` tells a
        voltage study (``"voltage_mV"``) from a spike-time one (``"spike_time_ms"``)."""
        if self.metric == SPIKE_TIME:
            return self._spike_document()
        return json_ready({
            "model": self.model.name,
            "metric": self.metric,
            "reference": ANALYTIC,
            "t_stop_ms": self.model.simulation.t_stop_ms,
            "sample_dt_ms": self.sample_dt_ms,
            "dts_ms": self.dts,
            "space": {"parameter": self.space_parameter, "values": self.space_values},
            "backends": self.backends,
            "methods": integration_methods(self.model, self.backends),
            "levels": [_level_dict(level) for level in self.levels],
            "orders": [fit.to_dict() for fit in self.orders],
            "errors": [{"source": name, "reason": reason}
                       for name, reason in sorted(self.failures.items())],
            "runs": {"computed": self.computed, "cached": self.cached},
            "executor": self.executor,
            "wall_time_s": self.wall_time_s,
        })

    def _spike_document(self) -> dict[str, Any]:
        return json_ready({
            "model": self.model.name,
            "metric": self.metric,
            "reference": RICHARDSON,
            "t_stop_ms": self.model.simulation.t_stop_ms,
            "sample_dt_ms": self.sample_dt_ms,
            "window_start_ms": self.model.tolerance.window_start_ms,
            "spike_detection": self.model.spikes.model_dump(),
            "dts_ms": self.dts,
            "space": {"parameter": self.space_parameter, "values": self.space_values},
            "backends": self.backends,
            "methods": integration_methods(self.model, self.backends),
            "levels": [_spike_level_dict(level) for level in self.levels],
            "orders": [fit.to_dict() for fit in self.orders],
            "notes": self.notes,
            "errors": [{"source": name, "reason": reason}
                       for name, reason in sorted(self.failures.items())],
            "runs": {"computed": self.computed, "cached": self.cached},
            "executor": self.executor,
            "wall_time_s": self.wall_time_s,
        })


def integration_methods(model: Model, backends: Sequence[str]) -> dict[str, str]:
    """The time integration of each backend under this model's options (for the reader)."""
    methods = {}
    for backend in backends:
        if backend == "arbor":
            methods[backend] = "implicit Euler"
        elif backend == "neuron":
            order = model.backends.neuron.secondorder
            methods[backend] = ("secondorder 0 (implicit Euler)" if order == 0 else
                                f"secondorder {order} (Crank-Nicolson)")
        else:
            methods[backend] = "see the backend's documentation"
    return methods


def _level_dict(level: Level) -> dict[str, Any]:
    # cvs_per_cell (the largest cell's count) first: on trees the space value is per section
    return {"study": level.study, "backend": level.backend, "dt_ms": level.dt_ms,
            "cvs_per_cell": level.cvs_per_cell, level.space_parameter: level.space_value,
            "cv_length_um": level.cv_length_um, "max_abs_mV": level.max_abs_mV,
            "t_max_abs_ms": level.t_max_abs_ms, "rms_mV": level.rms_mV,
            "final_abs_mV": level.final_abs_mV, "error": level.error, "cached": level.cached}


def _spike_level_dict(level: Level) -> dict[str, Any]:
    # cvs_per_cell (the largest cell's count) first: on trees the space value is per section
    return {"study": level.study, "backend": level.backend, "dt_ms": level.dt_ms,
            "cvs_per_cell": level.cvs_per_cell, level.space_parameter: level.space_value,
            "cv_length_um": level.cv_length_um, "spike_counts": level.spike_counts,
            "reference_spike_counts": level.reference_spike_counts,
            "spike_error_ms": level.spike_error_ms,
            "spike_mean_error_ms": level.spike_mean_error_ms,
            "spike_times_ms": level.spike_times_ms, "excluded": level.excluded,
            "error": level.error, "cached": level.cached}


def _level_model(model: Model, dt_ms: float, sample_dt_ms: float,
                 space_parameter: SpaceParameter, space_value: float) -> Model:
    from crosssim.model import apply_overrides

    value: float | int = int(space_value) if space_parameter == "cvs_per_cell" else space_value
    key: str = space_parameter
    if key == "cvs_per_cell" and any(len(cell.tree()) > 1 for cell in model.cells):
        key = "cvs_per_section"  # a count per cell means one per section on trees
    return apply_overrides(model, [("simulation.dt_ms", dt_ms),
                                   ("simulation.sample_dt_ms", sample_dt_ms),
                                   (f"discretization.{key}", value)],
                           source=f"<converge level dt={dt_ms:g} {space_parameter}="
                                  f"{space_value:g}>")


def _check_levels(values: Sequence[float], name: str) -> list[float]:
    out = [float(value) for value in values]
    if len(out) < 2:
        raise UsageError(f"{name}: give at least two levels (got {len(out)})")
    if any(not math.isfinite(value) or value <= 0 for value in out):
        raise UsageError(f"{name}: every level must be a positive number")
    if len(set(out)) != len(out):
        raise UsageError(f"{name}: levels must differ")
    return out


def converge(model: Model, *, dts: Sequence[float], cvs: Sequence[int] | None = None,
             max_extents: Sequence[float] | None = None,
             backends: Sequence[str] | None = None, sample_dt_ms: float | None = None,
             executor: Executor | None = None, cache: ResultsCache | None = None,
             progress: TaskProgress | None = None) -> ConvergenceResult:
    """Run a convergence study of ``backends`` (default: every registered one) on ``model``.

    ``dts`` in ms; the space levels are ``cvs`` (CVs per cell) or ``max_extents`` (largest CV
    length in um), not both.  ``sample_dt_ms`` (default the coarsest dt) is the common sample
    interval; each dt must divide it.  Runs go through ``executor`` (default: a local pool on
    every core) and ``cache``.  Raises UsageError for bad levels, InvalidModelError when a
    level is not a valid model (e.g. t_stop not a multiple of the sample interval).
    """
    from crosssim.check import select_sources
    from crosssim.compare import AlignmentError, compare_results
    from crosssim.study.executors import SourceTask, run_tasks

    started = time.perf_counter()
    if (cvs is None) == (max_extents is None):
        raise UsageError("give exactly one of the space levels: --cvs or --max-extent")
    dts = sorted(_check_levels(dts, "--dt"), reverse=True)
    if cvs is not None:
        space_parameter: SpaceParameter = "cvs_per_cell"
        for count in cvs:
            if float(count) != int(count) or int(count) < 1:
                raise UsageError(f"--cvs: CV counts are whole numbers >= 1 (got {count!r})")
        space_values = sorted(_check_levels(cvs, "--cvs"))  # coarse (few CVs) to fine
    else:
        space_parameter = "max_extent_um"
        assert max_extents is not None  # exactly one of cvs / max_extents (checked above)
        space_values = sorted(_check_levels(max_extents, "--max-extent"), reverse=True)
    selected, selection_notes = select_sources(backends, [], model)
    notes = [f"{note.subject}: {note.message}; left out of the study"
             for note in selection_notes if note.kind == "source-skipped"]
    names, left_out = _applicable_sources(list(selected), model, notes)
    notes += left_out
    if not names:
        raise UsageError("no backend to study")
    sample = float(sample_dt_ms) if sample_dt_ms is not None else dts[0]

    finest_dt, finest_space = dts[-1], space_values[-1]
    plan: list[tuple[Study, str, float, float]] = []
    for backend in names:
        plan += [("dt", backend, dt, finest_space) for dt in dts]
        plan += [("space", backend, finest_dt, value) for value in space_values]
    models = {(dt, value): _level_model(model, dt, sample, space_parameter, value)
              for _, _, dt, value in plan}
    reference_model = models[(finest_dt, finest_space)]
    tasks = [] if model.is_active else [  # active models: no passive reference applies
        SourceTask(ANALYTIC, reference_model, label="analytic (exact cable)"),
        SourceTask(SEMIDISCRETE, reference_model, label="semidiscrete (finest CVs)"),
        SourceTask(DISCRETE, reference_model, label="discrete (finest dt and CVs)")]
    for _study, backend, dt, value in plan:
        label = f"{backend} dt={dt:g} {_space_label(space_parameter, value)}"
        tasks.append(SourceTask(backend, models[(dt, value)], label=label))
    run = run_tasks(tasks, executor=executor, cache=cache, progress=progress)
    executor_text = getattr(executor, "description", "") if executor is not None else "local"
    if model.is_active:
        spike_levels, fits, run_failures = _spike_study(
            model, plan, run.outcomes, models, space_parameter, finest_dt, finest_space)
        return ConvergenceResult(
            model=model, dts=dts, space_parameter=space_parameter, space_values=space_values,
            sample_dt_ms=sample, backends=names, levels=spike_levels, orders=fits,
            reference=None, failures=run_failures, computed=run.computed, cached=run.cached,
            wall_time_s=time.perf_counter() - started, executor=executor_text,
            metric=SPIKE_TIME, notes=notes)
    reference_outcome, level_outcomes = run.outcomes[0], run.outcomes[3:]
    semidiscrete, discrete = (outcome.result for outcome in run.outcomes[1:3])
    failures: dict[str, str] = {}
    reference = reference_outcome.result
    if reference is None:
        failures[ANALYTIC] = reference_outcome.error or "failed"

    levels: list[Level] = []
    probes = [probe.label for probe in model.effective_probes()]
    for (study, backend, dt, value), outcome in zip(plan, level_outcomes):
        level_model = models[(dt, value)]
        level = Level(study=study, backend=backend, dt_ms=dt, space_parameter=space_parameter,
                      space_value=value, cv_length_um=space_step_um(level_model),
                      cvs_per_cell=max(level_model.cvs(cell) for cell in level_model.cells),
                      cached=outcome.cached, result=outcome.result)
        if outcome.result is None:
            level.error = outcome.error or "failed"
            failures[outcome.task.label] = level.error
        elif reference is not None:
            try:
                comparisons = compare_results(
                    outcome.result, reference, kind="reference", tolerance_mV=None,
                    probes=probes, window_start_ms=model.tolerance.window_start_ms,
                    start_ms=0.0, stop_ms=model.simulation.t_stop_ms)
            except AlignmentError as exc:
                level.error = str(exc)
                failures[outcome.task.label] = level.error
            else:
                for c in comparisons:
                    level.max_abs_mV[c.probe] = c.max_abs_mV
                    level.t_max_abs_ms[c.probe] = c.t_max_abs_ms
                    level.rms_mV[c.probe] = c.rms_mV
                    level.final_abs_mV[c.probe] = c.final_abs_mV
        levels.append(level)

    orders: list[Fit] = []
    if reference is not None:
        window = model.tolerance.window_start_ms
        space_part = _largest_difference(semidiscrete, reference, probes, window)
        time_part = _largest_difference(discrete, semidiscrete, probes, window)
        for backend in names:
            for study in ("dt", "space"):
                chosen = [level for level in levels
                          if level.backend == backend and level.study == study]
                fit = _fit(backend, study, chosen, reference, probes, finest_dt,
                           finest_space, space_parameter, window)
                # the time part is the implicit-Euler recurrence's: evidence for a simulator
                # that steps that scheme only
                same_scheme = all(level.result is None
                                  or level.result.info.get("scheme", "implicit-euler")
                                  == "implicit-euler" for level in chosen)
                other = space_part if study == "dt" else (time_part if same_scheme else None)
                if other is not None:
                    fit.other_error_mV = other
                    if fit.floor:
                        fit.richardson = {}
                orders.append(fit)
    return ConvergenceResult(
        model=model, dts=dts, space_parameter=space_parameter, space_values=space_values,
        sample_dt_ms=sample, backends=names, levels=levels, orders=orders,
        reference=reference, failures=failures, computed=run.computed, cached=run.cached,
        wall_time_s=time.perf_counter() - started, executor=executor_text)


def _largest_difference(a: RunResult | None, b: RunResult | None, probes: list[str],
                        window_start_ms: float) -> float | None:
    """max |a - b| in mV over ``probes`` from the window start, None if either is missing."""
    if a is None or b is None or a.times_ms.shape != b.times_ms.shape:
        return None
    keep = a.times_ms >= window_start_ms - 1e-9
    return max(float(np.max(np.abs(a.trace(probe) - b.trace(probe))[keep], initial=0.0))
               for probe in probes)


def _space_label(parameter: SpaceParameter, value: float) -> str:
    return f"cvs={int(value)}" if parameter == "cvs_per_cell" else f"max_extent={value:g}um"


def _fit(backend: str, study: Study, levels: list[Level], reference: RunResult,
         probes: list[str], finest_dt: float, finest_space: float,
         space_parameter: SpaceParameter, window_start_ms: float) -> OrderFit:
    """Fit the order over the levels (coarse to fine) and extrapolate the two finest."""
    usable = [level for level in levels if level.error is None and level.max_abs_mV]
    usable.sort(key=lambda level: -level.step)
    steps = [level.step for level in usable]
    errors_max = [level.worst_max_mV for level in usable]
    errors_rms = [level.worst_rms_mV for level in usable]
    order_max = fit_order(steps, errors_max)
    order_rms = fit_order(steps, errors_rms)
    fixed: dict[str, float]
    if study == "dt":
        fixed = {space_parameter: finest_space}
        parameter = "dt_ms"
    else:
        fixed = {"dt_ms": finest_dt}
        parameter = "cv_length_um"
    fit = OrderFit(backend=backend, study=study, parameter=parameter, fixed=fixed,
                   steps=steps, errors_max_mV=errors_max, errors_rms_mV=errors_rms,
                   order_max=order_max, order_rms=order_rms,
                   local_orders=local_orders(steps, errors_max), richardson={})
    # A floored fit says the other discretisation's error dominates: extrapolating in this
    # step would be meaningless, so it gets no Richardson estimate (never numbers one run and
    # n/a the next).
    if not fit.floor:
        fit.richardson = _richardson_estimates(usable, order_max, reference, probes,
                                               window_start_ms)
    return fit


def _richardson_estimates(usable: list[Level], order_max: float, reference: RunResult,
                          probes: list[str], window_start_ms: float,
                          ) -> dict[str, dict[str, float]]:
    """Per probe: the finest level's error, the Richardson-extrapolated one from the two
    finest levels at ``order_max``, and the finest level's estimated error (mV)."""
    extrapolated: dict[str, dict[str, float]] = {}
    if len(usable) >= 2 and math.isfinite(order_max) and order_max >= _MIN_RICHARDSON_ORDER:
        coarse, fine = usable[-2], usable[-1]
        ratio = coarse.step / fine.step
        if ratio > 1 and coarse.result is not None and fine.result is not None:
            window = reference.times_ms >= window_start_ms - 1e-9
            for probe in probes:
                if probe not in fine.result.probes or probe not in coarse.result.probes:
                    continue
                u_fine = fine.result.trace(probe)
                u_coarse = coarse.result.trace(probe)
                exact = reference.trace(probe)
                if not (u_fine.shape == u_coarse.shape == exact.shape):
                    continue
                u_r = richardson(u_coarse, u_fine, ratio, order_max)
                extrapolated[probe] = {
                    "finest_error_mV": float(np.max(np.abs(u_fine - exact)[window])),
                    "richardson_error_mV": float(np.max(np.abs(u_r - exact)[window])),
                    "estimated_finest_error_mV": float(np.max(np.abs(u_r - u_fine)[window])),
                    "richardson_final_mV": float(u_r[-1]),
                    "exact_final_mV": float(exact[-1]),
                }
    return extrapolated



# Spike-time studies (active models) ------------------------------------------------------------


def _applicable_sources(names: list[str], model: Model,
                        skipped: list[str]) -> tuple[list[str], list[str]]:
    """The sources among ``names`` that can run ``model`` (an active membrane, trees), and a
    note on each other one (left out of the study, as ``check`` skips it); UsageError when
    none is left.  ``skipped``: notes on default sources already left out."""
    from crosssim.sources import source_spec

    kept, notes = [], []
    for name in names:
        reason = source_spec(name).not_applicable(model)
        if reason is None:
            kept.append(name)
        else:
            notes.append(f"{name}: not applicable: {reason}; left out of the study")
    if names and not kept or not names and skipped:
        raise UsageError("no source of this study can run this model ("
                         + "; ".join(note.removesuffix("; left out of the study")
                                     for note in [*skipped, *notes]) + ")")
    return kept, notes


def _spike_study(model: Model, plan: list[tuple[Study, str, float, float]],
                 outcomes: Sequence[Any], models: dict[tuple[float, float], Model],
                 space_parameter: SpaceParameter, finest_dt: float, finest_space: float,
                 ) -> tuple[list[Level], list[Fit], dict[str, str]]:
    """Levels with their spikes and spike-time errors, the fits per simulator and study,
    and the failed runs (label -> reason)."""
    from crosssim.spikes import detect_spikes

    settings, window = model.spikes, model.tolerance.window_start_ms
    probes = [probe.label for probe in model.effective_probes()]
    failures: dict[str, str] = {}
    levels: list[Level] = []
    for (study, backend, dt, value), outcome in zip(plan, outcomes):
        level_model = models[(dt, value)]
        level = Level(study=study, backend=backend, dt_ms=dt, space_parameter=space_parameter,
                      space_value=value, cv_length_um=space_step_um(level_model),
                      cvs_per_cell=max(level_model.cvs(cell) for cell in level_model.cells),
                      cached=outcome.cached, result=outcome.result)
        result = outcome.result
        missing = [probe for probe in probes if result is not None
                   and probe not in result.probes]
        if result is None or missing:
            level.error = (outcome.error or "failed") if result is None else (
                f"no trace for probe(s) {', '.join(missing)}")
            failures[outcome.task.label] = level.error
        else:
            for probe in probes:
                spikes = detect_spikes(result.times_ms, result.trace(probe),
                                       threshold_mV=settings.threshold_mV,
                                       refractory_ms=settings.refractory_ms)
                kept = spikes[spikes >= window - 1e-9]
                level.spike_times_ms[probe] = [float(t) for t in kept]
                level.spike_counts[probe] = int(kept.size)
        levels.append(level)

    fits: list[Fit] = []
    for backend in dict.fromkeys(backend for _, backend, _, _ in plan):
        for study in ("dt", "space"):
            chosen = [level for level in levels
                      if level.backend == backend and level.study == study]
            fixed: dict[str, float] = ({space_parameter: finest_space} if study == "dt"
                                       else {"dt_ms": finest_dt})
            fits.append(_spike_fit(backend, study, chosen, probes, fixed))
    return levels, fits, failures


def _describe_step(study: Study, step: float) -> str:
    return f"dt {step:g} ms" if study == "dt" else f"CV length {step:.4g} um"


def _spike_reference(study: Study, ran: list[Level], probes: list[str]) -> SpikeReference:
    """The two finest levels that ran, Richardson-extrapolated at the order the levels show
    against the finest; the finest level itself (with the reason) when that cannot be done."""
    finest = ran[-1]
    where = _describe_step(study, finest.step)

    def finest_level(reason: str) -> SpikeReference:
        return SpikeReference(FINEST_LEVEL, None, [finest.step],
                              {probe: list(finest.spike_times_ms[probe]) for probe in probes},
                              dict(finest.spike_counts),
                              f"{reason}: the reference is the finest level ({where}), whose "
                              "own error is 0 by construction")

    if not any(finest.spike_counts.values()):
        return finest_level("no spikes at the finest level")
    if len(ran) < 3:
        return finest_level(f"{len(ran)} level(s) ran; extrapolating needs three (two to "
                            "extrapolate, one more to fit the order)")
    coarse = ran[-2]
    if coarse.spike_counts != finest.spike_counts:
        differ = ", ".join(f"{probe} {coarse.spike_counts[probe]} at "
                           f"{_describe_step(study, coarse.step)}, "
                           f"{finest.spike_counts[probe]} at {where}" for probe in probes
                           if coarse.spike_counts[probe] != finest.spike_counts[probe])
        return finest_level(f"the two finest levels differ in spike count ({differ})")
    consistent = [level for level in ran[:-1] if level.spike_counts == finest.spike_counts]
    if len(consistent) < 2:
        return finest_level("fewer than two coarser levels have the finest level's spike "
                            "counts: no order to extrapolate with")
    differences = [max((float(np.max(np.abs(np.subtract(level.spike_times_ms[probe],
                                                         finest.spike_times_ms[probe])),
                                      initial=0.0)) for probe in probes), default=0.0)
                   for level in consistent]
    order = fit_order_against_finest([level.step for level in consistent], differences,
                                     finest.step)
    if not (math.isfinite(order) and order >= _MIN_RICHARDSON_ORDER):
        shown = f"{order:.3g}" if math.isfinite(order) else "none"
        return finest_level(f"no usable order against the finest level (fitted: {shown}; "
                            f"extrapolating needs >= {_MIN_RICHARDSON_ORDER:g})")
    ratio = coarse.step / finest.step
    times = {probe: [float(t) for t in richardson(np.asarray(coarse.spike_times_ms[probe]),
                                                  np.asarray(finest.spike_times_ms[probe]),
                                                  ratio, order)]
             for probe in probes}
    return SpikeReference(RICHARDSON, order, [coarse.step, finest.step], times,
                          dict(finest.spike_counts))


def _spike_fit(backend: str, study: Study, levels: list[Level], probes: list[str],
               fixed: dict[str, float]) -> SpikeTimeFit:
    """Measure each level that ran against the study's reference, then fit the orders over
    those whose spike counts are the reference's (coarse to fine)."""
    from crosssim.spikes import compare_spikes

    ran = sorted((level for level in levels if level.error is None),
                 key=lambda level: -level.step)
    if ran:
        reference = _spike_reference(study, ran, probes)
    else:
        reference = SpikeReference(FINEST_LEVEL, None, [], {}, {},
                                   "no level of the study ran: nothing to measure")
    excluded: list[tuple[float, str]] = []
    for level in ran:
        level.reference_spike_counts = dict(reference.spike_counts)
        differ = []
        for probe in probes:
            pair = compare_spikes(reference.spike_times_ms[probe],
                                  level.spike_times_ms[probe])
            if pair.max_abs_shift_ms is not None and pair.mean_abs_shift_ms is not None:
                level.spike_error_ms[probe] = pair.max_abs_shift_ms
                level.spike_mean_error_ms[probe] = pair.mean_abs_shift_ms
            if not pair.counts_match:
                differ.append(f"{probe} {pair.count_b} (reference {pair.count_a})")
        if differ:
            level.excluded = ("spike count differs from the reference: " + ", ".join(differ)
                              + "; left out of the fit")
            excluded.append((level.step, level.excluded))
    usable = [level for level in ran if level.excluded is None and level.spike_error_ms]
    steps = [level.step for level in usable]
    errors_max = [level.worst_spike_error_ms for level in usable]
    errors_mean = [level.worst_spike_mean_error_ms for level in usable]
    return SpikeTimeFit(
        backend=backend, study=study, parameter="dt_ms" if study == "dt" else "cv_length_um",
        fixed=fixed, steps=steps, errors_max_ms=errors_max, errors_mean_ms=errors_mean,
        order_max=fit_order(steps, errors_max), order_mean=fit_order(steps, errors_mean),
        local_orders=local_orders(steps, errors_max), reference=reference,
        excluded=excluded)
