"""The ``crosssim`` command line: parse, call the library, map errors to exit codes.

Each subcommand lives in ``crosssim/commands/<name>.py`` and provides
``add_arguments(parser)`` and ``execute(args) -> int``.  This module only dispatches.

Exit codes (every subcommand): 0 success / all within tolerance, 1 a deviation exceeds its
tolerance, 2 invalid model or usage, 3 a backend is missing or failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from crosssim import __version__
from crosssim.errors import EXIT_USAGE, CrossSimError

#: Subcommand name -> (module, one-line help).  A module that is absent is not offered.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("crosssim.commands.run", "run the backends on a model and write traces and a plot"),
    "check": ("crosssim.commands.check", "compare backends and the analytic solution; gate on tolerance"),
    "report": ("crosssim.commands.report", "write an HTML/Markdown/JSON comparison report"),
    "converge": ("crosssim.commands.converge", "convergence study in dt and control-volume size"),
    "sweep": ("crosssim.commands.sweep", "parameter sweep: a full check at every grid point"),
    "cache": ("crosssim.commands.cache", "inspect or clear the results and mechanism caches"),
    "models": ("crosssim.commands.models", "list the built-in models and their parameters"),
}

EXIT_INTERNAL = 4


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"crosssim {self.prog.split(' ', 1)[-1]}: error: {message}\n"
                  if " " in self.prog else f"crosssim: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = _Parser(prog="crosssim", description="Do two neuron simulators agree, by how "
                     "much, and with the mathematics?")
    parser.add_argument("--version", action="version", version=f"crosssim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_execute=module.execute)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``crosssim`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_execute", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._execute(args) or 0)
    except CrossSimError as exc:
        print(f"crosssim {args.command}: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"crosssim {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
        if os.environ.get("CROSSSIM_DEBUG"):
            raise
        print(f"crosssim {args.command}: internal error: {type(exc).__name__}: "
              f"{' '.join(str(exc).split())} (set CROSSSIM_DEBUG=1 for the traceback; "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
