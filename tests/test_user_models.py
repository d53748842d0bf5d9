"""Regression tests from the first real use of crosssim on hand-written models.

Each test checks real numbers against an independent truth: the other simulator, the exact
solution, or a value derived by hand in the test.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from crosssim import apply_overrides, loads_model
from crosssim.backends import run_backend
from crosssim.errors import InvalidModelError

CELL = """
[[cells]]
name = "{name}"
length_um = {length}
radius_um = {radius}
cm_F_per_m2 = 0.01
ra_ohm_cm = 100.0
g_leak_S_per_cm2 = {g_leak}
e_leak_mV = -65.0
v_init_mV = {v_init}
"""


def _model(body: str, *, t_stop: float = 1.0, dt: float = 0.025, cvs: int = 1,
           sample_dt: float | None = None) -> str:
    sample = f"sample_dt_ms = {sample_dt}\n" if sample_dt is not None else ""
    return (f'name = "user"\n[simulation]\nt_stop_ms = {t_stop}\ndt_ms = {dt}\n{sample}'
            f"[discretization]\ncvs_per_cell = {cvs}\n" + body)


def _cell(name: str, *, length: float = 20.0, radius: float = 5.0, g_leak: float = 1e-4,
          v_init: float = -65.0) -> str:
    return CELL.format(name=name, length=length, radius=radius, g_leak=g_leak, v_init=v_init)


# --set addresses a probe by the name shown in every table --------------------------------

CHAIN = _model(
    _cell("a", length=100.0, radius=1.0, v_init=0.0) + _cell("b", length=100.0, radius=1.0)
    + '[[gap_junctions]]\ncells = ["a", "b"]\nx = [1.0, 0.0]\ng_uS = 0.001\n'
    + '[[probes]]\ncell = "a"\nx = 0.0\n[[probes]]\ncell = "b"\nx = 1.0\n',
    t_stop=2.0, dt=0.0125, cvs=5, sample_dt=0.125)


def test_set_addresses_a_probe_by_its_default_name():
    model = loads_model(CHAIN)
    moved = apply_overrides(model, ["probes.b_x1.x=0.3", "probes.a_x0.name=pa"])
    assert [p.label for p in moved.probes] == ["pa", "b_x0.3"]
    arbor, neuron = run_backend("arbor", moved), run_backend("neuron", moved)
    assert arbor.probes == ["pa", "b_x0.3"]
    assert np.max(np.abs(arbor.values_mV - neuron.values_mV)) < 1e-9


def test_set_unknown_entry_lists_indices_and_default_names():
    model = loads_model(CHAIN)
    with pytest.raises(InvalidModelError) as info:
        apply_overrides(model, ["probes.zz.x=0.3"])
    assert "an index 0..1 or one of: a_x0, b_x1" in str(info.value)
    with pytest.raises(InvalidModelError) as info:
        apply_overrides(model, ["stimuli.0.x=0.3"])
    assert "the list is empty" in str(info.value) and "0..-1" not in str(info.value)


# CV count: NEURON's nseg limit is refused up front ---------------------------------------

def test_cv_count_beyond_neurons_nseg_limit_is_refused_in_one_line(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(_model(_cell("a", length=1.0, radius=1.0)))
    for setting in ("discretization.cvs_per_cell=32767", "discretization.max_extent_um=1e-6"):
        done = subprocess.run([sys.executable, "-m", "crosssim", "check", str(path), "--set",
                               setting], capture_output=True, text=True, check=False)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "at most 32766 CVs per cell" in done.stderr
        assert done.stdout == ""  # refused before anything ran


def test_largest_allowed_cv_count_runs_on_neuron_at_rest():
    # 32766 CVs is the most NEURON 9 accepts (32767 fails inside NEURON); at rest the
    # hand-derived answer is e_leak everywhere.
    model = loads_model(_model(_cell("a", length=1000.0, radius=1.0), t_stop=0.1, dt=0.05,
                               cvs=32766))
    result = run_backend("neuron", model)
    assert np.max(np.abs(result.values_mV + 65.0)) < 1e-9


# Stiff junctions: both simulators couple explicitly; the note says so ---------------------

STIFF = _model(
    _cell("p", v_init=-20.0) + _cell("q")
    + '[[gap_junctions]]\ncells = ["p", "q"]\nx = [0.5, 0.5]\ng_uS = 1.0\n'
    + '[[probes]]\ncell = "p"\nx = 0.5\n[[probes]]\ncell = "q"\nx = 0.5\n',
    t_stop=0.25, dt=0.025, cvs=1)


def _hand_recurrence(model):
    """Implicit Euler on each cell, the peer voltage from the previous step (two 1-CV cells)."""
    cell = model.cells[0]
    area_cm2 = 2 * math.pi * cell.radius_um * cell.length_um * 1e-8
    c = cell.cm_F_per_m2 * 1e-4 * area_cm2 / (model.simulation.dt_ms * 1e-3)  # S
    g_leak = cell.g_leak_S_per_cm2 * area_cm2
    g = model.gap_junctions[0].g_uS * 1e-6
    v = np.array([-20.0, -65.0])
    out = [v.copy()]
    for _ in range(round(model.simulation.t_stop_ms / model.simulation.dt_ms)):
        v = (c * v + g_leak * -65.0 + g * v[::-1]) / (c + g_leak + g)
        out.append(v.copy())
    return np.array(out).T, g / c  # = g dt / C


def test_stiff_junction_ratio_matches_hand_value_and_both_simulators_oscillate():
    model = loads_model(STIFF)
    expected, ratio = _hand_recurrence(model)
    # C = 0.01 F/m^2 * 2 pi 5 um 20 um = 6.283 pF; g dt / C = 1e-6 S * 25e-6 s / 6.283e-12 F
    assert ratio == pytest.approx(1e-6 * 25e-6 / (0.01 * 2 * math.pi * 100 * 1e-12))
    assert ratio == pytest.approx(3.979, abs=1e-3)
    [(index, cell, found)] = model.stiff_junctions()
    assert index == 0 and found == pytest.approx(ratio, rel=1e-12) and found > 1
    for backend in ("arbor", "neuron"):
        values = run_backend(backend, model).values_mV
        assert np.max(np.abs(values - expected)) < 1e-9, backend
    # the difference between the two cells changes sign every step: the overshoot the
    # note describes (the exact solution decays monotonically)
    difference = expected[0] - expected[1]
    assert np.all(np.sign(difference[1:]) != np.sign(difference[:-1]))
    # a 10x smaller dt brings the ratio below 1: no note
    assert not apply_overrides(model, ["simulation.dt_ms=0.0025"]).stiff_junctions()


def test_stiff_junction_note_on_stderr_keeps_json_clean(tmp_path):
    import json

    path = tmp_path / "stiff.toml"
    path.write_text(STIFF)
    done = subprocess.run([sys.executable, "-m", "crosssim", "check", str(path), "--format",
                           "json", "--backend", "arbor"], capture_output=True, text=True,
                          check=False)
    assert "note: gap_junctions.0: g*dt/C = 3.98 > 1" in done.stderr
    assert "dt_ms < 0.00628" in done.stderr
    assert json.loads(done.stdout)["model"] == "user"


def test_set_reaches_probe_labels_with_dots_and_default_probe_tolerances():
    # star-like: one hub, probes labelled hub_x0.5 etc. contain the dot of x
    base = loads_model(_model(
        _cell("hub", length=200.0, radius=2.0) + _cell("leaf", length=80.0, radius=1.0,
                                                         v_init=-20.0)
        + '[[gap_junctions]]\ncells = ["hub", "leaf"]\nx = [0.25, 0.5]\ng_uS = 0.002\n',
        t_stop=2.0, dt=0.0125, cvs=11, sample_dt=0.125))
    assert [p.label for p in base.effective_probes()] == ["hub_x0.5", "leaf_x0.5"]
    # default probes: their tolerances are addressable (in TOML and with --set)
    loose = apply_overrides(base, ["tolerance.probes.leaf_x0.5.analytic_abs_mV=7"])
    assert loose.tolerance.probes["leaf_x0.5"].analytic_abs_mV == 7
    with pytest.raises(InvalidModelError) as info:
        apply_overrides(base, ["tolerance.probes.leaf_x0.4.analytic_abs_mV=7"])
    assert "unknown probe 'leaf_x0.4'" in str(info.value) and "leaf_x0.5" in str(info.value)
    # explicit probes with dotted labels: --set probes.hub_x0.5.x moves that probe
    probed = apply_overrides(base, ['probes=[{cell="hub", x=0.5}, {cell="leaf", x=0.5}]'])
    from crosssim.study.sweeps import parse_grid, validate_grid

    validate_grid(probed, parse_grid(["probes.hub_x0.5.x=0.1,0.9"]))  # a sweep axis too
    moved = apply_overrides(probed, ["probes.hub_x0.5.x=0.25",
                                     "tolerance.probes.hub_x0.25.analytic_abs_mV=0.2"])
    assert [p.label for p in moved.probes] == ["hub_x0.25", "leaf_x0.5"]
    from crosssim.analytic import exact_cable

    arbor, neuron = run_backend("arbor", moved), run_backend("neuron", moved)
    exact = exact_cable(moved)
    assert np.max(np.abs(arbor.values_mV - neuron.values_mV)) < 1e-9
    # the moved probe sits on the junction site: it reads what the exact solution says there
    assert np.max(np.abs(arbor.values_mV[0] - exact.values_mV[0])) < 0.2


def test_models_output_is_editable_toml_with_one_line_arrays(tmp_path):
    from crosssim.builtin import builtin_model
    from crosssim.model import dumps_model

    text = dumps_model(builtin_model("ring", {"n_cells": 3}))
    assert 'cells = ["c0", "c1"]\nx = [1.0, 0.0]\n' in text
    # a user edits the printed file: a stronger first junction, an off-middle probe
    edited = text.replace("g_uS = 0.01", "g_uS = 0.05", 1).replace(
        '{ cell = "c0", x = 0.5, name = "c0_mid" }', '{ cell = "c0", x = 0.9, name = "c0_mid" }')
    model = loads_model(edited)
    assert model.gap_junctions[0].g_uS == 0.05 and model.probes[0].x == 0.9
    arbor, neuron = run_backend("arbor", model), run_backend("neuron", model)
    assert np.max(np.abs(arbor.values_mV - neuron.values_mV)) < 1e-9


def test_mixed_methods_and_idle_clamps_are_explained_before_they_confuse(tmp_path):
    """Crank-Nicolson NEURON vs implicit-Euler Arbor differ by design: check says so on
    stderr, and the deviation it then reports is the method's, not a bug's."""
    import json as json_module
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "crosssim", "check", "--format", "json", "--quiet",
         "--set", "backends.neuron.secondorder=2",
         "--set", "simulation.dt_ms=0.025", "--set", "simulation.t_stop_ms=5"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "secondorder = 2 (Crank-Nicolson)" in done.stderr
    document = json_module.loads(done.stdout)
    pair = [c for c in document["comparisons"] if (c["a"], c["b"]) == ("arbor", "neuron")]
    # NOTES.md: ~0.1 mV between the two methods at dt 0.025 on the seed
    assert 0.01 < max(c["max_abs_mV"] for c in pair) < 0.5
    # a clamp that starts after t_stop injects nothing: said, not silently ignored
    from crosssim.builtin import builtin_model
    from crosssim.model import apply_overrides
    from crosssim.notes import model_notes

    seed = builtin_model("two_cells")
    late = apply_overrides(seed, [("stimuli", [{"cell": "a", "x": 0.5, "delay_ms": 6.0,
                                                "duration_ms": 1.0, "amplitude_nA": 0.1}])])
    assert [note.subject for note in model_notes(late, ["arbor"])] == ["stimuli.0"]
    assert model_notes(seed, ["arbor", "neuron"]) == []
