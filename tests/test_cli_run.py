"""``crosssim run`` end to end, as a user runs it (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import pinned, requires_arbor, requires_neuron


def crosssim(*args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "crosssim", *pinned(args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


@requires_arbor
@requires_neuron
def test_run_builtin_writes_traces_and_plot(tmp_path):
    done = crosssim("run", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(tmp_path / "traces.csv")
    assert list(frame.columns) == ["backend", "probe", "t_ms", "v_mV"]
    counts = frame.groupby(["backend", "probe"]).size()
    assert counts.to_dict() == {("arbor", "a_gj"): 501, ("arbor", "b_gj"): 501,
                                ("neuron", "a_gj"): 501, ("neuron", "b_gj"): 501}
    wide = frame.pivot_table(index=["probe", "t_ms"], columns="backend", values="v_mV")
    assert (wide["arbor"] - wide["neuron"]).abs().max() <= 1e-9
    start = frame[frame.t_ms == 0].set_index(["backend", "probe"]).v_mV
    assert start[("arbor", "a_gj")] == pytest.approx(-100.0)
    assert start[("neuron", "b_gj")] == pytest.approx(-60.0)
    # one CV per cell is the lumped model: at 5 ms (10 time constants) the cells sit at the
    # lumped equilibrium V_a = E_a + (E_b - E_a) g / (G + 2 g), computed here by hand
    import math

    area_cm2 = 2 * math.pi * 3e-4 * 100e-4
    G = 0.001 * area_cm2 * 1e6  # uS
    v_a = -100 + 40 * 0.01 / (G + 2 * 0.01)
    end = frame[frame.t_ms == 5.0].set_index(["backend", "probe"]).v_mV
    assert end[("arbor", "a_gj")] == pytest.approx(v_a, abs=1e-3)
    assert end[("neuron", "b_gj")] == pytest.approx(-160 - v_a, abs=1e-3)
    png = (tmp_path / "traces.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "largest |arbor - neuron|" in done.stdout
    assert "[2/3] neuron: done" in done.stderr  # progress
    # the exact cable solution is beside the backends: seed steady state -89.67898 mV
    analytic_line = next(line for line in done.stdout.splitlines()
                         if line.strip().startswith("analytic:"))
    assert "a_gj -89.67" in analytic_line
    assert "largest |arbor - exact cable| = 0.105 mV" in done.stdout


@requires_arbor
def test_run_with_overrides_and_one_backend(tmp_path):
    done = crosssim("run", "--backend", "arbor", "--set", "cells.a.e_leak_mV=-80",
                    "--set", "discretization.cvs_per_cell=11", "--out", str(tmp_path),
                    "--no-plot")
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(tmp_path / "traces.csv")
    assert set(frame.backend) == {"arbor"}
    assert frame[(frame.t_ms == 0) & (frame.probe == "a_gj")].v_mV.item() == pytest.approx(-80)
    assert not (tmp_path / "traces.png").exists()


@requires_arbor
def test_missing_simulator_still_runs_the_other_and_exits_3(tmp_path):
    # a 'neuron' package that cannot be imported shadows the real one
    fake = tmp_path / "fake"
    (fake / "neuron").mkdir(parents=True)
    (fake / "neuron" / "__init__.py").write_text("raise ImportError('libnrniv.so: cannot open')")
    out = tmp_path / "out"
    done = crosssim("run", "--out", str(out), "--no-plot",
                    env={"PYTHONPATH": os.pathsep.join([str(fake),
                                                        os.environ.get("PYTHONPATH", "")])})
    assert done.returncode == 3, done.stderr
    assert "neuron" in done.stderr and "libnrniv.so" in done.stderr
    assert "Traceback" not in done.stderr
    frame = pd.read_csv(out / "traces.csv")
    assert set(frame.backend) == {"arbor"}


@requires_neuron
def test_user_model_file_with_clamp_runs_on_both(tmp_path):
    model = tmp_path / "mine.toml"
    model.write_text("""
name = "clamped_pair"
[simulation]
t_stop_ms = 3.0
dt_ms = 0.005
sample_dt_ms = 0.05
[discretization]
max_extent_um = 20.0
[[cells]]
name = "soma_like"
length_um = 40.0
radius_um = 8.0
cm_F_per_m2 = 0.01
ra_ohm_cm = 150.0
g_leak_S_per_cm2 = 0.0003
e_leak_mV = -70.0
[[cells]]
name = "dendrite"
length_um = 300.0
radius_um = 0.75
cm_F_per_m2 = 0.01
ra_ohm_cm = 150.0
g_leak_S_per_cm2 = 0.0003
e_leak_mV = -65.0
v_init_mV = -50.0
[[gap_junctions]]
cells = ["soma_like", "dendrite"]
x = [1.0, 0.0]
g_uS = 0.005
[[probes]]
cell = "dendrite"
x = 0.9
[[stimuli]]
cell = "dendrite"
x = 0.3
delay_ms = 0.5
duration_ms = 1.0
amplitude_nA = 0.02
""")
    done = crosssim("run", str(model), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(tmp_path / "out" / "traces.csv")
    assert set(frame.probe) == {"dendrite_x0.9"}
    assert len(frame) == 2 * 61
    wide = frame.pivot_table(index="t_ms", columns="backend", values="v_mV")
    assert (wide["arbor"] - wide["neuron"]).abs().max() <= 1e-9
