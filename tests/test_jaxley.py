"""The Jaxley backend: registration without Jaxley, agreement with Arbor and NEURON to 1e-9 mV
(every built-in model, every model of test_backends, the fuzzing corpus), the junction
coupling, float64, and one compiled program per model structure.

Tests that run Jaxley are skipped only when Jaxley is not installed
(``pip install 'crosssim[jaxley]'``); the three-way comparisons also need Arbor and NEURON.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import requires_arbor, requires_jaxley, requires_neuron
from hypothesis import HealthCheck, assume, given, note, settings
from test_backends import _max_difference as _worst
from test_backends import _run

from crosssim.builtin import BUILTINS, builtin_model
from crosssim.errors import BackendUnavailableError, InvalidModelError
from crosssim.model import dumps_model, model_from_dict
from crosssim.sources import SIMULATOR, source_spec

#: Largest allowed |jaxley - arbor| and |jaxley - neuron| in mV at any sample.
ATOL_MV = 1e-9



def three_way(test):
    """Needs Jaxley, Arbor and NEURON (skipped only when one is not installed)."""
    return requires_jaxley(requires_arbor(requires_neuron(test)))


def _assert_three_agree(model, atol: float = ATOL_MV) -> dict[str, float]:
    """Run Jaxley, Arbor and NEURON; fail naming the worst sample if Jaxley is off."""
    __tracebackhide__ = True
    jaxley = _run("jaxley", model)
    worst = {}
    for other in ("arbor", "neuron"):
        result = _run(other, model)
        worst[other] = _worst(jaxley, result)
        if worst[other] > atol:
            difference = np.abs(jaxley.values_mV - result.values_mV)
            row, col = np.unravel_index(np.argmax(difference), difference.shape)
            pytest.fail(
                f"{model.name}: max |jaxley - {other}| = {worst[other]:.3g} mV > {atol:g} mV "
                f"at probe {jaxley.probes[row]!r}, t = {jaxley.times_ms[col]:g} ms (jaxley "
                f"{jaxley.values_mV[row, col]!r}, {other} {result.values_mV[row, col]!r})")
    return worst


# Registration: no Jaxley needed -------------------------------------------------------------


def test_jaxley_is_a_registered_simulator_with_the_extra_as_install_hint():
    spec = source_spec("jaxley")
    assert spec.kind == SIMULATOR
    assert spec.requires == ("jaxley", "jax")
    assert spec.install_hint() == "pip install 'crosssim[jaxley]'"


def test_missing_jaxley_is_backend_unavailable_with_the_pip_command(monkeypatch):
    import importlib.util

    from crosssim import sources

    real = importlib.util.find_spec
    monkeypatch.setattr(sources.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("jaxley", "jax") else real(name, *a))
    assert "jaxley" not in sources.available_sources()
    with pytest.raises(BackendUnavailableError, match=r"pip install 'crosssim\[jaxley\]'") as e:
        source_spec("jaxley").load()
    assert e.value.exit_code == 3


def test_run_backend_jaxley_without_jaxley_exits_3_with_the_pip_command(tmp_path):
    """``crosssim run --backend jaxley`` where Jaxley cannot be found (hidden by an import
    hook in a child process): exit 3, the pip command on stderr."""
    code = textwrap.dedent("""
        import importlib.abc, sys

        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in ("jaxley", "jax"):
                    raise ModuleNotFoundError(name)
                return None

        sys.meta_path.insert(0, Hide())
        from crosssim.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code, "run", "two_cells", "--backend", "jaxley", "--out",
         str(tmp_path / "out"), "--no-plot"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "pip install 'crosssim[jaxley]'" in done.stderr


def test_importing_crosssim_and_the_backend_imports_no_jax():
    code = ("import sys, crosssim, crosssim.sources, crosssim.backends, "
            "crosssim.backends.jaxley, crosssim.backends.jaxley.network; "
            "print(sorted(m for m in ('jax', 'jaxley', 'jaxlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# Agreement with Arbor and NEURON ------------------------------------------------------------


#: The built-in models of unbranched passive cables (Jaxley's adapter runs cables; tree
#: models are skipped as not applicable, tests/test_sources.py; active ones such as hh_ring
#: agree to the spike gates, not to round-off: tests/test_hh_backends.py).
CABLE_BUILTINS = ("chain", "grid", "ring", "two_cells")


def test_the_cable_builtins_are_every_builtin_without_trees():
    from crosssim.builtin import _load_generators

    _load_generators()
    assert {name for name in BUILTINS if not builtin_model(name).has_trees
            and not builtin_model(name).is_active} == set(CABLE_BUILTINS)


@pytest.mark.parametrize("name", CABLE_BUILTINS)
@three_way
def test_every_builtin_model_agrees(name):
    worst = _assert_three_agree(builtin_model(name))
    print(f"{name}: max |jaxley - arbor| = {worst['arbor']:.3g}, "
          f"|jaxley - neuron| = {worst['neuron']:.3g} mV")


def _test_backends_models():
    from test_backends import MATCHED_MODELS

    return MATCHED_MODELS


@pytest.mark.parametrize("name", ["seed", "seed_11cvs", "chain3", "ends_off_centre",
                                  "geometries_max_extent", "boundaries_off_grid_clamps"])
@three_way
def test_every_test_backends_model_agrees(name):
    worst = _assert_three_agree(_test_backends_models()[name]())
    print(f"{name}: {worst}")


@pytest.mark.parametrize("n_cvs", [1, 11])
@three_way
def test_seed_with_clamps_and_off_centre_sites_agrees(n_cvs):
    """The seed's junction moved off centre, clamps on and off during the run."""
    seed = builtin_model("two_cells")
    data = seed.to_dict()
    data["discretization"] = {"cvs_per_cell": n_cvs}
    data["gap_junctions"] = [{"cells": ["a", "b"], "x": [0.3, 0.85], "g_uS": 0.01}]
    data["stimuli"] = [
        {"cell": "a", "x": 0.55, "delay_ms": 0.5, "duration_ms": 2.0, "amplitude_nA": 0.1},
        {"cell": "b", "x": 0.05, "delay_ms": 1.234, "duration_ms": 3.0, "amplitude_nA": -0.05},
    ]
    data["probes"] = [{"cell": "a", "x": 0.3}, {"cell": "b", "x": 0.85},
                      {"cell": "a", "x": 0.0}, {"cell": "b", "x": 0.61}]
    _assert_three_agree(model_from_dict(data, source="<test seed off centre>"))


@pytest.mark.parametrize("n_cells", [10, 100])
@three_way
def test_rings_agree(n_cells):
    _assert_three_agree(builtin_model("ring", {"n_cells": n_cells, "clamp_every": 3}))


def _small_models():
    from test_fuzz import small_models

    return small_models()


@pytest.mark.slow
@requires_jaxley
@requires_arbor
@requires_neuron
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_small_models())
def test_fuzzing_corpus_agrees_on_three_backends(data):
    """tests/test_fuzz.py's small valid models: Jaxley within 1e-9 mV of Arbor and NEURON."""
    try:
        model = model_from_dict(data, source="fuzz.toml")
    except InvalidModelError:
        assume(False)
        raise
    note(dumps_model(model))
    _assert_three_agree(model)


# The coupling, float64 and compilation -----------------------------------------------------


@requires_jaxley
def test_junction_is_implicit_in_its_site_explicit_in_the_peer():
    """One step of the seed (1 CV each) against the two-compartment implicit-Euler update
    written out by hand: C (v' - v)/dt = -G (v' - E) - g (v' - v_peer), v_peer of the
    previous step."""
    seed = builtin_model("two_cells").replace(
        simulation={"t_stop_ms": 0.01, "dt_ms": 0.01})
    result = _run("jaxley", seed)
    dt = 0.01
    expected = []
    for cell, peer in zip(seed.cells, reversed(seed.cells)):
        area_cm2 = cell.area_um2 * 1e-8
        capacitance_nF = cell.cm_F_per_m2 * 100.0 * area_cm2 * 1e3  # uF/cm^2 -> nF
        leak_uS = cell.g_leak_S_per_cm2 * area_cm2 * 1e6
        g_uS = seed.gap_junctions[0].g_uS
        v, v_peer = cell.initial_mV, peer.initial_mV
        v_new = ((capacitance_nF / dt) * v + leak_uS * cell.e_leak_mV + g_uS * v_peer) / (
            capacitance_nF / dt + leak_uS + g_uS)
        expected.append(v_new)
    np.testing.assert_allclose(result.values_mV[:, -1], expected, rtol=0, atol=1e-12)


@requires_jaxley
def test_runs_in_float64():
    result = _run("jaxley", builtin_model("two_cells"))
    assert result.info["dtype"] == "float64"
    import jax.numpy as jnp

    assert jnp.asarray(1.0).dtype == jnp.float64


@requires_jaxley
def test_one_structure_compiles_once_and_values_are_arguments():
    """Two models that differ only in values (geometry, conductances, reversal and initial
    voltages, junction conductance, clamp amplitude and timing) share one compiled program
    in a process, and the reused program gives what a fresh compile gives, bit for bit."""
    from crosssim.backends.jaxley import network

    base = builtin_model("ring", {"n_cells": 5, "cvs_per_cell": 3, "clamp_every": 2,
                                  "t_stop_ms": 2.0})
    data = base.to_dict()
    for cell in data["cells"]:
        cell.update(length_um=80.0, radius_um=2.0, ra_ohm_cm=120.0, cm_F_per_m2=0.01,
                    g_leak_S_per_cm2=0.0005, e_leak_mV=cell["e_leak_mV"] + 7.0,
                    v_init_mV=-65.0)
    for junction in data["gap_junctions"]:
        junction["g_uS"] = 0.03
    for stimulus in data["stimuli"]:
        stimulus.update(amplitude_nA=-0.2, delay_ms=0.3, duration_ms=0.7)
    other = model_from_dict(data, source="<test other values>")

    network.clear_cache()
    first = _run("jaxley", base)
    reused = _run("jaxley", other)
    assert not first.info["reused"] and reused.info["reused"]
    assert first.info["structure"] == reused.info["structure"]
    assert reused.info["compile_s"] == 0.0
    network.clear_cache()
    fresh = _run("jaxley", other)
    assert not fresh.info["reused"]
    np.testing.assert_array_equal(reused.values_mV, fresh.values_mV)
    assert _worst(first, reused) > 1.0  # the values did change the traces

    moved = base.replace(probes=[{"cell": "c0", "x": 0.1}])  # another recorded CV
    assert not _run("jaxley", moved).info["reused"]


@pytest.mark.parametrize("n_cvs", [2, 11])
@three_way
def test_site_and_probe_grid_agrees(n_cvs):
    """test_backends' grid: clamps, junctions and probes at x = 0, 0.1, 0.25, 0.5, 0.77, 1
    (CV boundaries and ends included) on cells of 2 and 11 CVs."""
    from test_backends import SITES, _cell, _model

    count = len(SITES)
    cells = [_cell(f"c{k}", -90.0 + 6.0 * k) for k in range(count)]
    junctions = [((f"c{k}", f"c{k + 1}"), (SITES[k], SITES[(k + 2) % count]), 0.004 * (k + 1))
                 for k in range(count - 1)]
    stimuli = [(f"c{k}", SITES[k], 0.1 * k, 0.6, 0.02 * (k + 1)) for k in range(count)]
    probes = [(f"c{k}", x) for k in range(count) for x in SITES]
    _assert_three_agree(_model(f"sites{n_cvs}", cells, junctions=junctions, probes=probes,
                               stimuli=stimuli, t_stop=1.5, dt=0.025, cvs=n_cvs))


@requires_jaxley
def test_node_table_copy_equals_jaxleys_own_to_jax():
    """_compat.to_jax (numpy) gives exactly the arrays Jaxley's Module.to_jax gives."""
    from crosssim.backends.jaxley import _compat, network

    model = builtin_model("ring", {"n_cells": 6, "cvs_per_cell": 3, "clamp_every": 2})
    structure, values, _ = network.lower(model)
    net = network.build(structure, values).network
    net.to_jax()
    nodes, edges = dict(net.jaxnodes), dict(net.jaxedges)
    _compat.to_jax(net)
    assert set(net.jaxnodes) == set(nodes) and set(net.jaxedges) == set(edges)
    for mine, theirs in ((net.jaxnodes, nodes), (net.jaxedges, edges)):
        for key, array in theirs.items():
            assert np.asarray(mine[key]).dtype == np.asarray(array).dtype, key
            np.testing.assert_array_equal(np.asarray(mine[key]), np.asarray(array), err_msg=key)


@pytest.mark.slow
@requires_jaxley
def test_values_stay_out_of_the_program_so_a_fresh_process_hits_the_compilation_cache(
        tmp_path):
    """A sweep point in a fresh process (as the study executors run them) compiles nothing
    new when a model of the same structure ran before: JAX's persistent cache (which the
    first process filled) gains no entry."""
    code = textwrap.dedent("""
        import sys
        from crosssim.backends import run_backend
        from crosssim.builtin import builtin_model
        params = {"n_cells": int(sys.argv[1]), "cvs_per_cell": 3, "t_stop_ms": 1.0,
                  "g_uS": float(sys.argv[2]), "clamp_every": 2, "clamp_nA": float(sys.argv[2])}
        print(run_backend("jaxley", builtin_model("ring", params)).info["compilation_cache"])
    """)
    env = {**__import__("os").environ, "CROSSSIM_CACHE_DIR": str(tmp_path)}

    def entries_after(n_cells: int, g: float) -> int:
        done = subprocess.run([sys.executable, "-c", code, str(n_cells), str(g)], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(tmp_path / "jax")
        return len(list((tmp_path / "jax").iterdir()))

    first = entries_after(4, 0.01)
    assert first > 0
    assert entries_after(4, 0.05) == first  # other values: every compile answered
