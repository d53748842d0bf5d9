"""``crosssim converge``: error against the exact cable solution as dt and the CVs shrink.

Runs every backend at every dt (at the finest space level) and at every space level (at the
finest dt), all sampled on one grid (default every coarsest dt), fits the observed order in
each and writes ``converge.json``, ``converge.csv`` and ``converge.png`` (log-log).  On a
model with active membranes the error is that of the spike times (ms) against each
simulator's own Richardson-extrapolated spike times (:mod:`crosssim.study.convergence`);
the documents say which in ``metric``.

Exit codes: 0 the study ran, 2 invalid model or usage, 3 a run (or the exact solution)
failed; the outputs are written in every case but 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crosssim.commands.common import (
    add_backend_argument,
    add_execution_arguments,
    add_format_argument,
    add_model_arguments,
    add_output_argument,
    check_cache_writable,
    output_dir,
    resolve_model,
    selected_backends,
    time_ms,
    window_start,
)
from crosssim.errors import EXIT_BACKEND, EXIT_OK, StudyInterrupted, UsageError

DEFAULT_DTS = "0.04,0.02,0.01,0.005"
DEFAULT_CVS = "1,3,9,27"


def _numbers(text: str, kind: type, *, expected: str, allowed: str,
             ok: Callable[[Any], bool]) -> list:
    """argparse type helper: the comma-separated ``kind`` values of ``text``, each passing
    ``ok``; else ``'TEXT': expected EXPECTED`` or ``'TEXT': ALLOWED``."""
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}") from None
    if not values or not all(ok(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: {allowed}")
    return values


def _float_list(text: str) -> list[float]:
    return _numbers(text, float, expected="numbers separated by commas, e.g. 0.04,0.02,0.01",
                    allowed="every value must be a number > 0",
                    ok=lambda v: math.isfinite(v) and v > 0)


def _int_list(text: str) -> list[int]:
    return _numbers(text, int, expected="whole numbers separated by commas, e.g. 1,3,9,27",
                    allowed="every CV count must be >= 1", ok=lambda v: v >= 1)


def add_level_arguments(target) -> None:
    """``--dt``, ``--cvs`` | ``--max-extent`` and ``--sample-dt`` on ``target`` (a parser or
    an argument group); shared by ``converge`` and ``report --converge``.  Unset levels
    are None and take the defaults in :func:`run_study`."""
    target.add_argument("--dt", type=_float_list, default=None, metavar="LIST",
                        help=f"time steps in ms (default {DEFAULT_DTS})")
    space = target.add_mutually_exclusive_group()
    space.add_argument("--cvs", type=_int_list, default=None, metavar="LIST",
                       help=f"control volumes per cell (default {DEFAULT_CVS})")
    space.add_argument("--max-extent", type=_float_list, default=None, metavar="LIST",
                       help="largest CV lengths in um, instead of --cvs")
    target.add_argument("--sample-dt", type=_float_list, default=None, metavar="MS",
                        help="common sample interval of the study in ms (default: the "
                        "coarsest dt; every dt must divide it)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "levels: the dt study runs every --dt at the finest space level, the space study\n"
        "every --cvs (or --max-extent) at the finest dt.  Use odd CV counts (1,3,9,27) so\n"
        "x = 0.5 stays a CV centre: sites at CV centres converge at second order in space.\n"
        "The order is the least-squares slope of log(max error) on log(step); '(floor)'\n"
        "marks a study whose error stopped falling because the other step dominates.\n"
        "Active membranes (hh): the error is that of the spike times, in ms, against each\n"
        "simulator's own spike times extrapolated from its two finest levels; a level whose\n"
        "spike count differs is shown and left out of the fit.\n\n"
        "exit codes: 0 the study ran, 2 invalid model or usage, 3 a run failed.")
    add_model_arguments(parser)
    add_backend_argument(parser, references=False)
    add_level_arguments(parser)
    parser.add_argument("--window-start", type=time_ms, default=None, metavar="MS",
                        help="measure errors from this time on (default: the model's "
                        "tolerance.window_start_ms)")
    add_output_argument(parser)
    add_format_argument(parser)
    parser.add_argument("--no-plot", action="store_true", help="do not write converge.png")
    add_execution_arguments(parser)


def _plot(result, path: Path) -> Path:
    """The log-log figure (error against dt and against CV length, fitted orders)."""
    from crosssim.report.convergence import plot_study

    return plot_study(result, path)  # the report's figure: same orders, "(floor)" marks


def run_study(args: argparse.Namespace, model, names: list[str], *, command: str):
    """Run the convergence study the command-line levels describe (``--dt``, ``--cvs`` or
    ``--max-extent``, ``--sample-dt``, execution options); shared by ``converge`` and
    ``report --converge``.  Ctrl-C keeps finished runs in the cache and says so."""
    from crosssim.report.progress import StudyProgress
    from crosssim.study.cache import ResultsCache
    from crosssim.study.convergence import converge
    from crosssim.study.executors import make_executor

    if args.sample_dt is not None and len(args.sample_dt) != 1:
        raise UsageError("--sample-dt takes one value")
    dts = args.dt if args.dt is not None else _float_list(DEFAULT_DTS)
    cvs = args.cvs if args.cvs is not None or args.max_extent is not None else \
        _int_list(DEFAULT_CVS)
    check_cache_writable(args)
    cache = ResultsCache(enabled=not args.no_cache)
    executor = make_executor(args.workers, args.scheduler, timeout_s=args.timeout)
    progress = StudyProgress(0, description="converge", enabled=not args.quiet)
    try:
        return converge(model, dts=dts, cvs=cvs, max_extents=args.max_extent, backends=names,
                        sample_dt_ms=args.sample_dt[0] if args.sample_dt else None,
                        executor=executor, cache=cache, progress=progress)
    except KeyboardInterrupt as exc:
        progress.close()
        raise StudyInterrupted(exc, "finished runs of the convergence study are kept in the "
                               "cache, run the same command again to resume") from None
    finally:
        progress.close()
        executor.close()


def execute(args: argparse.Namespace) -> int:
    from crosssim.files import json_text, write_csv, write_json
    from crosssim.model import apply_overrides
    from crosssim.report.convergence import render_text

    model = resolve_model(args)
    names = selected_backends(args)
    start = window_start(args, model)
    if start is not None:
        model = apply_overrides(model, [("tolerance.window_start_ms", start)],
                                source="--window-start")
    out = output_dir(args, model)  # checked before anything runs
    result = run_study(args, model, names, command="converge")

    written = []
    try:
        written.append(write_json(out / "converge.json", result.to_document()))
        written.append(write_csv(out / "converge.csv", result.to_frame(), float_format="%.12g"))
        if not args.no_plot and result.figure_table():
            written.append(_plot(result, out / "converge.png"))
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None

    if args.format == "json":
        sys.stdout.write(json_text(result.to_document()))
    else:
        print(render_text(result))
    for path in written:
        print(f"wrote {path}", file=sys.stderr if args.format == "json" else sys.stdout)
    if result.failures:
        print("crosssim converge: error: " + "; ".join(
            f"{name}: {reason}" for name, reason in sorted(result.failures.items())),
            file=sys.stderr)
        return EXIT_BACKEND
    return EXIT_OK
