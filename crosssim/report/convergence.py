"""The "Convergence" part of a report, from a convergence study (:mod:`crosssim.study.convergence`).

Two kinds of study share it, told apart by the document's ``metric``: voltages against the
exact cable solution (``"voltage_mV"``, passive models) and spike times against each
simulator's own extrapolated spike times (``"spike_time_ms"``, active models; the
``spike_*`` functions and rows).

The terminal text (:func:`render_text`) is drawn from the result itself.  The HTML and
Markdown pages render the study's JSON document (``report.json``'s
``convergence`` block, :meth:`ConvergenceResult.to_document`), shaped here into rows, so
the numbers shown are the numbers stored.  The figure is
:func:`crosssim.report.figures.plot_convergence` with the study's own fitted orders in its
legend.  Nothing here imports matplotlib until the figure is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosssim.report.document import ReportFigure
from crosssim.report.text import plural, text_table

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.study.convergence import ConvergenceResult, Fit, Level

#: File names of the convergence study in a report folder.
FIGURE_FILE = "convergence.png"
TABLE_FILE = "convergence.csv"
FIGURE_TITLE = "Error against dt and against control-volume length"
SPIKE_FIGURE_TITLE = "Spike-time error against dt and against control-volume length"
#: The ``metric`` of a spike-time study's document.
SPIKE_METRIC = "spike_time_ms"
#: The y-axis of a spike-time study's figure.
SPIKE_ERROR_LABEL = "max spike-time error (ms)"

_PARAMETER = {"dt": "dt_ms", "space": "cv_length_um"}


@dataclass(frozen=True)
class OrderRow:
    """One fitted order: a backend in one study (numbers as in the document; None = n/a)."""

    backend: str
    study: str  # "dt" or "space"
    study_label: str  # e.g. "dt, at 9 CVs/cell"
    order_max: float | None
    order_rms: float | None
    local_orders: list[float | None]
    floor: bool
    finest_error_mV: float | None
    richardson_error_mV: float | None
    estimated_finest_error_mV: float | None


@dataclass(frozen=True)
class LevelRow:
    """One run of the study: errors are the largest over the probes (mV)."""

    study: str
    backend: str
    dt_ms: float
    space_value: float | None  # CVs per cell or largest CV length (um), as studied
    cv_length_um: float | None
    max_abs_mV: float | None
    rms_mV: float | None
    worst_probe: str
    cached: bool
    error: str | None


def space_name(document: Mapping[str, Any]) -> str:
    """Header of the space level column: ``CVs/cell`` or ``max extent (um)``."""
    parameter = (document.get("space") or {}).get("parameter")
    return "CVs/cell" if parameter == "cvs_per_cell" else "max extent (um)"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _worst(values: Mapping[str, Any] | None) -> float | None:
    finite = [v for v in (_number(x) for x in (values or {}).values()) if v is not None]
    return max(finite) if finite else None


def fixed_label(fixed: Mapping[str, Any]) -> str:
    """The level held fixed in a study, for people: ``9 CVs/cell``, ``dt 0.01 ms``."""
    parts = []
    for key, value in fixed.items():
        if key == "cvs_per_cell":
            parts.append(f"{value:g} CVs/cell")
        elif key == "dt_ms":
            parts.append(f"dt {value:g} ms")
        elif key == "max_extent_um":
            parts.append(f"max extent {value:g} um")
        else:
            parts.append(f"{key} {value:g}")
    return ", ".join(parts)


def study_label(study: str, fixed: Mapping[str, Any]) -> str:
    name = "dt" if study == "dt" else "CV length"
    where = fixed_label(fixed)
    return f"{name}, at {where}" if where else name


def order_rows(document: Mapping[str, Any]) -> list[OrderRow]:
    """The fitted orders of the study document, in its order (backend, then dt, space)."""
    def largest(richardson: Mapping[str, Mapping[str, Any]], key: str) -> float | None:
        return _worst({probe: item.get(key) for probe, item in richardson.items()})

    rows = []
    for fit in document.get("orders") or []:
        richardson = fit.get("richardson") or {}
        rows.append(OrderRow(
            backend=str(fit["backend"]), study=str(fit["study"]),
            study_label=study_label(str(fit["study"]), fit.get("fixed") or {}),
            order_max=_number(fit.get("order_max")), order_rms=_number(fit.get("order_rms")),
            local_orders=[_number(v) for v in fit.get("local_orders") or []],
            floor=bool(fit.get("error_floor")),
            finest_error_mV=largest(richardson, "finest_error_mV"),
            richardson_error_mV=largest(richardson, "richardson_error_mV"),
            estimated_finest_error_mV=largest(richardson, "estimated_finest_error_mV")))
    return rows


def level_rows(document: Mapping[str, Any]) -> list[LevelRow]:
    """Every run of the study, in the document's order (backend, dt study, space study)."""
    parameter = (document.get("space") or {}).get("parameter", "cvs_per_cell")
    rows = []
    for level in document.get("levels") or []:
        maxima = level.get("max_abs_mV") or {}
        finite = {probe: v for probe, v in maxima.items() if _number(v) is not None}
        rows.append(LevelRow(
            study=str(level["study"]), backend=str(level["backend"]),
            dt_ms=float(level["dt_ms"]), space_value=_number(level.get(parameter)),
            cv_length_um=_number(level.get("cv_length_um")),
            max_abs_mV=_worst(maxima), rms_mV=_worst(level.get("rms_mV")),
            worst_probe=max(finite, key=lambda probe: finite[probe]) if finite else "",
            cached=bool(level.get("cached")), error=level.get("error")))
    return rows


def summary_sentence(document: Mapping[str, Any]) -> str:
    """What was measured, in one sentence (plain text)."""
    dts = document.get("dts_ms") or []
    space = document.get("space") or {}
    values = space.get("values") or []
    if space.get("parameter") == "cvs_per_cell":
        space_text = "CVs per cell " + ", ".join(f"{v:g}" for v in values)
    else:
        space_text = "largest CV length " + ", ".join(f"{v:g}" for v in values) + " um"
    return (f"Error against the exact cable solution (largest over the probes, t = 0.."
            f"{document.get('t_stop_ms', 0):g} ms sampled every "
            f"{document.get('sample_dt_ms', 0):g} ms) at dt "
            + ", ".join(f"{v:g}" for v in dts)
            + f" ms (at the finest space level) and at {space_text} (at the finest dt). "
            "The order is the least-squares slope of log(max error) on log(step).")


def methods_sentence(document: Mapping[str, Any]) -> str:
    methods = document.get("methods") or {}
    return "; ".join(f"{name}: {method}" for name, method in methods.items())


def plot_study(result: ConvergenceResult, path: Path) -> Path:
    """The study's log-log figure at ``path``, with the study's own fitted orders and floors
    (the same figure for ``crosssim converge`` and the report)."""
    from crosssim.report.figures import plot_convergence

    orders = {(_PARAMETER[fit.study], fit.backend): fit.order_max for fit in result.orders}
    floors = [(_PARAMETER[fit.study], fit.backend) for fit in result.orders if fit.floor]
    titles = {_PARAMETER[fit.study]: ("dt study" if fit.study == "dt" else "space study")
              + f" (at {fixed_label(fit.fixed)})" for fit in result.orders}
    if result.metric == SPIKE_METRIC:
        return plot_convergence(result.figure_table(), path, orders=orders, floors=floors,
                                panel_titles=titles, error_column="error_ms",
                                error_label=SPIKE_ERROR_LABEL,
                                title=f"{result.model.name}: spike-time error against each "
                                      "simulator's extrapolated spike times")
    return plot_convergence(result.figure_table(), path, orders=orders, floors=floors,
                            panel_titles=titles,
                            title=f"{result.model.name}: error against the exact cable "
                                  "solution")


def convergence_figure(result: ConvergenceResult, folder: Path) -> ReportFigure | None:
    """Draw ``folder/convergence.png`` (error vs dt and vs CV length, log-log, the study's
    fitted orders in the legend); None when no level produced an error to plot."""
    if not result.figure_table():
        return None
    path = plot_study(result, folder / FIGURE_FILE)
    if result.metric == SPIKE_METRIC:
        return ReportFigure(SPIKE_FIGURE_TITLE, (
            "Largest |spike time - reference spike time| over the matched spikes and the "
            "probes, in ms, log-log, one line per simulator; each simulator's reference is "
            "its own spike times extrapolated from its two finest levels. Levels whose spike "
            "count differs from the reference are left out. The legend gives the fitted "
            "order (slope), the dotted line the fit. \"(floor)\": the error stopped (or "
            "hardly started) falling."), path.name, path.read_bytes())
    caption = ("Largest |error| over the probes against the exact cable solution, log-log, "
               "one line per backend; the legend gives the fitted order (slope), the dotted "
               "line the fit. Panels: dt (at the finest space level) and control-volume "
               "length (at the finest dt). \"(floor)\": the error stopped (or hardly "
               "started) falling because the other discretisation dominates.")
    return ReportFigure(FIGURE_TITLE, caption, path.name, path.read_bytes())


# Terminal text -----------------------------------------------------------------------------------


def _g(value: float, digits: int = 3) -> str:
    """A table number: ``digits`` significant digits, ``n/a`` when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def render_text(result: ConvergenceResult) -> str:
    """The level table and the observed orders, for a terminal."""
    from crosssim.study.convergence import OrderFit, integration_methods

    if result.metric == SPIKE_METRIC:
        return render_spike_text(result)
    model = result.model
    space_name = "CVs/cell" if result.space_parameter == "cvs_per_cell" else "max extent um"
    lines = [
        (f"crosssim converge: {model.name} ({plural(len(model.cells), 'cell')}, t = 0..."
         f"{model.simulation.t_stop_ms:g} ms sampled every {result.sample_dt_ms:g} ms; "
         "error = deviation from the exact cable solution, largest over the probes)"),
    ]
    lines.append("time integration: " + "; ".join(
        f"{name} {method}" for name, method in integration_methods(model,
                                                                   result.backends).items()))
    head: tuple[str, ...] = ("study", "backend", "dt ms", space_name, "CV um", "max|err| mV",
                             "rms mV", "worst probe", "")
    rows: list[tuple[str, ...]] = [head]
    for level in result.levels:
        if level.error is not None:
            rows.append((level.study, level.backend, f"{level.dt_ms:g}",
                         _space_value(level), _g(level.cv_length_um), "FAILED", "", "",
                         level.error[:60]))
            continue
        maxima = level.max_abs_mV
        worst = max(maxima, key=lambda probe: maxima[probe]) if maxima else ""
        rows.append((level.study, level.backend, f"{level.dt_ms:g}", _space_value(level),
                     _g(level.cv_length_um), _g(level.worst_max_mV), _g(level.worst_rms_mV),
                     worst, "cached" if level.cached else ""))
    lines += text_table(rows, numeric={2, 3, 4, 5, 6})
    if result.orders:
        lines.append("")
        lines.append("observed order (least squares on log-log; local = between successive "
                     "levels, coarse to fine):")
        head = ("backend", "study", "order max", "order rms", "local orders",
                "finest err mV", "Richardson err mV", "est. finest err mV")
        rows = [head]
        for fit in result.orders:
            if not isinstance(fit, OrderFit):
                continue
            finest = [item["finest_error_mV"] for item in fit.richardson.values()]
            extrap = [item["richardson_error_mV"] for item in fit.richardson.values()]
            estimate = [item["estimated_finest_error_mV"] for item in fit.richardson.values()]
            local = ", ".join(_g(order, 2) for order in fit.local_orders)
            rows.append((fit.backend, f"{fit.study} ({_fixed(fit)})", _g(fit.order_max),
                         _g(fit.order_rms), local + (" (floor)" if fit.floor else ""),
                         _g(max(finest)) if finest else "n/a",
                         _g(max(extrap)) if extrap else "n/a",
                         _g(max(estimate)) if estimate else "n/a"))
        lines += text_table(rows, numeric={2, 3, 5, 6, 7})
        if any(fit.floor for fit in result.orders):
            lines.append("(floor): the error stopped falling at the finest levels (or hardly "
                         "falls at all); the other discretisation (or the sample grid) limits "
                         "it, refine it too.")
    if result.failures:
        lines.append("")
        for name, reason in sorted(result.failures.items()):
            lines.append(f"{name}: FAILED: {reason}")
    lines.append("")
    lines.append(f"{result.computed} run(s) computed, {result.cached} from the cache, "
                 f"{result.wall_time_s:.1f} s")
    return "\n".join(lines)


def _fixed(fit: Fit) -> str:
    return ", ".join(f"{key.removesuffix('_ms').removesuffix('_um')} {value:g}"
                     for key, value in fit.fixed.items())


def _space_value(level: Level) -> str:
    if level.space_parameter == "cvs_per_cell":
        return str(int(level.space_value))
    return f"{level.space_value:g}"


# Spike-time studies (active models) -----------------------------------------------------------


def is_spike_study(document: Mapping[str, Any]) -> bool:
    """True for the document of a spike-time study (``metric`` ``spike_time_ms``)."""
    return document.get("metric") == SPIKE_METRIC


@dataclass(frozen=True)
class SpikeOrderRow:
    """One fitted order of a spike-time study (numbers as in the document; None = n/a)."""

    backend: str
    study: str
    study_label: str
    order_max: float | None
    order_mean: float | None
    local_orders: list[float | None]
    floor: bool
    reference: str  # how the reference spike times were made, for people
    reference_note: str | None
    finest_error_ms: float | None  # the finest fitted level against the reference
    excluded: int  # levels left out of the fit (spike count differs)


@dataclass(frozen=True)
class SpikeLevelRow:
    """One run of a spike-time study: errors are the largest over the probes (ms)."""

    study: str
    backend: str
    dt_ms: float
    space_value: float | None
    cv_length_um: float | None
    spikes: int | None  # over all probes
    reference_spikes: int | None
    max_error_ms: float | None
    mean_error_ms: float | None
    worst_probe: str
    excluded: str | None
    cached: bool
    error: str | None


def _steps_text(study: str, steps: list[Any]) -> str:
    values = " and ".join(f"{float(step):.4g}" for step in steps)
    return f"dt {values} ms" if study == "dt" else f"CV length {values} um"


def reference_label(study: str, reference: Mapping[str, Any]) -> str:
    """How a fit's reference spike times were made: ``Richardson at order 2.00 from dt
    0.02 and 0.01 ms`` or ``finest level (dt 0.01 ms)``."""
    steps = list(reference.get("steps") or [])
    order = _number(reference.get("order"))
    if reference.get("method") == "richardson" and order is not None:
        return f"Richardson at order {order:.2f} from {_steps_text(study, steps)}"
    return f"finest level ({_steps_text(study, steps)})" if steps else "none"


def spike_order_rows(document: Mapping[str, Any]) -> list[SpikeOrderRow]:
    """The fitted orders of a spike-time study document, in its order."""
    rows = []
    for fit in document.get("orders") or []:
        errors = [_number(v) for v in fit.get("errors_max_ms") or []]
        reference = fit.get("reference") or {}
        study = str(fit["study"])
        rows.append(SpikeOrderRow(
            backend=str(fit["backend"]), study=study,
            study_label=study_label(study, fit.get("fixed") or {}),
            order_max=_number(fit.get("order_max")), order_mean=_number(fit.get("order_mean")),
            local_orders=[_number(v) for v in fit.get("local_orders") or []],
            floor=bool(fit.get("error_floor")), reference=reference_label(study, reference),
            reference_note=reference.get("note"),
            finest_error_ms=errors[-1] if errors else None,
            excluded=len(fit.get("excluded_levels") or [])))
    return rows


def spike_level_rows(document: Mapping[str, Any]) -> list[SpikeLevelRow]:
    """Every run of a spike-time study, in the document's order."""
    parameter = (document.get("space") or {}).get("parameter", "cvs_per_cell")
    rows = []
    for level in document.get("levels") or []:
        maxima = level.get("spike_error_ms") or {}
        finite = {probe: v for probe, v in maxima.items() if _number(v) is not None}
        counts = level.get("spike_counts") or {}
        reference = level.get("reference_spike_counts") or {}
        rows.append(SpikeLevelRow(
            study=str(level["study"]), backend=str(level["backend"]),
            dt_ms=float(level["dt_ms"]), space_value=_number(level.get(parameter)),
            cv_length_um=_number(level.get("cv_length_um")),
            spikes=sum(counts.values()) if counts else None,
            reference_spikes=sum(reference.values()) if reference else None,
            max_error_ms=_worst(maxima), mean_error_ms=_worst(level.get("spike_mean_error_ms")),
            worst_probe=max(finite, key=lambda probe: finite[probe]) if finite else "",
            excluded=level.get("excluded"), cached=bool(level.get("cached")),
            error=level.get("error")))
    return rows


def spike_detection_sentence(document: Mapping[str, Any]) -> str:
    """How spikes were found: ``upward crossings of 0 mV (no second spike within 1 ms), from
    t = 0 ms, in each run's own samples``."""
    detection = document.get("spike_detection") or {}
    return (f"upward crossings of {detection.get('threshold_mV', 0):g} mV (no second spike "
            f"within {detection.get('refractory_ms', 0):g} ms), from t = "
            f"{document.get('window_start_ms', 0):g} ms, in each run's own samples, "
            "crossing times interpolated linearly")


def spike_summary_sentence(document: Mapping[str, Any]) -> str:
    """What a spike-time study measured, in plain text."""
    dts = document.get("dts_ms") or []
    space = document.get("space") or {}
    values = space.get("values") or []
    if space.get("parameter") == "cvs_per_cell":
        space_text = "CVs per cell " + ", ".join(f"{v:g}" for v in values)
    else:
        space_text = "largest CV length " + ", ".join(f"{v:g}" for v in values) + " um"
    return ("Active membranes have no exact solution: spike times are measured instead of "
            "voltages. Error = largest |spike time - reference spike time| over the matched "
            "spikes (ms), largest over the probes; each simulator's reference, per study, is "
            "its own spike times Richardson-extrapolated from its two finest levels at the "
            "order the levels show against the finest one (or the finest level, with a note). "
            f"Spikes: {spike_detection_sentence(document)}; t = 0.."
            f"{document.get('t_stop_ms', 0):g} ms sampled every "
            f"{document.get('sample_dt_ms', 0):g} ms. Levels: dt "
            + ", ".join(f"{v:g}" for v in dts)
            + f" ms (at the finest space level) and {space_text} (at the finest dt). "
            "A level whose spike count differs from the reference's is shown and left out "
            "of the fit. The order is the least-squares slope of log(max spike-time error) "
            "on log(step).")


def render_spike_text(result: ConvergenceResult) -> str:
    """The level table and the observed orders of a spike-time study, for a terminal."""
    from crosssim.study.convergence import SpikeTimeFit, integration_methods

    document = result.to_document()
    model = result.model
    space_header = "CVs/cell" if result.space_parameter == "cvs_per_cell" else "max extent um"
    lines = [
        (f"crosssim converge: {model.name} ({plural(len(model.cells), 'cell')}, active "
         f"membranes, t = 0...{model.simulation.t_stop_ms:g} ms sampled every "
         f"{result.sample_dt_ms:g} ms; spike-time error = largest |spike time - reference "
         "spike time| over matched spikes, in ms, largest over the probes; reference = each "
         "simulator's own spike times extrapolated from its two finest levels)"),
        f"spikes: {spike_detection_sentence(document)}",
        "time integration: " + "; ".join(
            f"{name} {method}"
            for name, method in integration_methods(model, result.backends).items()),
    ]
    head: tuple[str, ...] = ("study", "backend", "dt ms", space_header, "CV um",
                             "spikes (all probes)",
                             "max spike err ms", "mean spike err ms", "worst probe", "")
    rows: list[tuple[str, ...]] = [head]
    for level in result.levels:
        if level.error is not None:
            rows.append((level.study, level.backend, f"{level.dt_ms:g}", _space_value(level),
                         _g(level.cv_length_um), "", "FAILED", "", "", level.error[:60]))
            continue
        maxima = level.spike_error_ms
        worst = max(maxima, key=lambda probe: maxima[probe]) if maxima else ""
        remark = "cached" if level.cached else ""
        if level.excluded is not None:
            remark = "NOT FITTED: " + level.excluded.removesuffix("; left out of the fit")
        rows.append((level.study, level.backend, f"{level.dt_ms:g}", _space_value(level),
                     _g(level.cv_length_um), str(sum(level.spike_counts.values())),
                     _g(level.worst_spike_error_ms), _g(level.worst_spike_mean_error_ms),
                     worst, remark))
    lines += text_table(rows, numeric={2, 3, 4, 5, 6, 7})
    fits = [fit for fit in result.orders if isinstance(fit, SpikeTimeFit)]
    if fits:
        lines.append("")
        lines.append("observed order of the spike times (least squares on log-log; local = "
                     "between successive levels, coarse to fine):")
        head = ("backend", "study", "order max", "order mean", "local orders",
                "finest err ms", "reference")
        rows = [head]
        for fit in fits:
            local = ", ".join(_g(order, 2) for order in fit.local_orders)
            rows.append((fit.backend, f"{fit.study} ({_fixed(fit)})", _g(fit.order_max),
                         _g(fit.order_mean), local + (" (floor)" if fit.floor else ""),
                         _g(fit.errors_max_ms[-1]) if fit.errors_max_ms else "n/a",
                         reference_label(fit.study, fit.reference.to_dict())))
        lines += text_table(rows, numeric={2, 3, 5})
        if any(fit.floor for fit in fits):
            lines.append("(floor): the error stopped falling at the finest levels (or hardly "
                         "falls at all); the sample grid or round-off limits it.")
        for fit in fits:
            if fit.reference.note:
                lines.append(f"{fit.backend}, {fit.study} study: {fit.reference.note}")
            if fit.excluded:
                lines.append(f"{fit.backend}, {fit.study} study: "
                             f"{plural(len(fit.excluded), 'level')} left out of the fit "
                             "(spike count differs from the reference)")
    if result.notes:
        lines.append("")
        lines += [f"note: {note}" for note in result.notes]
    if result.failures:
        lines.append("")
        for name, reason in sorted(result.failures.items()):
            lines.append(f"{name}: FAILED: {reason}")
    lines.append("")
    lines.append(f"{result.computed} run(s) computed, {result.cached} from the cache, "
                 f"{result.wall_time_s:.1f} s")
    return "\n".join(lines)
