"""Figures drawn in a child process that imports matplotlib while the command works.

Importing matplotlib costs a command 0.5-0.9 s of one core and each report figure
0.6-1.0 s more, after the simulators are done.  A command that writes a report
(``check --report``, ``report``) calls :func:`start_figures` before its slow part (model
loading, simulators): the child imports matplotlib and the figure modules meanwhile on the
other core.  :meth:`Figures.submit` sends it one call (``"module:function"`` and its
arguments, pickled) and :meth:`Pending.result` waits for what it returned (a figure
function writes its PNG atomically and returns the path); the report's figures are shared
between the two processes.  (``run``'s plot and ``sweep``'s heatmap need no matplotlib:
:mod:`crosssim.report.raster`.)

The child is used only where it pays: more than one core, matplotlib not yet imported by
this process (a library caller or a test that drew before draws here at once) and
``CROSSSIM_FIGURE_PROCESS`` not ``0``.  Otherwise, and whenever the child cannot deliver (it
could not start, died, or an argument does not pickle), the call runs in this process, so
a caller never needs two code paths.  An exception the function raises in the child is
raised again here.  The child runs at a lower priority (:data:`_NICENESS`); the command
line starts it even before it builds a command's parser (:func:`prestart`).

``python -m crosssim.report.figure_process MODULE...``: the child.  It imports the modules,
then answers length-prefixed pickles on stdin, ``(target, args, kwargs)``, with
``("ok", value)`` or ``("error", exception)`` on its stdout (anything printed goes to
stderr; ``("here", None)`` for a call it could not unpickle), and ends at end of input.  It
reads its input as it comes, also while it imports: a large call never blocks the parent.
:meth:`Figures.busy` tells a caller with several figures whether the child is free for the
next one (the report draws in both processes that way).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any

__all__ = ["FIGURE_IMPORTS", "REPORT_IMPORTS", "Figures", "Pending", "prestart", "spawn_figures",
           "start_figures"]

#: How much lower the figure process's priority is than the command's (``os.nice``): while
#: the simulators run it imports on the CPU they leave; once the command waits for its
#: figure it has the CPU to itself.
_NICENESS = 10
#: Set to ``0`` to draw every figure in this process.
ENVIRONMENT_SWITCH = "CROSSSIM_FIGURE_PROCESS"
_HEADER = struct.Struct("<Q")
#: The child's reply to a call it could not read: this process makes it.
_HERE = "here"


def _call(target: str, args: tuple, kwargs: dict) -> Any:
    """``module:function`` called with ``args`` and ``kwargs``."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def _write(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_bytes(stream: IO[bytes]) -> bytes:
    """The next message, still pickled, or EOFError at the end of input."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def _read(stream: IO[bytes]) -> Any:
    """The next message, or EOFError at the end of input."""
    return pickle.loads(_read_bytes(stream))  # noqa: S301 - our own parent, our own pipe


class Pending:
    """One submitted call: :meth:`result` returns its value or raises its exception."""

    def __init__(self, figures: Figures, target: str, args: tuple, kwargs: dict,
                 *, sent: bool) -> None:
        self._figures, self._call = figures, (target, args, kwargs)
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None
        if not sent:  # in this process, at once
            self._run_here()

    def _run_here(self) -> None:
        try:
            self._value = _call(*self._call)
        except Exception as exc:  # noqa: BLE001 - raised again by result()
            self._error = exc
        self._done = True

    def _receive(self, reply: Any) -> None:
        status, value = reply
        if status == _HERE:
            self._run_here()
        elif status == "ok":
            self._value = value
        else:
            self._error = value
        self._done = True

    def result(self) -> Any:
        """What the function returned (its exception is raised here)."""
        if not self._done:
            self._figures._collect(self)
        if self._error is not None:
            raise self._error
        return self._value


class Figures:
    """Runs figure functions in the child process (if one was started) or here."""

    def __init__(self, process: subprocess.Popen | None) -> None:
        self._process = process
        self._queue: list[Pending] = []
        self._submitted = False

    @property
    def in_child(self) -> bool:
        """True while a child process draws."""
        return self._process is not None

    def submit(self, target: str, *args: Any, **kwargs: Any) -> Pending:
        """Send ``target(*args, **kwargs)`` (``"module:function"``) to the child, or run it
        here when there is none; calls run in the order submitted."""
        process = self._process
        if process is not None:
            try:
                assert process.stdin is not None
                self._submitted = True
                _write(process.stdin, (target, args, kwargs))  # pickled whole, then sent
            except (OSError, pickle.PicklingError, TypeError, AttributeError):
                self._abandon()
            else:
                pending = Pending(self, target, args, kwargs, sent=True)
                self._queue.append(pending)
                return pending
        return Pending(self, target, args, kwargs, sent=False)

    def busy(self) -> bool:
        """Whether the child still owes a reply (the replies it has sent are collected);
        False without a child."""
        while self._queue:
            stdout = self._process.stdout if self._process is not None else None
            if stdout is None:
                return False
            try:
                ready, _, _ = select.select([stdout], [], [], 0)
            except (OSError, ValueError):
                ready = [stdout]  # reading says what became of it
            if not ready:
                return True
            self._collect(self._queue[0])  # a reply (or the end of a dead child) is there
        return False

    def _collect(self, wanted: Pending) -> None:
        """Read the child's replies in order up to ``wanted``'s; if the child cannot
        deliver, the calls still owed run here."""
        while not wanted._done:
            pending = self._queue[0]
            try:
                assert self._process is not None and self._process.stdout is not None
                reply = _read(self._process.stdout)
            except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError):
                self._abandon()
                return
            self._queue.pop(0)
            pending._receive(reply)

    def _abandon(self) -> None:
        """The child cannot deliver: stop it and run what it still owes here."""
        owed, self._queue = self._queue, []
        self._stop(kill=True)
        for pending in owed:
            pending._run_here()

    def close(self) -> None:
        """Wait for every submitted call, then let the child go."""
        for pending in list(self._queue):
            if not pending._done:
                self._collect(pending)
        self._stop(kill=False)

    def _stop(self, *, kill: bool, interrupt: bool = False) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if interrupt and process.poll() is None:
            process.send_signal(signal.SIGINT)
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if kill:
            process.kill()
        try:
            process.wait(timeout=None if kill else 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Figures:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # interrupted or failed: the figures are not wanted.  A child that has work
            # stops as on Ctrl-C (removing the temporary file of a PNG half written); one
            # that was never asked anything (maybe still starting) is killed, silently
            self._queue = []
            self._stop(kill=not self._submitted, interrupt=self._submitted)


def _use_child() -> bool:
    if os.environ.get(ENVIRONMENT_SWITCH, "1") == "0" or "matplotlib" in sys.modules:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores > 1


#: What drawing a PNG imports: the figure module, matplotlib's Figure and its Agg canvas.
FIGURE_IMPORTS = ("crosssim.report.figures", "matplotlib.figure",
                  "matplotlib.backends.backend_agg")
#: What drawing a report's figures imports besides: their arguments are a check's outcome,
#: its model and its results, not plain data.
REPORT_IMPORTS = (*FIGURE_IMPORTS, "crosssim.outcome")


def start_figures(modules: Sequence[str] = FIGURE_IMPORTS) -> Figures:
    """A :class:`Figures` whose child (when it pays, see the module notes) starts importing
    matplotlib and ``modules`` now -- or the one :func:`prestart` started -- otherwise one
    that draws in this process."""
    if _SPARE:
        return _SPARE.pop()
    return spawn_figures(modules) if _use_child() else Figures(None)


def prestart(modules: Sequence[str] = FIGURE_IMPORTS) -> None:
    """Start the figure process now, before the command loads anything heavy; the next
    :func:`start_figures` takes it.  Unused, it is stopped at exit."""
    if _SPARE or not _use_child():
        return
    _SPARE.append(spawn_figures(modules))
    if not _ATEXIT:
        _ATEXIT.append(atexit.register(_discard_spare))


def _discard_spare() -> None:
    while _SPARE:
        _SPARE.pop()._stop(kill=True)


#: The figure process :func:`prestart` started, until :func:`start_figures` takes it.
_SPARE: list[Figures] = []
_ATEXIT: list = []


def spawn_figures(modules: Sequence[str] = FIGURE_IMPORTS) -> Figures:
    """A :class:`Figures` with a child process, whatever this process has imported (one
    that draws here if the child cannot start)."""
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, *modules], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=None)
    except OSError:
        return Figures(None)
    return Figures(process)


def main(argv: Sequence[str] | None = None) -> int:
    """The child: import ``argv``'s modules, then answer calls until end of input."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not reach the pipe
    with contextlib.suppress(AttributeError, OSError):  # the simulators come first: this
        os.nice(_NICENESS)  # process imports on what CPU they leave, then draws
    # the calls are read as they come, so the parent never waits on a full pipe while
    # this process is still importing
    inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(sys.stdin.buffer, inbox), daemon=True).start()
    try:
        for module in sys.argv[1:] if argv is None else argv:
            importlib.import_module(module)
        _serve(inbox, replies)
    except KeyboardInterrupt:  # the parent stops, or Ctrl-C reached the process group
        return 130
    except BrokenPipeError:  # the parent is gone: nobody wants the figures
        return 1
    return 0


def _receive(requests: IO[bytes], inbox: queue.SimpleQueue[bytes | None]) -> None:
    """Move the pickled calls from ``requests`` to ``inbox``; None at the end of input."""
    try:
        while True:
            inbox.put(_read_bytes(requests))
    except (EOFError, OSError, ValueError):
        inbox.put(None)


def _serve(inbox: queue.SimpleQueue[bytes | None], replies: IO[bytes]) -> None:
    """Answer the calls in ``inbox`` until its end."""
    while (data := inbox.get()) is not None:
        try:
            target, args, kwargs = pickle.loads(data)  # noqa: S301 - our parent, our pipe
        except Exception:  # noqa: BLE001 - e.g. a class this process cannot import
            _write(replies, (_HERE, None))
            continue
        try:
            reply = ("ok", _call(target, args, kwargs))
        except Exception as exc:  # noqa: BLE001 - the parent raises it
            reply = ("error", exc)
        try:
            _write(replies, reply)
        except (pickle.PicklingError, TypeError, AttributeError):
            _write(replies, ("error", RuntimeError(f"{target}: {reply[1]!r}")))


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: the replies are written
