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
from typing import TYPE_CHECKING

from crosssim.commands.common import (
    DEFAULT_MODEL,
    DEFAULT_REPORTS,
    Progress,
    add_backend_argument,
    add_model_arguments,
    add_tolerance_arguments,
    add_traces_argument,
    check_model_size,
    check_writable,
    selected_sources,
    time_ms,
    tolerance_overrides,
)
from crosssim.errors import UsageError
from crosssim.files import json_ready

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.report.figure_process import Figures
    from crosssim.suite import SuiteOutcome, SuiteResult


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
        "and empty on exit 2 (the reason is on stderr); progress always goes to stderr.\n\n"
        "several models (files, globs, built-in names, suite files): one verdict and exit code\n"
        "(the worst model's), one JSON document ('crosssim schema suite'), one JUnit file\n"
        "with a testsuite per model, and a folder per model under --out.")
    add_model_arguments(parser, several=True)
    add_backend_argument(parser)
    add_traces_argument(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text table (default) or one JSON document on stdout")
    parser.add_argument("--junit", type=Path, default=None, metavar="FILE",
                        help="also write JUnit XML (one test case per comparison) to FILE")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write check.json and traces.csv (every source) into "
                        "DIR/<model>/ (one folder per model); with --report, the report goes "
                        "to DIR/<model>/<run id>/")
    parser.add_argument("--summary", type=Path, default=None, metavar="FILE",
                        help="also write a Markdown summary made for a CI step summary "
                        "(e.g. \"$GITHUB_STEP_SUMMARY\"): one line per model, its worst "
                        "deviations, notes and fixes; no images")
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


def _member_outputs(args: argparse.Namespace, result: SuiteResult, *, single: bool,
                    figures: Figures | None) -> None:
    """Write one model's files as soon as its check is done and record their paths in
    ``result.outputs``: the report (``--report``), then ``check.json`` and ``traces.csv`` in
    ``<out>/<label>/`` (``--out``); ``check.json`` lists the paths, its own included."""
    from crosssim.report.artifacts import write_check_artifacts

    outcome, outputs = result.outcome, result.outputs
    try:
        if args.report:
            folder = Path(_report_writer()(outcome, args.out or DEFAULT_REPORTS,
                                           folder_name=result.member.label, figures=figures))
            outputs.update(report_folder=str(folder), report_html=str(folder / "index.html"),
                           report_md=str(folder / "report.md"),
                           report_json=str(folder / "report.json"))
        if single:  # the suite's files are the model's files
            outputs.update({key: str(path) for key, path in
                            (("junit", args.junit), ("summary", args.summary)) if path})
        if args.out is not None:
            folder = Path(args.out) / result.member.label
            outputs["folder"] = str(folder)
            outputs["check_json"] = str(folder / "check.json")
            if outcome.results:
                outputs["traces_csv"] = str(folder / "traces.csv")
            write_check_artifacts(outcome, folder, document=_document(outcome, outputs))
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or ''}: {exc.strerror or exc}") from None


def _document(outcome, outputs: dict[str, str]) -> dict:
    """The check document, with ``outputs`` (role -> path) when files were written."""
    document = outcome.to_document()
    if outputs:
        document["outputs"] = dict(outputs)
    return document


def _suite_outputs(args: argparse.Namespace, suite: SuiteOutcome) -> list[str]:
    """Write the JUnit XML (``--junit``) and the step summary (``--summary``)."""
    written = []
    try:
        if args.junit is not None:
            from crosssim.report.junit import write_junit

            write_junit(suite if len(suite.results) > 1 else suite.results[0].outcome,
                        args.junit)
            written.append(str(args.junit))
        if args.summary is not None:
            from crosssim.files import atomic_write_text
            from crosssim.report.summary import render_summary

            atomic_write_text(args.summary, render_summary(suite))
            written.append(str(args.summary))
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or ''}: {exc.strerror or exc}") from None
    return written


def _report_figures(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The figure process of the reports (``--report``; see
    :mod:`crosssim.report.figure_process`), else nothing."""
    if not args.report:
        return contextlib.nullcontext()
    from crosssim.report.figure_process import REPORT_IMPORTS, start_figures

    return start_figures(REPORT_IMPORTS)


def _report_writer():
    """``crosssim.report.write_report``, imported only when ``--report`` is given."""
    from crosssim.report import write_report

    return write_report


def _single(args: argparse.Namespace, suite_files: list[str]) -> bool:
    """Whether the command line names exactly one model (no glob, no suite file): then the
    output is the one-model document and table, as always."""
    return len(args.models) <= 1 and not suite_files and not any(
        char in (args.models or [""])[0] for char in "*?[")


def execute(args: argparse.Namespace) -> int:
    from crosssim.report.text import render_notes, render_suite_table, render_table
    from crosssim.suite import check_suite, load_members, parse_params

    members, suite_files = load_members(
        args.models or [DEFAULT_MODEL], params=parse_params(args.params),
        overrides=args.overrides, check=check_model_size)
    single = _single(args, suite_files) and len(members) == 1
    backends, references = selected_sources(args)
    for member in members:
        t_stop = member.model.simulation.t_stop_ms
        if args.window_start is not None and args.window_start > t_stop:
            name = "" if single else f" ({member.label})"
            raise UsageError(f"--window-start {args.window_start:g} ms is after t_stop_ms "
                             f"({t_stop:g} ms){name}")
    # refuse unusable output paths before running anything
    if args.out is not None:
        check_writable(args.out, what="--out", folder=True)
    elif args.report:
        check_writable(DEFAULT_REPORTS, what="report folder", folder=True)
    for option, path in (("--junit", args.junit), ("--summary", args.summary)):
        if path is not None:
            check_writable(path, what=option, folder=False)
    progress = Progress(quiet=args.quiet, stream=sys.stderr)
    # the reports' figure process imports matplotlib while the simulators run
    with _stdout_to_stderr(), _report_figures(args) as figures:
        suite = check_suite(
            members, backends=backends, references=references,
            tolerances=tolerance_overrides(args), window_start_ms=args.window_start,
            interpolate=args.interpolate, progress=progress, traces=args.traces,
            suite_files=suite_files,
            on_result=lambda result: _member_outputs(args, result, single=single,
                                                     figures=figures))
        written = _suite_outputs(args, suite)
    stream = sys.stderr if args.format == "json" else sys.stdout
    if single:
        result = suite.results[0]
        outcome = result.outcome
        if args.format == "json":
            for line in render_notes(outcome.notes):  # the document has them; people too
                print(line, file=sys.stderr)
            sys.stdout.write(json.dumps(_document(outcome, result.outputs), indent=2,
                                        allow_nan=False) + "\n")
        else:
            print(render_table(outcome))
    elif args.format == "json":
        for result in suite.results:
            for line in render_notes(result.outcome.notes):
                print(f"{result.member.label}: {line}", file=sys.stderr)
        document = suite.to_document()
        document["outputs"] = {key: str(path) for key, path in
                               (("junit", args.junit), ("summary", args.summary)) if path}
        sys.stdout.write(json.dumps(json_ready(document), indent=2, allow_nan=False) + "\n")
    else:
        for result in suite.results:
            print(render_table(result.outcome))
            print()
        print(render_suite_table(suite))
    for result in suite.results:
        for key in ("check_json", "traces_csv", "report_html", "report_md"):
            if key in result.outputs:
                print(f"wrote {result.outputs[key]}", file=stream)
    for path in written:
        print(f"wrote {path}", file=stream)
    sys.stdout.flush()
    return suite.exit_code
