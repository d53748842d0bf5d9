"""Analytic references: closed forms, limits, symmetry and superposition.

The independent numerical references (finite volumes + Richardson, mpmath, expm) are in
``test_analytic_references.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crosssim.analytic import (
    ContourPlan,
    cable_steady_state,
    exact_cable,
    invert_laplace,
    laplace_responses,
    lumped,
    lumped_steady_state,
    sealed_cable_impedance,
)
from crosssim.builtin import SEED_CELL
from crosssim.model import model_from_dict


def _cell(name: str, **changes) -> dict:
    return {"name": name, **SEED_CELL, "e_leak_mV": -65.0, **changes}


def _model(cells, junctions=(), probes=(), stimuli=(), t_stop=3.0, dt=0.01, sample_dt=None):
    simulation = {"t_stop_ms": t_stop, "dt_ms": dt}
    if sample_dt is not None:
        simulation["sample_dt_ms"] = sample_dt
    return model_from_dict({
        "name": "test", "simulation": simulation, "cells": list(cells),
        "gap_junctions": list(junctions), "probes": list(probes), "stimuli": list(stimuli),
    })


def _asymmetric_pair(g_uS: float = 0.01, **extra) -> dict:
    """Two different cells, off-centre junction, v_init != e_leak (used by several tests)."""
    return {
        "cells": [
            _cell("p", length_um=150.0, radius_um=2.0, e_leak_mV=-72.0, v_init_mV=-60.0),
            _cell("q", length_um=80.0, radius_um=1.5, ra_ohm_cm=120.0, g_leak_S_per_cm2=0.0005,
                  e_leak_mV=-55.0, v_init_mV=-80.0),
        ],
        "junctions": [{"cells": ["p", "q"], "x": [0.2, 0.75], "g_uS": g_uS}],
        "probes": [{"cell": "p", "x": 0.2, "name": "p_gj"}, {"cell": "p", "x": 1.0},
                   {"cell": "q", "x": 0.75, "name": "q_gj"}, {"cell": "q", "x": 0.1}],
        **extra,
    }


# Seed example ----------------------------------------------------------------------------


def test_seed_exact_steady_state(seed_model):
    steady = cable_steady_state(seed_model)
    assert steady["a_gj"] == pytest.approx(-89.67898, abs=1e-5)
    assert steady["b_gj"] == pytest.approx(-70.32102, abs=1e-5)
    # the transient converges to it: 60 ms = 120 membrane time constants
    long_run = exact_cable(seed_model.replace(simulation={"t_stop_ms": 60.0, "dt_ms": 0.01,
                                                          "sample_dt_ms": 1.0}))
    assert long_run.values_mV[:, -1] == pytest.approx([steady["a_gj"], steady["b_gj"]],
                                                      abs=1e-9)


def test_seed_lumped_steady_state_and_closed_form(seed_model):
    steady = lumped_steady_state(seed_model)
    assert steady["a"] == pytest.approx(-89.7039, abs=1e-4)
    assert steady["b"] == pytest.approx(-70.2961, abs=1e-4)
    area_cm2 = 2 * math.pi * 3e-4 * 100e-4
    leak_uS = 0.001 * area_cm2 * 1e6
    g = 0.01
    for name, e_self, e_other in (("a", -100.0, -60.0), ("b", -60.0, -100.0)):
        closed = e_self + (e_other - e_self) * g / (leak_uS + 2 * g)
        assert steady[name] == pytest.approx(closed, abs=1e-12)
    run = lumped(seed_model.replace(simulation={"t_stop_ms": 40.0, "dt_ms": 0.01}))
    assert run.values_mV[:, -1] == pytest.approx([steady["a"], steady["b"]], abs=1e-10)


def test_seed_result_shape_and_start(seed_model):
    for result, backend in ((exact_cable(seed_model), "analytic"),
                            (lumped(seed_model), "lumped")):
        assert result.backend == backend
        assert result.probes == ["a_gj", "b_gj"]
        assert result.times_ms.shape == (501,)
        assert result.values_mV.shape == (2, 501)
        assert result.values_mV[:, 0].tolist() == [-100.0, -60.0]
        result.check_finite()
        # the two cells approach each other monotonically
        assert np.all(np.diff(result.values_mV[0]) > 0)
        assert np.all(np.diff(result.values_mV[1]) < 0)


# One sealed cable -------------------------------------------------------------------------


def _sealed_constants(cell: dict):
    """Cable constants from the raw fields, in ohm, cm, F, s (independent of the package)."""
    a_cm, length_cm = cell["radius_um"] * 1e-4, cell["length_um"] * 1e-4
    r_axial = cell["ra_ohm_cm"] / (math.pi * a_cm**2)  # ohm/cm
    g_membrane = cell["g_leak_S_per_cm2"] * 2 * math.pi * a_cm  # S/cm
    c_membrane = cell["cm_F_per_m2"] * 1e-4 * 2 * math.pi * a_cm  # F/cm
    lam = 1.0 / math.sqrt(r_axial * g_membrane)  # cm
    tau_s = c_membrane / g_membrane
    return r_axial, g_membrane, lam, tau_s, length_cm


@pytest.mark.parametrize("site", [0.0, 0.3])
def test_single_cable_input_resistance_and_charging_curve(site):
    cell = _cell("solo", length_um=250.0, radius_um=1.0, e_leak_mV=-70.0)
    amplitude = 0.2
    model = _model([cell], probes=[{"cell": "solo", "x": site}],
                   stimuli=[{"cell": "solo", "x": site, "delay_ms": 0.0, "duration_ms": 100.0,
                             "amplitude_nA": amplitude}],
                   t_stop=4.0, sample_dt=0.01)
    r_axial, g_membrane, lam, tau_s, length = _sealed_constants(cell)
    # steady state: the textbook input resistance of a sealed end, and the eigen series
    n = np.arange(1, 2_000_001, dtype=float)
    weights = 2 * np.cos(n * math.pi * site) ** 2 / (length * g_membrane
                                                   * (1 + (n * math.pi * lam / length) ** 2))
    # the tail n > N: 2 cos^2 averages to its mean over the last periods, sum 1/n^2 ~ 1/N
    mean_factor = np.mean(2 * np.cos(n[-1000:] * math.pi * site) ** 2)
    tail = mean_factor * length / (g_membrane * math.pi**2 * lam**2) / n[-1]
    series_ohm = 1 / (length * g_membrane) + weights.sum() + tail
    if site == 0.0:
        closed_ohm = r_axial * lam / math.tanh(length / lam)
        assert series_ohm == pytest.approx(closed_ohm, rel=1e-10)
    steady = cable_steady_state(model, with_clamps=True)[f"solo_x{site:g}"]
    assert (steady + 70.0) / amplitude == pytest.approx(series_ohm * 1e-6, rel=1e-10)
    z_dc = sealed_cable_impedance(model.cells[0], site, site, 0.0)
    assert z_dc.real == pytest.approx(series_ohm * 1e-6, rel=1e-10)
    # charging curve: V(t) - E = I * (R_in - sum_n w_n exp(-t / tau_n)), summed to convergence
    result = exact_cable(model)
    t_s = result.times_ms[1:] * 1e-3
    modes = np.arange(0, 400, dtype=float)
    mode_weight = np.where(modes == 0, 1.0, 2 * np.cos(modes * math.pi * site) ** 2) / (
        length * g_membrane * (1 + (modes * math.pi * lam / length) ** 2))
    rates = (1 + (modes * math.pi * lam / length) ** 2) / tau_s
    decay = mode_weight[:, None] * np.exp(-np.outer(rates, t_s))
    assert decay[-1].max() < 1e-30  # converged at the first sample (t = 0.01 ms)
    expected_mV = -70.0 + amplitude * 1e-6 * (series_ohm - decay.sum(axis=0))  # nA*ohm = 1e-6 mV
    assert np.max(np.abs(result.values_mV[0, 1:] - expected_mV)) < 1e-9
    assert result.values_mV[0, 0] == -70.0


def test_transfer_impedance_is_symmetric_and_matches_dc_closed_form():
    cell = model_from_dict({"name": "m", "simulation": {"t_stop_ms": 1, "dt_ms": 0.1},
                            "cells": [_cell("z", length_um=300.0)]}).cells[0]
    s = np.array([0.0, 0.3 + 2j, -0.5 + 40j, 1e6 + 1e7j])
    assert np.allclose(sealed_cable_impedance(cell, 0.2, 0.7, s),
                       sealed_cable_impedance(cell, 0.7, 0.2, s), rtol=1e-14)
    r_axial, _, lam, _, length = _sealed_constants(_cell("z", length_um=300.0))
    x, y = 0.2 * length, 0.7 * length
    closed = r_axial * lam * math.cosh(x / lam) * math.cosh((length - y) / lam) / math.sinh(
        length / lam) * 1e-6
    assert sealed_cable_impedance(cell, 0.2, 0.7, 0.0).real == pytest.approx(closed, rel=1e-12)
    assert np.all(np.isfinite(sealed_cable_impedance(cell, 0.0, 1.0, s)))


# Limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("g_uS", [0.0, 1e-14])
def test_vanishing_junction_leaves_cells_independent(g_uS):
    spec = _asymmetric_pair(g_uS=g_uS)
    model = _model(spec["cells"], spec["junctions"], spec["probes"], t_stop=2.0)
    result = exact_cable(model)
    t = result.times_ms
    for label, cell in (("p_gj", model.cells[0]), ("q_gj", model.cells[1])):
        alone = cell.e_leak_mV + (cell.initial_mV - cell.e_leak_mV) * np.exp(-t / cell.tau_ms)
        # a 1e-14 uS junction moves the voltage by about g * 40 mV * t / C ~ 2e-10 mV
        assert np.max(np.abs(result.trace(label) - alone)) < 1e-9
        lumped_alone = lumped(model).trace(label)
        assert np.max(np.abs(lumped_alone - alone)) < 1e-9


def test_very_large_junction_joins_the_sites():
    spec = _asymmetric_pair(g_uS=1e4)
    model = _model(spec["cells"], spec["junctions"], spec["probes"],
                   stimuli=[{"cell": "p", "x": 0.9, "delay_ms": 0.2, "duration_ms": 1.0,
                             "amplitude_nA": 0.3}], t_stop=2.0)
    result = exact_cable(model)
    joined = np.abs(result.trace("p_gj") - result.trace("q_gj"))
    # the junction current is at most a few nA, so the sites differ by < 1e-3 mV
    assert joined[0] == pytest.approx(20.0)  # v_init differs: -60 vs -80 mV at t = 0
    assert np.max(joined[10:]) < 1e-3
    steady = cable_steady_state(model)
    assert steady["p_gj"] == pytest.approx(steady["q_gj"], abs=1e-5)
    lumped_run = lumped(model)
    assert np.max(np.abs(lumped_run.trace("p_gj") - lumped_run.trace("q_gj"))[10:]) < 1e-3


def test_swapping_the_cells_swaps_the_traces():
    spec = _asymmetric_pair()
    stimuli = [{"cell": "q", "x": 0.4, "delay_ms": 0.3, "duration_ms": 0.7, "amplitude_nA": 0.1}]
    model = _model(spec["cells"], spec["junctions"], spec["probes"], stimuli)
    swapped = _model(spec["cells"][::-1],
                     [{"cells": ["q", "p"], "x": [0.75, 0.2], "g_uS": 0.01}],
                     spec["probes"][::-1], stimuli)
    for solve in (exact_cable, lumped):
        a, b = solve(model), solve(swapped)
        for label in a.probes:
            assert np.max(np.abs(a.trace(label) - b.trace(label))) < 1e-10


def test_superposition_of_clamps():
    """All clamps together = sum of single-clamp responses - (n - 1) x rest (two share a site)."""
    spec = _asymmetric_pair()
    clamps = [
        {"cell": "p", "x": 0.6, "delay_ms": 0.25, "duration_ms": 1.0, "amplitude_nA": 0.2},
        {"cell": "q", "x": 0.0, "delay_ms": 0.333, "duration_ms": 2.5, "amplitude_nA": -0.1},
        {"cell": "p", "x": 0.6, "delay_ms": 0.7, "duration_ms": 1.5, "amplitude_nA": -0.15},
    ]

    def run(stimuli):
        model = _model(spec["cells"], spec["junctions"], spec["probes"], stimuli)
        return exact_cable(model), lumped(model)

    rest, together = run([]), run(clamps)
    singles = [run([clamp]) for clamp in clamps]
    assert together[0].info["clamp_sites"] == 2
    for solver in (0, 1):
        total = sum(single[solver].values_mV for single in singles) \
            - (len(clamps) - 1) * rest[solver].values_mV
        assert np.max(np.abs(together[solver].values_mV - total)) < 1e-10
    # a clamp changes nothing before it starts (the sample at the switch included)
    first = singles[0][0]
    before = first.times_ms <= 0.25 + 1e-12
    assert np.max(np.abs(first.values_mV[:, before] - rest[0].values_mV[:, before])) < 1e-12
    assert np.max(np.abs(first.values_mV[:, 26] - rest[0].values_mV[:, 26])) > 1e-3


def test_junction_to_the_same_cell():
    """A junction between two sites of one cell acts in the cable, not in the lumped model."""
    cells = [_cell("s", length_um=400.0, e_leak_mV=-70.0, v_init_mV=-70.0)]
    stimuli = [{"cell": "s", "x": 0.0, "delay_ms": 0.0, "duration_ms": 10.0, "amplitude_nA": 0.5}]
    probes = [{"cell": "s", "x": 0.0}, {"cell": "s", "x": 1.0}]
    plain = _model(cells, probes=probes, stimuli=stimuli, t_stop=1.0)
    shorted = _model(cells, [{"cells": ["s", "s"], "x": [0.0, 1.0], "g_uS": 1e5}], probes,
                     stimuli, t_stop=1.0)
    a, b = exact_cable(plain), exact_cable(shorted)
    assert np.max(np.abs(b.values_mV[0] - b.values_mV[1])[5:]) < 1e-4  # ends joined
    assert a.values_mV[0, -1] - a.values_mV[1, -1] > 0.1  # not joined without it
    assert np.array_equal(lumped(plain).values_mV, lumped(shorted).values_mV)


def test_short_cables_approach_the_lumped_model():
    """As L -> 0 (junction g scaled with the area, so the lumped answer stays the same)
    the cable solution tends to the isopotential one, the deviation falling like L^2."""
    deviations = []
    for length in (8.0, 4.0):
        spec = _asymmetric_pair(g_uS=0.01 * length / 100.0)
        cells = [dict(cell, length_um=length, radius_um=3.0) for cell in spec["cells"]]
        model = _model(cells, spec["junctions"], spec["probes"], t_stop=2.0)
        deviations.append(np.max(np.abs(exact_cable(model).values_mV
                                        - lumped(model).values_mV)))
    assert deviations[0] < 1e-3
    assert deviations[0] / deviations[1] == pytest.approx(4.0, rel=0.01)


# Inversion ---------------------------------------------------------------------------------


def test_contour_inversion_on_known_transforms():
    from scipy.special import erf

    times = np.geomspace(1e-6, 1e3, 300)
    plan = ContourPlan.covering(times.min(), times.max())
    assert len(plan.slices) == 3
    cases = [
        (lambda s: 1 / (s * (s + 1)), lambda t: 1 - np.exp(-t)),
        (lambda s: 1 / (s * np.sqrt(s + 1)), lambda t: erf(np.sqrt(t))),
        (lambda s: 1 / (s + 0.01) - 1 / (s + 100), lambda t: np.exp(-0.01 * t) - np.exp(-100 * t)),
    ]
    for transform, exact in cases:
        assert np.max(np.abs(invert_laplace(transform, times) - exact(times))) < 1e-12


def test_laplace_responses_match_the_run():
    spec = _asymmetric_pair()
    stimuli = [{"cell": "p", "x": 0.6, "delay_ms": 0.0, "duration_ms": 9.0, "amplitude_nA": 0.2}]
    model = _model(spec["cells"], spec["junctions"], spec["probes"], stimuli, t_stop=2.0,
                   sample_dt=0.5)
    times = model.simulation.sample_times_ms()[1:]
    responses = laplace_responses(model, np.array([1.0 + 0.0j]))
    assert responses.sites == [("p", 0.6)]
    plan = ContourPlan.covering(times.min(), times.max())
    transforms = laplace_responses(model, plan.nodes)
    total = plan.invert(transforms.free + 0.2 * transforms.step[0], times)
    assert np.max(np.abs(total - exact_cable(model).values_mV[:, 1:])) < 1e-10


# Large graphs (sparse paths agree with the dense ones) ----------------------------------


def _ring(n_cells: int, **extra) -> object:
    cells = [_cell(f"c{i}", e_leak_mV=-60.0 - 40.0 * (i % 2) - (i % 7),
                   v_init_mV=-65.0 - (i % 3)) for i in range(n_cells)]
    junctions = [{"cells": [f"c{i}", f"c{(i + 1) % n_cells}"], "x": [0.9, 0.1], "g_uS": 0.02}
                 for i in range(n_cells)]
    probes = [{"cell": "c0", "x": 0.5}, {"cell": f"c{n_cells // 2}", "x": 0.9}]
    stimuli = [{"cell": "c3", "x": 0.5, "delay_ms": 0.5, "duration_ms": 1.0,
                "amplitude_nA": 0.1}]
    return _model(cells, junctions, probes, stimuli, **extra)


def test_sparse_paths_match_dense(monkeypatch):
    import importlib

    # importlib, not "import crosssim.analytic.lumped_model as ...": the package attribute
    # ``lumped`` is the function, which shadows the submodule of the same name
    cable = importlib.import_module("crosssim.analytic.cable")
    lumped_module = importlib.import_module("crosssim.analytic.lumped_model")

    model = _ring(60, t_stop=3.0, sample_dt=0.05)
    dense_cable, dense_lumped = exact_cable(model), lumped(model)
    assert dense_cable.info["solver"] == "sparse"  # 60 junctions, ring: sparse by default
    monkeypatch.setattr(cable, "DENSE_JUNCTION_MIN", 100)
    forced_dense = exact_cable(model)
    assert forced_dense.info["solver"] == "dense"
    assert np.max(np.abs(forced_dense.values_mV - dense_cable.values_mV)) < 1e-10
    monkeypatch.setattr(lumped_module, "DENSE_CELL_LIMIT", 10)
    sparse_lumped = lumped(model)
    assert sparse_lumped.info["method"].endswith("expm_multiply")
    assert np.max(np.abs(sparse_lumped.values_mV - dense_lumped.values_mV)) < 1e-9
