"""``crosssim sources``: every registered source, its kind and whether it is installed."""

from __future__ import annotations

import argparse
import json
import sys

from crosssim.commands.common import add_format_argument
from crosssim.errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_format_argument(parser, "a table")


def execute(args: argparse.Namespace) -> int:
    from crosssim.report.text import render_sources
    from crosssim.sources import source_table

    rows = source_table()
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        print(render_sources(rows))
    return EXIT_OK
