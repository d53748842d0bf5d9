"""Write one report folder, ``<root>/<model>/<run id>/``, atomically, and refresh the index.

The folder is built under a hidden name beside its final place and renamed when complete,
so an interrupted run leaves no half-written report (at worst a hidden ``.<run id>...tmp``
folder, which the index ignores).
"""

from __future__ import annotations

import datetime as _datetime
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosssim.files import atomic_folder
from crosssim.report.document import ReportFigure, dumps_document, report_document
from crosssim.report.environment import collect_environment

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


def _figures(outcome: CheckOutcome, folder: Path,
             equilibria: Mapping[str, float] | None) -> list[ReportFigure]:
    from crosssim.report.document import probes_failing_first, sources_of
    from crosssim.report.figures import plot_deviation, plot_probe_traces

    results = [outcome.results[name] for name in sources_of(outcome) if name in outcome.results]
    if not results:
        return []
    probes = probes_failing_first(outcome)
    figures = []
    path = plot_probe_traces(outcome.model, results, folder / "traces.png",
                             equilibria=equilibria, probes=probes)
    figures.append(ReportFigure(
        "Membrane potential at each probe",
        "Every source at each probe (failing probes first). Dotted black: exact cable "
        "solution; dash-dot grey: lumped (isopotential) solution; dashed, labelled at the "
        "right: lumped equilibrium of the probe's cell.",
        path.name, path.read_bytes()))
    if len(results) >= 2:
        path = plot_deviation({r.backend: r for r in results}, outcome.comparisons,
                              folder / "deviation.png", probes=probes)
        figures.append(ReportFigure(
            "Deviation over time",
            "|a - b| in mV on a log scale for simulator pairs and simulator - exact cable "
            "(and every gated pair). Dashed horizontal lines: tolerances; shaded: samples "
            "ignored; a gap in a line is an exact zero.",
            path.name, path.read_bytes()))
    return figures


def _decomposition_figure(outcome: CheckOutcome, folder: Path) -> ReportFigure | None:
    """The figure of the error decomposition over time, None when there is none."""
    if not outcome.decomposition:
        return None
    from crosssim.report.figures import MAX_PANELS, decomposition_probes, plot_decomposition

    path = plot_decomposition(outcome, folder / "decomposition.png")
    probes = decomposition_probes(outcome)
    shown = ("" if len(probes) <= MAX_PANELS
             else f" The {MAX_PANELS} worst of {len(probes)} probes are shown.")
    return ReportFigure(
        "Where the error comes from, over time",
        "|part| in mV on a log scale, per simulator (columns) and probe (rows, failing "
        "and worst first): implementation (simulator - discrete), time stepping (discrete "
        "- semidiscrete), space (semidiscrete - exact) and the total (simulator - exact, "
        "their signed sum). Dashed horizontal line: the tolerance against the exact "
        "solution; dotted grey: zero." + shown,
        path.name, path.read_bytes())


def _morphology_figure(outcome: CheckOutcome, folder: Path) -> ReportFigure | None:
    """The dendrograms of the cells, None when every cell is a plain cable (no
    ``sections``): those reports stay as they were."""
    model = outcome.model
    if not any(cell.sections for cell in model.cells):
        return None
    from crosssim.report.figures import MAX_MORPHOLOGY_CELLS, write_morphology

    path = write_morphology(model, folder / "morphology.png")
    shown = ("" if len(model.cells) <= MAX_MORPHOLOGY_CELLS
             else f" The first {MAX_MORPHOLOGY_CELLS} of {len(model.cells)} cells are shown.")
    return ReportFigure(
        "Morphology",
        "Each cell as a dendrogram: x is the path distance from the root in um, each "
        "section a horizontal line (wider: larger radius), branches spread vertically. "
        "Dots: probes; hollow diamonds: gap-junction sites (labelled with the peer cell); "
        "triangles: current clamps." + shown,
        path.name, path.read_bytes())


def _spike_figure(outcome: CheckOutcome, folder: Path) -> ReportFigure | None:
    """The spike raster of an active model, None for passive models."""
    from crosssim.report.figures import plot_spike_raster

    path = plot_spike_raster(outcome, folder / "spikes.png")
    if path is None:
        return None
    return ReportFigure(
        "Spike raster",
        "Every spike crosssim found in the sampled traces (upward crossings of "
        f"{outcome.model.spikes.threshold_mV:g} mV, times interpolated linearly), one row per "
        "source and one panel per probe.", path.name, path.read_bytes())


def _write_contents(outcome: CheckOutcome, folder: Path, run_id: str,
                    environment: Mapping[str, Any],
                    equilibria: Mapping[str, float] | None,
                    convergence: ConvergenceResult | None = None) -> None:
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
    figures = _figures(outcome, folder, equilibria)
    decomposition_figure = _decomposition_figure(outcome, folder)
    morphology_figure = _morphology_figure(outcome, folder)
    spike_figure = _spike_figure(outcome, folder)
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
                 folder_name: str | None = None) -> Path:
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
    with atomic_folder(parent / run_id, alternatives=later) as staged:
        _write_contents(outcome, staged.path, run_id, environment, equilibria,  # type: ignore[arg-type]
                        convergence)
    write_index(root)
    return staged.final
