"""``crosssim check``: run backends and references, compare every pair, gate on tolerances.

Exit codes: 0 every gated comparison within tolerance, 1 a deviation exceeds its tolerance,
2 invalid model or usage, 3 a backend (or reference) is missing or failed (crash, NaN).

With ``--format json`` stdout carries exactly one JSON document
(``CheckOutcome.to_document()``) whenever the check ran (exit 0, 1 or 3) and nothing at all
otherwise (exit 2: usage or invalid model, reason on stderr).  Progress always goes to
stderr, and so does anything a simulator prints while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from crosssim.commands.common import (
    DEFAULT_REPORTS,
    Progress,
    add_backend_argument,
    add_model_arguments,
    add_tolerance_arguments,
    add_traces_argument,
    check_writable,
    resolve_model,
    selected_sources,
    time_ms,
    tolerance_overrides,
)
from crosssim.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "pairs and tolerances (the kinds of the sources decide, see 'crosssim sources'):\n"
        "  simulator vs simulator  --tolerance-backends (model: tolerance.backends_abs_mV)\n"
        "  simulator - reference   --tolerance-analytic, --tolerance-lumped, or\n"
        "                          --tolerance NAME=MV for any reference (default: report)\n"
        "  reference vs reference  reported, never gated\n"
        "A tolerance flag applies to every probe (it replaces per-probe values of the model);\n"
        "use --set tolerance.probes.NAME.analytic_abs_mV=... for one probe.\n\n"
        "exit codes: 0 pass, 1 a deviation exceeds its tolerance, 2 invalid model or usage,\n"
        "3 a backend is missing or failed (crash, NaN).\n\n"
        "--format json: stdout is exactly one JSON document when the check ran (exit 0, 1, 3)\n"
        "and empty on exit 2 (the reason is on stderr); progress always goes to stderr.")
    add_model_arguments(parser)
    add_backend_argument(parser)
    add_traces_argument(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text table (default) or one JSON document on stdout")
    parser.add_argument("--junit", type=Path, default=None, metavar="FILE",
                        help="also write JUnit XML (one test case per comparison) to FILE")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write check.json and traces.csv (every source) into DIR; with "
                        "--report, the report goes to DIR/<model>/<run id>/")
    parser.add_argument("--report", action="store_true",
                        help="write the HTML/Markdown/JSON report (under --out, default "
                        f"{DEFAULT_REPORTS}/)")
    add_tolerance_arguments(parser)
    parser.add_argument("--window-start", type=time_ms, default=None, metavar="MS",
                        help="ignore samples before this time (default: the model's "
                        "tolerance.window_start_ms)")
    parser.add_argument("--interpolate", action="store_true",
                        help="allow linear interpolation between sources whose sample grids "
                        "do not coincide (never needed for one model's own sources)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines on stderr (notes that explain results stay)")


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr while simulators run (C code and child processes
    print banners there), so stdout stays one clean document."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded use): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _write_outputs(args: argparse.Namespace, outcome) -> list[Path]:
    """check.json + traces.csv (``--out``), JUnit XML (``--junit``), the report (``--report``)."""
    from crosssim.files import write_check_artifacts

    written: list[Path] = []
    try:
        if args.out is not None:
            written += write_check_artifacts(outcome, args.out)
        if args.junit is not None:
            from crosssim.report.junit import write_junit

            write_junit(outcome, args.junit)
            written.append(args.junit)
        if args.report:
            write_report = _report_writer()
            written.append(Path(write_report(outcome, args.out or DEFAULT_REPORTS)))
    except OSError as exc:
        where = exc.filename or ""
        raise UsageError(f"cannot write {where}: {exc.strerror or exc}") from None
    return written


def _report_writer():
    """``crosssim.report.write_report``, imported only when ``--report`` is given."""
    from crosssim.report import write_report

    return write_report


def execute(args: argparse.Namespace) -> int:
    from crosssim.check import check
    from crosssim.report.text import render_notes, render_table

    model = resolve_model(args)
    backends, references = selected_sources(args)
    if args.window_start is not None and args.window_start > model.simulation.t_stop_ms:
        raise UsageError(f"--window-start {args.window_start:g} ms is after t_stop_ms "
                         f"({model.simulation.t_stop_ms:g} ms)")
    # refuse unusable output paths before running anything
    if args.out is not None:
        check_writable(args.out, what="--out", folder=True)
    elif args.report:
        check_writable(DEFAULT_REPORTS, what="report folder", folder=True)
    if args.junit is not None:
        check_writable(args.junit, what="--junit", folder=False)
    progress = Progress(quiet=args.quiet, stream=sys.stderr)
    with _stdout_to_stderr():
        outcome = check(
            model, backends=backends, references=references,
            tolerances=tolerance_overrides(args), window_start_ms=args.window_start,
            interpolate=args.interpolate, progress=progress, traces=args.traces)
        written = _write_outputs(args, outcome)
    if args.format == "json":
        for line in render_notes(outcome.notes):  # the document has them; people too
            print(line, file=sys.stderr)
        sys.stdout.write(json.dumps(outcome.to_document(), indent=2, allow_nan=False) + "\n")
    else:
        print(render_table(outcome))
    for path in written:
        print(f"wrote {path}", file=sys.stderr if args.format == "json" else sys.stdout)
    sys.stdout.flush()
    return outcome.exit_code
