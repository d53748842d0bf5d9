"""Progress on stderr while sources run: the lines of ``check``/``run``/``report`` and the
bar (or lines) of the studies.

:class:`Progress` writes ``[1/2] arbor: running ...`` then ``... done in 0.41 s`` for each
source of one check (driven by :func:`crosssim.check.run_sources`).  :class:`StudyProgress`
counts the tasks of :func:`crosssim.study.executors.run_tasks`: a tqdm bar with ETA on a
terminal, plain ``[k/N] label: ...`` lines otherwise.  tqdm is imported only when a bar is
shown.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, TextIO

__all__ = ["Progress", "StudyProgress"]


class Progress:
    """Progress lines on stderr: ``[1/2] arbor: running ...`` then ``done in 0.41 s``."""

    def __init__(self, total: int = 0, *, quiet: bool = False, stream=None) -> None:
        self.total = total
        self.count = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._started = 0.0

    def begin(self, count: int) -> None:
        """``count`` more steps are coming (called by :func:`crosssim.check.run_sources`);
        a total given up front that already covers them is kept."""
        self.total = max(self.total, self.count + count)

    def start(self, label: str) -> None:
        self.count += 1
        self._started = time.perf_counter()
        self._line(f"[{self.count}/{self.total}] {label}: running ...")

    def finish(self, label: str, outcome: str = "done") -> None:
        elapsed = time.perf_counter() - self._started
        self._line(f"[{self.count}/{self.total}] {label}: {outcome} in {elapsed:.2f} s")

    def _line(self, text: str) -> None:
        """One write per line: a Ctrl-C can then never cut a line from its newline, so the
        'interrupted' message always starts a line of its own."""
        if not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()


class StudyProgress:
    """A tqdm bar with ETA on a terminal, plain ``[k/N] label: ...`` lines otherwise.

    ``total`` may be 0 until :meth:`start` (called by
    :func:`crosssim.study.executors.run_tasks`) sets it.
    """

    def __init__(self, total: int = 0, *, description: str = "runs",
                 stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.started = time.perf_counter()
        self._bar = None

    def start(self, total: int) -> None:
        """Begin counting ``total`` tasks (opens the bar on a terminal)."""
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        if self.enabled and total > 0 and isatty is not None and isatty():
            from tqdm import tqdm

            try:
                size = os.get_terminal_size(self.stream.fileno())
            except (AttributeError, OSError, ValueError):
                size = os.terminal_size((0, 0))
            # A terminal that reports no size (some ptys) would get an invisible bar.
            sizing: dict[str, Any] = ({"dynamic_ncols": True} if min(size) > 0
                                      else {"ncols": 80, "nrows": 24})
            self._bar = tqdm(total=total, desc=self.description, file=self.stream,
                             unit="run", leave=True, **sizing)

    def skip(self, count: int, reason: str = "from the cache") -> None:
        """Count ``count`` tasks done without running them."""
        if count <= 0:
            return
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
            self._bar.set_postfix_str(f"{count} {reason}", refresh=True)
        elif self.enabled:
            print(f"[{self.done}/{self.total}] {count} {reason}", file=self.stream, flush=True)

    def update(self, label: str, outcome: str) -> None:
        """One task finished with ``outcome`` (e.g. ``done in 0.41 s``)."""
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
            if outcome.startswith("FAILED"):
                self._bar.write(f"{label}: {outcome}", file=self.stream)
            return
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        remaining = self.total - self.done
        eta = ""
        if remaining and self.done:
            eta = f", ETA {_seconds(elapsed / self.done * remaining)}"
        print(f"[{self.done}/{self.total}] {label}: {outcome}{eta}", file=self.stream,
              flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "?"
    if value < 60:
        return f"{value:.0f} s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else \
        f"{minutes // 60} h {minutes % 60:02d} min"
