"""The results cache: keys, atomic entries, no recomputation, resuming interrupted runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import requires_arbor, requires_neuron

from crosssim.builtin import builtin_model
from crosssim.model import apply_overrides
from crosssim.result import RunResult


def _small(**overrides) -> object:
    """The seed model, 0.5 ms (fast), with ``--set`` style overrides."""
    settings = {"simulation.t_stop_ms": 0.5, **overrides}
    return apply_overrides(builtin_model("two_cells"), list(settings.items()))


def _synthetic(backend: str = "arbor") -> RunResult:
    times = np.arange(6) * 0.1
    return RunResult(backend=backend, probes=["a_gj", "b_gj"], times_ms=times,
                     values_mV=np.vstack([-70 - times, -60 + times]), wall_time_s=0.25,
                     info={"cvs": [1, 1], "method": "implicit Euler"})


# Keys ----------------------------------------------------------------------------------------


def test_key_follows_what_determines_the_traces():
    from crosssim.study.cache import cache_key

    model = _small()
    assert cache_key(model, "arbor") == cache_key(_small(), "arbor")
    assert cache_key(model, "arbor") != cache_key(model, "neuron")
    # Name, description and tolerances do not change a trace: same key.
    renamed = model.replace(name="other", description="x",
                            tolerance={"analytic_abs_mV": 5.0})
    assert cache_key(renamed, "arbor") == cache_key(model, "arbor")
    # Physics, sampling, discretization and the backend's own options do.
    for change in ({"gap_junctions.0.g_uS": 0.02}, {"simulation.dt_ms": 0.005},
                   {"discretization.cvs_per_cell": 3}, {"cells.b.length_um": 120.0}):
        assert cache_key(_small(**change), "arbor") != cache_key(model, "arbor"), change
    second_order = _small(**{"backends.neuron.secondorder": 2})
    assert cache_key(second_order, "neuron") != cache_key(model, "neuron")
    assert cache_key(second_order, "arbor") == cache_key(model, "arbor")
    # The references solve the continuous model: dt and CVs do not matter to them.
    finer = _small(**{"simulation.dt_ms": 0.005, "simulation.sample_dt_ms": 0.01,
                      "discretization.cvs_per_cell": 9})
    assert cache_key(finer, "analytic") == cache_key(model, "analytic")
    assert cache_key(finer, "arbor") != cache_key(model, "arbor")


def test_key_includes_simulator_versions_and_mod_sources(monkeypatch):
    from crosssim.study import cache

    model = _small()
    before = cache.cache_key(model, "neuron")
    document = cache.key_document(model, "neuron")
    assert set(document["versions"]) == {"neuron", "arbor", "jaxley", "jax", "crosssim",
                                          "mod_sha256"}
    monkeypatch.setattr(cache, "software_versions",
                        lambda: {**document["versions"], "neuron": "0.0.1"})
    assert cache.cache_key(model, "neuron") != before


# Entries -------------------------------------------------------------------------------------


def test_entries_are_npz_and_json_written_atomically(tmp_path, monkeypatch):
    from crosssim.study.cache import ResultsCache

    cache = ResultsCache(tmp_path)
    key = "ab" + "0" * 62
    assert cache.get(key) is None
    assert cache.put(key, _synthetic()) is True
    entry = cache.entry_path(key)
    assert sorted(p.name for p in entry.iterdir()) == ["data.npz", "meta.json"]
    with np.load(entry / "data.npz", allow_pickle=False) as data:  # plain arrays, no pickle
        assert data["values_mV"].shape == (2, 6)
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["key"] == key and meta["probes"] == ["a_gj", "b_gj"]
    again = cache.get(key)
    np.testing.assert_array_equal(again.values_mV, _synthetic().values_mV)
    assert again.info["method"] == "implicit Euler" and again.wall_time_s == 0.25
    assert cache.put(key, _synthetic()) is False  # already there: left alone
    assert not list(entry.parent.glob(".tmp-*"))

    # A write that dies half-way leaves no entry and no temporary folder.
    other = "cd" + "1" * 62

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError):
        cache.put(other, _synthetic())
    monkeypatch.undo()
    assert cache.get(other) is None
    assert not list(cache.entry_path(other).parent.glob(".tmp-*"))

    # A damaged entry is a miss (and is removed); a stray temporary folder is no entry.
    (entry / "data.npz").write_bytes(b"not a zip")
    assert cache.get(key) is None and not entry.exists()
    (tmp_path / "ef").mkdir()
    (tmp_path / "ef" / ".tmp-efefefefefef-x").mkdir()
    info = cache.info()
    assert info.entries == 0 and info.temporary == 1
    assert cache.clear() == 0 and not (tmp_path / "ef").exists()


# Runs through the executor -------------------------------------------------------------------


def _tasks(model, sources=("arbor", "analytic", "lumped")):
    from crosssim.study.executors import SourceTask

    return [SourceTask(source, model, label=source) for source in sources]


@requires_arbor
def test_second_run_computes_nothing(cache_dir):
    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import LocalExecutor, run_tasks

    models = [_small(**{"gap_junctions.0.g_uS": g}) for g in (0.001, 0.01)]
    tasks = [task for model in models for task in _tasks(model)]
    first = run_tasks(tasks, executor=LocalExecutor(2), cache=ResultsCache())
    assert (first.computed, first.cached, first.failed) == (6, 0, 0)
    started = time.perf_counter()
    second = run_tasks(tasks, executor=LocalExecutor(2), cache=ResultsCache())
    assert (second.computed, second.cached) == (0, 6)
    assert time.perf_counter() - started < 5.0
    for a, b in zip(first.outcomes, second.outcomes):
        np.testing.assert_array_equal(a.result.values_mV, b.result.values_mV)
        assert b.cached
    # --no-cache: everything computed again, nothing read or written.
    disabled = run_tasks(tasks, executor=LocalExecutor(2), cache=ResultsCache(enabled=False))
    assert disabled.computed == 6
    assert ResultsCache().info().entries == 6


@requires_arbor
def test_interrupted_run_resumes_without_recomputing(cache_dir):
    from crosssim.study import executors
    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import LocalExecutor, run_tasks

    models = [_small(**{"cells.b.length_um": length}) for length in (60.0, 90.0, 120.0)]
    tasks = [task for model in models for task in _tasks(model)]
    seen = []

    def interrupt_after_two(outcome):
        seen.append(outcome)
        if len(seen) == 2:
            raise KeyboardInterrupt  # what Ctrl-C does in the main thread

    with pytest.raises(KeyboardInterrupt):
        run_tasks(tasks, executor=LocalExecutor(2), cache=ResultsCache(),
                  on_outcome=interrupt_after_two)
    assert not executors._CHILDREN._live  # every child process was stopped
    assert ResultsCache().info().entries == 2
    resumed = run_tasks(tasks, executor=LocalExecutor(2), cache=ResultsCache())
    assert (resumed.computed, resumed.cached, resumed.failed) == (7, 2, 0)


@requires_arbor
def test_killed_worker_is_recorded_and_recomputed_next_time(cache_dir, monkeypatch):
    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import KILL_HOOK, LocalExecutor, run_tasks

    tasks = _tasks(_small())
    monkeypatch.setenv(KILL_HOOK, "arbor")  # the arbor task's process kills itself (SIGKILL)
    run = run_tasks(tasks, executor=LocalExecutor(2), cache=ResultsCache())
    outcome = {o.task.source: o for o in run.outcomes}
    assert outcome["arbor"].result is None
    assert "SIGKILL" in outcome["arbor"].error
    assert outcome["analytic"].ok and outcome["lumped"].ok  # the rest went on
    monkeypatch.delenv(KILL_HOOK)
    again = run_tasks(tasks, executor=LocalExecutor(2), cache=ResultsCache())
    assert (again.computed, again.cached, again.failed) == (1, 2, 0)


# Command line --------------------------------------------------------------------------------


def _cache_info(capsys) -> dict:
    from crosssim.cli import main

    capsys.readouterr()
    assert main(["cache", "info", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@requires_arbor
def test_no_cache_flag_and_cache_commands(cache_dir, tmp_path, capsys):
    from crosssim.cli import main

    args = ["sweep", "--set", "simulation.t_stop_ms=0.5", "--backend", "arbor",
            "--references", "analytic,lumped", "--grid",
            "gap_junctions.0.g_uS=0.001,0.01", "--out", str(tmp_path), "--no-plot",
            "--workers", "2", "--quiet", "--format", "json"]
    main(args + ["--no-cache"])
    document = json.loads(capsys.readouterr().out)
    assert document["runs"] == {"computed": 6, "cached": 0, "failed": 0}
    assert _cache_info(capsys)["results"]["entries"] == 0
    main(args)
    capsys.readouterr()
    info = _cache_info(capsys)["results"]
    assert info["entries"] == 6
    assert info["by_source"] == {"analytic": 2, "arbor": 2, "lumped": 2}
    main(args)
    assert json.loads(capsys.readouterr().out)["runs"]["cached"] == 6
    assert main(["cache", "clear"]) == 0
    assert "removed 6" in capsys.readouterr().out
    assert _cache_info(capsys)["results"]["entries"] == 0


@requires_arbor
@requires_neuron
def test_ctrl_c_stops_the_sweep_and_a_rerun_resumes(cache_dir, tmp_path):
    """The real thing: SIGINT to ``crosssim sweep``, exit 130, then the same command again."""
    from crosssim.study.cache import ResultsCache

    # A shell's background job ignores SIGINT (and a child inherits that): restore Python's
    # usual handler, as in an interactive terminal.
    launcher = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "from crosssim.cli import main; sys.exit(main(sys.argv[1:]))")
    command = [sys.executable, "-c", launcher, "sweep", "--set", "simulation.t_stop_ms=0.5",
               "--grid", "gap_junctions.0.g_uS=0.001,0.01,0.1",
               "--grid", "cells.b.length_um=60,100,140", "--out", str(tmp_path),
               "--backend", "arbor,neuron", "--references", "analytic,lumped",
               "--workers", "2", "--format", "json",
               "--no-plot"]
    env = dict(os.environ)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while ResultsCache().info().entries < 3 and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-500:]
    assert "run the same command again to resume" in stderr
    kept = ResultsCache().info().entries
    assert 3 <= kept < 36
    finished = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
    # 0/1/3 are all a finished sweep (the verdicts are not what this test is about).
    assert finished.returncode in (0, 1, 3), finished.stderr[-500:]
    runs = json.loads(finished.stdout)["runs"]
    assert runs["cached"] >= kept and runs["computed"] + runs["cached"] == 36
    assert runs["computed"] <= 36 - kept
