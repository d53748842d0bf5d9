"""The ``crosssim`` command line: parse, call the library, map errors to exit codes.

Each subcommand lives in ``crosssim/commands/<name>.py`` and provides
``add_arguments(parser)`` and ``execute(args) -> int``.  This module only dispatches.

Exit codes (every subcommand, :data:`crosssim.errors.EXIT_CODES`): 0 success / all within
tolerance, 1 a deviation exceeds its tolerance, 2 invalid model or usage, 3 a backend is
missing or failed, 4 internal error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import signal
import sys
from collections.abc import Iterator, Sequence

from crosssim import __version__
from crosssim.errors import (
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CrossSimError,
    StudyInterrupted,
    raise_if_interrupted,
)

#: Subcommand name -> (module, one-line help).  A module that is absent is not offered.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("crosssim.commands.run", "run the backends on a model and write traces and a plot"),
    "check": ("crosssim.commands.check",
              "compare backends and the analytic solution; gate on tolerance"),
    "report": ("crosssim.commands.report", "write an HTML/Markdown/JSON comparison report"),
    "converge": ("crosssim.commands.converge", "convergence study in dt and control-volume size"),
    "sweep": ("crosssim.commands.sweep", "parameter sweep: a full check at every grid point"),
    "cache": ("crosssim.commands.cache", "inspect or clear the results and mechanism caches"),
    "models": ("crosssim.commands.models", "list the built-in models and their parameters"),
    "sources": ("crosssim.commands.sources",
                "list the registered sources (simulators, references), kind and availability"),
    "schema": ("crosssim.commands.schema",
               "print the JSON Schema of the model file, the check document or report.json"),
}

__all__ = ["COMMANDS", "EXIT_CODES", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"crosssim {self.prog.split(' ', 1)[-1]}: error: {message}\n"
                  if " " in self.prog else f"crosssim: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every available subcommand.

    With ``command`` (a subcommand's name) only that subcommand's module is imported and its
    arguments added; the others are listed with their one-line help and parse nothing
    (what ``main`` uses: a command pays for its own arguments only, e.g. ``run`` does not
    import the study executors that ``sweep``'s ``--workers`` help names)."""
    parser = _Parser(prog="crosssim", description="Do two neuron simulators agree, by how "
                     "much, and with the mathematics?",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="exit codes:\n" + "\n".join(
                         f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()))
    parser.add_argument("--version", action="version", version=f"crosssim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.set_defaults(_subparsers={})
    for name, (module_name, help_text) in COMMANDS.items():
        if command is not None and name != command:
            if importlib.util.find_spec(module_name) is not None:  # imports nothing
                subparsers.add_parser(name, help=help_text, description=help_text)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_execute=module.execute)
        parser.get_default("_subparsers")[name] = sub
    return parser


def _command_name(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (its first word that is not an option), if it is one of
    :data:`COMMANDS`; None otherwise (then every subcommand's parser is built)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


#: Subcommands that run simulators and that draw a report (``check`` only with
#: ``--report``): their child processes (the simulators', the figure process) start before
#: anything heavy loads (building the parser of ``check`` imports the model layer).
#: (``run``'s plot and ``sweep``'s heatmap are Pillow's: they need no figure process.)
_STARTS_CHILDREN = frozenset({"run", "check"})
_REPORTS = frozenset({"check", "report"})


def _prestart(command: str | None, words: Sequence[str]) -> None:
    """Start the child processes ``command`` will use: those of the simulators
    ``--backend`` names (:func:`crosssim.commands.common.prestart_children`) and, for a
    report, the figure process (:func:`crosssim.report.figure_process.prestart`); nothing
    for help, another command, or arguments this early look cannot read."""
    if command not in _STARTS_CHILDREN | _REPORTS or "-h" in words or "--help" in words:
        return
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--backend", default="all")
    early.add_argument("--report", action="store_true")
    try:
        known, _ = early.parse_known_args(list(words[list(words).index(command) + 1:]))
    except SystemExit:  # a malformed --backend: the real parser says what is wrong
        return
    if command in _REPORTS and (known.report or command == "report"):
        from crosssim.report.figure_process import REPORT_IMPORTS, prestart

        prestart(REPORT_IMPORTS)
    if command in _STARTS_CHILDREN:
        from crosssim.commands.common import prestart_children

        prestart_children(known)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unknown option is reported by the subcommand it was given to
    (``crosssim check: error: unrecognized arguments: ...``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = parser.get_default("_subparsers").get(getattr(args, "command", None))
        (sub or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


class _Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so the same clean-up runs as for Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` while a command runs (main thread only):
    temporary files are removed and NEURON child processes killed, as for Ctrl-C."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError, AttributeError):  # not the main thread / no SIGTERM
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    """After a broken pipe (``crosssim check | head``) send what is left to /dev/null, so
    Python's exit-time flush does not print a second error."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _freeze_for_exit() -> None:
    """Make interpreter exit cheap once the command is done (the program only, never in a
    caller's process): collect the command's garbage now (its finalizers run as they would
    at exit), then freeze what is left, so the collections Python runs while it tears the
    modules down skip those objects (about 85,000 after a plot: 0.3-1 s of exit on a busy
    machine, 0.1 s idle).  atexit handlers, ``weakref.finalize`` callbacks, stream flushes
    and the deallocation of everything not in a reference cycle happen as before."""
    import gc

    gc.collect()
    gc.freeze()


def _interrupted(command: str, exc: KeyboardInterrupt) -> int:
    """Say in one line that ``command`` was interrupted (Ctrl-C) or terminated (SIGTERM);
    the exit code."""
    detail = exc.detail if isinstance(exc, StudyInterrupted) else ""
    cause = exc.original if isinstance(exc, StudyInterrupted) else exc
    done = ("; " + detail) if detail else "; files being written were discarded"
    if isinstance(cause, _Terminated):
        print(f"{command}: terminated (SIGTERM){done}", file=sys.stderr)
        return EXIT_TERMINATED
    print(f"{command}: interrupted{done}", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``crosssim`` console script; returns the exit code.

    Every failure is one line on stderr and an exit code (see :data:`EXIT_CODES`); a
    traceback is printed only for an internal error with ``CROSSSIM_DEBUG=1``.
    """
    command = "crosssim"
    with _sigterm_as_interrupt():
        try:
            words = sys.argv[1:] if argv is None else list(argv)
            name = _command_name(words)
            _prestart(name, words)
            parser = build_parser(name)
            try:
                args = _parse(parser, argv)
            except SystemExit as exc:  # --help, --version, or a usage error already printed
                return exc.code if isinstance(exc.code, int) else EXIT_USAGE
            if getattr(args, "_execute", None) is None:
                parser.print_help(sys.stderr)
                return EXIT_USAGE
            command = f"crosssim {args.command}"
            code = int(args._execute(args) or 0)
            if argv is None:  # the program itself: the command is done and its files are
                # complete, so a late Ctrl-C must not kill Python by the signal during
                # interpreter teardown (exit -2 after a success; about 0.1-0.3 s window)
                with contextlib.suppress(ValueError, OSError):  # not the main thread
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                _freeze_for_exit()
            return code
        except CrossSimError as exc:
            print(f"{command}: error: {exc.one_line()}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt as exc:  # one line, whatever was interrupted
            return _interrupted(command, exc)
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_OK
        except Exception as exc:
            try:
                raise_if_interrupted(exc)  # Ctrl-C / SIGTERM that arrived wrapped
            except KeyboardInterrupt as interrupt:
                return _interrupted(command, interrupt)
            if os.environ.get("CROSSSIM_DEBUG"):
                raise
            print(f"{command}: internal error: {type(exc).__name__}: "
                  f"{' '.join(str(exc).split())} (set CROSSSIM_DEBUG=1 for the traceback; "
                  "please report it)", file=sys.stderr)
            return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
