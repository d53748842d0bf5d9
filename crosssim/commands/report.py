"""``crosssim report``: run the check and write its report folder, then refresh the index.

The folder ``<out>/<model>/<run id>/`` (``index.html``, ``report.md``, ``report.json``,
``traces.csv``, the model files and the PNG figures) is written whenever the model is
valid, whatever the verdict; the exit code is the check's: 0 pass, 1 a deviation exceeds
its tolerance, 3 a backend or reference failed (2: invalid model or usage, nothing written).

With ``--converge`` a convergence study (:func:`crosssim.study.convergence`, the levels and
execution options of ``crosssim converge``) runs first, and the report gains a
"Convergence" section, ``convergence.png``/``convergence.csv`` and a ``convergence`` block
in ``report.json``; a failed run of the study makes the exit code 3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosssim.commands.common import (
    DEFAULT_REPORTS,
    add_backend_argument,
    add_execution_arguments,
    add_model_arguments,
    add_traces_argument,
    check_writable,
    resolve_model,
    selected_sources,
)
from crosssim.errors import EXIT_BACKEND, UsageError
from crosssim.report.progress import Progress

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.study.convergence import ConvergenceResult

#: Options that only mean something for the convergence study (checked without --converge).
_STUDY_OPTIONS = {"dt": "--dt", "cvs": "--cvs", "max_extent": "--max-extent",
                  "sample_dt": "--sample-dt", "workers": "--workers",
                  "scheduler": "--scheduler", "no_cache": "--no-cache", "timeout": "--timeout"}


class _StudyOptions:
    """Passes the study's execution options (``add_execution_arguments``) to the argument
    group of the convergence study, except ``--quiet``, which is the whole command's."""

    def __init__(self, parser: argparse.ArgumentParser, group: Any) -> None:
        self._parser, self._group = parser, group

    def add_argument(self, *flags: str, **options: Any) -> argparse.Action:
        target = self._parser if "--quiet" in flags else self._group
        return target.add_argument(*flags, **options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crosssim.commands.converge import add_level_arguments

    parser.epilog = ("exit codes (the check's): 0 pass, 1 a deviation exceeds its tolerance, "
                     "2 invalid model or usage, 3 a backend is missing or failed (or, with "
                     "--converge, a run of the study failed). "
                     "For tolerance flags use 'crosssim check --report'.")
    add_model_arguments(parser)
    add_backend_argument(parser)
    add_traces_argument(parser)
    parser.add_argument("--out", type=Path, default=DEFAULT_REPORTS, metavar="DIR",
                        help=f"reports folder (default: {DEFAULT_REPORTS}); the run is "
                        "written to DIR/<model>/<run id>/ and DIR/index.html lists every run")
    study = parser.add_argument_group(
        "convergence study", "with --converge the report also shows the error against the "
        "exact solution as dt and the CVs shrink, with fitted orders (as 'crosssim "
        "converge'); the other options of this group need --converge")
    study.add_argument("--converge", action="store_true",
                       help="run a convergence study and add it to the report")
    add_level_arguments(study)
    add_execution_arguments(_StudyOptions(parser, study))


def _study(args: argparse.Namespace, model: Model, names: list[str]) -> ConvergenceResult:
    """Run the convergence study of the command line (levels checked before any run)."""
    from crosssim.commands.converge import run_study

    return run_study(args, model, names, command="report")


def execute(args: argparse.Namespace) -> int:
    from crosssim.check import check, select_sources
    from crosssim.report import write_report
    from crosssim.report.text import render_table

    model = resolve_model(args)
    backends, references = selected_sources(args)
    names = [name for name, kind in select_sources(backends, [])[0].items()
             if kind == "simulator"]
    study = None
    # the report folder is refused before anything runs (a read-only folder is exit 2)
    check_writable(args.out, what="--out" if args.out != DEFAULT_REPORTS else "report folder",
                   folder=True)
    if args.converge:
        study = _study(args, model, names)
    else:
        given = [flag for key, flag in _STUDY_OPTIONS.items()
                 if getattr(args, key, None) not in (None, False)]
        if given:
            raise UsageError(f"{', '.join(given)}: only with --converge")
    progress = Progress(quiet=args.quiet, stream=sys.stderr)
    outcome = check(model, backends=backends, references=references, progress=progress,
                    traces=args.traces)
    try:
        folder = write_report(outcome, args.out, convergence=study)
    except OSError as exc:  # the folder became unwritable while the check ran
        raise UsageError(f"cannot write {exc.filename or args.out}: "
                         f"{exc.strerror or exc}") from None
    print(render_table(outcome, details=False))
    if study is not None:
        from crosssim.report.convergence import render_text

        print()
        print(render_text(study))
    print(f"wrote {folder / 'index.html'}")
    print(f"wrote {folder / 'report.md'}")
    print(f"updated {Path(args.out) / 'index.html'}")
    if study is not None and study.failures:
        print("crosssim report: error: convergence study: " + "; ".join(
            f"{name}: {reason}" for name, reason in sorted(study.failures.items())),
            file=sys.stderr)
        return EXIT_BACKEND
    return outcome.exit_code
