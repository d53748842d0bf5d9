"""``crosssim report``: run the check and write its report folder, then refresh the index.

The folder ``<out>/<model>/<run id>/`` (``index.html``, ``report.md``, ``report.json``,
``traces.csv``, the model files and the PNG figures) is written whenever the model is
valid, whatever the verdict; the exit code is the check's: 0 pass, 1 a deviation exceeds
its tolerance, 3 a backend or reference failed (2: invalid model or usage, nothing written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crosssim.commands.common import (
    DEFAULT_REPORTS,
    Progress,
    add_backend_argument,
    add_model_arguments,
    resolve_model,
    selected_backends,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit codes (the check's): 0 pass, 1 a deviation exceeds its tolerance, "
                     "2 invalid model or usage, 3 a backend is missing or failed. "
                     "For tolerance flags use 'crosssim check --report'.")
    add_model_arguments(parser)
    add_backend_argument(parser)
    parser.add_argument("--out", type=Path, default=DEFAULT_REPORTS, metavar="DIR",
                        help=f"reports folder (default: {DEFAULT_REPORTS}); the run is "
                        "written to DIR/<model>/<run id>/ and DIR/index.html lists every run")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def execute(args: argparse.Namespace) -> int:
    import sys

    from crosssim.check import REFERENCES, check, render_table
    from crosssim.report import write_report

    model = resolve_model(args)
    names = selected_backends(args.backend)
    progress = Progress(len(names) + len(REFERENCES), quiet=args.quiet, stream=sys.stderr)
    outcome = check(model, backends=names, progress=progress)
    folder = write_report(outcome, args.out)
    print(render_table(outcome, details=False))
    print(f"wrote {folder / 'index.html'}")
    print(f"wrote {folder / 'report.md'}")
    print(f"updated {Path(args.out) / 'index.html'}")
    return outcome.exit_code
