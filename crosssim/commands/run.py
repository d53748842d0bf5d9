"""``crosssim run``: run the backends on one model, write traces.csv and a plot, summarise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from crosssim.commands.common import (
    Progress,
    add_backend_argument,
    add_model_arguments,
    add_output_argument,
    model_notes,
    output_dir,
    resolve_model,
    run_sources,
    selected_backends,
)
from crosssim.errors import EXIT_BACKEND, EXIT_OK, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_backend_argument(parser)
    add_output_argument(parser)
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    parser.add_argument("--no-analytic", action="store_true",
                        help="do not compute the exact cable solution for the plot and summary")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines on stderr (notes that explain results stay)")


def summary_lines(results, failures, reference=None) -> list[str]:
    """Final value per source and probe, the largest |a - b| between backends, and (with a
    ``reference``, the exact cable solution) the largest |backend - reference|."""
    lines = []
    for result in [*results, *([reference] if reference is not None else [])]:
        finals = ", ".join(f"{probe} {values[-1]:.6f} mV"
                           for probe, values in zip(result.probes, result.values_mV))
        lines.append(f"{result.backend:>8}: final {finals}  ({result.wall_time_s:.3g} s)")
    for name, reason in failures.items():
        lines.append(f"{name:>8}: FAILED: {reason}")
    pairs = [(first, second, second.backend)
             for i, first in enumerate(results) for second in results[i + 1:]]
    if reference is not None:
        pairs += [(result, reference, "exact cable") for result in results]
    for first, second, label in pairs:
        if first.values_mV.shape != second.values_mV.shape:
            continue
        diff = np.abs(first.values_mV - second.values_mV)
        row, col = np.unravel_index(int(np.argmax(diff)), diff.shape)
        gated = "; see 'crosssim check' for the gated comparison" if second is reference else ""
        lines.append(
            f"largest |{first.backend} - {label}| = {diff[row, col]:.3g} mV "
            f"(probe {first.probes[row]}, t = {first.times_ms[col]:g} ms{gated})")
    return lines


def exact_reference(model, progress: Progress | None):
    """The exact cable solution, or None (with a note on stderr) when it cannot be had."""
    from crosssim.errors import CrossSimError

    if progress:
        progress.start("analytic")
    try:
        from crosssim.check import run_source
        from crosssim.outcome import ANALYTIC

        result = run_source(ANALYTIC, model)
        result.check_finite()
    except (CrossSimError, ValueError, MemoryError) as exc:
        if progress:
            progress.finish("analytic", f"skipped ({' '.join(str(exc).split())})")
        return None
    if progress:
        progress.finish("analytic")
    return result


def _write_outputs(args: argparse.Namespace, model, results, out: Path,
                   reference=None) -> list[Path]:
    """traces.csv and (unless ``--no-plot``) traces.png, each written atomically."""
    from crosssim.result import results_to_frame
    from crosssim.io import atomic_open

    if not results:
        return []
    frame = results_to_frame(results)
    with atomic_open(out / "traces.csv") as handle:
        frame.to_csv(handle, index=False)
    written = [out / "traces.csv"]
    if not args.no_plot:
        from crosssim.analytic import lumped_steady_state
        from crosssim.report.figures import plot_traces

        path = out / "traces.png"
        plot_traces(model, [*results, *([reference] if reference is not None else [])], path,
                    equilibria=lumped_steady_state(model))
        written.append(path)
    return written


def execute(args: argparse.Namespace) -> int:
    model = resolve_model(args)
    names = selected_backends(args.backend)
    out = output_dir(args, model)  # refuse an unusable --out before running anything
    for note in model_notes(model, names):  # shown even with --quiet: they explain results
        print(note, file=sys.stderr)
    progress = Progress(len(names) + (0 if args.no_analytic else 1), quiet=args.quiet)
    results, failures = run_sources(model, names, progress=progress)
    reference = None if args.no_analytic or not results else exact_reference(model, progress)
    try:
        written = _write_outputs(args, model, results, out, reference)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    print(f"model {model.name}: {len(model.cells)} cells, {len(model.gap_junctions)} gap "
          f"junctions, {model.simulation.n_samples} samples per probe "
          f"(t = 0..{model.simulation.t_stop_ms:g} ms)")
    for line in summary_lines(results, failures, reference):
        print(line)
    for path in written:
        print(f"wrote {path}")
    if failures:
        print(f"crosssim run: error: {len(failures)} backend(s) failed: "
              + "; ".join(f"{k}: {v}" for k, v in failures.items()), file=sys.stderr)
        return EXIT_BACKEND
    return EXIT_OK
