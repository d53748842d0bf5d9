"""``crosssim run``: run the backends on one model, write traces.csv and a plot, summarise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crosssim.commands.common import (
    add_backend_argument,
    add_model_arguments,
    add_output_argument,
    output_dir,
    resolve_model,
    selected_backends,
)
from crosssim.errors import EXIT_BACKEND, EXIT_OK, UsageError
from crosssim.report.progress import Progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_backend_argument(parser, references=False)
    add_output_argument(parser)
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    parser.add_argument("--no-analytic", action="store_true",
                        help="do not compute the exact cable solution for the plot and summary")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines on stderr (notes that explain results stay)")


def exact_reference(model, progress: Progress | None):
    """The exact cable solution, or None when it cannot be had (the reason in a note)."""
    from crosssim.check import run_sources
    from crosssim.errors import CrossSimError
    from crosssim.sources import ANALYTIC

    try:
        results, _, _, _ = run_sources(model, [ANALYTIC], progress=progress)
    except CrossSimError as exc:  # too large for the exact solution: the plot goes without
        if progress:
            progress.finish(ANALYTIC, f"skipped ({exc.one_line()})")
        return None
    return results.get(ANALYTIC)


#: What the exact reference imports: imported while the NEURON child runs (the second core
#: does the child's start-up meanwhile).  scipy only when the model is large (its
#: reference then imports it).
_ANALYTIC_IMPORTS = ("crosssim.analytic.cable",)


def _warm_imports(args: argparse.Namespace) -> None:
    """Import what the analytic reference and the plot will need."""
    import importlib

    from crosssim.report.raster import IMPORTS

    modules = (() if args.no_analytic else _ANALYTIC_IMPORTS) + (
        () if args.no_plot else IMPORTS)
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:  # reported, if it matters, where the module is used
            return


def _write_outputs(args: argparse.Namespace, model, results, out: Path,
                   reference=None) -> list[Path]:
    """traces.csv and (unless ``--no-plot``) traces.png, each written atomically."""
    from crosssim.report.artifacts import write_traces

    if not results:
        return []
    written = [write_traces(out / "traces.csv", results)]
    stale = out / "traces.png"
    if args.no_plot and stale.exists():  # an earlier run's plot would not match traces.csv
        stale.unlink()
        print(f"removed {stale} (an earlier run's plot; --no-plot)")
    if not args.no_plot:
        from crosssim.analytic import lumped_steady_state
        from crosssim.report import figures

        t_stop = model.simulation.t_stop_ms
        clamped = [i for i, stimulus in enumerate(model.stimuli) if stimulus.amplitude_nA
                   and stimulus.delay_ms <= t_stop < stimulus.delay_ms + stimulus.duration_ms]
        note = ("no lumped equilibrium drawn: a clamp is on at t_stop (stimuli."
                f"{clamped[0]}), the resting equilibrium would not apply" if clamped else None)
        # the passive lumped equilibrium means nothing for spiking cells
        equilibria = None if clamped or model.is_active else lumped_steady_state(model)
        traces = figures.traces_figure(
            model, [*results, *([reference] if reference is not None else [])],
            equilibria=equilibria, note=note)
        written.append(figures.draw_traces(traces, out / "traces.png"))
    return written


def execute(args: argparse.Namespace) -> int:
    from crosssim.check import cancel_children, run_sources, start_children, started_runner
    from crosssim.notes import model_notes
    from crosssim.report.text import render_notes, run_summary

    model = resolve_model(args)
    names = selected_backends(args)
    out = output_dir(args, model)  # refuse an unusable --out before running anything
    for line in render_notes(model_notes(model, names)):  # shown even with --quiet
        print(line, file=sys.stderr)
    progress = Progress(len(names) + (0 if args.no_analytic else 1), quiet=args.quiet)
    # the NEURON child starts first; while it runs, what comes next is imported
    started = start_children(model, names)
    try:
        results, failures, _, _ = run_sources(
            model, names, progress=progress,
            runner=started_runner(started, before_wait=lambda: _warm_imports(args)))
    finally:
        cancel_children(started)  # interrupted: stop the child (no-op once done)
    reference = None if args.no_analytic or not results else exact_reference(model, progress)
    try:
        written = _write_outputs(args, model, list(results.values()), out, reference)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    from crosssim.report.text import plural

    print(f"model {model.name}: {plural(len(model.cells), 'cell')}, "
          f"{plural(len(model.gap_junctions), 'gap junction')}, "
          f"{model.simulation.n_samples} samples per probe "
          f"(t = 0..{model.simulation.t_stop_ms:g} ms)")
    for line in run_summary(list(results.values()), failures, reference):
        print(line)
    for path in written:
        print(f"wrote {path}")
    if failures:
        print(f"crosssim run: error: {len(failures)} backend(s) failed: "
              + "; ".join(f"{k}: {v}" for k, v in failures.items()), file=sys.stderr)
        return EXIT_BACKEND
    return EXIT_OK
