"""Parameter sweeps: grid syntax, the table, failing points, exit codes, Dask."""

from __future__ import annotations

import importlib.util
import json
import math
import time

import pandas as pd
import pytest
from conftest import requires_arbor, requires_neuron

from crosssim.builtin import builtin_model
from crosssim.errors import UsageError
from crosssim.model import apply_overrides

requires_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                   reason="dask.distributed is not installed")




def _small(**overrides):
    settings = {"simulation.t_stop_ms": 0.5, **overrides}
    return apply_overrides(builtin_model("two_cells"), list(settings.items()))


# Grid syntax ---------------------------------------------------------------------------------


def test_grid_values_lists_and_ranges():
    from crosssim.study.sweeps import grid_points, parse_grid, parse_grid_values

    assert parse_grid_values("0.001,0.01,0.1") == (0.001, 0.01, 0.1)
    assert parse_grid_values("50:200:4") == (50, 100, 150, 200)
    assert all(isinstance(v, int) for v in parse_grid_values("1:9:5"))
    assert parse_grid_values("0:1:3") == (0, 0.5, 1)
    assert parse_grid_values("0.1:0.3:3") == (0.1, 0.2, 0.3)  # no 0.30000000000000004
    assert parse_grid_values("log:1e-3:1e-1:3") == (0.001, 0.01, 0.1)
    assert parse_grid_values("-100,-80") == (-100, -80)
    assert parse_grid_values("[0.25, 0.75],[0.5, 0.5]") == ([0.25, 0.75], [0.5, 0.5])
    dimensions = parse_grid(["gap_junctions.0.g_uS=0.001,0.01", "cells.b.length_um=50:150:3"])
    points = grid_points(dimensions)
    assert len(points) == 6
    assert points[0] == {"gap_junctions.0.g_uS": 0.001, "cells.b.length_um": 50}
    assert points[-1] == {"gap_junctions.0.g_uS": 0.01, "cells.b.length_um": 150}


@pytest.mark.parametrize("spec", [
    "gap_junctions.0.g_uS",  # no '='
    "=1,2",  # no path
    "cells.b.length_um=",  # no values
    "cells.b.length_um=1:2",  # a range needs a count
    "cells.b.length_um=1:2:x",
    "cells.b.length_um=1:2:0",
    "cells.b.length_um=log:0:1:3",  # log of 0
    "cells.b.length_um=50,50",  # repeated value
])
def test_bad_grid_values_are_usage_errors(spec):
    from crosssim.study.sweeps import parse_grid

    with pytest.raises(UsageError):
        parse_grid([spec])


def test_bad_paths_are_usage_errors():
    from crosssim.study.sweeps import parse_grid, validate_grid

    model = _small()
    for path in ("cels.b.length_um", "cells.c.length_um", "cells.b.lenght_um",
                 "gap_junctions.3.g_uS", "simulation.dt_ms.x"):
        with pytest.raises(UsageError):
            validate_grid(model, parse_grid([f"{path}=1,2"]))
    validate_grid(model, parse_grid(["discretization.max_extent_um=10,20",
                                     "cells.0.v_init_mV=-70,-80", "probes.a_gj.x=0.5,0.3"]))
    with pytest.raises(UsageError):
        parse_grid(["cells.b.length_um=1,2", "cells.b.length_um=3,4"])  # swept twice


def test_bad_grid_spec_exits_2(capsys):
    from crosssim.cli import main

    assert main(["sweep", "--grid", "cels.b.length_um=50,100"]) == 2
    assert "no field 'cels'" in capsys.readouterr().err
    assert main(["sweep", "--grid", "cells.b.length_um=50:100"]) == 2
    assert main(["sweep"]) == 2


# Running sweeps ------------------------------------------------------------------------------


@requires_arbor
@requires_neuron
def test_2x2_sweep_table_matches_a_direct_check(cache_dir, tmp_path, capsys):
    from crosssim.check import check
    from crosssim.cli import main

    code = main(["sweep", "--set", "simulation.t_stop_ms=0.5",
                 "--grid", "gap_junctions.0.g_uS=0.001,0.05",
                 "--grid", "cells.b.length_um=60,140", "--out", str(tmp_path),
                 "--references", "analytic,lumped", "--workers", "2", "--quiet"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert "4 points" in out and "wrote" in out
    frame = pd.read_parquet(tmp_path / "sweep.parquet")
    csv = pd.read_csv(tmp_path / "sweep.csv")
    assert frame.shape[0] == csv.shape[0] == 4
    assert list(frame.columns) == list(csv.columns)
    assert list(frame.columns[:5]) == ["point", "gap_junctions.0.g_uS", "cells.b.length_um",
                                       "verdict", "error"]
    assert frame["gap_junctions.0.g_uS"].tolist() == [0.001, 0.001, 0.05, 0.05]
    assert frame["cells.b.length_um"].tolist() == [60, 140, 60, 140]
    assert (tmp_path / "sweep_heatmap.png").stat().st_size > 1000
    assert code == (1 if (frame["verdict"] == "fail").any() else 0)

    # The last point's row holds the numbers of a direct check of that model.
    point = _small(**{"gap_junctions.0.g_uS": 0.05, "cells.b.length_um": 140})
    direct = check(point, backends=["arbor", "neuron"], references=["analytic", "lumped"])
    row = frame.iloc[3]
    assert row["verdict"] == direct.verdict
    assert len(direct.comparisons) == 12  # 6 pairs x 2 probes
    for c in direct.comparisons:
        prefix = f"{c.a}-{c.b}:{c.probe}"
        for metric in ("max_abs_mV", "rms_mV", "final_abs_mV"):
            assert math.isclose(row[f"{prefix}:{metric}"], getattr(c, metric),
                                rel_tol=1e-9, abs_tol=1e-12), (prefix, metric)
        passed = row[f"{prefix}:passed"]
        assert (None if pd.isna(passed) else bool(passed)) == c.passed, prefix
    worst_sim = max(c.max_abs_mV for c in direct.comparisons if c.kind == "backends")
    assert math.isclose(row["worst_backends_mV"], worst_sim, rel_tol=1e-9, abs_tol=1e-15)


@requires_arbor
@requires_neuron
def test_failing_points_are_recorded_and_the_sweep_goes_on(cache_dir, tmp_path, capsys,
                                                           monkeypatch):
    """An invalid parameter combination and a crashing backend: table written, exit 3."""
    from crosssim.cli import main

    monkeypatch.setenv("CROSSSIM_TEST_CRASH", "segv")  # NEURON's child kills itself
    code = main(["sweep", "--set", "simulation.t_stop_ms=0.5",
                 "--grid", "gap_junctions.0.g_uS=0.001,0.01",
                 # dt 0.03 does not divide t_stop 0.5: an invalid model at those points
                 "--grid", "simulation.dt_ms=0.01,0.03",
                 "--out", str(tmp_path), "--workers", "2", "--quiet", "--format", "json"])
    assert code == 3
    document = json.loads(capsys.readouterr().out)
    assert document["counts"] == {"pass": 0, "fail": 0, "error": 4}
    frame = pd.read_csv(tmp_path / "sweep.csv")
    assert frame.shape[0] == 4 and (frame["verdict"] == "error").all()
    invalid = frame[frame["simulation.dt_ms"] == 0.03]
    assert invalid["error"].str.contains("invalid model").all()
    assert invalid["error"].str.contains("t_stop_ms").all()
    crashed = frame[frame["simulation.dt_ms"] == 0.01]
    assert crashed["error"].str.contains("neuron: .*SIGSEGV", regex=True).all()
    # The other sources of the crashed points still ran and were compared.
    assert crashed["arbor-analytic:a_gj:max_abs_mV"].notna().all()
    assert document["runs"]["failed"] == 2  # the two NEURON runs


@requires_arbor
@requires_dask
def test_dask_cluster_gives_identical_numbers(cache_dir):
    from distributed import LocalCluster

    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import DaskExecutor, LocalExecutor
    from crosssim.study.sweeps import parse_grid, sweep

    model = _small()
    grid = parse_grid(["gap_junctions.0.g_uS=0.001,0.05", "cells.b.length_um=140"])
    backends = ["arbor", "neuron"] if importlib.util.find_spec("neuron") else ["arbor"]
    local = sweep(model, grid, backends=backends, executor=LocalExecutor(2),
                  cache=ResultsCache(enabled=False))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster:
        executor = DaskExecutor(cluster.scheduler_address)
        try:
            assert executor.workers == 2
            remote = sweep(model, grid, backends=backends, executor=executor,
                           cache=ResultsCache(enabled=False))
        finally:
            executor.close()
    assert [p.reason for p in remote.points] == [None] * 2
    pd.testing.assert_frame_equal(local.to_frame(), remote.to_frame())


@requires_neuron
def test_a_hanging_simulation_is_killed_with_its_children(cache_dir, monkeypatch, tmp_path):
    """--timeout: the task's process group (with NEURON's own child) is killed, recorded,
    and the files the killed processes could not remove (NEURON's request) are gone."""
    psutil = pytest.importorskip("psutil")
    import tempfile
    import uuid

    from crosssim.backends.neuron.mechanisms import ensure_mechanisms
    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import LocalExecutor
    from crosssim.study.sweeps import parse_grid, sweep

    ensure_mechanisms()  # compile first, so the timeout hits NEURON's child, not nrnivmodl
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    marker = uuid.uuid4().hex  # found in the environment of every process this test starts
    monkeypatch.setenv("CROSSSIM_TEST_MARKER", marker)
    monkeypatch.setenv("CROSSSIM_TEST_CRASH", "hang")  # NEURON's child sleeps for an hour
    result = sweep(_small(), parse_grid(["gap_junctions.0.g_uS=0.001"]), backends=["neuron"],
                   references=["analytic", "lumped"], executor=LocalExecutor(2, timeout_s=1.5),
                   cache=ResultsCache())
    point = result.points[0]
    assert point.verdict == "error" and "timed out after 1.5 s" in point.reason
    assert point.outcome.results.keys() == {"analytic", "lumped"}
    time.sleep(0.2)
    left = []
    for process in psutil.process_iter():
        try:
            is_worker = any(part.endswith(("neuron/worker.py", "neuron.worker"))
                            for part in process.cmdline())
            if is_worker and process.environ().get("CROSSSIM_TEST_MARKER") == marker:
                left.append(process)
        except (psutil.Error, OSError):
            continue
    for process in left:  # do not leave them behind, even when the test fails
        process.kill()
    assert not left, [process.cmdline() for process in left]
    # (multiprocessing's own pymp-* folder lives as long as its forkserver)
    assert not [path.name for path in temporary.iterdir() if path.name.startswith("crosssim")]
