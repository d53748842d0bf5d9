"""The references on section trees: ``lumped``, ``discrete``, ``discrete_cn`` and
``semidiscrete`` built on the CV graph (:mod:`crosssim.cvgraph`).

Independent truths: closed forms written here (the isopotential ball-and-stick), a dense
numpy implementation of implicit Euler assembled in the test from the geometry (the
zero-area fork node kept as an algebraic row, ``np.linalg.solve`` per step), a dense
``scipy.linalg.expm`` of the same system, an unbranched cable (the cable path) against the
same cable cut into sections, and main's code before trees for cable models.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crosssim.analytic import lumped, lumped_steady_state
from crosssim.analytic.discretized import (
    cv_system,
    discrete,
    roundoff_floor_mV,
    semidiscrete,
    step_matrix_condition,
)
from crosssim.model import model_from_dict
from crosssim.sources import run_source, source_spec

MEMBRANE = {"cm_F_per_m2": 0.01, "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4,
            "e_leak_mV": -70.0}


def _model(cells, *, name="tree", t_stop=2.0, dt=0.025, sample_dt=None, cvs=None, **parts):
    simulation = {"t_stop_ms": t_stop, "dt_ms": dt}
    if sample_dt is not None:
        simulation["sample_dt_ms"] = sample_dt
    discretization = {"cvs_per_section": cvs} if cvs is not None else {"max_extent_um": 1e9}
    return model_from_dict({"name": name, "simulation": simulation,
                            "discretization": discretization, "cells": cells, **parts},
                           source=f"<test {name}>")


def _crank_nicolson(model):
    """``discrete`` with the Crank-Nicolson scheme, whatever the model's NEURON setting."""
    return discrete(model, scheme="crank-nicolson")


# lumped: the ball-and-stick in closed form ------------------------------------------------


def _ball_and_stick():
    """Soma 20 x 10 um (own g, e_leak, cm) and a 200 um dendrite tapering 2 -> 1 um."""
    soma = {"name": "soma", "length_um": 20.0, "radius_um": 10.0, "g_leak_S_per_cm2": 3e-4,
            "e_leak_mV": -55.0, "cm_F_per_m2": 0.02}
    dendrite = {"name": "dend", "parent": "soma", "length_um": 200.0, "radius_start_um": 2.0,
                "radius_end_um": 1.0}
    cell = {"name": "n", "sections": [soma, dendrite], **MEMBRANE, "v_init_mV": -80.0}
    return _model([cell], name="ball_and_stick", t_stop=20.0, dt=0.05,
                  probes=[{"cell": "n", "section": "dend", "x": 1.0}])


def test_lumped_ball_and_stick_matches_the_closed_form():
    model = _ball_and_stick()
    soma_um2 = 2 * math.pi * 10.0 * 20.0
    dendrite_um2 = math.pi * (2.0 + 1.0) * math.hypot(200.0, 1.0)  # lateral frustum
    # V_ss = sum g_i A_i E_i / sum g_i A_i;  tau = sum c_i A_i / sum g_i A_i
    leak = np.array([3e-4 * soma_um2, 1e-4 * dendrite_um2])
    steady_mV = (leak[0] * -55.0 + leak[1] * -70.0) / leak.sum()
    tau_ms = (0.02 * soma_um2 + 0.01 * dendrite_um2) * 1e-4 / leak.sum() * 1e3
    times = model.simulation.sample_times_ms()
    expected = steady_mV + (-80.0 - steady_mV) * np.exp(-times / tau_ms)
    result = run_source("lumped", model)
    np.testing.assert_allclose(result.values_mV[0], expected, rtol=0, atol=1e-12)
    assert lumped_steady_state(model) == {"n": pytest.approx(steady_mV, abs=1e-12)}
    assert source_spec("lumped").trees


def test_lumped_of_a_clamped_tree_settles_at_rest_plus_current_over_total_leak():
    model = _ball_and_stick().replace(
        simulation={"t_stop_ms": 200.0, "dt_ms": 0.5},
        stimuli=[{"cell": "n", "section": "dend", "x": 0.3, "delay_ms": 0.0,
                  "duration_ms": 500.0, "amplitude_nA": 0.05}])
    soma_um2 = 2 * math.pi * 10.0 * 20.0
    dendrite_um2 = math.pi * 3.0 * math.hypot(200.0, 1.0)
    leak_uS = (3e-4 * soma_um2 + 1e-4 * dendrite_um2) * 1e-2
    rest = lumped_steady_state(model)["n"]
    assert lumped(model).values_mV[0, -1] == pytest.approx(rest + 0.05 / leak_uS, abs=1e-9)


# A cable cut into sections: the point nodes change nothing ------------------------------

#: Where the probes of the cable and of the cut cable read: (cable x, section, section x).
_PLACES = [(0.0, "s0", 0.0), (0.1, "s0", 0.3), (1 / 3, "s0", 1.0), (1 / 3, "s1", 0.0),
           (0.4, "s1", 0.2), (0.6, "s1", 0.8), (5 / 6, "s2", 0.5), (1.0, "s2", 1.0)]


def _cable_or_cut(cut: bool):
    """Cell a: a 300 um cable of 9 CVs (the cable path), or the same cable cut into three
    100 um sections of 3 CVs (the tree path: point nodes at the two cuts).  Cell b: a plain
    cable joined to a by a junction.  Clamps and probes at the same places of a in both (no
    site on a cut, where the site rule of a cable and of a section differ)."""
    def on(section: str, section_x: float, cable_x: float) -> dict:
        return {"section": section, "x": section_x} if cut else {"x": cable_x}

    cell_a = ({"name": "a", "sections": [
        {"name": "s0", "length_um": 100.0, "radius_um": 1.0},
        {"name": "s1", "parent": "s0", "length_um": 100.0, "radius_um": 1.0},
        {"name": "s2", "parent": "s1", "length_um": 100.0, "radius_um": 1.0}]}
        if cut else {"name": "a", "length_um": 300.0, "radius_um": 1.0})
    cell_b = {"name": "b", **MEMBRANE, "e_leak_mV": -50.0}
    probes = [{"cell": "a", **on(section, section_x, x), "name": f"p{i}"}
              for i, (x, section, section_x) in enumerate(_PLACES)]
    return model_from_dict({
        "name": "cut" if cut else "cable",
        "simulation": {"t_stop_ms": 3.0, "dt_ms": 0.025},
        "discretization": {"cvs_per_section": 3} if cut else {"max_extent_um": 100.0 / 3},
        "cells": [{**cell_a, **MEMBRANE, "v_init_mV": -60.0},
                  {**cell_b, "sections": [{"name": "cable", "length_um": 150.0,
                                           "radius_um": 0.8, "cvs": 5}]} if cut
                  else {**cell_b, "length_um": 150.0, "radius_um": 0.8}],
        "gap_junctions": [{"sites": [{"cell": "a", **on("s2", 0.9, 2 / 3 + 0.9 / 3)},
                                     {"cell": "b", "x": 0.7}], "g_uS": 0.003}],
        "probes": [*probes, {"cell": "b", "x": 0.5, "name": "b_mid"}],
        "stimuli": [{"cell": "a", **on("s1", 0.5, 0.5), "delay_ms": 0.2, "duration_ms": 1.0,
                     "amplitude_nA": 0.05},
                    {"cell": "b", "x": 0.1, "delay_ms": 0.6, "duration_ms": 5.0,
                     "amplitude_nA": -0.02}]}, source="<test cut cable>")


def test_a_cable_cut_into_sections_is_the_same_cv_system():
    # The point node at a cut joins the end centres by half a CV each: 2/(r h) + 2/(r h) in
    # series is 1/(r h), the cable's link; and it reads the mean of its two neighbours, the
    # cable's interpolation at the cut (the midpoint of two centres).  Eliminated, the cut
    # cable is the 9-CV cable exactly: same matrices, same probes, up to round-off.
    cable_model, cut_model = _cable_or_cut(False), _cable_or_cut(True)
    assert not cable_model.has_trees and cut_model.has_trees
    cable, cut = cv_system(cable_model), cv_system(cut_model)
    assert cut.is_tridiagonal and cut.point_index.size == 4  # two cuts, two neighbours each
    np.testing.assert_allclose(cut.point_weight, 0.5, rtol=1e-14)
    np.testing.assert_allclose(cut.capacitance_nF, cable.capacitance_nF, rtol=1e-14)
    np.testing.assert_allclose(cut.leak_uS, cable.leak_uS, rtol=1e-14)
    np.testing.assert_allclose(cut.link_uS, cable.link_uS, rtol=1e-14)
    np.testing.assert_array_equal(cut.half_cv, cable.half_cv)
    np.testing.assert_array_equal(cut.clamp_cv, cable.clamp_cv)
    # round-off only: measured 6.4e-13 (implicit Euler), 1.6e-12 (Crank-Nicolson), 7.4e-13 mV
    # (semidiscrete) on ~60 mV; the model's round-off floor is 5.2e-12 mV
    for run in (discrete, _crank_nicolson, semidiscrete):
        expected, got = run(cable_model), run(cut_model)
        assert got.probes == expected.probes
        np.testing.assert_allclose(got.values_mV, expected.values_mV, rtol=0, atol=5e-12,
                                   err_msg=run.__name__)


# A Y cell against a dense implementation from first principles ----------------------------

#: The Y cell: a trunk forking into a thin branch (own leak) and a tapered branch (own cm and
#: Ra), joined to a plain cable b.  Per section: length, CVs, radius at 0 and 1, properties.
_Y_SECTIONS = {
    "trunk": {"length_um": 100.0, "cvs": 4, "radius_um": (1.5, 1.5)},
    "left": {"length_um": 80.0, "cvs": 3, "radius_um": (1.0, 1.0),
             "g_leak_S_per_cm2": 2e-4, "e_leak_mV": -60.0},
    "right": {"length_um": 120.0, "cvs": 4, "radius_um": (1.2, 0.6),
              "cm_F_per_m2": 0.02, "ra_ohm_cm": 150.0},
}
_B = {"length_um": 200.0, "cvs": 5, "radius_um": (1.0, 1.0), "e_leak_mV": -50.0}


def _y_model(**simulation):
    sections = []
    for name, spec in _Y_SECTIONS.items():
        start, end = spec["radius_um"]
        geometry = ({"radius_um": start} if start == end
                    else {"radius_start_um": start, "radius_end_um": end})
        extra = {key: value for key, value in spec.items() if key not in ("radius_um",)}
        sections.append({"name": name, **({"parent": "trunk"} if name != "trunk" else {}),
                         **geometry, **extra})
    y_cell = {"name": "y", "sections": sections, **MEMBRANE, "v_init_mV": -65.0}
    b_cell = {"name": "b", "length_um": _B["length_um"], "radius_um": 1.0, **MEMBRANE,
              "e_leak_mV": _B["e_leak_mV"]}
    return _model(
        [y_cell, b_cell], name="y_cell", cvs=_B["cvs"],
        **{"t_stop": 2.0, "dt": 0.025, **simulation},
        gap_junctions=[{"sites": [{"cell": "y", "section": "left", "x": 0.7},
                                  {"cell": "b", "x": 0.25}], "g_uS": 0.002}],
        stimuli=[{"cell": "y", "section": "right", "x": 0.9, "delay_ms": 0.5125,
                  "duration_ms": 1.0, "amplitude_nA": 0.05},
                 {"cell": "y", "section": "trunk", "x": 0.0, "delay_ms": 0.0,
                  "duration_ms": 0.7125, "amplitude_nA": -0.02}],
        probes=[{"cell": "y", "section": "trunk", "x": 1.0, "name": "fork"},
                {"cell": "y", "section": "left", "x": 0.0, "name": "left_base"},
                {"cell": "y", "section": "left", "x": 0.1, "name": "near_fork"},
                {"cell": "y", "section": "right", "x": 1.0, "name": "right_tip"},
                {"cell": "y", "section": "trunk", "x": 0.5, "name": "trunk_mid"},
                {"cell": "b", "x": 0.3, "name": "b"}])


class _DenseY:
    """The CV system of :func:`_y_model` written out by hand, dense, with the fork node.

    Nodes: trunk CVs 0-3, left 4-6, right 7-10, the fork node 11 (no membrane), b 12-16.
    Units: nF, uS, mV, nA (cm F/m^2 * um^2 = pF; g S/cm^2 * um^2 = 1e-2 uS; Ra ohm cm =
    1e-2 MOhm um).  A frustum of length l from radius r1 to r2 has lateral area
    pi (r1 + r2) sqrt(l^2 + (r2 - r1)^2) and resistance Ra l / (pi r1 r2).
    """

    FORK = 11

    def __init__(self) -> None:
        n = 17
        self.capacitance = np.zeros(n)
        self.leak = np.zeros(n)
        self.e_leak = np.zeros(n)
        self.axial = np.zeros((n, n))
        first = {"trunk": 0, "left": 4, "right": 7, "b": 12}
        for name, spec in [*_Y_SECTIONS.items(), ("b", _B)]:
            cm = spec.get("cm_F_per_m2", 0.01)
            g_leak = spec.get("g_leak_S_per_cm2", 1e-4)
            ra = spec.get("ra_ohm_cm", 100.0) * 1e-2
            length, count = spec["length_um"], spec["cvs"]
            start, end = spec["radius_um"]

            def radius(distance, start=start, end=end, length=length):
                return start + (end - start) * distance / length

            h = length / count
            for i in range(count):
                node = first[name] + i
                r1, r2 = radius(i * h), radius((i + 1) * h)
                area = math.pi * (r1 + r2) * math.hypot(h, r2 - r1)
                self.capacitance[node] = cm * area * 1e-3
                self.leak[node] = g_leak * area * 1e-2
                self.e_leak[node] = spec.get("e_leak_mV", -70.0)
                if i:  # centre to centre: one frustum of a linear taper
                    self._join(node - 1, node,
                               ra * h / (math.pi * radius((i - 0.5) * h) * radius((i + 0.5) * h)))
            if name == "trunk":  # the fork sits at the trunk's far end, x = 1
                self._join(3, self.FORK, ra * (h / 2) / (math.pi * radius(length - h / 2)
                                                        * radius(length)))
            elif name != "b":  # the branches start at the fork, x = 0
                self._join(first[name], self.FORK,
                           ra * (h / 2) / (math.pi * radius(0.0) * radius(h / 2)))
        self.v_init = np.where(np.arange(n) < 12, -65.0, -50.0)
        self.v_init[self.FORK] = -65.0
        # junction left x = 0.7 (CV 2 of 3: node 6) <-> b x = 0.25 (CV 1 of 5: node 13)
        self.junction = (6, 13, 0.002)
        # clamps: right x = 0.9 -> CV 3 (node 10); trunk x = 0 -> CV 0 (node 0)
        self.clamps = [(10, 0.05, 0.5125, 1.5125), (0, -0.02, 0.0, 0.7125)]

    def _join(self, a: int, b: int, resistance_MOhm: float) -> None:
        g = 1.0 / resistance_MOhm
        self.axial[a, a] += g
        self.axial[b, b] += g
        self.axial[a, b] -= g
        self.axial[b, a] -= g

    def current(self, time_ms: float) -> np.ndarray:
        """Clamp current per node (nA) at ``time_ms`` (on for delay <= t < delay + duration)."""
        current = np.zeros(self.capacitance.size)
        for node, amplitude, on, off in self.clamps:
            if on <= time_ms < off:
                current[node] += amplitude
        return current

    @staticmethod
    def probes(v: np.ndarray) -> np.ndarray:
        """The six probes of :func:`_y_model` from node voltages (rows: nodes)."""
        fork = v[11]
        return np.array([
            fork,  # trunk x = 1: the fork node
            fork,  # left x = 0: the fork node
            0.4 * fork + 0.6 * v[4],  # left x = 0.1: between the fork (0) and centre 1/6
            -0.5 * v[9] + 1.5 * v[10],  # right x = 1: extrapolated from centres 5/8, 7/8
            0.5 * v[1] + 0.5 * v[2],  # trunk x = 0.5: between centres 3/8 and 5/8
            v[13],  # b x = 0.3: the centre of CV 1 of 5
        ])

    def implicit_euler(self, dt: float, steps: int, *, crank_nicolson: bool = False):
        """Node voltages after every step: ``(C/dt + G + A + g_j) V' = C/dt V + G E + I +
        g_j V_peer`` (Crank-Nicolson: with 2C/dt, then ``2 V' - V``); the fork row has no
        C/dt and no leak, so it is algebraic: one np.linalg.solve per step."""
        factor = 2.0 if crank_nicolson else 1.0
        site, peer, g = self.junction
        matrix = np.diag(factor * self.capacitance / dt + self.leak) + self.axial
        matrix[site, site] += g
        matrix[peer, peer] += g
        v = self.v_init.copy()
        out = [v]
        for step in range(steps):
            rhs = (factor * self.capacitance / dt * v + self.leak * self.e_leak
                   + self.current(step * dt))
            rhs[site] += g * v[peer]
            rhs[peer] += g * v[site]
            solution = np.linalg.solve(matrix, rhs)
            v = 2.0 * solution - v if crank_nicolson else solution
            out.append(v)
        return np.array(out).T


@pytest.mark.parametrize("scheme", ["implicit-euler", "crank-nicolson"])
def test_discrete_on_a_y_cell_matches_a_dense_implementation(scheme):
    model = _y_model()
    dense = _DenseY()
    expected = dense.probes(dense.implicit_euler(
        0.025, model.simulation.n_steps, crank_nicolson=scheme == "crank-nicolson"))
    result = discrete(model, scheme=scheme)
    assert "point nodes eliminated, one sparse LU" in result.info["method"]
    assert not cv_system(model).is_tridiagonal  # the fork joins three CVs
    np.testing.assert_allclose(result.values_mV, expected, rtol=0, atol=1e-10)


def _dense_exact_in_time(dense: _DenseY, times: np.ndarray) -> np.ndarray:
    """Node voltages of ``C dV/dt = -K V + G E + I(t)`` by ``scipy.linalg.expm``, the fork
    row (no C) eliminated by its Schur complement and recovered from ``K_ff V_f = -K_fc V``."""
    from scipy.linalg import expm

    site, peer, g = dense.junction
    stiffness = dense.axial + np.diag(dense.leak)
    stiffness[[site, peer], [site, peer]] += g
    stiffness[site, peer] -= g
    stiffness[peer, site] -= g
    keep = np.flatnonzero(np.arange(dense.capacitance.size) != dense.FORK)
    fork = [dense.FORK]
    reduced = (stiffness[np.ix_(keep, keep)] - stiffness[np.ix_(keep, fork)]
               @ stiffness[np.ix_(fork, keep)] / stiffness[dense.FORK, dense.FORK])
    n = keep.size

    def generator(current: np.ndarray) -> np.ndarray:
        augmented = np.zeros((n + 1, n + 1))  # d/dt [V; 1] = [[-K/C, (G E + I)/C], [0, 0]]
        augmented[:n, :n] = -reduced / dense.capacitance[keep, None]
        augmented[:n, n] = ((dense.leak * dense.e_leak + current)[keep]
                            / dense.capacitance[keep])
        return augmented

    switches = sorted({on for _, _, on, _ in dense.clamps} | {off for *_, off in dense.clamps})
    state, at = np.append(dense.v_init[keep], 1.0), 0.0
    nodes = np.empty((dense.capacitance.size, times.size))
    for k, t in enumerate(times):
        for stop in [w for w in switches if at < w < t] + [t]:
            state = expm(generator(dense.current(at)) * (stop - at)) @ state
            at = stop
        nodes[keep, k] = state[:n]
        nodes[dense.FORK, k] = -(stiffness[dense.FORK, keep] @ state[:n]) / stiffness[
            dense.FORK, dense.FORK]
    return nodes


@pytest.mark.parametrize("method", ["eigen", "laplace"])
def test_semidiscrete_on_a_y_cell_matches_dense_expm(method):
    model = _y_model(sample_dt=0.05)
    dense = _DenseY()
    expected = dense.probes(_dense_exact_in_time(dense, model.simulation.sample_times_ms()))
    result = run_source("semidiscrete", model, method=method)
    assert "point nodes eliminated" in result.info["method"]
    np.testing.assert_allclose(result.values_mV, expected, rtol=0, atol=1e-9)


# Cables are untouched ---------------------------------------------------------------------

#: Values (mV) computed by the references before they knew trees (commit b04a3ab), at
#: samples n/4, n/2 and n-1 of the first and the last probe.
_BEFORE_TREES = {
    ("two_cells", "lumped"): [-87.89194001164671, -85.89933886633797, -89.65583999186106,
                              -70.02064030629191, -69.05962496502549, -70.24877221048644],
    ("two_cells", "discrete"): [-87.89289280116094, -85.88447689304098, -89.6271948545876,
                                -70.04985458797832, -69.08835153836958, -70.26956144512229],
    ("two_cells", "discrete_cn"): [-87.86894940962947, -85.87805634612224, -89.630167352932,
                                   -70.05013059504412, -69.08250045382934, -70.27245277402434],
    ("two_cells", "semidiscrete"): [-87.8688106507648, -85.87602883899147, -89.63115173116122,
                                    -70.04114812203102, -69.08031344723548,
                                    -70.27346047119622],
    ("ring", "lumped"): [-85.4758358469151, -84.50970808602922, -86.34363434657884,
                         -72.65272403509806, -71.69767423281134, -73.53160501084618],
    ("ring", "discrete"): [-85.56956194450053, -84.57024103892068, -86.39573247406283,
                           -72.60810911690463, -71.62262143277638, -73.44811989641664],
    ("ring", "discrete_cn"): [-85.54470287631815, -84.5608781560376, -86.40510557129818,
                              -72.58300637460765, -71.61332943013026, -73.45763932679195],
    ("ring", "semidiscrete"): [-85.52697132962497, -84.55453363521353, -86.41114070748209,
                               -72.56777398639899, -71.60691613449195, -73.46352812983835],
}


def _cable_models():
    from crosssim.builtin import builtin_model

    return {
        "two_cells": builtin_model("two_cells").replace(
            discretization={"cvs_per_cell": 11},
            stimuli=[{"cell": "a", "x": 0.3, "delay_ms": 1.0, "duration_ms": 2.0,
                      "amplitude_nA": 0.1}]),
        "ring": builtin_model("ring", {"n_cells": 10, "clamp_every": 3, "t_stop_ms": 5.0}),
    }


@pytest.mark.parametrize("source", ["lumped", "discrete", "discrete_cn", "semidiscrete"])
@pytest.mark.parametrize("name", ["two_cells", "ring"])
def test_cable_models_give_what_they_gave_before_trees(name, source):
    # bit-identical on the machine that pinned them (compared with commit b04a3ab's
    # functions over every sample); another LAPACK's eigensolver moves the eigen-based
    # sources by round-off (semidiscrete: 1.2e-11 mV with numpy 2.4.6 / OpenBLAS 0.3.31)
    model = _cable_models()[name]
    if source == "discrete_cn":
        result = _crank_nicolson(model)
    else:
        result = run_source(source, model)
    n = result.values_mV.shape[1]
    got = [result.values_mV[p, k] for p in (0, -1) for k in (n // 4, n // 2, n - 1)]
    np.testing.assert_allclose(got, _BEFORE_TREES[name, source], rtol=0, atol=1e-10)
    if source != "lumped":
        assert cv_system(model).is_tridiagonal and not model.has_trees


# The references on trees feed the error decomposition and the round-off floor --------------


def test_the_decomposition_splits_a_tree_models_error():
    # a simulator that steps discrete + i, and an "exact" solution semidiscrete - s: the
    # decomposition must find i, discrete - semidiscrete and s at every probe
    from crosssim.decomposition import decompose
    from crosssim.result import RunResult

    model = _y_model()
    times = model.simulation.sample_times_ms()
    stepped, exact_in_time = run_source("discrete", model), run_source("semidiscrete", model)
    implementation = 1e-7 * np.sin(times)
    space = 0.02 * (1.0 - np.exp(-times))

    def synthetic(name: str, values: np.ndarray) -> RunResult:
        return RunResult(name, stepped.probes, times, values,
                         info={"scheme": "implicit-euler"})

    results = {"discrete": stepped, "semidiscrete": exact_in_time,
               "arbor": synthetic("arbor", stepped.values_mV + implementation),
               "analytic": synthetic("analytic", exact_in_time.values_mV - space)}
    kinds = {"arbor": "simulator", "analytic": "reference", "discrete": "reference",
             "semidiscrete": "reference"}
    found = decompose(model, results, kinds)
    assert [part.probe for part in found] == stepped.probes
    for k, part in enumerate(found):
        stepping = np.max(np.abs(stepped.values_mV[k] - exact_in_time.values_mV[k]))
        assert part.discrete == "discrete"
        assert part.implementation_mV == pytest.approx(np.max(np.abs(implementation)),
                                                       rel=1e-6)
        assert part.time_stepping_mV == pytest.approx(stepping, rel=1e-12)
        assert part.space_mV == pytest.approx(np.max(space), rel=1e-9)


def test_the_roundoff_floor_of_a_tree_is_estimated_from_the_eliminated_graph():
    # the cut cable's eliminated graph is the cable's: the same floor; the Y cell's floor is
    # finite and far below the default 1e-6 mV gate
    cable, cut = _cable_or_cut(False), _cable_or_cut(True)
    assert roundoff_floor_mV(cut) == pytest.approx(roundoff_floor_mV(cable), rel=1e-12)
    assert step_matrix_condition(cut) == pytest.approx(step_matrix_condition(cable),
                                                       rel=1e-12)
    floor = roundoff_floor_mV(_y_model())
    assert 1e-14 < floor < 1e-9
