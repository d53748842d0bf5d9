"""The Arbor and NEURON backends: grids, agreement with each other, with the lumped
equilibrium, the site/probe contract, the MOD compile cache and child-process failures.

Simulators are imported inside tests only.  Agreement between the backends is gated at
1e-9 mV at every sample (matched discretization, both implicit Euler).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, requires_arbor, requires_neuron

from crosssim.builtin import builtin_model
from crosssim.errors import BackendError, MechanismBuildError
from crosssim.model import Discretization, model_from_dict

#: Largest allowed |arbor - neuron| in mV at any sample, matched discretization.
MATCHED_ATOL_MV = 1e-9

SEED_CELL = {"length_um": 100.0, "radius_um": 3.0, "cm_F_per_m2": 0.005, "ra_ohm_cm": 90.0,
             "g_leak_S_per_cm2": 0.001}
SITES = (0.0, 0.1, 0.25, 0.5, 0.77, 1.0)

def _run(backend: str, model, **options):
    from crosssim.backends import run_backend

    return run_backend(backend, model, **options)


def _max_difference(first, second) -> float:
    assert first.probes == second.probes
    np.testing.assert_array_equal(first.times_ms, second.times_ms)
    return float(np.max(np.abs(first.values_mV - second.values_mV)))


def _assert_backends_agree(model, atol: float = MATCHED_ATOL_MV) -> float:
    __tracebackhide__ = True
    arbor_result = _run("arbor", model)
    neuron_result = _run("neuron", model)
    worst = _max_difference(arbor_result, neuron_result)
    if worst > atol:
        row, col = np.unravel_index(
            np.argmax(np.abs(arbor_result.values_mV - neuron_result.values_mV)),
            arbor_result.values_mV.shape)
        pytest.fail(
            f"{model.name}: max |arbor - neuron| = {worst:.3g} mV > {atol:g} mV at probe "
            f"{arbor_result.probes[row]!r}, t = {arbor_result.times_ms[col]:g} ms "
            f"(arbor {arbor_result.values_mV[row, col]!r}, "
            f"neuron {neuron_result.values_mV[row, col]!r})")
    return worst


# Models a user might write ----------------------------------------------------------------


def _cell(name: str, e_leak: float, **overrides) -> dict:
    return {"name": name, **SEED_CELL, "e_leak_mV": e_leak, **overrides}


def _model(name: str, cells, *, junctions=(), probes=(), stimuli=(), t_stop=5.0, dt=0.01,
           sample_dt=None, cvs=None, max_extent=None, backends=None):
    simulation = {"t_stop_ms": t_stop, "dt_ms": dt}
    if sample_dt is not None:
        simulation["sample_dt_ms"] = sample_dt
    data = {
        "name": name,
        "simulation": simulation,
        "discretization": ({"max_extent_um": max_extent} if max_extent is not None
                           else {"cvs_per_cell": cvs or 1}),
        "cells": list(cells),
        "gap_junctions": [{"cells": list(c), "x": list(x), "g_uS": g} for c, x, g in junctions],
        "probes": [{"cell": c, "x": x} for c, x in probes],
        "stimuli": [{"cell": c, "x": x, "delay_ms": d, "duration_ms": w, "amplitude_nA": a}
                    for c, x, d, w, a in stimuli],
    }
    if backends:
        data["backends"] = backends
    return model_from_dict(data, source=f"<test {name}>")


def _seed_cvs(n: int):
    return builtin_model("two_cells").replace(discretization={"cvs_per_cell": n})


def _chain3():
    """Three cells in a chain, two junctions on the middle cell off centre, one clamp."""
    return _model(
        "chain3",
        [_cell("a", -100.0), _cell("b", -80.0), _cell("c", -60.0)],
        junctions=[(("a", "b"), (0.5, 0.2), 0.01), (("b", "c"), (0.85, 0.3), 0.02)],
        probes=[("a", 0.5), ("b", 0.2), ("b", 0.85), ("b", 0.5), ("c", 0.3)],
        stimuli=[("b", 0.6, 1.0, 2.0, 0.05)],
        cvs=11,
    )


def _ends_and_off_centre():
    """Probes and clamps at the ends and off centre, v_init != e_leak, an odd CV count."""
    return _model(
        "ends",
        [_cell("a", -70.0, v_init_mV=-50.0), _cell("b", -65.0, v_init_mV=-90.0)],
        junctions=[(("a", "b"), (0.0, 1.0), 0.05)],
        probes=[("a", 0.0), ("a", 1.0), ("a", 0.77), ("a", 0.03), ("b", 0.0), ("b", 1.0),
                ("b", 0.5)],
        stimuli=[("a", 1.0, 0.5, 1.0, 0.1), ("b", 0.0, 0.0, 3.0, -0.05),
                 ("a", 0.33, 2.0, 0.5, 0.2)],
        cvs=5,
    )


def _geometries_max_extent():
    """Different geometries and CV counts (max_extent_um), a self-junction, sample_dt = 5*dt."""
    return _model(
        "geometries",
        [_cell("long", -70.0, length_um=250.0, radius_um=1.0, ra_ohm_cm=150.0),
         _cell("short", -55.0, length_um=33.0, radius_um=0.5, cm_F_per_m2=0.01,
               g_leak_S_per_cm2=0.0003, v_init_mV=-60.0),
         _cell("mid", -80.0, length_um=100.0 / 3.0, radius_um=2.0)],
        junctions=[(("long", "short"), (1.0, 0.0), 0.002),
                   (("long", "long"), (0.1, 0.9), 0.005),
                   (("short", "mid"), (0.5, 0.77), 0.003),
                   (("mid", "long"), (0.0, 0.43), 0.001)],
        probes=[("long", 0.0), ("long", 0.9), ("short", 0.5), ("short", 1.0), ("mid", 0.25)],
        stimuli=[("long", 0.43, 0.5, 2.0, 0.02)],
        t_stop=10.0, dt=0.025, sample_dt=0.125, max_extent=7.0,
    )


def _boundaries_and_off_grid_clamps():
    """Even CV counts (sites on CV boundaries), clamps starting and ending between steps."""
    return _model(
        "boundaries",
        [_cell("a", -75.0), _cell("b", -62.0), _cell("c", -68.0)],
        junctions=[(("a", "b"), (0.5, 0.25), 0.01), (("a", "b"), (0.75, 0.5), 0.004),
                   (("b", "c"), (0.5, 0.5), 0.02)],
        probes=[("a", 0.5), ("a", 0.25), ("b", 0.75), ("c", 0.5), ("c", 0.125)],
        stimuli=[("a", 0.5, 0.1234, 0.5678, 0.05), ("c", 0.25, 0.3, 0.3, -0.02),
                 ("b", 0.5, 1.7, 10.0, 0.01), ("c", 1.0, 0.0, 0.0, 1.0)],
        t_stop=2.0, dt=0.01, cvs=4,
    )


MATCHED_MODELS = {
    "seed": lambda: builtin_model("two_cells"),
    "seed_11cvs": lambda: _seed_cvs(11),
    "chain3": _chain3,
    "ends_off_centre": _ends_and_off_centre,
    "geometries_max_extent": _geometries_max_extent,
    "boundaries_off_grid_clamps": _boundaries_and_off_grid_clamps,
}


# Seed defaults on each backend -------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_defaults_grid_start_and_direction(backend, seed_model):
    result = _run(backend, seed_model)
    assert result.backend == backend
    assert result.probes == ["a_gj", "b_gj"]
    assert result.values_mV.shape == (2, 501)
    np.testing.assert_allclose(result.times_ms, np.arange(501) * 0.01, rtol=0, atol=1e-12)
    assert result.times_ms[-1] == 5.0
    a, b = result.trace("a_gj"), result.trace("b_gj")
    assert a[0] == pytest.approx(-100.0, abs=1e-12)
    assert b[0] == pytest.approx(-60.0, abs=1e-12)
    assert np.all(np.diff(a) > 0) and np.all(np.diff(b) < 0)  # towards each other
    assert np.all(np.diff(b - a) < 0)
    assert a[-1] < b[-1]
    assert result.wall_time_s > 0
    assert result.info["method"] == "implicit Euler"
    assert result.info["cvs"] == [1, 1]


# Matched discretization: Arbor == NEURON ---------------------------------------------------


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("name", list(MATCHED_MODELS))
def test_matched_discretization_agrees(name):
    model = MATCHED_MODELS[name]()
    worst = _assert_backends_agree(model)
    print(f"{name}: max |arbor - neuron| = {worst:.3g} mV")


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("n_cvs", [1, 2, 3, 11])
def test_site_and_probe_grid_agrees(n_cvs):
    """Clamps, junctions and probes at x in SITES on cells of 1, 2, 3, 11 CVs."""
    count = len(SITES)
    cells = [_cell(f"c{k}", -90.0 + 6.0 * k) for k in range(count)]
    junctions = [((f"c{k}", f"c{k + 1}"), (SITES[k], SITES[(k + 2) % count]), 0.004 * (k + 1))
                 for k in range(count - 1)]
    stimuli = [(f"c{k}", SITES[k], 0.1 * k, 0.6, 0.02 * (k + 1)) for k in range(count)]
    probes = [(f"c{k}", x) for k in range(count) for x in SITES]
    model = _model(f"sites{n_cvs}", cells, junctions=junctions, probes=probes, stimuli=stimuli,
                   t_stop=1.5, dt=0.025, cvs=n_cvs)
    worst = _assert_backends_agree(model)
    print(f"sites, {n_cvs} CVs: max |arbor - neuron| = {worst:.3g} mV")


# The site and probe contract, measured on Arbor itself --------------------------------------


def _arbor_cell_recipe(cases, rl_ohm_cm, probe_xs):
    import arbor
    from arbor import units as U

    class Recipe(arbor.recipe):
        def __init__(self):
            super().__init__()

        def num_cells(self):
            return len(cases)

        def cell_kind(self, gid):
            return arbor.cell_kind.cable

        def global_properties(self, kind):
            return arbor.neuron_cable_properties()

        def cell_description(self, gid):
            n_cvs, x = cases[gid]
            tree = arbor.segment_tree()
            tree.append(arbor.mnpos, arbor.mpoint(0, 0, 0, 3), arbor.mpoint(100, 0, 0, 3), tag=1)
            decor = arbor.decor().paint("(all)", arbor.density("pas/e=-65", {"g": 0.001}))
            decor.set_property(Vm=-65 * U.mV, cm=0.01 * U.F / U.m2, rL=rl_ohm_cm * U.Ohm * U.cm)
            decor.place(f"(location 0 {x!r})", arbor.i_clamp(0 * U.ms, 10 * U.ms, 1 * U.nA))
            decor.place("(location 0 0.9)", arbor.i_clamp(0 * U.ms, 10 * U.ms, -0.3 * U.nA))
            return arbor.cable_cell(tree, decor, arbor.label_dict(),
                                    arbor.cv_policy_fixed_per_branch(n_cvs))

        def probes(self, gid):
            return [arbor.cable_probe_membrane_voltage_cell("all")] + [
                arbor.cable_probe_membrane_voltage(f"(location 0 {x!r})", f"p{i}")
                for i, x in enumerate(probe_xs)]

    simulation = arbor.simulation(Recipe())
    schedule = arbor.explicit_schedule([0.025 * U.ms])
    handles = {gid: [simulation.sample((gid, "all"), schedule)]
               + [simulation.sample((gid, f"p{i}"), schedule) for i in range(len(probe_xs))]
               for gid in range(len(cases))}
    simulation.run(0.05 * U.ms, 0.025 * U.ms)
    per_cv, probed = [], []
    for gid in range(len(cases)):
        per_cv.append(simulation.samples(handles[gid][0])[0][0][0, 1:])
        probed.append([simulation.samples(h)[0][0][0, 1] for h in handles[gid][1:]])
    return per_cv, probed


@requires_arbor
def test_site_cv_matches_arbor_assignment():
    """A clamp on a decoupled cable (huge rL) raises only the CV Arbor assigned its site to."""
    from crosssim.discretization import site_cv

    cases = []
    for n_cvs in (1, 2, 3, 4, 7, 10, 11, 49, 98):
        sites = set(SITES) | {k / n_cvs for k in range(n_cvs + 1)}
        sites |= {k * (1.0 / n_cvs) for k in range(n_cvs)}
        sites |= {math.nextafter(k / n_cvs, side) for k in range(1, n_cvs) for side in (0, 1)}
        cases += [(n_cvs, x) for x in sorted(sites)]
    per_cv, _ = _arbor_cell_recipe(cases, 1e9, [])
    wrong = [(n, x, int(np.argmax(v)), site_cv(x, n))
             for (n, x), v in zip(cases, per_cv) if int(np.argmax(v)) != site_cv(x, n)]
    assert not wrong, f"{len(wrong)} of {len(cases)} sites differ, e.g. {wrong[:5]}"
    # the boundary rule in words: x = 0.5 with 2 CVs goes to the distal CV, x = 1 to the last
    assert site_cv(0.5, 2) == 1 and site_cv(0.0, 3) == 0 and site_cv(1.0, 3) == 2


@requires_arbor
def test_probe_stencil_matches_arbor_interpolation():
    from crosssim.discretization import probe_stencil

    probe_xs = list(SITES) + [1 / 3, 2 / 3, 1 / 6, 0.05, 0.95, 1 / 22, 21 / 22]
    cases = [(n_cvs, 0.13) for n_cvs in (1, 2, 3, 4, 11)]
    per_cv, probed = _arbor_cell_recipe(cases, 100.0, probe_xs)
    for (n_cvs, _), values, readings in zip(cases, per_cv, probed):
        assert len(values) == n_cvs
        for x, reading in zip(probe_xs, readings):
            first, second, weight = probe_stencil(x, n_cvs)
            expected = (1 - weight) * values[first] + weight * values[second]
            assert reading == pytest.approx(expected, abs=1e-12), (n_cvs, x)


def test_clamp_steps_rule():
    from crosssim.discretization import clamp_steps

    assert clamp_steps(1.0, 0.5, 0.25, 100) == (4, 5)  # t = 1.0, 1.25; 1.5 is off
    assert clamp_steps(0.9, 0.1, 0.25, 100) is None  # [0.9, 1.0) holds no step start
    assert clamp_steps(1.1, 0.5, 0.25, 100) == (5, 6)
    assert clamp_steps(0.0, 0.0, 0.01, 100) is None
    assert clamp_steps(0.0, 1e9, 0.01, 100) == (0, 99)  # cut at the last step that matters
    assert clamp_steps(0.103, 0.05, 0.01, 1000) == (11, 15)


# Discretization mapping --------------------------------------------------------------------


@requires_arbor
@pytest.mark.parametrize("length_um, extent_um", [
    (100.0, 100.0 / 7.0), (100.0, 0.1), (1.0, 1.0 / 3.0), (100.0, 7.0), (100.0, 100.0),
    (100.0, 100.0 / 3.0), (0.7, 0.1), (250.0, 7.0), (33.0, 7.0), (100.0, 18.181818181818183),
    (1000.0, 0.1), (100.0, 0.22)])
def test_arbor_max_extent_gives_model_cv_count(length_um, extent_um):
    import arbor

    from crosssim.backends.arbor import _compat

    tree = arbor.segment_tree()
    tree.append(arbor.mnpos, arbor.mpoint(0, 0, 0, 1), arbor.mpoint(length_um, 0, 0, 1), tag=1)
    cell = _compat.cable_cell(tree, arbor.decor(), arbor.label_dict(),
                              _compat.max_extent_cv_policy(extent_um))
    assert _compat.count_cvs(cell) == Discretization(max_extent_um=extent_um).cvs_for(length_um)


@requires_arbor
def test_arbor_max_extent_rounds_differently_on_float_edges():
    """Known difference, why the adapter passes the model's count to fixed_per_branch:
    Arbor's max_extent computes ceil(L * (1/extent)) without slack, so 1.1 um at 0.22 um
    (1.1 * (1/0.22) = 5.000000000000001) gives 6 CVs where the model says 5."""
    import arbor

    from crosssim.backends.arbor import _compat
    from crosssim.backends.arbor.recipe import CrossSimRecipe

    tree = arbor.segment_tree()
    tree.append(arbor.mnpos, arbor.mpoint(0, 0, 0, 1), arbor.mpoint(1.1, 0, 0, 1), tag=1)
    cell = _compat.cable_cell(tree, arbor.decor(), arbor.label_dict(),
                              _compat.max_extent_cv_policy(0.22))
    assert _compat.count_cvs(cell) == math.ceil(1.1 * (1 / 0.22)) == 6
    model = _model("edge", [_cell("a", -70.0, length_um=1.1)], max_extent=0.22, t_stop=0.1)
    assert model.cvs(model.cells[0]) == 5
    assert _compat.count_cvs(CrossSimRecipe(model).cell_description(0)) == 5


@requires_arbor
def test_arbor_recipe_uses_model_cv_counts_and_threads():
    from crosssim.backends.arbor import _compat
    from crosssim.backends.arbor.recipe import CrossSimRecipe

    model = _geometries_max_extent()
    recipe = CrossSimRecipe(model)
    assert [_compat.count_cvs(recipe.cell_description(gid)) for gid in range(3)] == [
        model.cvs(cell) for cell in model.cells] == [36, 5, 5]
    # each cell returns its own half of every junction, the self-junction twice
    assert len(recipe.gap_junctions_on(0)) == 4
    one = _run("arbor", model, threads=1)
    two = _run("arbor", model, threads=2)
    assert two.info["threads"] == 2
    assert _max_difference(one, two) <= 1e-12


# Against the mathematics: lumped equilibrium -----------------------------------------------


def _lumped_equilibrium(model) -> np.ndarray:
    """Solve G_i (V_i - E_i) + sum_j g_ij (V_i - V_j) = 0 for V (mV); G = g_leak * area."""
    index = model.cell_index()
    size = len(model.cells)
    matrix = np.zeros((size, size))
    rhs = np.zeros(size)
    for i, cell in enumerate(model.cells):
        conductance_uS = cell.g_leak_S_per_cm2 * cell.area_um2 * 1e-8 * 1e6
        matrix[i, i] += conductance_uS
        rhs[i] = conductance_uS * cell.e_leak_mV
    for junction in model.gap_junctions:
        a, b = (index[name] for name in junction.cells)
        matrix[a, a] += junction.g_uS
        matrix[b, b] += junction.g_uS
        matrix[a, b] -= junction.g_uS
        matrix[b, a] -= junction.g_uS
    return np.linalg.solve(matrix, rhs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_run_reaches_lumped_equilibrium(backend):
    seed = builtin_model("two_cells")
    model = seed.replace(simulation={"t_stop_ms": 100.0, "dt_ms": 0.025, "sample_dt_ms": 0.5})
    expected = _lumped_equilibrium(model)
    assert expected == pytest.approx([-89.7039, -70.2961], abs=1e-4)
    result = _run(backend, model)
    assert result.values_mV.shape == (2, 201)
    np.testing.assert_allclose(result.values_mV[:, -1], expected, rtol=0, atol=0.01)

    chain = _chain3().replace(
        simulation={"t_stop_ms": 100.0, "dt_ms": 0.025, "sample_dt_ms": 1.0},
        discretization={"cvs_per_cell": 1}, stimuli=[], probes=[])
    result = _run(backend, chain)
    np.testing.assert_allclose(result.values_mV[:, -1], _lumped_equilibrium(chain),
                               rtol=0, atol=0.01)


# NEURON options ---------------------------------------------------------------------------


@requires_arbor
@requires_neuron
def test_neuron_secondorder_option_is_honoured():
    seed = builtin_model("two_cells")
    settings = {"t_stop_ms": 20.0, "dt_ms": 0.025}
    implicit = seed.replace(simulation=settings)
    crank = seed.replace(simulation=settings, backends={"neuron": {"secondorder": 2}})
    euler = _run("neuron", implicit)
    second = _run("neuron", crank)
    arbor_result = _run("arbor", implicit)
    assert euler.info["secondorder"] == 0 and second.info["secondorder"] == 2
    method_gap = _max_difference(euler, second)
    assert 0.02 < method_gap < 1.0, method_gap
    assert _max_difference(euler, arbor_result) <= MATCHED_ATOL_MV
    # long-time limit: both methods reach the same steady state
    late = abs(second.values_mV[:, -1] - arbor_result.values_mV[:, -1]).max()
    assert late < 1e-6, late
    print(f"secondorder 2 vs 0: {method_gap:.3g} mV max; vs arbor at 20 ms: {late:.2g} mV")


@requires_neuron
def test_neuron_nthread_gives_same_result():
    model = _chain3()
    one = _run("neuron", model)
    two = _run("neuron", model, nthread=2)
    assert two.info["nthread"] == 2
    assert _max_difference(one, two) <= 1e-12


# Child process failures -------------------------------------------------------------------


@requires_neuron
@pytest.mark.parametrize("hook, expected", [
    ("segv", "SIGSEGV"),
    ("error", "RuntimeError: simulated failure"),
])
def test_neuron_child_failure_becomes_backend_error(monkeypatch, seed_model, hook, expected):
    monkeypatch.setenv("CROSSSIM_TEST_CRASH", hook)
    with pytest.raises(BackendError) as caught:
        _run("neuron", seed_model)
    assert caught.value.backend == "neuron"
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    monkeypatch.delenv("CROSSSIM_TEST_CRASH")
    assert _run("neuron", seed_model).values_mV.shape == (2, 501)  # the parent lives on


@requires_neuron
def test_neuron_child_timeout(monkeypatch, seed_model):
    monkeypatch.setenv("CROSSSIM_TEST_CRASH", "hang")
    with pytest.raises(BackendError, match="timed out after 3 s"):
        _run("neuron", seed_model, timeout_s=3.0)


# The MOD compile cache ----------------------------------------------------------------------


@requires_neuron
def test_mechanism_cache_compiles_once(monkeypatch, tmp_path):
    from crosssim.backends.neuron import mechanisms

    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path))
    folder = mechanisms.ensure_mechanisms()
    assert mechanisms.compile_count(tmp_path) == 1
    assert folder.parent == tmp_path and folder.name.startswith("mod-")
    assert mechanisms.mechanism_hash().startswith(folder.name[len("mod-"):])
    assert mechanisms.mechanism_library(folder).is_file()
    assert mechanisms.ensure_mechanisms() == folder
    assert mechanisms.compile_count(tmp_path) == 1
    assert not list(tmp_path.glob(".mod-*-*"))  # no staging leftovers


@requires_neuron
def test_mechanism_compile_says_so_on_stderr(monkeypatch, tmp_path, capsys):
    from crosssim.backends.neuron import mechanisms

    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path))
    mechanisms.ensure_mechanisms()
    first = capsys.readouterr()
    assert "compiling NEURON mechanisms" in first.err and "first use only" in first.err
    assert "compiled NEURON mechanisms in" in first.err
    assert first.out == ""
    mechanisms.ensure_mechanisms()  # cached: silent
    assert capsys.readouterr().err == ""


@requires_neuron
def test_mechanism_cache_concurrent_first_use(tmp_path):
    script = textwrap.dedent("""
        from crosssim.backends.neuron.mechanisms import ensure_mechanisms
        print(ensure_mechanisms())
    """)
    env = {**os.environ, "CROSSSIM_CACHE_DIR": str(tmp_path)}
    children = [subprocess.Popen([sys.executable, "-c", script], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    outputs = [child.communicate(timeout=300) for child in children]
    for child, (_out, err) in zip(children, outputs):
        assert child.returncode == 0, err
    folders = {out.strip() for out, _ in outputs}
    assert len(folders) == 1
    from crosssim.backends.neuron.mechanisms import compile_count, mechanism_library

    assert compile_count(tmp_path) == 1
    library = mechanism_library(Path(folders.pop()))
    check = (f"from neuron import h; h.nrn_load_dll({str(library)!r}); "
             "assert hasattr(h, 'CrosssimGap'); print('loaded')")
    loaded = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True,
                            check=False,
                            text=True, timeout=120)
    assert loaded.returncode == 0 and "loaded" in loaded.stdout, loaded.stderr


def test_missing_nrnivmodl_names_the_fix(monkeypatch, tmp_path):
    from crosssim.backends.neuron import mechanisms

    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(mechanisms, "_neuron_version", lambda: "9.0.test")
    with pytest.raises(MechanismBuildError, match="nrnivmodl not found.*pip install neuron"):
        mechanisms.ensure_mechanisms()


def test_missing_compiler_names_the_fix(monkeypatch, tmp_path):
    from crosssim.backends.neuron import mechanisms

    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "nrnivmodl"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(mechanisms, "_neuron_version", lambda: "9.0.test")
    with pytest.raises(MechanismBuildError, match="no C\\+\\+ compiler.*build-essential"):
        mechanisms.ensure_mechanisms()
    assert mechanisms.compile_count(tmp_path / "cache") == 0


def test_importing_backends_imports_no_simulator():
    code = ("import sys, crosssim.backends.neuron, crosssim.backends.arbor; "
            "print(sorted(m for m in ('neuron', 'arbor') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
