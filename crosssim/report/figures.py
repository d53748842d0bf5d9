"""Figures (matplotlib, object API only: no pyplot global state, no display needed; the
run plot, :func:`draw_traces`, and the sweep heatmap are drawn with Pillow by
:mod:`crosssim.report.raster`).

Every figure is readable in greyscale print: each source (and each pair of sources) has its
own line style, not only its own colour.  Every function saves one PNG at ``path`` atomically
and returns ``path``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crosssim.report.raster import TracesFigure

if TYPE_CHECKING:  # pragma: no cover - the model and results layers are not needed to draw
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from crosssim.model import Cell, Model
    from crosssim.outcome import CheckOutcome, Comparison
    from crosssim.result import RunResult

#: Line styles per source, so backends stay distinguishable in greyscale print.
_STYLES: dict[str, dict[str, Any]] = {
    "arbor": {"linestyle": "-", "linewidth": 2.2, "alpha": 0.8},
    "neuron": {"linestyle": (0, (4, 2)), "linewidth": 1.4},
    "analytic": {"linestyle": ":", "linewidth": 1.6, "color": "black"},
    "lumped": {"linestyle": "-.", "linewidth": 1.0, "color": "grey"},
}
#: Colours per source in the per-probe figures (``analytic``/``lumped`` are black/grey).
_SOURCE_COLOURS = {"arbor": "C0", "neuron": "C1"}
#: Styles for further sources and for pairs of sources: (line style, marker).
_CYCLE = [("-", None), ((0, (5, 2)), None), ((0, (1, 1.5)), None), ((0, (6, 2, 1, 2)), None),
          ("-", "o"), ("--", "s"), (":", "^"), ("-.", "v")]
MAX_PROBES_PLOTTED = 12
#: Line styles of the run plot's sources without a style in :data:`_STYLES`.
_UNSTYLED = [(0, (6, 2, 1, 2)), (0, (1, 1.5)), (0, (8, 3)), (0, (2, 2, 2, 4))]
_SOURCE_LABELS = {"analytic": "exact cable", "lumped": "lumped"}
#: Panels (probes) in the per-probe figures.
MAX_PANELS = 6
#: Parameters of a convergence table that are counts (error falls as they grow).
COUNT_PARAMETERS = frozenset({"cvs_per_cell", "n_cvs", "cvs"})
_PARAMETER_LABELS = {
    "dt_ms": "time step dt (ms)",
    "cv_length_um": "control-volume length (um)",
    "max_extent_um": "control-volume length (um)",
    "cvs_per_cell": "control volumes per cell",
}


def _save_png(figure: Figure, path: Path, dpi: int) -> Path:
    from crosssim.files import atomic_open

    path = Path(path)
    with atomic_open(path, "wb", encoding=None) as handle:
        figure.savefig(handle, format="png", dpi=dpi)
    return path


def _source_style(name: str, index: int) -> dict[str, Any]:
    """Line style (and colour) of source ``name``; ``index`` picks one for unknown sources."""
    style: dict[str, Any]
    if name in _STYLES:
        style = dict(_STYLES[name])
        style.setdefault("color", _SOURCE_COLOURS.get(name, f"C{index % 10}"))
        return style
    linestyle, marker = _CYCLE[index % len(_CYCLE)]
    style = {"linestyle": linestyle, "linewidth": 1.4, "color": f"C{index % 10}"}
    if marker:
        style.update(marker=marker, markevery=0.1, markersize=4)
    return style


def traces_figure(model: Model, results: Sequence[RunResult], *,
                  equilibria: Mapping[str, float] | None = None,
                  note: str | None = None) -> TracesFigure:
    """The :class:`TracesFigure` of ``results``: colour = probe, line style = source (the
    first :data:`MAX_PROBES_PLOTTED` probes); ``equilibria`` (cell name -> mV, e.g. the
    lumped steady state) of the probed cells, cells with the same value on one line and one
    label; ``note`` under the title."""
    colours = [f"C{i}" for i in range(10)]
    probes = model.effective_probes()[:MAX_PROBES_PLOTTED]
    probe_cell = {probe.label: probe.cell for probe in probes}
    lines = []
    # a source without a style of its own (Jaxley, a trace file) gets one of the patterns
    # no styled source uses, so that it does not hide under Arbor's solid line
    unstyled = [result.backend for result in results if result.backend not in _STYLES]
    for result in results:
        style = dict(_STYLES.get(result.backend) or {
            "linestyle": _UNSTYLED[unstyled.index(result.backend) % len(_UNSTYLED)],
            "linewidth": 1.4})
        for index, label in enumerate(probe_cell):
            if label not in result.probes:
                continue
            colour = style.get("color") or colours[index % len(colours)]
            lines.append((result.times_ms, result.trace(label),
                          f"{label} ({_SOURCE_LABELS.get(result.backend, result.backend)})",
                          {**style, "color": colour}))
    shown = set(probe_cell.values())
    levels = []
    for value, cells in equilibrium_groups(equilibria or {}, shown):
        names = ", ".join(cells[:3]) + (f" +{len(cells) - 3} more" if len(cells) > 3 else "")
        levels.append((value, f"{names}: lumped equilibrium {value:.4f} mV"))
    title = model.name
    if len(model.effective_probes()) > MAX_PROBES_PLOTTED:
        title += f" (first {MAX_PROBES_PLOTTED} of {len(model.effective_probes())} probes)"
    if note:
        title += f"\n{note}"
    return TracesFigure(title, bool(note), lines, levels)


def plot_traces(model: Model, results: Sequence[RunResult], path: Path, *,
                equilibria: Mapping[str, float] | None = None, note: str | None = None,
                dpi: int = 120) -> Path:
    """Plot every probe of every source on one axes and save a PNG at ``path``.

    Colour = probe, line style = source; the legend sits outside the axes, right of them.
    ``equilibria`` (cell name -> mV, e.g. the lumped steady state) are drawn dashed; cells
    with the same value share one line and one label.  ``note`` is added under the title
    (e.g. why no equilibrium is drawn).
    """
    return draw_traces(traces_figure(model, results, equilibria=equilibria, note=note), path,
                       dpi=dpi)


def draw_traces(traces: TracesFigure, path: Path, *, dpi: int = 120) -> Path:
    """Draw ``traces`` (see :func:`traces_figure`) and save a PNG at ``path`` atomically:
    with Pillow, in matplotlib's manner (:mod:`crosssim.report.raster` says why)."""
    from crosssim.report.raster import save_png

    return save_png(traces, path, dpi=dpi)


def equilibrium_groups(equilibria: Mapping[str, float],
                       cells: set[str]) -> list[tuple[float, list[str]]]:
    """The equilibria of ``cells`` grouped by value as shown (4 decimals): one line and one
    label per distinct value, its cells in model order."""
    groups: dict[str, tuple[float, list[str]]] = {}
    for cell, value in equilibria.items():
        if cell in cells:
            groups.setdefault(f"{value:.4f}", (value, []))[1].append(cell)
    return list(groups.values())


def _panels(n_panels: int, *, width: float = 8.0, height: float = 3.0) -> tuple[Figure, list]:
    """A figure with ``n_panels`` stacked axes sharing the time axis."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, 0.8 + height * n_panels), layout="constrained")
    axes = figure.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    return figure, list(axes)


def _chosen_probes(all_probes: Sequence[str], probes: Sequence[str] | None) -> list[str]:
    """The first MAX_PANELS of ``probes`` (in that order) that are in ``all_probes``."""
    if probes is None:
        return list(all_probes[:MAX_PANELS])
    known = set(all_probes)
    return [probe for probe in probes if probe in known][:MAX_PANELS]


def _shown_note(shown: int, total: int) -> str:
    return "" if shown >= total else f" (first {shown} of {total} probes)"


def plot_probe_traces(model: Model, results: Sequence[RunResult], path: Path, *,
                      equilibria: Mapping[str, float] | None = None,
                      probes: Sequence[str] | None = None, dpi: int = 110) -> Path:
    """One panel per probe: every source's trace (mV over ms) and the probe cell's equilibrium.

    ``results`` are the backends and references (``analytic`` is the exact cable curve,
    ``lumped`` the isopotential one).  ``equilibria`` (cell -> mV, the lumped steady state)
    are drawn as dashed lines labelled at the right with the cell they belong to.
    ``probes`` chooses and orders the panels (default: the model's probes); at most
    :data:`MAX_PANELS` are drawn.
    """
    labels = [probe.label for probe in model.effective_probes()]
    probe_cell = {probe.label: probe.cell for probe in model.effective_probes()}
    chosen = _chosen_probes(labels, probes) or labels[:1]
    figure, axes_list = _panels(len(chosen))
    ordered = sorted(results, key=lambda r: _source_rank(r.backend))
    for axes, label in zip(axes_list, chosen):
        for index, result in enumerate(ordered):
            if label not in result.probes:
                continue
            axes.plot(result.times_ms, result.trace(label), label=result.backend,
                      **_source_style(result.backend, index))
        cell = probe_cell.get(label)
        if equilibria and cell is not None and cell in equilibria:
            value = float(equilibria[cell])
            axes.axhline(value, linestyle=(0, (6, 3)), color="dimgrey", linewidth=1.0,
                         label="lumped equilibrium")
            axes.annotate(f"cell {cell}: lumped\nequilibrium {value:.4f} mV", xy=(1.0, value),
                          xycoords=("axes fraction", "data"), xytext=(6, 0),
                          textcoords="offset points", ha="left", va="center", fontsize=8,
                          annotation_clip=False)
        axes.set_title(f"probe {label}" + (f" (cell {cell})" if cell else ""), fontsize=10)
        axes.set_ylabel("V (mV)")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8, loc="best")
    axes_list[-1].set_xlabel("t (ms)")
    figure.suptitle(f"{model.name}: membrane potential at each probe"
                    + _shown_note(len(chosen), len(labels)), fontsize=11)
    return _save_png(figure, path, dpi)


def _source_rank(name: str) -> tuple[int, str]:
    return ({"analytic": 2, "lumped": 3}.get(name, 0 if name in _STYLES else 1), name)


def _difference(first: RunResult, second: RunResult, probe: str,
                interpolate: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """``(t_ms, first - second)`` at ``probe`` aligned as the comparison aligned them
    (:func:`crosssim.compare.align`), None if they cannot be aligned."""
    from crosssim.compare import AlignmentError, align

    try:
        aligned = align(first, second, probes=[probe], interpolate=interpolate)
    except AlignmentError:
        return None
    return aligned.times_ms, aligned.a[0] - aligned.b[0]


def plot_deviation(results: Mapping[str, RunResult], comparisons: Sequence[Comparison],
                   path: Path, *, probes: Sequence[str] | None = None,
                   kinds: Iterable[str] = ("backends", "analytic"), dpi: int = 110) -> Path:
    """|a - b| over time (log scale, mV), one panel per probe, one line per pair of sources.

    Pairs are taken from ``comparisons`` whose ``kind`` is in ``kinds`` (backend-backend and
    backend-analytic by default) or that are gated; a pair whose sources did not both run is
    skipped.  Tolerances are drawn as horizontal lines, the ignored window is shaded.  With
    no comparisons, every pair of ``results`` is drawn.
    """
    kinds = set(kinds)
    selected = [c for c in comparisons if (c.kind in kinds or c.passed is not None)
                and c.a in results and c.b in results]
    by_probe: dict[str, list[tuple[str, str, float | None, float, bool]]] = {}
    for c in selected:
        by_probe.setdefault(c.probe, []).append(
            (c.a, c.b, c.tolerance_mV, c.window_start_ms, c.alignment == "interpolated"))
    if not comparisons:
        for a, b in combinations(sorted(results, key=_source_rank), 2):
            for label in results[a].probes:
                if label in results[b].probes:
                    by_probe.setdefault(label, []).append((a, b, None, 0.0, False))
    all_probes = list(by_probe)
    chosen = _chosen_probes(all_probes, probes)
    figure, axes_list = _panels(max(1, len(chosen)))
    pair_styles: dict[tuple[str, str], int] = {}
    for axes, label in zip(axes_list, chosen):
        smallest = math.inf
        tolerances: set[float] = set()
        window = 0.0
        for a, b, tolerance, window_start, interpolate in by_probe.get(label, []):
            aligned = _difference(results[a], results[b], label, interpolate)
            if aligned is None:
                continue
            times, difference = aligned
            index = pair_styles.setdefault((a, b), len(pair_styles))
            linestyle, marker = _CYCLE[index % len(_CYCLE)]
            magnitude = np.abs(difference)
            positive = magnitude[magnitude > 0]
            name = f"|{a} - {b}|"
            if positive.size == 0:
                name += " = 0 (identical)"
            else:
                smallest = min(smallest, float(positive.min()))
            axes.plot(times, np.where(magnitude > 0, magnitude, np.nan), label=name,
                      color=f"C{index % 10}", linestyle=linestyle, linewidth=1.3,
                      marker=marker, markevery=0.1, markersize=4)
            if tolerance is not None and tolerance > 0:
                tolerances.add(float(tolerance))
            window = max(window, window_start)
        for tolerance in sorted(tolerances):
            axes.axhline(tolerance, color="black", linestyle=(0, (2, 2)), linewidth=0.9)
            axes.annotate(f"tolerance {tolerance:g} mV", xy=(1.0, tolerance),
                          xycoords=("axes fraction", "data"), xytext=(6, 0),
                          textcoords="offset points", ha="left", va="center", fontsize=8,
                          annotation_clip=False)
            smallest = min(smallest, tolerance)
        if window > 0:
            axes.axvspan(0.0, window, color="grey", alpha=0.15, label="ignored window")
        axes.set_yscale("log")
        if math.isfinite(smallest):
            axes.set_ylim(bottom=smallest / 3)
        axes.set_title(f"probe {label}", fontsize=10)
        axes.set_ylabel("|dV| (mV)")
        axes.grid(True, which="major", alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8, loc="best")
    if not chosen:
        axes_list[0].text(0.5, 0.5, "no pair of sources could be compared", ha="center",
                          va="center", transform=axes_list[0].transAxes)
    axes_list[-1].set_xlabel("t (ms)")
    figure.suptitle("Deviation between sources over time"
                    + _shown_note(len(chosen), len(all_probes)), fontsize=11)
    return _save_png(figure, path, dpi)


def _convergence_rows(table: Any) -> list[dict[str, Any]]:
    """Rows (dicts) of a DataFrame, a mapping of columns or a sequence of records."""
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return list(table.to_dict("records"))
    if isinstance(table, Mapping):
        columns = {key: list(value) for key, value in table.items()}
        length = len(next(iter(columns.values()), []))
        return [{key: column[i] for key, column in columns.items()} for i in range(length)]
    return [dict(row) for row in table]


def plot_convergence(table: Any, path: Path, *, title: str | None = None,
                     orders: Mapping[tuple[str, str], float] | None = None,
                     floors: Iterable[tuple[str, str]] = (),
                     panel_titles: Mapping[str, str] | None = None,
                     error_column: str = "error_mV", error_label: str = "max |error| (mV)",
                     dpi: int = 110) -> Path:
    """Error against dt and against CV size, log-log, one panel per parameter, with fitted orders.

    ``table`` (a DataFrame, a mapping of columns or a list of records) has the columns
    ``parameter`` (e.g. ``dt_ms``, ``cv_length_um``, ``cvs_per_cell``), ``value`` (its
    value) and ``error_mV`` (the largest deviation from the reference), and optionally
    ``source`` (or ``backend``; one line each) and ``probe`` (several probes are reduced to
    their largest error).  The legend gives each line's order: ``orders[(parameter,
    source)]`` when given (e.g. the study's own fit, so legend and tables agree), else
    :func:`fit_order`; ``(parameter, source)`` pairs in ``floors`` are marked "(floor)".
    ``panel_titles`` (parameter -> text) title the panels, e.g. with the fixed level.
    ``error_column`` and ``error_label`` name another error (e.g. ``error_ms``, a spike-time
    error) and its axis label, units included.
    """
    rows = _convergence_rows(table)
    if not rows:
        raise ValueError("plot_convergence: the table has no rows")
    missing = {"parameter", "value", error_column} - set(rows[0])
    if missing:
        raise ValueError(f"plot_convergence: missing column(s) {', '.join(sorted(missing))}; "
                         f"needed: parameter, value, {error_column} (optional: source, probe)")
    series: dict[str, dict[str, dict[float, float]]] = {}
    for row in rows:
        source = str(row.get("source", row.get("backend", "error")))
        points = series.setdefault(str(row["parameter"]), {}).setdefault(source, {})
        value, error = float(row["value"]), float(row[error_column])
        points[value] = max(points.get(value, -math.inf), error)
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    from crosssim.study.convergence import fit_order

    parameters = list(series)
    given = dict(orders or {})
    floored = set(floors)
    figure = Figure(figsize=(5.2 * len(parameters), 4.4), layout="constrained")
    axes_row = figure.subplots(1, len(parameters), squeeze=False)[0]
    for axes, parameter in zip(axes_row, parameters):
        count = parameter in COUNT_PARAMETERS
        for index, (source, points) in enumerate(sorted(series[parameter].items())):
            values = np.array(sorted(points))
            errors = np.array([points[v] for v in values])
            order = given.get((parameter, source))
            if order is None:
                order = fit_order(values, errors, count=count)
            order = float(order)
            style = _source_style(source, index)
            style.pop("alpha", None)
            marker = ["o", "s", "^", "v", "D"][index % 5]
            shown = f"{source}: order {order:.2f}" if math.isfinite(order) else source
            if (parameter, source) in floored:
                shown += " (floor)"
            # earlier lines drawn wider with larger markers: backends that agree to
            # rounding still show both lines
            axes.plot(values, np.where(errors > 0, errors, np.nan), marker=marker,
                      markersize=max(4.0, 9.0 - 2.0 * index), label=shown,
                      **{**style, "linewidth": max(1.2, 2.4 - 0.6 * index)})
            if math.isfinite(order):
                keep = (errors > 0) & np.isfinite(errors)
                slope = -order if count else order
                intercept = np.mean(np.log(errors[keep]) - slope * np.log(values[keep]))
                axes.plot(values, np.exp(intercept) * values ** slope, color=style["color"],
                          linestyle=(0, (1, 2)), linewidth=0.9, alpha=0.8)
        axes.set_xscale("log")
        axes.set_yscale("log")
        levels = sorted({v for points in series[parameter].values() for v in points})
        for axis in (axes.xaxis, axes.yaxis):  # 1-2-5 ticks as plain numbers
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())
        axes.xaxis.set_major_locator(FixedLocator(levels))  # a tick at every level run
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.4g}"))
        axes.set_xlabel(_PARAMETER_LABELS.get(parameter, parameter))
        axes.set_ylabel(error_label)
        if panel_titles and parameter in panel_titles:
            axes.set_title(panel_titles[parameter], fontsize=10)
        axes.grid(True, which="both", alpha=0.25)
        axes.legend(fontsize=8, loc="best", title="dotted: fitted order", title_fontsize=7)
    if title:
        figure.suptitle(title, fontsize=11)
    return _save_png(figure, path, dpi)



#: Line style, colour and label of each part of the decomposition (greyscale-readable:
#: every part has its own dash pattern; the total is the thick black line).
_PART_STYLES: dict[str, dict[str, Any]] = {
    "total": {"color": "black", "linestyle": "-", "linewidth": 2.2, "alpha": 0.55,
              "label": "total (simulator - exact)"},
    "space": {"color": "C2", "linestyle": (0, (6, 2)), "linewidth": 1.5,
              "label": "space (semidiscrete - exact)"},
    "time_stepping": {"color": "C0", "linestyle": (0, (2, 1.5)), "linewidth": 1.5,
                      "label": "time stepping (discrete - semidiscrete)"},
    "implementation": {"color": "C3", "linestyle": (0, (6, 2, 1, 2)), "linewidth": 1.2,
                       "label": "implementation (simulator - discrete)"},
}
#: Simulators (columns) in the decomposition figure.
MAX_DECOMPOSITION_SIMULATORS = 3


def decomposition_probes(outcome: CheckOutcome) -> list[str]:
    """The probes of ``outcome.decomposition``, worst first: those where a simulator fails
    against the exact solution, then by the largest total over the simulators (ties keep
    the model's order)."""
    from crosssim.sources import ANALYTIC

    failing = {c.probe for c in outcome.failing() if c.kind == "reference" and c.b == ANALYTIC}
    worst: dict[str, float] = {}
    for part in outcome.decomposition:
        total = part.total_mV if math.isfinite(part.total_mV) else math.inf
        worst[part.probe] = max(worst.get(part.probe, -math.inf), total)
    return sorted(worst, key=lambda probe: (probe not in failing, -worst[probe]))


def plot_decomposition(outcome: CheckOutcome, path: Path, *, probes: Sequence[str] | None = None,
                       dpi: int = 110) -> Path:
    """Where each simulator's error comes from, over time: |part(t)| in mV on a log axis.

    One row of panels per probe (``probes``, default :func:`decomposition_probes`; at most
    :data:`MAX_PANELS`), one column per simulator (at most
    :data:`MAX_DECOMPOSITION_SIMULATORS`) of ``outcome.decomposition``, each with the three
    parts of :func:`crosssim.decomposition.part_traces` and the total.  The parts can differ
    by ten orders of magnitude, hence the log axis; a zero (every part is zero at t = 0) is
    drawn on the dotted line at the bottom of the axis.  The tolerance of the simulator -
    exact gate is a dashed line, the ignored window is shaded.  Raises ValueError when the
    outcome has no decomposition.
    """
    from crosssim.decomposition import PARTS, part_traces
    from crosssim.sources import ANALYTIC, SEMIDISCRETE

    if not outcome.decomposition:
        raise ValueError("plot_decomposition: the outcome has no decomposition")
    found = {(part.simulator, part.probe): part for part in outcome.decomposition}
    all_probes = decomposition_probes(outcome)
    chosen = _chosen_probes(all_probes, probes) or all_probes[:1]
    all_simulators = list(dict.fromkeys(part.simulator for part in outcome.decomposition))
    simulators = all_simulators[:MAX_DECOMPOSITION_SIMULATORS]
    exact, semidiscrete = outcome.results[ANALYTIC], outcome.results[SEMIDISCRETE]
    gates = {(c.a, c.probe): c for c in outcome.comparisons
             if c.kind == "reference" and c.b == ANALYTIC}

    curves: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    smallest = math.inf
    for row, probe in enumerate(chosen):
        for column, simulator in enumerate(simulators):
            part = found.get((simulator, probe))
            if part is None:
                continue
            traces = part_traces(outcome.results[simulator], outcome.results[part.discrete],
                                 semidiscrete, exact, probe)
            curves[row, column] = {name: np.abs(trace) for name, trace in traces.items()}
            for magnitude in curves[row, column].values():
                positive = magnitude[np.isfinite(magnitude) & (magnitude > 0)]
                if positive.size:
                    smallest = min(smallest, float(positive.min()))
    # zeros are drawn a decade below the smallest value shown
    floor = 10.0 ** (math.floor(math.log10(smallest)) - 1) if math.isfinite(smallest) else 1e-15

    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.2 + 4.6 * len(simulators), 0.9 + 2.9 * len(chosen)),
                    layout="constrained")
    grid = figure.subplots(len(chosen), len(simulators), sharex=True, sharey=True,
                           squeeze=False)
    times = exact.times_ms
    for row, probe in enumerate(chosen):
        for column, simulator in enumerate(simulators):
            axes = grid[row, column]
            axes.set_yscale("log")
            axes.set_title(f"{simulator} at probe {probe}", fontsize=10)
            magnitudes = curves.get((row, column))
            if magnitudes is None:
                axes.text(0.5, 0.5, "not decomposed", ha="center", va="center",
                          transform=axes.transAxes)
                continue
            for name in ("total", *reversed(PARTS)):
                axes.plot(times, np.maximum(magnitudes[name], floor), **_PART_STYLES[name])
            axes.axhline(floor, color="grey", linestyle=":", linewidth=0.8)
            gate = gates.get((simulator, probe))
            if gate is not None and gate.tolerance_mV:
                axes.axhline(gate.tolerance_mV, color="black", linestyle=(0, (2, 2)),
                             linewidth=0.9)
                axes.annotate(f"tolerance {gate.tolerance_mV:g} mV",
                              xy=(0.99, gate.tolerance_mV),
                              xycoords=("axes fraction", "data"), xytext=(0, -3),
                              textcoords="offset points", ha="right", va="top",
                              fontsize=8)
            if gate is not None and gate.window_start_ms > 0:
                axes.axvspan(0.0, gate.window_start_ms, color="grey", alpha=0.15)
            axes.grid(True, which="major", alpha=0.3)
        grid[row, 0].set_ylabel("|part| (mV)")
    for axes in grid[-1]:
        axes.set_xlabel("t (ms)")
    handles, labels = grid[0, 0].get_legend_handles_labels()
    if not handles:
        for axes in grid.flat:
            handles, labels = axes.get_legend_handles_labels()
            if handles:
                break
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8,
                  title=f"dotted grey: zero (drawn at {floor:.0e} mV)", title_fontsize=8)
    left_out = []
    if len(chosen) < len(all_probes):
        worst = "worst " if probes is None else ""
        left_out.append(f"{worst}{len(chosen)} of {len(all_probes)} probes")
    if len(simulators) < len(all_simulators):
        left_out.append(f"first {len(simulators)} of {len(all_simulators)} simulators")
    shown = f"({'; '.join(left_out)})" if left_out else ""
    figure.suptitle("Where the error comes from: simulator - exact = implementation + time "
                    "stepping + space" + (f" {shown}" if shown else ""), fontsize=11)
    return _save_png(figure, path, dpi)


#: Cells (panels) in the morphology figure; a bigger network shows its first ones.
MAX_MORPHOLOGY_CELLS = 6
#: Panels per row of the morphology figure.
_MORPHOLOGY_COLUMNS = 3
#: Site names written beside the markers of one panel, per kind (more would be unreadable).
_MAX_SITE_LABELS = 8
#: Marker of each kind of site (shape first, so the kinds differ in greyscale print);
#: the clamp is drawn larger and below, so a probe at the same site stays visible on it.
_SITE_STYLES: dict[str, dict[str, Any]] = {
    "clamps": {"marker": "v", "markersize": 12, "color": "C3", "label": "current clamp",
               "zorder": 3},
    "junctions": {"marker": "D", "markersize": 7, "color": "C2", "label": "gap junction",
                  "markerfacecolor": "white", "markeredgewidth": 1.8, "zorder": 4},
    "probes": {"marker": "o", "markersize": 5, "color": "C0", "label": "probe",
               "zorder": 5},
}

#: Vertical offset in points of each kind's site labels (clear of the larger clamp marker).
_LABEL_OFFSETS = {"probes": 6, "junctions": -8, "clamps": -10}


def dendrogram_layout(cell: Cell) -> tuple[list[float], list[float], list[float]]:
    """Where each section of ``cell`` (in :meth:`~crosssim.model.Cell.tree` order) is drawn
    in a dendrogram: ``(start_um, end_um, y)``, the path distances from the root's x = 0
    end to the section's two ends and its row.  Leaves get rows 0, 1, 2, ... in depth-first
    order; a section with children at its x = 1 end sits at their mean row (so an
    unbranched continuation stays on one line); children at x = 0 get rows of their own."""
    tree, parents = cell.tree(), cell.parents()
    starts = [0.0] * len(tree)
    at_end: list[list[int]] = [[] for _ in tree]
    at_start: list[list[int]] = [[] for _ in tree]
    for i, (section, parent) in enumerate(zip(tree, parents)):
        if parent < 0:
            continue
        (at_end if section.parent_x == 1.0 else at_start)[parent].append(i)
    rows = [0.0] * len(tree)
    next_row = 0
    stack = [(0, False)]
    while stack:  # iterative depth-first walk: deep trees must not hit the recursion limit
        index, children_done = stack.pop()
        if not children_done:
            stack.append((index, True))
            for child in reversed(at_start[index] + at_end[index]):
                starts[child] = starts[index] + (tree[index].length_um
                                                 if tree[child].parent_x == 1.0 else 0.0)
                stack.append((child, False))
        elif at_end[index]:
            rows[index] = sum(rows[k] for k in at_end[index]) / len(at_end[index])
        else:
            rows[index] = float(next_row)
            next_row += 1
    ends = [start + section.length_um for start, section in zip(starts, tree)]
    return starts, ends, rows


def _site(cell: Cell, layout: tuple[list[float], list[float], list[float]],
          section: str | None, x: float) -> tuple[float, float]:
    """(path distance in um, row) of position ``x`` of ``section`` (None: the root)."""
    index = cell.section_index(section)
    starts, ends, rows = layout
    return starts[index] + x * (ends[index] - starts[index]), rows[index]


def _morphology_sites(model: Model, cell: Cell) -> dict[str, list[tuple[str, str | None,
                                                                        float]]]:
    """The sites on ``cell`` per kind: ``(text, section, x)`` for each probe (its name),
    each junction side (the peer cell) and each clamp (its amplitude)."""
    sites: dict[str, list[tuple[str, str | None, float]]] = {
        "clamps": [], "junctions": [], "probes": []}
    for probe in model.effective_probes():
        if probe.cell == cell.name:
            sites["probes"].append((probe.label, probe.section, probe.x))
    for junction in model.gap_junctions:
        for side in (0, 1):
            if junction.cells[side] == cell.name:
                peer = junction.cells[1 - side]
                sites["junctions"].append((f"to {peer}", junction.sections[side],
                                           junction.x[side]))
    for stimulus in model.stimuli:
        if stimulus.cell == cell.name:
            sites["clamps"].append((f"{stimulus.amplitude_nA:g} nA", stimulus.section,
                                    stimulus.x))
    return sites


def _draw_dendrogram(axes: Axes, model: Model, cell: Cell) -> None:
    """One cell's dendrogram on ``axes``: a horizontal line per section (gid
    ``branches``, a LineCollection in tree order, width growing with the mean radius), thin
    vertical connectors (gid ``connectors``) and one marker artist per kind of site (gid
    ``probes``, ``junctions``, ``clamps``)."""
    from matplotlib.collections import LineCollection

    layout = dendrogram_layout(cell)
    starts, ends, rows = layout
    tree, parents = cell.tree(), cell.parents()
    widths = []
    for section in tree:
        points = section.points()
        mean_radius = sum(radius for _, radius in points) / len(points)
        widths.append(min(7.0, 0.8 + 1.2 * math.sqrt(mean_radius)))
    branches = LineCollection([[(start, row), (end, row)]
                               for start, end, row in zip(starts, ends, rows)],
                              linewidths=widths, colors="0.25", capstyle="butt", zorder=2)
    branches.set_gid("branches")
    axes.add_collection(branches)
    xs: list[float] = []
    ys: list[float] = []
    for index, parent in enumerate(parents):
        if parent >= 0 and rows[index] != rows[parent]:
            xs += [starts[index], starts[index], math.nan]
            ys += [rows[parent], rows[index], math.nan]
    (connectors,) = axes.plot(xs, ys, color="0.55", linewidth=0.8, zorder=1)
    connectors.set_gid("connectors")
    for kind, found in _morphology_sites(model, cell).items():
        if not found:
            continue
        where = [_site(cell, layout, section, x) for _, section, x in found]
        (markers,) = axes.plot([d for d, _ in where], [r for _, r in where],
                               linestyle="none", **_SITE_STYLES[kind])
        markers.set_gid(kind)
        if len(found) <= _MAX_SITE_LABELS:  # probe names above, the others below
            offset = _LABEL_OFFSETS[kind]
            for (text, _, _), (distance, row) in zip(found, where):
                axes.annotate(text, (distance, row), xytext=(0, offset),
                              textcoords="offset points", ha="center",
                              va="bottom" if offset > 0 else "top", fontsize=7,
                              color=_SITE_STYLES[kind]["color"])
    longest = max(ends)
    axes.set_xlim(-0.04 * longest, 1.08 * longest)
    top, bottom = min(rows), max(rows)
    axes.set_ylim(bottom + 0.8, top - 0.8)  # first row on top
    axes.set_yticks([])
    axes.set_xlabel("path distance from the root (um)", fontsize=8)
    axes.tick_params(labelsize=8)
    axes.set_title(f"cell {cell.name} ({len(tree)} section{'s' if len(tree) != 1 else ''})",
                   fontsize=9)


def _legend_handles(kinds: Iterable[str]) -> list:
    """Legend entries: a section, then each kind of site in ``kinds``."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.25", linewidth=2.5,
                      label="section (wider: larger radius)")]
    for kind in ("probes", "junctions", "clamps"):
        if kind in kinds:
            style = {k: v for k, v in _SITE_STYLES[kind].items() if k != "zorder"}
            handles.append(Line2D([], [], linestyle="none", **style))
    return handles


def plot_morphology(model: Model, cells: Sequence[str] | None = None,
                    ax: Axes | None = None) -> Figure:
    """Each cell's morphology as a 2-D dendrogram, one small panel per cell; returns the
    matplotlib Figure (object API, nothing shown).

    x is the path distance from the root's x = 0 end in um, branches are spread
    vertically (:func:`dendrogram_layout`), line width grows with the radius; probes,
    gap-junction sites and current clamps are marked with distinct markers and named
    beside them, in a legend below.  ``cells`` (names) chooses and orders the panels
    (default: every cell); at most :data:`MAX_MORPHOLOGY_CELLS` are drawn, the title then
    says "first N of M cells".  ``ax``: draw one cell (the first of ``cells``) into
    these axes instead of a new figure.  Raises ValueError for an unknown cell name.
    """
    from matplotlib.figure import Figure

    by_name = {cell.name: cell for cell in model.cells}
    names = list(cells) if cells is not None else [cell.name for cell in model.cells]
    unknown = [name for name in names if name not in by_name]
    if unknown:
        known = ", ".join(list(by_name)[:10]) + (" ..." if len(by_name) > 10 else "")
        raise ValueError(f"plot_morphology: unknown cell {unknown[0]!r}; known: {known}")
    if not names:
        raise ValueError("plot_morphology: no cell to draw")
    kinds = set()
    if ax is not None:
        cell = by_name[names[0]]
        _draw_dendrogram(ax, model, cell)
        kinds = {kind for kind, found in _morphology_sites(model, cell).items() if found}
        ax.legend(handles=_legend_handles(kinds), fontsize=7, loc="best")
        figure = ax.figure  # a Figure, or a SubFigure whose .figure is the Figure
        return figure if isinstance(figure, Figure) else figure.figure
    shown = names[:MAX_MORPHOLOGY_CELLS]
    columns = min(_MORPHOLOGY_COLUMNS, len(shown))
    rows = math.ceil(len(shown) / columns)
    # panel height grows with the rows of the bushiest cell: 1 row (a ball and stick) to
    # about 16 rows fill 1.6 to 3.6 inches
    most_rows = max(int(max(dendrogram_layout(by_name[name])[2])) + 1 for name in shown)
    height = min(3.6, 1.5 + 0.14 * most_rows)
    figure = Figure(figsize=(0.6 + 4.0 * columns, 1.1 + height * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, name in zip(grid.flat, shown):
        _draw_dendrogram(axes, model, by_name[name])
        kinds |= {kind for kind, found in _morphology_sites(model, by_name[name]).items()
                  if found}
    for axes in list(grid.flat)[len(shown):]:
        axes.set_visible(False)
    figure.legend(handles=_legend_handles(kinds), loc="outside lower center",
                  ncols=4, fontsize=8)
    note = f" (first {len(shown)} of {len(names)} cells)" if len(shown) < len(names) else ""
    figure.suptitle(f"{model.name}: morphology (dendrograms){note}", fontsize=11)
    return figure


def write_morphology(model: Model, path: Path, *, cells: Sequence[str] | None = None,
                     dpi: int = 110) -> Path:
    """:func:`plot_morphology` of ``model`` saved as a PNG at ``path``; returns ``path``."""
    return _save_png(plot_morphology(model, cells), path, dpi)


def plot_spike_raster(outcome: CheckOutcome, path: Path, *,
                      probes: Sequence[str] | None = None, dpi: int = 110) -> Path | None:
    """A spike raster per probe (first :data:`MAX_PANELS`): one row per source with a tick
    at every spike time crosssim found (ms); the title names the largest spike-time shift.
    Saved as a PNG at ``path``; None when the outcome has no spike comparisons."""
    if not outcome.spikes:
        return None
    trains: dict[str, dict[str, list[float]]] = {}
    for check in outcome.spikes:
        row = trains.setdefault(check.probe, {})
        row.setdefault(check.a, check.times_a_ms)
        row.setdefault(check.b, check.times_b_ms)
    chosen = _chosen_probes(list(trains), probes)
    figure, axes = _panels(len(chosen), height=0.6 + 0.35 * max(len(trains[p]) for p in chosen))
    t_stop = outcome.model.simulation.t_stop_ms
    for panel, probe in zip(axes, chosen):
        names = sorted(trains[probe], key=_source_rank)
        for index, name in enumerate(names):
            colour = _source_style(name, index).get("color", f"C{index % 10}")
            panel.eventplot([trains[probe][name]], lineoffsets=index, linelengths=0.8,
                            colors=[colour])
        panel.set_yticks(range(len(names)), names)
        panel.set_ylim(-0.7, len(names) - 0.3)
        panel.set_xlim(0.0, t_stop)
        shifts = [c.max_shift_ms for c in outcome.spikes
                  if c.probe == probe and c.max_shift_ms is not None]
        worst = f", largest shift {max(shifts) * 1e3:.3g} us" if shifts else ""
        panel.set_title(f"{probe}: spikes{worst}", fontsize=9, loc="left")
    axes[-1].set_xlabel("time (ms)")
    figure.suptitle(f"{outcome.model.name}: spike raster"
                    f"{_shown_note(len(chosen), len(trains))}", fontsize=11)
    return _save_png(figure, path, dpi)
