"""Every error crosssim raises on purpose.

Each class derives from :class:`CrossSimError` and from the matching built-in, so callers
can catch either.  The command line maps them to exit codes (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

from typing import Any

#: Exit codes of the command line, shared by every subcommand.
EXIT_OK = 0
#: A comparison exceeded its tolerance.
EXIT_DEVIATION = 1
#: Invalid model, bad option or argument, output path unusable, model too large.
EXIT_USAGE = 2
#: A backend or reference is missing, failed to build, crashed or produced NaN/inf.
EXIT_BACKEND = 3
#: A bug in crosssim (an exception it did not expect); the message asks for a report.
EXIT_INTERNAL = 4
#: Interrupted by Ctrl-C (SIGINT) or SIGTERM (128 + signal number, as shells report it).
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

#: Every exit code and what it means (shown by ``crosssim --help``).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success: every gated comparison within tolerance",
    EXIT_DEVIATION: "a deviation exceeds its tolerance",
    EXIT_USAGE: "invalid model, option, output path or size: refused, nothing written",
    EXIT_BACKEND: "a backend or reference is missing or failed (crash, NaN/inf, no compiler)",
    EXIT_INTERNAL: "internal error in crosssim (please report it)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C / SIGINT); no half-written file is left",
    EXIT_TERMINATED: "terminated (SIGTERM); no half-written file is left",
}


class CrossSimError(Exception):
    """Base class of all crosssim errors; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_USAGE

    def one_line(self) -> str:
        """The message as one line, as printed on stderr."""
        return " ".join(str(self).split())


class InvalidModelError(CrossSimError, ValueError):
    """A model (file, dict or override) breaks a rule of the model format.

    ``source`` names the file (or ``<built-in NAME>``, ``<dict>``), ``field`` the dotted
    path of the offending entry, ``allowed`` what would have been accepted.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        field: str | None = None,
        value: Any = None,
        allowed: str | None = None,
    ) -> None:
        self.source = source
        self.field = field
        self.value = value
        self.allowed = allowed
        self.message = message
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts = []
        if self.source:
            parts.append(str(self.source))
        if self.field:
            parts.append(self.field)
        message = self.message
        if self.allowed and self.allowed not in message:
            message = f"{message}; allowed: {self.allowed}"
        return ": ".join(parts + [message]) if parts else message

    def with_source(self, source: str) -> InvalidModelError:
        """A copy of this error that names ``source`` (a file path) as its origin."""
        return InvalidModelError(
            self.message, source=source, field=self.field, value=self.value, allowed=self.allowed
        )


class UsageError(CrossSimError, ValueError):
    """A command-line argument or option is wrong (bad ``--set`` path, unknown model name)."""


class ResourceLimitError(CrossSimError, MemoryError):
    """A model would need more memory or time than allowed; raised before allocating."""


class BackendError(CrossSimError, RuntimeError):
    """A backend could not run: not installed, failed to build, crashed or produced NaN."""

    exit_code = EXIT_BACKEND

    def __init__(self, backend: str, message: str) -> None:
        self.backend = backend
        self.message = message
        super().__init__(f"{backend}: {message}")


class BackendUnavailableError(BackendError, ImportError):
    """A backend's simulator package is not importable, or the backend name is unknown."""


class SourceNotApplicableError(BackendError):
    """A reference cannot describe this model (e.g. the discrete Crank-Nicolson recurrence
    when no simulator steps it, or an active membrane for a passive-cable solution): the
    source is skipped with this reason, never counted as a failure."""


class MechanismBuildError(BackendError):
    """The NMODL mechanisms could not be compiled (no compiler, no ``nrnivmodl``)."""


class MechanismSourceError(MechanismBuildError, ValueError):
    """A user's MOD file is missing or refused by a simulator's NMODL compiler (NEURON's
    ``nocmodl``, Arbor's ``modcc``).

    ``path`` names the file, ``reason`` is the compiler's own message (one line).  Exit code 2:
    the input is at fault, not the installation.
    """

    exit_code = EXIT_USAGE

    def __init__(self, backend: str, message: str, *, path: str | None = None,
                 reason: str | None = None) -> None:
        self.path = path
        self.reason = reason
        super().__init__(backend, message)


class AlignmentError(CrossSimError, ValueError):
    """Two traces cannot be put on one time grid (grids differ, spans do not cover).

    Also importable as ``crosssim.compare.AlignmentError``.
    """


class TraceFileError(CrossSimError, ValueError):
    """A trace file (long-form table, descriptor or column file) cannot be read.

    ``path`` names the file, ``where`` the place in it (``line 7``, ``row 7`` of a Parquet
    table, ``line 4 (time_unit)`` of a descriptor), ``line`` the 1-based line number when there
    is one, ``value`` the offending text and ``allowed`` what would have been accepted.
    The message is one line: ``PATH: WHERE: what is wrong; allowed: ...``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        where: str | None = None,
        line: int | None = None,
        value: Any = None,
        allowed: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.where = where if where is not None else (f"line {line}" if line else None)
        self.value = value
        self.allowed = allowed
        self.message = message
        parts = [str(path)] + ([self.where] if self.where else [])
        if allowed and allowed not in message:
            message = f"{message}; allowed: {allowed}"
        super().__init__(": ".join([*parts, message]))


class ToleranceExceededError(CrossSimError, AssertionError):
    """A comparison found a deviation beyond its tolerance; carries the measured numbers."""

    exit_code = EXIT_DEVIATION


def raise_if_interrupted(exc: BaseException) -> None:
    """Re-raise Ctrl-C if ``exc`` stems from one.

    A KeyboardInterrupt that arrives while a C extension initialises comes back wrapped
    (pybind11 turns it into ``ImportError: initialization failed``, pydantic building a
    class into ``RuntimeError: Error calling __set_name__``); treating that as a failure
    would carry on, or report an internal error, instead of stopping.  The interrupt raised
    is of the original's type (SIGTERM stays SIGTERM).
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            raise type(cause)() from exc
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a study, with what the user should know (``detail``: the
    finished runs are kept in the cache); the command line prints one line with it."""

    def __init__(self, original: BaseException, detail: str) -> None:
        super().__init__(detail)
        self.original = original
        self.detail = detail
