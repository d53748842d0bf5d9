"""Write one report folder, ``<root>/<model>/<run id>/``, atomically, and refresh the index.

The folder is built under a hidden name beside its final place and renamed when complete,
so an interrupted run leaves no half-written report (at worst a hidden ``.<run id>...tmp``
folder, which the index ignores).
"""

from __future__ import annotations

import contextlib
import datetime as _datetime
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosssim.files import atomic_folder
from crosssim.report.document import ReportFigure, dumps_document, report_document
from crosssim.report.environment import collect_environment
from crosssim.report.figure_process import REPORT_IMPORTS, Figures, start_figures

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.outcome import CheckOutcome
    from crosssim.study.convergence import ConvergenceResult

#: Files of a report folder besides the figures, in the order the page links them.
REPORT_FILES = ("index.html", "report.md", "report.json", "traces.csv", "model.toml",
                "model.resolved.toml")
_COMPUTE = object()


def make_run_id(now: _datetime.datetime, model_sha256: str) -> str:
    """``YYYYmmddTHHMMSSZ-<first 8 hex of the model hash>``: sorts by time, names the model."""
    stamp = now.astimezone(_datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{model_sha256[:8]}"


def lumped_equilibria(outcome: CheckOutcome) -> dict[str, float] | None:
    """The lumped steady state (cell -> mV) from ``crosssim.analytic``, None if unavailable
    (or not applicable: an active membrane)."""
    try:
        from crosssim.analytic import lumped_steady_state
    except ImportError:
        return None
    from crosssim.errors import CrossSimError

    try:
        return {str(cell): float(value)
                for cell, value in lumped_steady_state(outcome.model).items()}
    except CrossSimError:
        return None


@dataclass(frozen=True)
class _Planned:
    """One figure of the report: the call that draws it (``module:function``, which writes
    the PNG atomically and returns its path, or None when there is nothing to draw), and
    the page's heading and caption for it."""

    title: str
    caption: str
    target: str
    args: tuple
    kwargs: dict[str, Any] = field(default_factory=dict)


_FIGURES = "crosssim.report.figures"


def _planned_figures(outcome: CheckOutcome, folder: Path,
                     equilibria: Mapping[str, float] | None) -> dict[str, _Planned]:
    """The report's figures, by role: ``traces`` and ``deviation`` (the page's figure
    list), ``spikes``, ``decomposition``, ``morphology``, each only where it applies."""
    from crosssim.report.document import probes_failing_first, sources_of
    from crosssim.report.figures import MAX_MORPHOLOGY_CELLS, MAX_PANELS, decomposition_probes

    planned: dict[str, _Planned] = {}
    results = [outcome.results[name] for name in sources_of(outcome) if name in outcome.results]
    probes = probes_failing_first(outcome)
    if results:
        planned["traces"] = _Planned(
            "Membrane potential at each probe",
            "Every source at each probe (failing probes first). Dotted black: exact cable "
            "solution; dash-dot grey: lumped (isopotential) solution; dashed, labelled at the "
            "right: lumped equilibrium of the probe's cell.",
            f"{_FIGURES}:plot_probe_traces", (outcome.model, results, folder / "traces.png"),
            {"equilibria": equilibria, "probes": probes})
    if len(results) >= 2:
        planned["deviation"] = _Planned(
            "Deviation over time",
            "|a - b| in mV on a log scale for simulator pairs and simulator - exact cable "
            "(and every gated pair). Dashed horizontal lines: tolerances; shaded: samples "
            "ignored; a gap in a line is an exact zero.",
            f"{_FIGURES}:plot_deviation", ({r.backend: r for r in results},
                                           outcome.comparisons, folder / "deviation.png"),
            {"probes": probes})
    if outcome.spikes:
        planned["spikes"] = _Planned(
            "Spike raster",
            "Every spike crosssim found in the sampled traces (upward crossings of "
            f"{outcome.model.spikes.threshold_mV:g} mV, times interpolated linearly), one row "
            "per source and one panel per probe.",
            f"{_FIGURES}:plot_spike_raster", (outcome, folder / "spikes.png"))
    if outcome.decomposition:
        shown = decomposition_probes(outcome)
        planned["decomposition"] = _Planned(
            "Where the error comes from, over time",
            "|part| in mV on a log scale, per simulator (columns) and probe (rows, failing "
            "and worst first): implementation (simulator - discrete), time stepping (discrete "
            "- semidiscrete), space (semidiscrete - exact) and the total (simulator - exact, "
            "their signed sum). Dashed horizontal line: the tolerance against the exact "
            "solution; dotted grey: zero." + (
                "" if len(shown) <= MAX_PANELS
                else f" The {MAX_PANELS} worst of {len(shown)} probes are shown."),
            f"{_FIGURES}:plot_decomposition", (outcome, folder / "decomposition.png"))
    model = outcome.model
    if any(cell.sections for cell in model.cells):  # plain cables: no morphology figure
        planned["morphology"] = _Planned(
            "Morphology",
            "Each cell as a dendrogram: x is the path distance from the root in um, each "
            "section a horizontal line (wider: larger radius), branches spread vertically. "
            "Dots: probes; hollow diamonds: gap-junction sites (labelled with the peer cell); "
            "triangles: current clamps." + (
                "" if len(model.cells) <= MAX_MORPHOLOGY_CELLS
                else f" The first {MAX_MORPHOLOGY_CELLS} of {len(model.cells)} cells are "
                     "shown."),
            f"{_FIGURES}:write_morphology", (model, folder / "morphology.png"))
    return planned


def _draw(planned: Mapping[str, _Planned], figures: Figures) -> dict[str, ReportFigure]:
    """Draw ``planned``: with a figure process, it takes the next figure whenever it is free
    and this process draws the others meanwhile."""
    here = Figures(None)
    pending = {}
    for role, figure in planned.items():
        drawer = figures if figures.in_child and not figures.busy() else here
        pending[role] = drawer.submit(figure.target, *figure.args, **figure.kwargs)
    drawn = {}
    for role, figure in planned.items():
        path = pending[role].result()
        if path is not None:
            drawn[role] = ReportFigure(figure.title, figure.caption, path.name,
                                       path.read_bytes())
    return drawn


def _write_contents(outcome: CheckOutcome, folder: Path, run_id: str,
                    environment: Mapping[str, Any],
                    equilibria: Mapping[str, float] | None,
                    convergence: ConvergenceResult | None, figure_process: Figures) -> None:
    from crosssim.files import atomic_write_text, write_csv
    from crosssim.report.artifacts import write_model, write_traces
    from crosssim.report.document import sources_of
    from crosssim.report.html import render_html
    from crosssim.report.markdown import render_markdown

    study = convergence.to_document() if convergence is not None else None
    atomic_write_text(folder / "report.json",
                      dumps_document(report_document(outcome, environment, study)))
    write_traces(folder / "traces.csv", [outcome.results[name] for name in sources_of(outcome)
                                         if name in outcome.results])
    given_path, resolved_path = write_model(folder, outcome.model, resolved=True)
    given = given_path.read_text(encoding="utf-8")
    resolved = resolved_path.read_text(encoding="utf-8")
    drawn = _draw(_planned_figures(outcome, folder, equilibria), figure_process)
    figures = [drawn[role] for role in ("traces", "deviation") if role in drawn]
    decomposition_figure = drawn.get("decomposition")
    morphology_figure = drawn.get("morphology")
    spike_figure = drawn.get("spikes")
    files = list(REPORT_FILES[1:]) + [figure.filename for figure in figures]
    if spike_figure is not None:
        files.append(spike_figure.filename)
    if decomposition_figure is not None:
        files.append(decomposition_figure.filename)
    if morphology_figure is not None:
        files.append(morphology_figure.filename)
    study_figure = None
    if convergence is not None:
        from crosssim.report.convergence import TABLE_FILE, convergence_figure

        write_csv(folder / TABLE_FILE, convergence.to_frame(), float_format="%.12g")
        study_figure = convergence_figure(convergence, folder)
        files += [TABLE_FILE] + ([study_figure.filename] if study_figure else [])
    atomic_write_text(folder / "report.md",
                      render_markdown(outcome, environment, figures=figures, run_id=run_id,
                                      convergence=study, convergence_figure=study_figure,
                                      decomposition_figure=decomposition_figure,
                                      morphology_figure=morphology_figure,
                                      spike_figure=spike_figure))
    atomic_write_text(folder / "index.html",
                      render_html(outcome, environment, figures=figures, given_toml=given,
                                  resolved_toml=resolved, run_id=run_id, files=files,
                                  convergence=study, convergence_figure=study_figure,
                                  decomposition_figure=decomposition_figure,
                                  morphology_figure=morphology_figure,
                                  spike_figure=spike_figure))


def _candidates(run_id: str) -> Iterator[str]:
    yield run_id
    for attempt in range(2, 1000):
        yield f"{run_id}-{attempt}"


def _free_name(parent: Path, run_id: str) -> str:
    """``run_id``, or ``run_id-2``, ``-3``, ... when a report of the same second exists."""
    return next(name for name in _candidates(run_id) if not (parent / name).exists())


def write_report(outcome: CheckOutcome, out_root: Path | str, *,
                 equilibria: Mapping[str, float] | None | object = _COMPUTE,
                 now: _datetime.datetime | None = None,
                 convergence: ConvergenceResult | None = None,
                 folder_name: str | None = None, figures: Figures | None = None) -> Path:
    """Write the report of ``outcome`` to ``out_root/<model>/<run id>/``; return that folder.

    ``folder_name`` replaces ``<model>`` (a suite's label, so that two members that check
    one model with different settings keep apart).

    The folder holds ``index.html`` (self-contained page), ``report.md``, ``report.json``
    (check document + ``environment`` + ``schema_version``), ``traces.csv`` (long form,
    every source), the model as given and resolved, and the PNG figures (with
    ``decomposition.png`` when the check decomposed a simulator's error, ``morphology.png``
    when a cell has sections).  Afterwards
    ``out_root/index.html`` lists every run.  ``equilibria`` (cell -> mV) are drawn in the
    trace figure; by default the lumped steady state from ``crosssim.analytic``.

    ``convergence`` (a :class:`~crosssim.study.convergence.ConvergenceResult`, e.g. from
    :func:`crosssim.study.convergence`) adds a "Convergence" section to the page (log-log
    figure, fitted orders, errors per run), its orders table and figure to ``report.md``,
    its document as the ``convergence`` block of ``report.json``, and the files
    ``convergence.png`` and ``convergence.csv`` (one row per run and probe).

    ``figures`` draws every other figure in a figure process while this process draws the
    rest (a command that writes several reports passes one it started early, see
    :data:`REPORT_IMPORTS`); by default one is started here (when it pays, see
    :mod:`crosssim.report.figure_process`).
    """
    from crosssim.report.index import write_index

    now = now or _datetime.datetime.now(_datetime.timezone.utc)
    root = Path(out_root)
    environment = collect_environment(outcome, now=now)
    if equilibria is _COMPUTE:
        equilibria = lumped_equilibria(outcome)
    parent = root / (folder_name or outcome.model.name)
    parent.mkdir(parents=True, exist_ok=True)
    run_id = _free_name(parent, make_run_id(now, environment["model_sha256"]))
    # another run may take the name while this one writes: then the next free one
    later = (parent / name for name in itertools.islice(_candidates(run_id), 1, None))
    # the figure process stops (on an error, before its PNGs are done) before the folder
    # is renamed or removed
    owned = (start_figures(REPORT_IMPORTS) if figures is None
             else contextlib.nullcontext(figures))
    with atomic_folder(parent / run_id, alternatives=later) as staged, \
            owned as figure_process:
        _write_contents(outcome, staged.path, run_id, environment, equilibria,  # type: ignore[arg-type]
                        convergence, figure_process)
    write_index(root)
    return staged.final
