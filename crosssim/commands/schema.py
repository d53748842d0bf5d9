"""``crosssim schema NAME``: print the JSON Schema of the model file, the check document,
report.json, the suite document or a suite file (generated from the types that define them;
see :mod:`crosssim.schema`)."""

from __future__ import annotations

import argparse
import sys

from crosssim.errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crosssim.schema import SCHEMA_NAMES

    parser.add_argument("name", choices=SCHEMA_NAMES,
                        help="model (the model file), check (check --format json, "
                        "check.json), report (report.json), suite (check --format json with "
                        "several models) or suite-file (a suite file listing models)")


def execute(args: argparse.Namespace) -> int:
    from crosssim.schema import schema_text

    sys.stdout.write(schema_text(args.name))
    return EXIT_OK
