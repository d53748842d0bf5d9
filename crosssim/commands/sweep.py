"""``crosssim sweep``: a full check at every point of a grid of model parameters.

Writes ``sweep.csv`` and ``sweep.parquet`` (one row per point: parameters, verdict, error
reason, worst deviations, per-comparison metrics) and ``sweep_heatmap.png`` (the worst
deviation over two swept parameters), and prints a summary.

Exit codes: 0 every point passes, 1 a point exceeds a tolerance, 2 bad grid spec, invalid
model or usage, 3 a point errored (invalid parameter combination, a source failed); the
table is written in every case but 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crosssim.commands.common import (
    add_backend_argument,
    add_execution_arguments,
    add_format_argument,
    add_model_arguments,
    add_output_argument,
    add_tolerance_arguments,
    check_cache_writable,
    output_dir,
    resolve_model,
    selected_sources,
    time_ms,
    tolerance_overrides,
    window_start,
)
from crosssim.errors import StudyInterrupted, UsageError
from crosssim.files import json_ready


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "grid values (PATH is any model field, as in --set):\n"
        "  --grid gap_junctions.0.g_uS=0.001,0.01,0.1   a list\n"
        "  --grid cells.b.length_um=50:200:4            4 values from 50 to 200 (linear)\n"
        "  --grid gap_junctions.0.g_uS=log:1e-3:1e-1:3  3 values, logarithmic\n"
        "The points are the Cartesian product of every --grid; each is a full check.\n\n"
        "exit codes: 0 all points pass, 1 a point exceeds a tolerance, 2 bad grid spec or\n"
        "usage, 3 a point errored (invalid combination, a backend failed); the table is\n"
        "written whenever the sweep ran.  Interrupted?  Run the same command again: finished\n"
        "simulations come from the cache.")
    add_model_arguments(parser)
    parser.add_argument("--grid", dest="grid", action="append", default=[],
                        metavar="PATH=VALUES", help="a swept parameter (repeatable)")
    add_backend_argument(parser)
    add_tolerance_arguments(parser)
    parser.add_argument("--window-start", type=time_ms, default=None, metavar="MS",
                        help="ignore samples before this time (default: the model's)")
    add_output_argument(parser)
    add_format_argument(parser, "summary table")
    parser.add_argument("--heatmap-metric", default=None, metavar="COLUMN",
                        help="table column shown in the heatmap (default: worst_backends_mV, "
                        "else worst_analytic_mV; also worst_ratio, worst_lumped_mV)")
    parser.add_argument("--heatmap-axes", default=None, metavar="PATH,PATH",
                        help="the two swept parameters of the heatmap (default: the first "
                        "two --grid)")
    parser.add_argument("--no-plot", action="store_true", help="do not write the heatmap")
    add_execution_arguments(parser)


def _document(result, written: list[Path]) -> dict:
    columns, rows = result.table()
    records = json_ready([{column: row[column] for column in columns} for row in rows])
    return {
        "model": result.model.name,
        "verdict": {0: "pass", 1: "fail", 3: "error"}[result.exit_code],
        "counts": result.counts(),
        "dimensions": [{"path": d.path, "values": list(d.values)} for d in result.dimensions],
        "sources": result.sources,
        "runs": {"computed": result.computed, "cached": result.cached,
                 "failed": result.failed_runs},
        "wall_time_s": result.wall_time_s,
        "points": records,
        "files": [str(path) for path in written],
    }


def execute(args: argparse.Namespace) -> int:
    from crosssim.files import json_text, write_rows_csv, write_rows_parquet
    from crosssim.report.progress import StudyProgress
    from crosssim.report.sweep import heatmap_data, render_text
    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import make_executor
    from crosssim.study.sweeps import parse_grid, sweep, validate_grid

    dimensions = parse_grid(args.grid)
    model = resolve_model(args)
    validate_grid(model, dimensions)
    names, references = selected_sources(args)
    start = window_start(args, model)
    axes = None
    if args.heatmap_axes:
        axes = [name.strip() for name in args.heatmap_axes.split(",") if name.strip()]
        swept = [d.path for d in dimensions]
        if not 1 <= len(axes) <= 2 or any(name not in swept for name in axes):
            raise UsageError("--heatmap-axes: give one or two of the swept parameters: "
                             + ", ".join(swept))
    metric = args.heatmap_metric
    if metric and not (metric in ("worst_ratio", "n_failing") or ":" in metric
                       or (metric.startswith("worst_") and metric.endswith("_mV"))):
        raise UsageError(f"--heatmap-metric {metric!r}: one of worst_ratio, n_failing, "
                         "worst_<gate>_mV (gate: backends, a reference's name, references) "
                         "or a per-comparison column such as arbor-neuron:a_gj:max_abs_mV")
    options: dict[str, object] = {"tolerances": tolerance_overrides(args)}
    if start is not None:
        options["window_start_ms"] = start

    out = output_dir(args, model)  # checked before anything runs
    check_cache_writable(args)
    cache = ResultsCache(enabled=not args.no_cache)
    executor = make_executor(args.workers, args.scheduler, timeout_s=args.timeout)
    progress = StudyProgress(0, description="sweep", enabled=not args.quiet)
    try:
        result = sweep(model, dimensions, backends=names, references=references,
                       executor=executor, cache=cache, progress=progress,
                       check_options=options)
    except KeyboardInterrupt as exc:
        progress.close()
        raise StudyInterrupted(exc, "finished simulations are kept in the cache, run the "
                               "same command again to resume") from None
    finally:
        progress.close()
        executor.close()

    written: list[Path] = []
    columns, rows = result.table()
    heatmap = None if args.no_plot else heatmap_data(result, metric=args.heatmap_metric,
                                                     axes_params=axes)
    try:
        written.append(write_rows_csv(out / "sweep.csv", columns, rows, float_format="%.12g"))
        written.append(write_rows_parquet(out / "sweep.parquet", columns, rows,
                                          types=result.column_types()))
        if heatmap is not None:
            from crosssim.report.raster import save_heatmap_png

            written.append(save_heatmap_png(heatmap, out / "sweep_heatmap.png"))
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None

    if args.format == "json":
        sys.stdout.write(json_text(_document(result, written)))
    else:
        print(render_text(result))
        for path in written:
            print(f"wrote {path}")
    return result.exit_code
