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
    "ConvergenceResult",
    "Level",
    "OrderFit",
    "converge",
    "fit_order",
    "richardson",
    "space_step_um",
]

Study = Literal["dt", "space"]
SpaceParameter = Literal["cvs_per_cell", "max_extent_um"]

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
    """One run: a backend at one (dt, space) level, its errors per probe (mV)."""

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
        if not self.local_orders or not math.isfinite(self.order_max):
            return False
        if self.order_max < _FLOOR_ORDER:
            return True
        last = self.local_orders[-1]
        return math.isfinite(last) and last < _FLOOR_FRACTION * self.order_max

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
class ConvergenceResult:
    """Everything a convergence study produced."""

    model: Model
    dts: list[float]
    space_parameter: SpaceParameter
    space_values: list[float]
    sample_dt_ms: float
    backends: list[str]
    levels: list[Level]
    orders: list[OrderFit]
    reference: RunResult | None
    failures: dict[str, str]
    computed: int
    cached: int
    wall_time_s: float
    executor: str = ""

    @property
    def ok(self) -> bool:
        """True when the reference and every level ran."""
        return not self.failures

    def order(self, backend: str, study: Study, metric: str = "max") -> float:
        """The fitted order of ``backend`` in ``study`` (``metric`` ``max`` or ``rms``)."""
        for fit in self.orders:
            if fit.backend == backend and fit.study == study:
                return fit.order_max if metric == "max" else fit.order_rms
        raise KeyError(f"no {study} study for backend {backend!r}")

    def to_frame(self) -> pd.DataFrame:
        """One row per (study, backend, level, probe); failed levels have ``error`` set."""
        import pandas as pd

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

    def figure_table(self) -> list[dict[str, Any]]:
        """Rows for :func:`crosssim.report.figures.plot_convergence` (parameter, value,
        error_mV, source, probe)."""
        rows = []
        for level in self.levels:
            parameter = "dt_ms" if level.study == "dt" else "cv_length_um"
            for probe, error in level.max_abs_mV.items():
                rows.append({"parameter": parameter, "value": level.step, "error_mV": error,
                             "source": level.backend, "probe": probe})
        return rows

    def to_document(self) -> dict[str, Any]:
        """The JSON document (``converge.json`` and ``--format json``)."""
        return json_ready({
            "model": self.model.name,
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
    return {"study": level.study, "backend": level.backend, "dt_ms": level.dt_ms,
            level.space_parameter: level.space_value, "cvs_per_cell": level.cvs_per_cell,
            "cv_length_um": level.cv_length_um, "max_abs_mV": level.max_abs_mV,
            "t_max_abs_ms": level.t_max_abs_ms, "rms_mV": level.rms_mV,
            "final_abs_mV": level.final_abs_mV, "error": level.error, "cached": level.cached}


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
    names = list(select_sources(backends, [], model)[0])
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
    tasks = [SourceTask(ANALYTIC, reference_model, label="analytic (exact cable)"),
             SourceTask(SEMIDISCRETE, reference_model, label="semidiscrete (finest CVs)"),
             SourceTask(DISCRETE, reference_model, label="discrete (finest dt and CVs)")]
    for _study, backend, dt, value in plan:
        label = f"{backend} dt={dt:g} {_space_label(space_parameter, value)}"
        tasks.append(SourceTask(backend, models[(dt, value)], label=label))
    run = run_tasks(tasks, executor=executor, cache=cache, progress=progress)
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

    orders = []
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
    executor_text = getattr(executor, "description", "") if executor is not None else "local"
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

