"""Every error crosssim raises on purpose.

Each class derives from :class:`CrossSimError` and from the matching built-in, so callers
can catch either.  The command line maps them to exit codes (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

from typing import Any

#: Exit codes of the command line, shared by every subcommand.
EXIT_OK = 0
EXIT_DEVIATION = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3


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

    def with_source(self, source: str) -> "InvalidModelError":
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


class MechanismBuildError(BackendError):
    """The NMODL mechanisms could not be compiled (no compiler, no ``nrnivmodl``)."""


class ToleranceExceededError(CrossSimError, AssertionError):
    """A comparison found a deviation beyond its tolerance; carries the measured numbers."""

    exit_code = EXIT_DEVIATION
