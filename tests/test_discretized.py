"""The references of the discretized model: ``discrete``, ``semidiscrete`` and the round-off floor.

Independent truths: Arbor and NEURON themselves (a simulator minus ``discrete`` is the
implementation part, round-off only), the exact cable solution (semidiscrete converges to
it with order 2 in CV size when sites sit at CV centres), a dense ``scipy.linalg.expm`` and
a hand assembly of the CV system.  Simulators are imported inside the tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import BACKENDS, requires_arbor, requires_neuron
from test_backends import MATCHED_MODELS

from crosssim.analytic import exact_cable
from crosssim.analytic.discretized import (
    cv_system,
    discrete,
    discrete_source_for,
    roundoff_floor_mV,
    semidiscrete,
    step_matrix_condition,
)
from crosssim.builtin import builtin_model
from crosssim.errors import EXIT_BACKEND, BackendError, SourceNotApplicableError
from crosssim.model import model_from_dict
from crosssim.sources import REFERENCE, run_source, source_spec

#: Largest allowed |simulator - discrete| in mV (or the model's round-off floor if larger).
IMPLEMENTATION_ATOL_MV = 1e-10


def _ring():
    """Ten seed cells end to end in a ring, 11 CVs each, a clamp on every third cell."""
    return builtin_model("ring", {"n_cells": 10, "clamp_every": 3, "t_stop_ms": 5.0})


MODELS = {**MATCHED_MODELS, "ring10_clamps": _ring}


def _max_difference(first, second) -> float:
    assert first.probes == second.probes
    np.testing.assert_array_equal(first.times_ms, second.times_ms)
    return float(np.max(np.abs(first.values_mV - second.values_mV)))


def _cable(n_cvs: int, *, t_stop: float = 5.0):
    """1 mm x 1 um passive cable, 0.1 nA clamp at x = 0, dt 0.05 ms, five probes."""
    cell = {"name": "a", "length_um": 1000.0, "radius_um": 1.0, "cm_F_per_m2": 0.01,
            "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -65.0}
    return model_from_dict({
        "name": "cable", "simulation": {"t_stop_ms": t_stop, "dt_ms": 0.05},
        "discretization": {"cvs_per_cell": n_cvs}, "cells": [cell],
        "probes": [{"cell": "a", "x": x} for x in (0.0, 0.25, 0.5, 0.75, 1.0)],
        "stimuli": [{"cell": "a", "x": 0.0, "delay_ms": 0.0, "duration_ms": 1000.0,
                     "amplitude_nA": 0.1}]}, source="<test cable>")


def _fitted_orders(steps: list[float], errors: list[float]) -> list[float]:
    return [math.log(errors[i] / errors[i + 1]) / math.log(steps[i] / steps[i + 1])
            for i in range(len(errors) - 1)]


# The implementation part: simulator - discrete is round-off ------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(MODELS))
def test_simulator_steps_exactly_the_discrete_recurrence(backend, name):
    model = MODELS[name]()
    reference = run_source("discrete", model)
    worst = _max_difference(run_source(backend, model), reference)
    allowed = max(IMPLEMENTATION_ATOL_MV, roundoff_floor_mV(model))
    assert worst <= allowed, (
        f"{name}: implementation part |{backend} - discrete| = {worst:.3g} mV > {allowed:.3g}")


@requires_neuron
@pytest.mark.parametrize("secondorder", [1, 2])
@pytest.mark.parametrize("name", ["chain3", "ends_off_centre", "boundaries_off_grid_clamps"])
def test_neuron_crank_nicolson_steps_the_discrete_cn_recurrence(name, secondorder):
    model = MODELS[name]().replace(backends={"neuron": {"secondorder": secondorder}})
    assert discrete_source_for("neuron", model) == "discrete_cn"
    assert discrete_source_for("arbor", model) == "discrete"
    neuron = run_source("neuron", model)
    assert _max_difference(neuron, run_source("discrete_cn", model)) <= IMPLEMENTATION_ATOL_MV
    # the schemes differ by far more than round-off: the comparison can tell them apart
    assert _max_difference(neuron, run_source("discrete", model)) > 1e-3


def test_discrete_cn_does_not_apply_when_neuron_steps_implicit_euler(seed_model):
    assert discrete_source_for("neuron", seed_model) == "discrete"
    with pytest.raises(SourceNotApplicableError) as info:
        run_source("discrete_cn", seed_model)
    assert isinstance(info.value, BackendError) and info.value.exit_code == EXIT_BACKEND
    assert "secondorder = 0" in str(info.value) and "'discrete'" in str(info.value)


def test_sources_are_registered_references():
    for name in ("discrete", "semidiscrete", "discrete_cn"):
        spec = source_spec(name)
        assert spec.kind == REFERENCE and spec.requires == () and spec.is_available()
    assert source_spec("discrete").default  # cheaper than Arbor's own run at scale
    assert source_spec("discrete").steps_like_simulators
    assert source_spec("discrete_cn").steps_like_simulators
    # semidiscrete: ~20 s on the 10,000-cell ring, so default runs leave it out above 20,000
    # CVs (with a note); discrete_cn applies only with secondorder != 0 (left out quietly)
    seed = builtin_model("two_cells")
    ring = builtin_model("ring", {"n_cells": 2000})
    assert source_spec("semidiscrete").leave_out(seed) is None
    assert "22000 CVs" in source_spec("semidiscrete").leave_out(ring)
    assert source_spec("discrete_cn").leave_out(seed) is not None
    second = seed.replace(backends={"neuron": {"secondorder": 2}})
    assert source_spec("discrete_cn").leave_out(second) is None


# The CV system itself ------------------------------------------------------------------


def test_cv_system_matches_a_hand_assembly():
    # one cell of 3 CVs: L = 90 um, a = 2 um, cm 0.01 F/m^2, Ra 100 ohm cm, g 1e-4 S/cm^2
    model = model_from_dict({
        "name": "hand", "simulation": {"t_stop_ms": 1.0, "dt_ms": 0.1},
        "discretization": {"cvs_per_cell": 3},
        "cells": [{"name": "a", "length_um": 90.0, "radius_um": 2.0, "cm_F_per_m2": 0.01,
                   "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -70.0},
                  {"name": "b", "length_um": 90.0, "radius_um": 2.0, "cm_F_per_m2": 0.01,
                   "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -50.0}],
        "gap_junctions": [{"cells": ["a", "b"], "x": [0.9, 1 / 3], "g_uS": 0.01}],
        "probes": [{"cell": "a", "x": 0.0}, {"cell": "a", "x": 0.5}, {"cell": "b", "x": 0.4}],
        "stimuli": [{"cell": "b", "x": 0.1, "delay_ms": 0.25, "duration_ms": 0.3,
                     "amplitude_nA": 0.1}]}, source="<test hand>")
    system = cv_system(model)
    area_um2 = 2 * math.pi * 2.0 * 30.0
    np.testing.assert_allclose(system.capacitance_nF, 0.01 * 1e-3 * area_um2, rtol=1e-14)
    np.testing.assert_allclose(system.leak_uS, 1e-4 * 1e-2 * area_um2, rtol=1e-14)
    link = 1.0 / (100.0 * 1e-2 * 30.0 / (math.pi * 2.0**2))  # 1 / (Ra * h / (pi a^2)), uS
    np.testing.assert_allclose(system.link_uS, [link, link, 0.0, link, link], rtol=1e-14)
    # x = 0.9 -> last CV of a (2); x = 1/3 sits on a boundary -> the distal CV of b (3 + 1)
    assert sorted(zip(system.half_cv.tolist(), system.half_peer_cv.tolist())) == [(2, 4), (4, 2)]
    assert system.clamp_cv.tolist() == [3]
    assert system.clamp_steps.tolist() == [[3, 5]]  # on while 0.25 <= k * 0.1 < 0.55
    # x = 0: extrapolated from the first pair of centres (1/6, 1/2): weight -1/2
    np.testing.assert_allclose(system.probe_weight, [-0.5, 0.0, 0.7], atol=1e-12)
    assert system.probe_first.tolist() == [0, 1, 3] and system.probe_second.tolist()[1] == 1
    stiffness = system.stiffness().toarray()
    np.testing.assert_allclose(stiffness, stiffness.T, rtol=0, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(stiffness) > 0)


# semidiscrete: exact in time -------------------------------------------------------------


def _dense_expm_reference(model) -> np.ndarray:
    """Probe traces of C dV/dt = -K V + G E + I(t) by dense expm, interval by interval."""
    from scipy.linalg import expm

    system = cv_system(model)
    stiffness = system.stiffness().toarray()
    capacitance = system.capacitance_nF
    n = capacitance.size
    times = model.simulation.sample_times_ms()

    def generator(current: np.ndarray) -> np.ndarray:
        augmented = np.zeros((n + 1, n + 1))  # d/dt [V; 1] = [[-K/C, (GE + I)/C], [0, 0]]
        augmented[:n, :n] = -stiffness / capacitance[:, None]
        augmented[:n, n] = (system.leak_source_nA() + current) / capacitance
        return augmented

    switches = sorted({0.0} | {s.delay_ms for s in model.stimuli}
                      | {s.delay_ms + s.duration_ms for s in model.stimuli})
    state, at = np.append(system.v_init_mV, 1.0), 0.0
    nodes = np.empty((n, times.size))
    for k, t in enumerate(times):
        for switch in [w for w in switches if at < w < t] + [t]:
            current = np.zeros(n)
            for s, cv in zip(model.stimuli, system.clamp_cv):
                if s.delay_ms <= at < s.delay_ms + s.duration_ms:
                    current[cv] += s.amplitude_nA
            state = expm(generator(current) * (switch - at)) @ state
            at = switch
        nodes[:, k] = state[:n]
    rows, first, second = system.probe_rows()
    return system.read_probes(nodes[rows], first, second)


def test_semidiscrete_matches_dense_expm_on_a_tiny_model():
    model = model_from_dict({
        "name": "tiny", "simulation": {"t_stop_ms": 2.0, "dt_ms": 0.01, "sample_dt_ms": 0.05},
        "discretization": {"cvs_per_cell": 3},
        "cells": [{"name": "a", "length_um": 60.0, "radius_um": 1.5, "cm_F_per_m2": 0.01,
                   "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 2e-4, "e_leak_mV": -70.0,
                   "v_init_mV": -60.0},
                  {"name": "b", "length_um": 40.0, "radius_um": 1.0, "cm_F_per_m2": 0.01,
                   "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -50.0}],
        "gap_junctions": [{"cells": ["a", "b"], "x": [0.8, 0.1], "g_uS": 0.002}],
        "probes": [{"cell": "a", "x": 0.0}, {"cell": "a", "x": 0.6}, {"cell": "b", "x": 1.0}],
        "stimuli": [{"cell": "a", "x": 0.5, "delay_ms": 0.5, "duration_ms": 0.75,
                     "amplitude_nA": 0.02}]}, source="<test tiny>")
    expected = _dense_expm_reference(model)
    for method in ("eigen", "laplace"):
        result = semidiscrete(model, method=method)
        assert result.backend == "semidiscrete"
        np.testing.assert_allclose(result.values_mV, expected, rtol=0, atol=1e-10,
                                   err_msg=method)


@pytest.mark.parametrize("name", ["chain3", "ends_off_centre", "geometries_max_extent"])
def test_semidiscrete_eigen_and_laplace_agree(name):
    model = MODELS[name]()
    eigen = semidiscrete(model, method="eigen")
    laplace = semidiscrete(model, method="laplace")
    assert "eigendecomposition" in eigen.info["method"]
    assert "Laplace" in laplace.info["method"] and laplace.info["contour_nodes"] > 0
    assert _max_difference(eigen, laplace) < 1e-9


def test_semidiscrete_converges_to_exact_cable_with_order_two_at_cv_centres():
    # junction, clamp and probes at x = 0.5: a CV centre for odd CV counts
    base = builtin_model("two_cells").replace(stimuli=[
        {"cell": "a", "x": 0.5, "delay_ms": 1.0, "duration_ms": 2.0, "amplitude_nA": 0.1}])
    exact = exact_cable(base)
    counts = [5, 15, 45]
    errors = [_max_difference(semidiscrete(base.replace(discretization={"cvs_per_cell": n})),
                              exact) for n in counts]
    orders = _fitted_orders([1 / n for n in counts], errors)
    assert all(1.9 < order < 2.1 for order in orders), (errors, orders)  # measured 2.0006, 2.0001


def test_discrete_converges_to_semidiscrete_with_order_one_in_dt():
    model = builtin_model("two_cells").replace(
        discretization={"cvs_per_cell": 11},
        stimuli=[{"cell": "a", "x": 0.5, "delay_ms": 1.0, "duration_ms": 2.0,
                  "amplitude_nA": 0.1}])
    steps = [0.02, 0.01, 0.005]
    errors = []
    for dt in steps:
        refined = model.replace(simulation={"t_stop_ms": 5.0, "dt_ms": dt, "sample_dt_ms": 0.02})
        errors.append(_max_difference(discrete(refined), semidiscrete(refined)))
    orders = _fitted_orders(steps, errors)
    assert all(0.9 < order < 1.1 for order in orders), (errors, orders)  # measured 0.97, 0.99


# The round-off floor ---------------------------------------------------------------------


@requires_arbor
@requires_neuron
def test_roundoff_floor_bounds_arbor_vs_neuron_on_a_1000_cv_cable():
    model = _cable(1000)
    arbor, neuron = run_source("arbor", model), run_source("neuron", model)
    measured = max(_max_difference(arbor, neuron),
                   _max_difference(arbor, run_source("discrete", model)),
                   _max_difference(neuron, run_source("discrete", model)))
    floor = roundoff_floor_mV(model)
    assert measured <= floor <= 30 * measured, (measured, floor)  # measured 2.3e-9, 8.0e-9
    assert floor > 1e-6 / 200  # the default 1e-6 mV gate is near: the floor matters here


def test_roundoff_floor_of_the_seed_is_far_below_the_default_tolerance(seed_model):
    one_cv = roundoff_floor_mV(seed_model)
    eleven = roundoff_floor_mV(seed_model.replace(discretization={"cvs_per_cell": 11}))
    assert 6.5e-13 < one_cv < eleven < 1e-9  # Arbor vs NEURON measured 6.5e-13 / 1.5e-11


def test_roundoff_floor_grows_with_the_square_of_the_cv_count():
    conditions = [step_matrix_condition(_cable(n)) for n in (1000, 2000, 4000)]
    assert conditions[1] / conditions[0] == pytest.approx(4.0, rel=0.01)
    assert conditions[2] / conditions[1] == pytest.approx(4.0, rel=0.01)
    assert roundoff_floor_mV(_cable(4000)) > 10 * roundoff_floor_mV(_cable(1000))
