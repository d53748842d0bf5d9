"""NEURON backend: every run in a fresh child process.

:func:`run` compiles the MOD files if needed (:mod:`.mechanisms`, in this process, so a
missing compiler is a clear error), then starts ``python -m crosssim.backends.neuron.worker``
with the resolved model as JSON and reads the samples back from an ``.npz`` file (never a
pickle).  A child that crashes (signal), times out or raises becomes a
:class:`~crosssim.errors.BackendError` carrying the child's last stderr line.

Semantics match the Arbor backend (see :mod:`.simulator`): one section per cell with
``nseg = model.cvs(cell)``; point sources act on the CV containing x (Arbor's assignment,
boundary sites go distal); probe = linear interpolation between CV centres; clamp steps
follow Arbor's ``delay <= t_step < delay + duration``; ``secondorder = 0`` (implicit Euler)
by default, like Arbor.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crosssim.backends.base import RunResult, nominal_grid
from crosssim.backends.neuron.mechanisms import ensure_mechanisms
from crosssim.errors import BackendError

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = ["run"]

_BACKEND = "neuron"


def _last_line(stderr: bytes | str | None) -> str:
    if not stderr:
        return ""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _with_stderr(message: str, stderr: bytes | str | None) -> str:
    last = _last_line(stderr)
    return f"{message}; last stderr line: {last}" if last else message


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = Path(__file__).resolve().parents[3]
    if package_root.name not in ("site-packages", "dist-packages"):
        # a source checkout: make sure the child imports this very crosssim
        env["PYTHONPATH"] = os.pathsep.join(
            [str(package_root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    return env


def _cvs_info(model: Model) -> dict | list[int]:
    counts = [model.cvs(cell) for cell in model.cells]
    if len(counts) <= 20:
        return counts
    return {"cells": len(counts), "min": min(counts), "max": max(counts), "total": sum(counts)}


def run(model: Model, *, secondorder: int | None = None, nthread: int | None = None,
        timeout_s: float | None = None) -> RunResult:
    """Run ``model`` on NEURON in a fresh child process; voltages in mV on the model grid.

    ``secondorder``, ``nthread`` and ``timeout_s`` default to ``[backends.neuron]`` of the
    model.  ``wall_time_s`` is build + run inside the child; ``info["process_s"]`` is the
    whole call including process start, imports and mechanism loading
    (``info["overhead_s"]``).
    """
    options = model.backends.neuron
    secondorder = options.secondorder if secondorder is None else secondorder
    nthread = options.nthread if nthread is None else nthread
    timeout_s = options.timeout_s if timeout_s is None else timeout_s
    if secondorder not in (0, 1, 2):
        raise BackendError(_BACKEND, f"secondorder must be 0, 1 or 2 (got {secondorder!r})")
    if int(nthread) < 1:
        raise BackendError(_BACKEND, f"nthread must be >= 1 (got {nthread!r})")
    if options.mpi_ranks != 1:
        raise BackendError(_BACKEND, f"mpi_ranks = {options.mpi_ranks} is not supported by "
                           "this adapter yet; use mpi_ranks = 1")

    started = time.perf_counter()
    mechanisms = ensure_mechanisms()
    compile_s = time.perf_counter() - started
    request = {
        "model": model.to_dict(resolved=True),
        "secondorder": int(secondorder),
        "nthread": int(nthread),
        "mechanisms": str(mechanisms),
    }
    with tempfile.TemporaryDirectory(prefix="crosssim-neuron-") as scratch:
        request_path = Path(scratch) / "request.json"
        result_path = Path(scratch) / "result.npz"
        request["spawned_at"] = time.time()
        request_path.write_text(json.dumps(request), encoding="utf-8")
        command = [sys.executable, "-m", "crosssim.backends.neuron.worker",
                   str(request_path), str(result_path)]
        spawned = time.perf_counter()
        try:
            completed = subprocess.run(command, env=_child_env(), stdin=subprocess.DEVNULL,
                                       capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BackendError(_BACKEND, _with_stderr(
                f"child process timed out after {timeout_s:g} s and was killed",
                exc.stderr)) from None
        except OSError as exc:
            raise BackendError(_BACKEND, f"could not start the child process: {exc}") from exc
        process_s = time.perf_counter() - spawned
        code = completed.returncode
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise BackendError(_BACKEND, _with_stderr(
                f"child process crashed: killed by {name} (signal {-code})", completed.stderr))
        if code != 0:
            raise BackendError(_BACKEND, _with_stderr(
                f"child process failed with exit code {code}", completed.stderr))
        try:
            with np.load(result_path, allow_pickle=False) as data:
                raw_times = data["times_ms"]
                values = data["values_mV"]
                build_s = float(data["build_s"])
                run_s = float(data["run_s"])
                info = json.loads(str(data["info_json"]))
        except (OSError, KeyError, ValueError) as exc:
            raise BackendError(_BACKEND, f"child process wrote no readable result: {exc}") from exc

    times = nominal_grid(raw_times, model, _BACKEND)
    info.update({
        "cvs": _cvs_info(model),
        "mechanisms": str(mechanisms),
        "compile_check_s": compile_s,
        "process_s": process_s,
        "overhead_s": max(0.0, process_s - build_s - run_s),
        "build_s": build_s,
        "run_s": run_s,
    })
    probes = [probe.label for probe in model.effective_probes()]
    return RunResult(backend=_BACKEND, probes=probes, times_ms=times, values_mV=values,
                     wall_time_s=build_s + run_s, info=info)
