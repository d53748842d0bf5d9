"""The exact reference on trees of uniform sections (:mod:`crosssim.analytic.tree`) against
independent truths:

* the cable solution (junction-current formulation, a different method) on unbranched cells;
* finite volumes on the section tree (a CV graph with fork nodes), exact in time per clamp
  interval (eigendecomposition), Richardson-extrapolated in space over three grids;
* Rall's equivalent cylinder (3/2 power rule, equal electrotonic lengths);
* the DC input resistance of a branched cell derived by hand from the cable formulas;
* the closed-form uniform decay of cells that no clamp reaches, in a 1,000-cell network.

Constants here are computed from the raw model fields in ohm, cm, F, s.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from crosssim.analytic import cable_steady_state, exact, exact_cable, exact_tree, tree_steady_state
from crosssim.errors import SourceNotApplicableError
from crosssim.model import Model, model_from_dict
from crosssim.sources import run_source

MEMBRANE = {"cm_F_per_m2": 0.01, "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 0.001,
            "e_leak_mV": -65.0}


def _model(cells, junctions=(), probes=(), stimuli=(), t_stop=3.0, dt=0.01) -> Model:
    return model_from_dict({
        "name": "tree", "simulation": {"t_stop_ms": t_stop, "dt_ms": dt},
        "discretization": {"cvs_per_section": 1}, "cells": list(cells),
        "gap_junctions": list(junctions), "probes": list(probes), "stimuli": list(stimuli)})


def _per_length(cell, section):
    """(c F/cm, g S/cm, r ohm/cm, E mV) of a uniform section from the raw fields."""
    def value(name):
        own = getattr(section, name)
        return getattr(cell, name) if own is None else own

    a_cm = section.points()[0][1] * 1e-4
    return (value("cm_F_per_m2") * 1e-4 * 2 * math.pi * a_cm,
            value("g_leak_S_per_cm2") * 2 * math.pi * a_cm,
            value("ra_ohm_cm") / (math.pi * a_cm**2), value("e_leak_mV"))


# A Y cell with a junction to a second cell ------------------------------------------------


def _y_and_cable() -> Model:
    """A trunk with two daughters at its x = 1 end (one with its own cm, ra and e_leak) and
    one at its x = 0 end (its own g_leak); a junction from mid-daughter to a cable; a clamp
    at a tip and one on the cable; v_init != e_leak."""
    return _model(
        cells=[
            {"name": "y", **MEMBRANE, "v_init_mV": -60.0, "sections": [
                {"name": "trunk", "length_um": 200.0, "radius_um": 1.5},
                {"name": "d1", "parent": "trunk", "length_um": 150.0, "radius_um": 0.8},
                {"name": "d2", "parent": "trunk", "length_um": 100.0, "radius_um": 1.0,
                 "cm_F_per_m2": 0.008, "ra_ohm_cm": 150.0, "e_leak_mV": -55.0},
                {"name": "d0", "parent": "trunk", "parent_x": 0.0, "length_um": 50.0,
                 "radius_um": 0.5, "g_leak_S_per_cm2": 0.002}]},
            {"name": "b", **MEMBRANE, "length_um": 120.0, "radius_um": 1.0,
             "e_leak_mV": -75.0, "v_init_mV": -70.0},
        ],
        junctions=[{"sites": [{"cell": "y", "section": "d2", "x": 0.5},
                              {"cell": "b", "x": 0.25}], "g_uS": 0.01}],
        probes=[
            {"cell": "y", "section": "trunk", "x": 1.0, "name": "fork"},
            {"cell": "y", "section": "d1", "x": 0.0, "name": "fork_from_d1"},
            {"cell": "y", "section": "d1", "x": 1.0, "name": "tip1"},
            {"cell": "y", "section": "d2", "x": 1.0, "name": "tip2"},
            {"cell": "y", "section": "d0", "x": 1.0, "name": "tip0"},
            {"cell": "y", "section": "d1", "x": 0.5, "name": "mid1"},
            {"cell": "y", "section": "d2", "x": 0.5, "name": "junction_y"},
            {"cell": "y", "x": 0.25, "name": "trunk"},
            {"cell": "b", "x": 0.25, "name": "junction_b"},
            {"cell": "b", "x": 1.0, "name": "b_end"},
        ],
        stimuli=[
            {"cell": "y", "section": "d1", "x": 1.0, "delay_ms": 0.5, "duration_ms": 1.0,
             "amplitude_nA": 0.2},
            {"cell": "b", "x": 0.75, "delay_ms": 0.25, "duration_ms": 5.0,
             "amplitude_nA": -0.05},
        ])


def _finite_volumes(model: Model, n: int):
    """Vertex-centred finite volumes, ``n`` segments per section, on the section tree.

    A child's first vertex is its parent's end vertex (a fork vertex gathers half a segment
    of every section meeting there).  Returns capacitance (F), stiffness (S), leak source
    (A, times 1e3 for mV), initial voltages (mV) and ``vertex(cell, section, x)``.
    """
    vertex: dict[tuple[int, int, int], int] = {}
    count = 0
    for ci, cell in enumerate(model.cells):
        tree = cell.tree()
        parent = cell.parents()
        placed: list[int] = []
        while len(placed) < len(tree):  # parents before children
            for k in range(len(tree)):
                if k not in placed and (parent[k] < 0 or parent[k] in placed):
                    placed.append(k)
        for k in placed:
            if parent[k] < 0:
                vertex[(ci, k, 0)] = count
                count += 1
            else:
                end = 0 if tree[k].parent_x == 0.0 else n
                vertex[(ci, k, 0)] = vertex[(ci, parent[k], end)]
            for j in range(1, n + 1):
                vertex[(ci, k, j)] = count
                count += 1
    capacitance, leak = np.zeros(count), np.zeros(count)
    stiffness, v0 = np.zeros((count, count)), np.zeros(count)
    for ci, cell in enumerate(model.cells):
        for k, section in enumerate(cell.tree()):
            c, g, r, e = _per_length(cell, section)
            h = section.length_um * 1e-4 / n
            for j in range(n):
                p, q = vertex[(ci, k, j)], vertex[(ci, k, j + 1)]
                for m in (p, q):
                    capacitance[m] += c * h / 2
                    stiffness[m, m] += g * h / 2
                    leak[m] += g * h / 2 * e * 1e-3
                    v0[m] = cell.initial_mV
                axial = 1 / (r * h)
                stiffness[[p, q], [p, q]] += axial
                stiffness[p, q] -= axial
                stiffness[q, p] -= axial
    index = model.cell_index()

    def at(cell: str, section: str | None, x: float) -> int:
        ci = index[cell]
        assert abs(x * n - round(x * n)) < 1e-9, "sites must sit on vertices"
        return vertex[(ci, model.cells[ci].section_index(section), round(x * n))]

    for junction in model.gap_junctions:
        a = at(junction.cells[0], junction.sections[0], junction.x[0])
        b = at(junction.cells[1], junction.sections[1], junction.x[1])
        g = junction.g_uS * 1e-6
        stiffness[[a, b], [a, b]] += g
        stiffness[a, b] -= g
        stiffness[b, a] -= g
    return capacitance, stiffness, leak, v0, at


def _source(model: Model, leak, at, clamps) -> np.ndarray:
    source = leak.copy()
    for stimulus in clamps:
        source[at(stimulus.cell, stimulus.section, stimulus.x)] += stimulus.amplitude_nA * 1e-9
    return source * 1e3  # voltages in mV


def _finite_volume_transient(model: Model, n: int, times_ms: np.ndarray) -> np.ndarray:
    """Probe voltages (mV) of the finite volumes, exact in time on every clamp interval."""
    capacitance, stiffness, leak, v0, at = _finite_volumes(model, n)
    root = np.sqrt(capacitance)
    rates, vectors = np.linalg.eigh(stiffness / np.outer(root, root))
    read = [at(p.cell, p.section, p.x) for p in model.effective_probes()]
    starts = sorted({0.0} | {s.delay_ms for s in model.stimuli}
                    | {s.delay_ms + s.duration_ms for s in model.stimuli})
    out = np.empty((len(read), times_ms.size))
    state = v0.copy()
    for start, end in zip(starts, starts[1:] + [np.inf]):
        on = [s for s in model.stimuli if s.delay_ms <= start < s.delay_ms + s.duration_ms]
        steady = np.linalg.solve(stiffness, _source(model, leak, at, on))
        modal = vectors.T @ (root * (state - steady))
        for i, t in enumerate(times_ms):
            if start <= t <= end:
                out[:, i] = (steady + vectors @ (np.exp(-rates * (t - start) * 1e-3) * modal)
                             / root)[read]
        if end < np.inf:
            state = steady + vectors @ (np.exp(-rates * (end - start) * 1e-3) * modal) / root
    return out


def _finite_volume_steady(model: Model, n: int, with_clamps: bool) -> np.ndarray:
    _, stiffness, leak, _, at = _finite_volumes(model, n)
    t_stop = model.simulation.t_stop_ms
    on = [s for s in model.stimuli if s.delay_ms <= t_stop < s.delay_ms + s.duration_ms]
    voltages = np.linalg.solve(stiffness, _source(model, leak, at, on if with_clamps else []))
    return voltages[[at(p.cell, p.section, p.x) for p in model.effective_probes()]]


def _richardson(coarse, middle, fine):
    """Two Richardson levels for errors in h^2 and h^4 (grids halved each time)."""
    first, second = (4 * middle - coarse) / 3, (4 * fine - middle) / 3
    return (16 * second - first) / 15


def test_tree_matches_richardson_extrapolated_finite_volumes_on_a_tree():
    model = _y_and_cable()
    result = exact_tree(model)
    # early (0.05), just after each switch (0.25 on, 0.5 on, 1.5 off), and late
    picks = [5, 30, 55, 100, 151, 200, 300]
    times = result.times_ms[picks]
    levels = [_finite_volume_transient(model, n, times) for n in (40, 80, 160)]
    reference = _richardson(*levels)
    error = np.abs(result.values_mV[:, picks] - reference)
    # the finite-volume error itself is far above the check (3e-4 mV at 160 segments)
    assert np.max(np.abs(levels[-1] - reference)) > 1e-5
    print(f"tree vs finite volumes + Richardson: largest deviation {np.max(error):.3g} mV")
    assert np.max(error) < 1e-8, f"largest deviation {np.max(error):.3g} mV"
    fork = result.trace("fork")
    assert np.array_equal(fork, result.trace("fork_from_d1"))  # one node, one voltage
    assert np.array_equal(result.values_mV[:, 0], [-60.0] * 8 + [-70.0] * 2)


@pytest.mark.parametrize("with_clamps", [False, True], ids=["resting", "clamped"])
def test_per_section_leak_reversal_gives_the_finite_volume_steady_state(with_clamps):
    model = _y_and_cable()
    steady = tree_steady_state(model, with_clamps=with_clamps)
    reference = _richardson(*(_finite_volume_steady(model, n, with_clamps)
                              for n in (40, 80, 160)))
    values = np.array(list(steady.values()))
    tree_cell = values[:8]
    assert np.ptp(tree_cell) > 0.3  # d2's e_leak (-55 mV) pulls its side of the cell up
    print(f"steady state vs finite volumes: {np.max(np.abs(values - reference)):.3g} mV")
    assert np.max(np.abs(values - reference)) < 1e-8


def test_sparse_and_dense_solves_agree(monkeypatch):
    import crosssim.analytic.tree as tree

    model = _y_and_cable()
    dense = exact_tree(model)
    monkeypatch.setattr(tree, "DENSE_NODE_LIMIT", 0)
    sparse = exact_tree(model)
    assert (dense.info["solver"], sparse.info["solver"]) == ("dense", "sparse")
    assert np.max(np.abs(dense.values_mV - sparse.values_mV)) < 1e-11


# Unbranched cells: the cable solution -------------------------------------------------


def _two_cables(**cell_b) -> dict:
    return {
        "cells": [
            {"name": "p", **MEMBRANE, "length_um": 150.0, "radius_um": 2.0,
             "e_leak_mV": -72.0, "v_init_mV": -60.0},
            {"name": "q", **MEMBRANE, "length_um": 80.0, "radius_um": 1.5, "ra_ohm_cm": 120.0,
             "g_leak_S_per_cm2": 0.0005, "e_leak_mV": -55.0, "v_init_mV": -80.0, **cell_b},
        ],
        "junctions": [{"cells": ["p", "q"], "x": [0.2, 0.75], "g_uS": 0.01}],
        "probes": [{"cell": "p", "x": 0.2}, {"cell": "p", "x": 1.0}, {"cell": "q", "x": 0.75},
                   {"cell": "q", "x": 0.1}, {"cell": "q", "x": 0.0}],
        "stimuli": [{"cell": "p", "x": 0.6, "delay_ms": 0.5, "duration_ms": 2.0,
                     "amplitude_nA": 0.3},
                    {"cell": "q", "x": 0.33, "delay_ms": 1.234, "duration_ms": 10.0,
                     "amplitude_nA": -0.1},
                    {"cell": "q", "x": 0.33, "delay_ms": 0.0, "duration_ms": 0.7,
                     "amplitude_nA": 0.05}],
    }


def test_tree_solver_matches_the_cable_solution_on_unbranched_cells():
    model = _model(**_two_cables(), t_stop=5.0)
    cable, tree = exact_cable(model), exact_tree(model)
    assert tree.probes == cable.probes
    assert np.max(np.abs(tree.values_mV - cable.values_mV)) < 1e-9
    for with_clamps in (False, True):
        by_cable = cable_steady_state(model, with_clamps=with_clamps)
        by_tree = tree_steady_state(model, with_clamps=with_clamps)
        assert by_tree == pytest.approx(by_cable, abs=1e-9, rel=0)


def test_analytic_source_dispatches_cables_and_trees():
    plain = _model(**_two_cables(), t_stop=2.0)
    # the same cells written as one section each, with a CV count: a "tree" to the model
    data = _two_cables()
    q = data["cells"][1]
    data["cells"][1] = {**{k: v for k, v in q.items() if k not in ("length_um", "radius_um")},
                        "sections": [{"name": "soma", "length_um": 80.0, "radius_um": 1.5,
                                      "cvs": 3}]}
    as_tree = _model(**data, t_stop=2.0)
    assert not plain.has_trees and as_tree.has_trees
    cable = run_source("analytic", plain)
    assert np.array_equal(cable.values_mV, exact_cable(plain).values_mV)  # unchanged
    assert "nodes" not in cable.info
    tree = run_source("analytic", as_tree)
    assert tree.info["nodes"] > 0 and tree.backend == "analytic"
    assert tree.probes == [p.label for p in as_tree.effective_probes()]
    assert np.max(np.abs(tree.values_mV - cable.values_mV)) < 1e-9


def test_near_coincident_sites_and_a_strong_junction_lose_no_digits():
    """Sites 1e-11 to 1e-9 apart (pieces of 1e-9 um) and a 1,000 uS junction: short pieces
    and junctions are stamped by impedance, so the cable solution is met to 1e-9 mV (with
    admittance stamps everywhere it was off by 0.02 mV here)."""
    data = _two_cables()
    data["junctions"][0]["g_uS"] = 1000.0
    data["probes"] = [{"cell": "p", "x": 1e-9}, {"cell": "p", "x": 0.2 + 1e-11},
                      {"cell": "p", "x": 0.6 + 1e-9}, {"cell": "q", "x": 1 - 1e-9},
                      {"cell": "q", "x": 0.33}]
    model = _model(**data, t_stop=5.0)
    tree = exact_tree(model)
    assert np.max(np.abs(tree.values_mV - exact_cable(model).values_mV)) < 1e-9
    by_cable = cable_steady_state(model, with_clamps=True)
    assert tree_steady_state(model, with_clamps=True) == pytest.approx(by_cable, abs=1e-9,
                                                                       rel=0)


def test_a_section_split_anywhere_changes_nothing():
    """Cell p written as two sections, the second 1e-4 um long (a very short section
    between a long one and a tip, as SWC files have): the same cable."""
    data = _two_cables()
    p = {k: v for k, v in data["cells"][0].items() if k not in ("length_um", "radius_um")}
    data["cells"][0] = {**p, "sections": [
        {"name": "long", "length_um": 150.0 - 1e-4, "radius_um": 2.0},
        {"name": "short", "parent": "long", "length_um": 1e-4, "radius_um": 2.0}]}
    scale = 150.0 / (150.0 - 1e-4)  # cable x -> x on "long"
    data["junctions"][0] = {"sites": [{"cell": "p", "section": "long", "x": 0.2 * scale},
                                      {"cell": "q", "x": 0.75}], "g_uS": 0.01}
    data["stimuli"][0]["section"] = "long"
    data["stimuli"][0]["x"] = 0.6 * scale
    data["probes"] = [{"cell": "p", "section": "long", "x": 0.2 * scale, "name": "a"},
                      {"cell": "p", "section": "short", "x": 1.0, "name": "b"},
                      {"cell": "p", "section": "short", "x": 0.5, "name": "c"},
                      {"cell": "q", "x": 0.75, "name": "d"}]
    split = _model(**data, t_stop=5.0)
    cable = _model(**{**_two_cables(), "probes": [
        {"cell": "p", "x": 0.2, "name": "a"}, {"cell": "p", "x": 1.0, "name": "b"},
        {"cell": "p", "x": 1.0 - 0.5e-4 / 150.0, "name": "c"},
        {"cell": "q", "x": 0.75, "name": "d"}]}, t_stop=5.0)
    by_tree, by_cable = exact(split), exact(cable)
    assert by_tree.info["impedance_stamps"] >= 2  # the short section and the junction
    assert np.max(np.abs(by_tree.values_mV - by_cable.values_mV)) < 1e-9


# Rall's equivalent cylinder -----------------------------------------------------------


def _length_constant_um(radius_um: float) -> float:
    """lambda = sqrt(a / (2 ra g)) with MEMBRANE's ra and g, in um."""
    a_cm = radius_um * 1e-4
    return math.sqrt(a_cm / (2 * MEMBRANE["ra_ohm_cm"] * MEMBRANE["g_leak_S_per_cm2"])) * 1e4


def test_rall_equivalent_cylinder():
    """Parent: radius 1 um, L/lambda = 0.5.  Daughters: radii 0.7 um and
    (1 - 0.7^1.5)^(2/3) um (so d1^1.5 + d2^1.5 = d0^1.5), both L/lambda = 0.7.  Equivalent
    cylinder: radius 1 um, L/lambda = 1.2.  Clamp at the parent's x = 0."""
    radii = (1.0, 0.7, (1.0 - 0.7**1.5) ** (2 / 3))
    assert radii[1] ** 1.5 + radii[2] ** 1.5 == pytest.approx(radii[0] ** 1.5, rel=1e-14)
    parent_x, daughter_x = 0.5, 0.7
    lam = [_length_constant_um(r) for r in radii]
    lengths = (parent_x * lam[0], daughter_x * lam[1], daughter_x * lam[2])
    total = lengths[0] + daughter_x * lam[0]
    clamp = {"x": 0.0, "delay_ms": 0.2, "duration_ms": 1.0, "amplitude_nA": 0.5}
    where = [("parent", 0.0), ("parent", 0.3), ("parent", 1.0), ("d1", 0.5), ("d2", 0.5),
             ("d1", 1.0), ("d2", 1.0)]
    tree = _model(
        cells=[{"name": "rall", **MEMBRANE, "v_init_mV": -60.0, "sections": [
            {"name": "parent", "length_um": lengths[0], "radius_um": radii[0]},
            {"name": "d1", "parent": "parent", "length_um": lengths[1], "radius_um": radii[1]},
            {"name": "d2", "parent": "parent", "length_um": lengths[2], "radius_um": radii[2]},
        ]}],
        probes=[{"cell": "rall", "section": s, "x": x} for s, x in where],
        stimuli=[{"cell": "rall", **clamp}])

    def along_cylinder(section: str, x: float) -> float:
        """The cylinder position at the same electrotonic distance from the parent's x = 0."""
        if section == "parent":
            return x * lengths[0] / total
        return (lengths[0] + x * daughter_x * lam[0]) / total

    cylinder = _model(
        cells=[{"name": "cylinder", **MEMBRANE, "v_init_mV": -60.0, "length_um": total,
                "radius_um": radii[0]}],
        probes=[{"cell": "cylinder", "x": along_cylinder(s, x), "name": f"{s}_{x:g}"}
                for s, x in where],
        stimuli=[{"cell": "cylinder", **clamp}])
    by_tree, by_cylinder = exact_tree(tree), exact_cable(cylinder)
    assert np.ptp(by_tree.values_mV) > 5.0
    assert np.max(np.abs(by_tree.values_mV - by_cylinder.values_mV)) < 1e-9
    # the daughters at equal electrotonic distance carry equal voltages
    assert np.max(np.abs(by_tree.values_mV[3] - by_tree.values_mV[4])) < 1e-9


# The steady state by hand -------------------------------------------------------------


def test_steady_state_of_a_branched_cell_by_hand():
    """Current I into the trunk's x = 0 end, where a short branch d0 also starts; two
    daughters at the trunk's x = 1 end.  Sealed tips: a branch of electrotonic length X
    draws G = tanh(X) / (r lambda) at its base.  The trunk loaded by G_L = G1 + G2 at its far
    end draws G_in = (G_L + tanh(X0) / R0) / (1 + G_L R0 tanh(X0)) with R0 = r0 lambda0,
    so V(0) - E = I / (G_in + G_d0); along a cable loaded by G_L the voltage falls to
    (V(0) - E) / (cosh X0 + G_L R0 sinh X0) at the fork, and to cosh(X (1 - x)) / cosh(X) of
    its base value at x along a sealed branch."""
    sections = [
        {"name": "trunk", "length_um": 300.0, "radius_um": 2.0},
        {"name": "d1", "parent": "trunk", "length_um": 400.0, "radius_um": 1.0},
        {"name": "d2", "parent": "trunk", "length_um": 150.0, "radius_um": 0.6,
         "ra_ohm_cm": 200.0},
        {"name": "d0", "parent": "trunk", "parent_x": 0.0, "length_um": 80.0,
         "radius_um": 0.4}]
    model = _model(
        cells=[{"name": "y", **MEMBRANE, "sections": sections}],
        probes=[{"cell": "y", "x": 0.0, "name": "root"},
                {"cell": "y", "section": "d1", "x": 0.0, "name": "fork"},
                {"cell": "y", "section": "d1", "x": 1.0, "name": "tip1"},
                {"cell": "y", "section": "d2", "x": 0.4, "name": "d2_x0.4"},
                {"cell": "y", "section": "d0", "x": 1.0, "name": "tip0"}],
        stimuli=[{"cell": "y", "section": "d0", "x": 0.0, "delay_ms": 0.0,
                  "duration_ms": 100.0, "amplitude_nA": 0.3}])
    cell = model.cells[0]
    electrotonic, characteristic = {}, {}
    for section in cell.tree():
        _, g, r, _ = _per_length(cell, section)
        lam_cm = 1 / math.sqrt(r * g)
        electrotonic[section.name] = section.length_um * 1e-4 / lam_cm
        characteristic[section.name] = r * lam_cm  # ohm

    def base_conductance(name):
        return math.tanh(electrotonic[name]) / characteristic[name]

    load = base_conductance("d1") + base_conductance("d2")
    x0, r0 = electrotonic["trunk"], characteristic["trunk"]
    trunk_in = (load + math.tanh(x0) / r0) / (1 + load * r0 * math.tanh(x0))
    root = 0.3e-9 / (trunk_in + base_conductance("d0")) * 1e3  # mV above e_leak
    fork = root / (math.cosh(x0) + load * r0 * math.sinh(x0))
    expected = {"root": root, "fork": fork,
                "tip1": fork / math.cosh(electrotonic["d1"]),
                "d2_x0.4": fork * math.cosh(0.6 * electrotonic["d2"]) / math.cosh(
                    electrotonic["d2"]),
                "tip0": root / math.cosh(electrotonic["d0"])}
    steady = tree_steady_state(model, with_clamps=True)
    assert root > 1.0
    for name, value in expected.items():
        assert steady[name] - MEMBRANE["e_leak_mV"] == pytest.approx(value, rel=1e-12, abs=0)
    assert tree_steady_state(model) == pytest.approx({name: -65.0 for name in expected},
                                                     abs=1e-12, rel=0)
    # the transient reaches it: 40 ms = 40 membrane time constants
    late = exact(model.replace(simulation={"t_stop_ms": 40.0, "dt_ms": 0.01,
                                           "sample_dt_ms": 10.0}))
    assert late.values_mV[:, -1] == pytest.approx(list(steady.values()), abs=1e-9, rel=0)


# Not applicable ---------------------------------------------------------------------


def test_tapered_section_is_not_applicable():
    model = _model(cells=[{"name": "y", **MEMBRANE, "sections": [
        {"name": "trunk", "length_um": 100.0, "radius_um": 1.0},
        {"name": "cone", "parent": "trunk", "length_um": 50.0, "radius_start_um": 1.0,
         "radius_end_um": 0.5}]}])
    for run in (exact, exact_tree, lambda m: run_source("analytic", m)):
        with pytest.raises(SourceNotApplicableError) as info:
            run(model)
        assert info.value.backend == "analytic"
        assert info.value.message == "section 'cone' of cell 'y' is tapered: no exact solution"


# A 1,000-cell network ---------------------------------------------------------------


def _network(n_cells: int = 1000, n_sections: int = 20, n_junctions: int = 1000,
             seed: int = 1) -> Model:
    """Cells of ``n_sections`` random cylinders (binary trees, every third section on its
    parent's x = 0 end), random junctions between random sites, two clamps; 50 ms sampled
    every 0.1 ms; one default probe per cell."""
    rng = np.random.default_rng(seed)
    cells = []
    for i in range(n_cells):
        sections = [{"name": "s0", "length_um": float(rng.uniform(20, 200)),
                     "radius_um": float(rng.uniform(0.5, 3.0))}]
        for k in range(1, n_sections):
            sections.append({"name": f"s{k}", "parent": f"s{(k - 1) // 2}",
                             "parent_x": 0.0 if k % 3 == 0 else 1.0,
                             "length_um": float(rng.uniform(20, 200)),
                             "radius_um": float(rng.uniform(0.3, 2.0))})
        cells.append({"name": f"c{i}", **MEMBRANE, "g_leak_S_per_cm2": 0.0001,
                      "v_init_mV": -60.0, "sections": sections})
    junctions = []
    for _ in range(n_junctions):
        a, b = rng.choice(n_cells, 2, replace=False)
        junctions.append({"sites": [
            {"cell": f"c{a}", "section": f"s{rng.integers(n_sections)}", "x": rng.uniform()},
            {"cell": f"c{b}", "section": f"s{rng.integers(n_sections)}", "x": rng.uniform()}],
            "g_uS": 0.005})
    stimuli = [{"cell": "c0", "section": "s5", "x": 1.0, "delay_ms": 1.0,
                "duration_ms": 20.0, "amplitude_nA": 0.2},
               {"cell": "c7", "x": 0.3, "delay_ms": 5.0, "duration_ms": 100.0,
                "amplitude_nA": -0.1}]
    return model_from_dict({
        "name": "network", "simulation": {"t_stop_ms": 50.0, "dt_ms": 0.025,
                                          "sample_dt_ms": 0.1},
        "discretization": {"cvs_per_section": 1}, "cells": cells,
        "gap_junctions": junctions, "stimuli": stimuli})


def _reached_by(model: Model, cells: list[str]) -> set[str]:
    """The cells joined to ``cells`` through junctions."""
    neighbours: dict[str, set[str]] = {}
    for junction in model.gap_junctions:
        a, b = junction.cells
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    reached, todo = set(cells), list(cells)
    while todo:
        for peer in neighbours.get(todo.pop(), ()):
            if peer not in reached:
                reached.add(peer)
                todo.append(peer)
    return reached


def test_thousand_cell_network_of_trees():
    """Cells no clamp reaches stay uniform: V = E + (V0 - E) exp(-t / tau)."""
    model = _network()
    started = time.perf_counter()
    result = exact(model)
    elapsed = time.perf_counter() - started
    print(f"1,000 cells x 20 sections, 1,000 junctions, {result.info['nodes']} nodes, "
          f"{result.info['contour_nodes']} contour nodes, {model.simulation.n_samples} "
          f"samples: {elapsed:.2f} s ({result.info['solver']})")
    assert result.info["solver"] == "sparse" and result.values_mV.shape == (1000, 501)
    reached = _reached_by(model, ["c0", "c7"])
    quiet = [i for i, cell in enumerate(model.cells) if cell.name not in reached]
    assert 50 < len(quiet) < 900
    tau_ms = 0.01 * 1e-4 / 0.0001 * 1e3
    decay = -65.0 + 5.0 * np.exp(-result.times_ms / tau_ms)
    assert np.max(np.abs(result.values_mV[quiet] - decay)) < 1e-9
    loud = [i for i, cell in enumerate(model.cells) if cell.name in ("c0", "c7")]
    assert np.min(np.max(np.abs(result.values_mV[loud] - decay), axis=1)) > 0.1
