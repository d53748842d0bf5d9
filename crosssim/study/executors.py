"""Run many simulations, each in its own process: a local pool or a Dask cluster.

The unit of work is a :class:`SourceTask`: one source (``arbor``, ``neuron``, ``analytic``,
``lumped``) run on one model.  :func:`run_tasks` answers what it can from the results cache,
sends the rest to an executor, stores every new result in the cache as soon as it arrives
(so an interrupted study resumes where it stopped) and shows progress.

Executors (both yield replies as they complete):

* :class:`LocalExecutor` (``--workers N``, default every core): N threads, each starting one
  fresh child process per task (``multiprocessing`` ``forkserver`` with crosssim's light
  modules preloaded, so a child starts in milliseconds) and waiting for its reply.  A child
  that dies (segfault, SIGKILL, out of memory) fails that task only, with the signal as
  the reason.  Each child leads its own process group: a timeout (``--timeout``) or Ctrl-C
  kills the group, so nothing it started (NEURON's own child, a compiler) outlives it.
  ``concurrent.futures.ProcessPoolExecutor`` is not used: one dead worker breaks the whole
  pool (every pending future fails with ``BrokenProcessPool``).  Scripts that call this
  must guard their entry point with ``if __name__ == "__main__":`` (as for multiprocessing).
* :class:`DaskExecutor` (``--scheduler ADDRESS``): submits each task to an existing
  ``dask.distributed`` scheduler.  On the worker the task again runs in a fresh process (a
  ``python -m crosssim.study.executors`` subprocess, since Dask workers are daemonic
  processes that ``multiprocessing`` forbids to have children).

A child process reports a failure as a reason string; it never raises into the executor.

Test hook: ``CROSSSIM_TEST_KILL_WORKER=<source>`` (read by the submitting process) makes the
child running that source kill itself with SIGKILL, as a killed worker would.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from crosssim.errors import BackendError, CrossSimError, UsageError
from crosssim.files import atomic_open, atomic_write_text, json_ready

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.result import RunResult
    from crosssim.study.cache import ResultsCache

__all__ = [
    "KILL_HOOK",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "SourceTask",
    "TaskOutcome",
    "TaskRun",
    "default_workers",
    "make_executor",
    "run_isolated",
    "run_tasks",
]

#: Environment variable of the killed-worker test hook (value: a source name).
KILL_HOOK = "CROSSSIM_TEST_KILL_WORKER"
#: Modules the fork server imports once so that children start without importing them
#: (never a simulator: arbor and neuron are imported only inside the task's own process).
_PRELOAD = ["crosssim.study.executors", "crosssim.check", "crosssim.backends.base",
            "crosssim.backends.neuron", "crosssim.analytic", "scipy.sparse", "scipy.sparse.linalg"]


# Tasks and outcomes --------------------------------------------------------------------------


@dataclass
class SourceTask:
    """Run ``source`` on ``model``; ``label`` names it in progress lines and errors."""

    source: str
    model: Model
    label: str = ""
    _key: str | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """The results-cache key of this task (see :func:`crosssim.study.cache.cache_key`)."""
        if self._key is None:
            from crosssim.study.cache import cache_key

            self._key = cache_key(self.model, self.source)
        return self._key

    def payload(self, *, environment: bool) -> dict[str, Any]:
        """What a child process needs (JSON-ready); ``environment`` ships os.environ and cwd."""
        payload: dict[str, Any] = {"source": self.source, "model": self.model.to_dict(),
                                   "label": self.label}
        if os.environ.get(KILL_HOOK) == self.source:
            payload["kill"] = True
        if environment:
            payload["environ"] = dict(os.environ)
            payload["cwd"] = os.getcwd()
        return payload


@dataclass
class TaskOutcome:
    """What became of one task: a result or the reason it failed, and where it came from."""

    task: SourceTask
    result: RunResult | None
    error: str | None = None
    cached: bool = False
    process_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class TaskRun:
    """The outcomes of :func:`run_tasks` in task order, with counts."""

    outcomes: list[TaskOutcome]
    computed: int
    cached: int
    failed: int
    wall_time_s: float

    def by_key(self) -> dict[str, TaskOutcome]:
        return {outcome.task.key: outcome for outcome in self.outcomes}


# The child side ------------------------------------------------------------------------------


def execute_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one task in this process; a reply dict that never raises (``ok`` False + reason)."""
    started = time.perf_counter()
    source = payload["source"]
    try:
        from crosssim.model import model_from_dict
        from crosssim.sources import run_source

        model = model_from_dict(payload["model"], source=f"<task {payload.get('label', '')}>")
        result = run_source(source, model)
        result.check_finite()
    except BackendError as exc:
        return {"ok": False, "error": exc.message, "process_s": time.perf_counter() - started}
    except CrossSimError as exc:
        return {"ok": False, "error": exc.one_line(),
                "process_s": time.perf_counter() - started}
    except Exception as exc:  # noqa: BLE001 - a failing task is a recorded reason
        return {"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                "process_s": time.perf_counter() - started}
    return {
        "ok": True,
        "backend": result.backend,
        "probes": list(result.probes),
        "times_ms": np.asarray(result.times_ms, dtype=float),
        "values_mV": np.asarray(result.values_mV, dtype=float),
        "wall_time_s": float(result.wall_time_s),
        "info": json_ready(result.info),
        "task_s": time.perf_counter() - started,
    }


def _prepare_child(payload: dict[str, Any]) -> None:
    """Adopt the submitting process's environment and folder and the task's temporary
    folder (:func:`_task_scratch`); apply the kill test hook."""
    if "environ" in payload:
        os.environ.clear()
        os.environ.update(payload["environ"])
    if "tmpdir" in payload:  # what this child and its own children write goes in there
        os.environ["TMPDIR"] = tempfile.tempdir = payload["tmpdir"]
    if "cwd" in payload:
        with contextlib.suppress(OSError):
            os.chdir(payload["cwd"])
    if payload.get("kill"):
        os.kill(os.getpid(), signal.SIGKILL)


def _multiprocessing_child(payload: dict[str, Any], connection) -> None:
    """Target of a multiprocessing child: run the task, send the reply, exit.

    The child leads its own process group, so stopping it also stops what it started (the
    NEURON backend's own child process); the parent stops it on Ctrl-C or a timeout.
    """
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(OSError):
        os.dup2(2, 1)  # whatever a simulator prints goes to stderr, never into stdout
    _prepare_child(payload)
    reply = execute_payload(payload)
    connection.send(reply)
    connection.close()


def _subprocess_main(argv: Sequence[str]) -> int:
    """``python -m crosssim.study.executors REQUEST.json REPLY_FOLDER``: one task."""
    request_path, reply_folder = Path(argv[0]), Path(argv[1])
    payload = json.loads(request_path.read_text(encoding="utf-8"))
    _prepare_child(payload)
    reply = execute_payload(payload)
    arrays = {name: reply.pop(name) for name in ("times_ms", "values_mV") if name in reply}
    if arrays:
        with atomic_open(reply_folder / "reply.npz", "wb", encoding=None) as handle:
            np.savez(handle, **arrays)
    # written last and atomically: its presence means the whole reply is there
    atomic_write_text(reply_folder / "reply.json", json.dumps(reply))
    return 0


# Isolation: one fresh process per task ----------------------------------------------------------

_CONTEXT_LOCK = threading.Lock()
_CONTEXT: Any = None


def _context():
    """The multiprocessing context: forkserver (light modules preloaded), else spawn."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            context: Any
            if "forkserver" in multiprocessing.get_all_start_methods():
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(_PRELOAD)
            else:  # pragma: no cover - macOS/Windows
                context = multiprocessing.get_context("spawn")
            _CONTEXT = context
        return _CONTEXT


def _may_have_children() -> bool:
    """False inside a daemonic process (a Dask worker), where multiprocessing forbids children."""
    return not multiprocessing.current_process().daemon


def _signal_reason(code: int | None) -> str:
    if code is None:
        return "worker process did not finish"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker process killed by {name} (signal {-code})"
    return f"worker process exited with code {code} without a result"


def _kill_group(child: Any) -> None:
    """SIGKILL ``child``'s process group (the child and what it started), else the child."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError, TypeError):
        # the child has not made its group yet (or is gone): kill the process itself
        with contextlib.suppress(Exception):
            child.kill()


class _Children:
    """The live child processes of this process, so an interrupt can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[Any] = set()
        self.cancelled = threading.Event()

    def add(self, child: Any) -> None:
        with self._lock:
            self._live.add(child)

    def discard(self, child: Any) -> None:
        with self._lock:
            self._live.discard(child)

    def terminate_all(self) -> None:
        self.cancelled.set()
        with self._lock:
            live = list(self._live)
        for child in live:
            _kill_group(child)


_CHILDREN = _Children()


@contextlib.contextmanager
def _task_scratch(payload: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A temporary folder for one task, owned by this process: the child works in it
    (``TMPDIR``, so NEURON's request and result files go there too) and it is removed
    after the task, also when a timeout or a crash killed the child before it could clean
    up.  Yields the folder and the payload that names it."""
    with tempfile.TemporaryDirectory(prefix="crosssim-task-") as scratch:
        folder = Path(scratch)
        work = folder / "tmp"
        work.mkdir()
        yield folder, {**payload, "tmpdir": str(work)}


def _run_multiprocessing(payload: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    with _task_scratch(payload) as (_, payload):
        return _run_in_forked_child(payload, timeout_s)


def _run_in_forked_child(payload: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_multiprocessing_child, args=(payload, sender),
                              name=f"crosssim-{payload['source']}", daemon=False)
    if _CHILDREN.cancelled.is_set():
        return {"ok": False, "error": "cancelled"}
    started = time.perf_counter()
    process.start()
    sender.close()
    _CHILDREN.add(process)
    if _CHILDREN.cancelled.is_set():
        _kill_group(process)
    try:
        ready = multiprocessing.connection.wait([receiver, process.sentinel], timeout_s)
        reply = None
        if receiver in ready or receiver.poll():
            with contextlib.suppress(EOFError, OSError):
                reply = receiver.recv()
        if reply is None and not ready:
            _kill_group(process)
            process.join()
            return {"ok": False, "error": f"timed out after {timeout_s:g} s and was killed"}
        process.join()
        if reply is None:
            return {"ok": False, "error": _signal_reason(process.exitcode)}
        reply["process_s"] = time.perf_counter() - started
        return reply
    finally:
        _CHILDREN.discard(process)
        receiver.close()
        if process.is_alive():
            _kill_group(process)
            process.join()
        with contextlib.suppress(ValueError):
            process.close()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _run_subprocess(payload: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    started = time.perf_counter()
    with _task_scratch(payload) as (folder, payload):
        (folder / "request.json").write_text(json.dumps(payload), encoding="utf-8")
        command = [sys.executable, "-m", "crosssim.study.executors",
                   str(folder / "request.json"), str(folder)]
        process = subprocess.Popen(command, env=_child_env(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True)
        _CHILDREN.add(process)
        try:
            try:
                _, stderr = process.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                process.communicate()
                return {"ok": False, "error": f"timed out after {timeout_s:g} s and was killed"}
        finally:
            _CHILDREN.discard(process)
        reply_path = folder / "reply.json"
        if not reply_path.is_file():
            last = (stderr or b"").decode("utf-8", "replace").strip().splitlines()
            detail = f"; last stderr line: {last[-1]}" if last else ""
            return {"ok": False, "error": _signal_reason(process.returncode) + detail}
        reply = json.loads(reply_path.read_text(encoding="utf-8"))
        if (folder / "reply.npz").is_file():
            with np.load(folder / "reply.npz", allow_pickle=False) as data:
                reply["times_ms"] = np.array(data["times_ms"])
                reply["values_mV"] = np.array(data["values_mV"])
        reply["process_s"] = time.perf_counter() - started
        return reply


def run_isolated(payload: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
    """Run one task payload in a fresh child process and return its reply (never raises for
    a failing task: the reply has ``ok`` False and an ``error`` reason)."""
    if _may_have_children():
        return _run_multiprocessing(payload, timeout_s)
    return _run_subprocess(payload, timeout_s)


# Executors -----------------------------------------------------------------------------------


def default_workers() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class TaskProgress(Protocol):
    """What :func:`run_tasks` reports progress to (``crosssim.report.progress.StudyProgress``
    draws it on a terminal)."""

    def start(self, total: int) -> None:  # pragma: no cover
        ...

    def skip(self, count: int, reason: str = "from the cache") -> None:  # pragma: no cover
        ...

    def update(self, label: str, outcome: str) -> None:  # pragma: no cover
        ...


class Executor(Protocol):
    """Runs task payloads, each in its own process; yields ``(index, reply)`` as they finish."""

    workers: int
    description: str

    def map_unordered(self, payloads: Sequence[dict[str, Any]]) -> Iterator[tuple[int, dict]]:
        ...  # pragma: no cover

    def close(self) -> None:
        ...  # pragma: no cover

    @property
    def ships_environment(self) -> bool:
        ...  # pragma: no cover


class LocalExecutor:
    """``workers`` tasks at a time on this machine, each in a fresh child process."""

    ships_environment = True

    def __init__(self, workers: int | None = None, *, timeout_s: float | None = None) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be >= 1 (got {workers})")
        self.workers = workers or default_workers()
        self.timeout_s = timeout_s
        self.description = f"local pool, {self.workers} worker process" + (
            "es" if self.workers != 1 else "")

    def map_unordered(self, payloads: Sequence[dict[str, Any]]) -> Iterator[tuple[int, dict]]:
        if not payloads:
            return
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers,
                                                     thread_name_prefix="crosssim-task")
        futures = {pool.submit(run_isolated, payload, self.timeout_s): index
                   for index, payload in enumerate(payloads)}
        finished = False
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
            finished = True
        finally:
            if not finished:  # interrupted (Ctrl-C) or the consumer stopped early
                for future in futures:
                    future.cancel()
                _CHILDREN.terminate_all()
            pool.shutdown(wait=True, cancel_futures=True)
            _CHILDREN.cancelled.clear()

    def close(self) -> None:
        pass


class DaskExecutor:
    """Submit tasks to the ``dask.distributed`` scheduler at ``address``; each task runs in
    a fresh process on its worker."""

    ships_environment = False

    def __init__(self, address: str, *, timeout_s: float | None = None,
                 connect_timeout_s: float = 20.0) -> None:
        try:
            from distributed import Client
        except ImportError as exc:
            raise UsageError("--scheduler needs dask.distributed: "
                             "pip install 'crosssim[dask]'") from exc
        try:
            self.client = Client(address, timeout=connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"--scheduler {address}: cannot connect to a Dask scheduler "
                             f"({' '.join(str(exc).split())})") from None
        self.address = address
        self.timeout_s = timeout_s
        threads = sum(self.client.nthreads().values())
        self.workers = max(1, threads)
        self.description = f"Dask scheduler {address}, {threads} worker thread" + (
            "s" if threads != 1 else "")

    def map_unordered(self, payloads: Sequence[dict[str, Any]]) -> Iterator[tuple[int, dict]]:
        if not payloads:
            return
        from distributed import as_completed

        futures = [self.client.submit(run_isolated, payload, self.timeout_s, pure=False,
                                      key=f"crosssim-{payload['source']}-{index}-"
                                          f"{os.urandom(4).hex()}")
                   for index, payload in enumerate(payloads)]
        index_of = {future.key: index for index, future in enumerate(futures)}
        finished = False
        try:
            for future in as_completed(futures, loop=self.client.loop):
                index = index_of[future.key]
                try:
                    reply = future.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker, lost connection
                    reply = {"ok": False, "error": f"Dask task failed: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())}"}
                yield index, reply
            finished = True
        finally:
            if not finished:
                with contextlib.suppress(Exception):
                    self.client.cancel(futures)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def make_executor(workers: int | None = None, scheduler: str | None = None,
                  *, timeout_s: float | None = None) -> LocalExecutor | DaskExecutor:
    """A Dask executor when ``scheduler`` is given, else a local pool of ``workers``."""
    if scheduler:
        return DaskExecutor(scheduler, timeout_s=timeout_s)
    return LocalExecutor(workers, timeout_s=timeout_s)


# Running a list of tasks --------------------------------------------------------------------


def _result_from_reply(reply: dict[str, Any]) -> RunResult:
    from crosssim.result import RunResult

    return RunResult(backend=reply["backend"], probes=list(reply["probes"]),
                     times_ms=reply["times_ms"], values_mV=reply["values_mV"],
                     wall_time_s=float(reply.get("wall_time_s", 0.0)),
                     info=dict(reply.get("info") or {}))


def run_tasks(tasks: Sequence[SourceTask], *, executor: Executor | None = None,
              cache: ResultsCache | None = None, progress: TaskProgress | None = None,
              on_outcome: Callable[[TaskOutcome], None] | None = None) -> TaskRun:
    """Run every task (equal tasks once), reading and filling ``cache``.

    Cached results are used without running anything; each new result is stored the moment
    it arrives, so an interrupted run keeps everything finished so far.  Failures are
    recorded (``TaskOutcome.error``), never cached, and never stop the other tasks.
    ``on_outcome`` is called in this process for every computed outcome as it arrives.
    """
    started = time.perf_counter()
    unique: dict[str, SourceTask] = {}
    for task in tasks:
        unique.setdefault(task.key, task)
    done: dict[str, TaskOutcome] = {}
    if cache is not None and cache.enabled:
        for key, task in unique.items():
            result = cache.get(key)
            if result is not None:
                done[key] = TaskOutcome(task=task, result=result, cached=True)
    pending = [task for key, task in unique.items() if key not in done]
    if progress is not None:
        progress.start(len(unique))
        progress.skip(len(done))
    failed = 0

    def _record(index: int, reply: dict[str, Any]) -> None:
        nonlocal failed
        task = pending[index]
        if reply.get("ok"):
            result = _result_from_reply(reply)
            outcome = TaskOutcome(task=task, result=result,
                                  process_s=float(reply.get("process_s", 0.0)))
            if cache is not None:
                cache.put(task.key, result, document={"source": task.source,
                                                      "model": task.model.name,
                                                      "label": task.label})
            text = f"done in {outcome.process_s:.2f} s"
        else:
            outcome = TaskOutcome(task=task, result=None,
                                  error=str(reply.get("error") or "unknown failure"),
                                  process_s=float(reply.get("process_s", 0.0)))
            failed += 1
            text = f"FAILED ({outcome.error})"
        done[task.key] = outcome
        if progress is not None:
            progress.update(task.label or task.source, text)
        if on_outcome is not None:
            on_outcome(outcome)

    if pending:
        own_executor = executor is None
        executor = executor or LocalExecutor()
        try:
            payloads = [task.payload(environment=executor.ships_environment)
                        for task in pending]
            replies = executor.map_unordered(payloads)
            with contextlib.closing(replies) as stream:  # type: ignore[type-var]
                for index, reply in stream:
                    _record(index, reply)
        finally:
            if own_executor:
                executor.close()
    outcomes = [done[task.key] if done[task.key].task is task else
                TaskOutcome(task=task, result=done[task.key].result,
                            error=done[task.key].error, cached=done[task.key].cached,
                            process_s=done[task.key].process_s)
                for task in tasks]
    return TaskRun(outcomes=outcomes, computed=len(pending), cached=len(unique) - len(pending),
                   failed=failed, wall_time_s=time.perf_counter() - started)


if __name__ == "__main__":  # pragma: no cover - exercised through _run_subprocess
    sys.exit(_subprocess_main(sys.argv[1:]))
