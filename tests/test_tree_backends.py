"""Arbor and NEURON on section trees: the shared CV layout of :mod:`crosssim.cvgraph`
(zero-area point nodes where section ends meet), sites on CV centres, probes read by the
graph's stencils.  Each simulator is the other's truth; where a reading has a closed form
(a zero-area node is the conductance-weighted mean of its neighbours) it is checked on each.
Simulators are imported inside tests only.

Measured (Arbor 0.12.2, NEURON 9.0.2, implicit Euler, dt 0.025 ms), max |arbor - neuron|
over every probe and sample, 1 / 3 / 11 CVs per section: Y 1.6e-13 / 1.4e-13 / 4.8e-12 mV;
soma with five dendrites 1.8e-12 / 1.1e-12 / 4.7e-12; asymmetric tree 4.6e-13 / 8.2e-13 /
9.8e-12; three cells joined dendrite to dendrite 2.0e-11 / 3.8e-12 / 1.1e-11.  Tapered
sections are the exception: NEURON keeps 3-D points in single precision (see the taper
tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, CORE, requires_arbor, requires_neuron

from crosssim.cvgraph import cv_graph
from crosssim.model import model_from_dict

#: Largest allowed |arbor - neuron| in mV at any sample, matched discretization.
MATCHED_ATOL_MV = 1e-9
#: NEURON stores 3-D points (x, diam) as 32-bit floats: a tapered section's areas and axial
#: resistances move by up to ~6e-8 relative (2^-24), which moved traces by up to 4e-7 mV
#: (measured on :func:`_tapered`; the same shapes with float32-exact numbers agree to 4e-12).
TAPER_ATOL_MV = 1e-6

CELL = {"cm_F_per_m2": 0.01, "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -65.0}
#: Probe positions on every section: the start (a fork, root end or the parent's point),
#: off-centre, the middle, the end (a fork, a continuation or a free tip).
PROBE_XS = (0.0, 0.3, 0.5, 1.0)


def _section(name: str, parent: str | None = None, *, length: float = 100.0,
             radius: float | None = 0.5, parent_x: float = 1.0, **extra) -> dict:
    data: dict = {"name": name, "length_um": length, **extra}
    if radius is not None:
        data["radius_um"] = radius
    if parent is not None:
        data.update(parent=parent, parent_x=parent_x)
    return data


def _y_cell(name: str = "y") -> dict:
    """A parent with two daughters at its x = 1 end (a fork)."""
    return {"name": name, **CELL, "sections": [
        _section("root", length=100.0, radius=1.0),
        _section("d1", "root", length=80.0, radius=0.5),
        _section("d2", "root", length=120.0, radius=0.5)]}


def _soma_cell(name: str = "s") -> dict:
    """A one-CV soma with three dendrites at its x = 1 end and two at its x = 0 end (three
    branches at Arbor's root point)."""
    dendrites = [_section(f"d{i}", "soma", length=100.0 + 30.0 * i, radius=0.4 + 0.1 * i,
                          parent_x=1.0 if i < 3 else 0.0) for i in range(5)]
    return {"name": name, **CELL, "sections": [
        _section("soma", length=20.0, radius=10.0, cvs=1), *dendrites]}


def _deep_cell(name: str = "t") -> dict:
    """An asymmetric tree: forks at several depths, sections continued by a single child
    (one Arbor branch across two sections), children at x = 0 of the root and of a
    non-root section, per-section properties and a per-section CV count."""
    return {"name": name, **CELL, "e_leak_mV": -70.0, "sections": [
        _section("root", length=50.0, radius=2.0),
        _section("a", "root", length=60.0, radius=1.0),
        _section("a1", "a", length=40.0, radius=0.7),
        _section("a1a", "a1", length=30.0, radius=0.5),
        _section("a1b", "a1", length=90.0, radius=0.4),
        _section("a2", "a", parent_x=0.0, length=70.0, radius=0.6),
        _section("b", "root", parent_x=0.0, length=80.0, radius=1.2),
        _section("bc", "b", length=25.0, radius=0.9, cvs=2),
        _section("bcc", "bc", length=35.0, radius=0.3, ra_ohm_cm=150.0, cm_F_per_m2=0.02),
        _section("bx", "b", parent_x=0.0, length=45.0, radius=0.5, g_leak_S_per_cm2=3e-4,
                 e_leak_mV=-50.0)]}


def _probes(cells) -> list[dict]:
    return [{"cell": cell["name"], "section": section["name"], "x": x}
            for cell in cells for section in cell["sections"] for x in PROBE_XS]


def _clamp(cell: str, section: str, x: float, amplitude: float, delay: float = 0.0,
           duration: float = 1.5) -> dict:
    return {"cell": cell, "section": section, "x": x, "delay_ms": delay,
            "duration_ms": duration, "amplitude_nA": amplitude}


def _model(name: str, cells, cvs: int, *, junctions=(), stimuli=(), probes=None,
           t_stop: float = 2.0, dt: float = 0.025, tolerance=None):
    data = {"name": name, "simulation": {"t_stop_ms": t_stop, "dt_ms": dt},
            "discretization": {"cvs_per_section": cvs}, "cells": list(cells),
            "gap_junctions": list(junctions), "stimuli": list(stimuli),
            "probes": _probes(cells) if probes is None else list(probes)}
    if tolerance is not None:
        data["tolerance"] = tolerance
    return model_from_dict(data)


def _y(cvs: int):
    return _model(f"y{cvs}", [_y_cell()], cvs, stimuli=[_clamp("y", "d1", 1.0, 0.1)])


def _soma(cvs: int):
    return _model(f"soma{cvs}", [_soma_cell()], cvs,
                  stimuli=[_clamp("s", "d3", 1.0, 0.2, delay=0.1, duration=1.0),
                           _clamp("s", "soma", 0.5, -0.1, delay=0.5)])


def _deep(cvs: int):
    return _model(f"deep{cvs}", [_deep_cell()], cvs,
                  stimuli=[_clamp("t", "a1b", 0.7, 0.1),
                           _clamp("t", "bx", 0.0, -0.05, delay=0.5, duration=1.0)])


def _network(cvs: int):
    """Three tree cells joined dendrite to dendrite (the second has more Arbor branches than
    the first: the case Arbor 0.12.2's interpolating probe cannot read, see below), clamps
    at tips and on a soma."""
    junctions = [
        {"sites": [{"cell": "s", "section": "d1", "x": 0.8},
                   {"cell": "t", "section": "a1a", "x": 1.0}], "g_uS": 0.01},
        {"sites": [{"cell": "s", "section": "d4", "x": 0.2},
                   {"cell": "t", "section": "bcc", "x": 0.5}], "g_uS": 0.005},
        {"sites": [{"cell": "t", "section": "a2", "x": 1.0},
                   {"cell": "y", "section": "d2", "x": 0.0}], "g_uS": 0.02}]
    return _model(f"network{cvs}", [_soma_cell(), _deep_cell(), _y_cell()], cvs,
                  junctions=junctions,
                  stimuli=[_clamp("s", "soma", 0.5, 0.3, duration=1.0),
                           _clamp("y", "d1", 1.0, 0.05), _clamp("t", "a1b", 1.0, -0.02)])


TREES = {"y": _y, "soma": _soma, "deep": _deep, "network": _network}


def _run(backend: str, model, **options):
    from crosssim.backends import run_backend

    return run_backend(backend, model, **options)


def _worst(first, second) -> tuple[float, str, float]:
    """Largest |first - second| in mV, at which probe and time."""
    assert first.probes == second.probes
    np.testing.assert_array_equal(first.times_ms, second.times_ms)
    difference = np.abs(first.values_mV - second.values_mV)
    row, column = np.unravel_index(np.argmax(difference), difference.shape)
    return float(difference[row, column]), first.probes[row], float(first.times_ms[column])


def _assert_agree(model, atol: float = MATCHED_ATOL_MV) -> float:
    __tracebackhide__ = True
    arbor_result, neuron_result = _run("arbor", model), _run("neuron", model)
    worst, probe, time = _worst(arbor_result, neuron_result)
    if worst > atol:
        row = arbor_result.probes.index(probe)
        column = int(np.argmin(np.abs(arbor_result.times_ms - time)))
        pytest.fail(f"{model.name}: max |arbor - neuron| = {worst:.3g} mV > {atol:g} mV at "
                    f"probe {probe!r}, t = {time:g} ms (arbor "
                    f"{arbor_result.values_mV[row, column]!r}, neuron "
                    f"{neuron_result.values_mV[row, column]!r})")
    return worst


# The shared layout ------------------------------------------------------------------------


def test_a_child_at_x0_of_a_child_shares_the_grandparents_point_node():
    """A section hanging from x = 0 of a section that hangs from x = 1 of its parent sits on
    that parent's x = 1 end: one point node for the three ends (NEURON's ``sec(0)`` of a
    child is its parent's node), not a sealed end."""
    cell = {"name": "a", **CELL, "sections": [
        _section("g", length=100.0, radius=1.0),
        _section("p", "g", length=50.0, radius=0.5),
        _section("c", "p", parent_x=0.0, length=50.0, radius=0.5)]}
    graph = cv_graph(_model("grandchild", [cell], 1))
    point = graph.end_node[0][0][1]
    assert point >= graph.n_cvs
    assert graph.end_node[0] == ((-1, point), (point, -1), (point, -1))
    assert sorted(graph.edge_b[graph.edge_a == point].tolist()) == [0, 1, 2]


def _profiled_cell() -> dict:
    """Tapers and radius steps continued by single children: Arbor branches of many
    segments, whose lengths must add up to the same section boundaries."""
    return _tapered(0.3, [[0, 0.8], [13.1, 0.77], [40.7, 0.8], [40.7, 0.6], [60.3, 0.4],
                          [150, 0.25]])


@requires_arbor
@pytest.mark.parametrize("cvs", [1, 3, 7])
@pytest.mark.parametrize("cell, merged", [(_y_cell, 0), (_soma_cell, 0),
                                          (_deep_cell, 3), (_profiled_cell, 1)])
def test_arbor_builds_the_graphs_control_volumes(cell, merged, cvs):
    """Arbor's CVs are the graph's: one per CV node, holding its centre inside, plus a
    zero-length CV at every fork and at a root with several branches; a point node inside a
    merged branch (a section continued by one child: a(1), b(1), bc(1) of the deep tree) has
    no Arbor CV."""
    import arbor

    from crosssim.backends.arbor.recipe import CrossSimRecipe

    model = _model("layout", [cell()], cvs)
    recipe = CrossSimRecipe(model)
    layout = recipe.layout(model.cells[0])
    data = arbor.cv_data(recipe.cell_description(0))
    graph = layout.graph
    counts = model.section_cvs(model.cells[0])
    cables = [[(c.branch, c.prox, c.dist) for c in data.cables(i)] for i in range(data.num_cv)]
    assert data.num_cv == graph.n_cvs + len(layout.arbor_points)
    for node in range(graph.n_cvs):
        branch, position = layout.node_location(node)
        holding = [i for i, pieces in enumerate(cables)
                   if any(b == branch and prox < position < dist for b, prox, dist in pieces)]
        assert len(holding) == 1
        ((_, prox, dist),) = cables[holding[0]]
        section = int(graph.section[node])
        cv_length_um = model.cells[0].tree()[section].length_um / counts[section]
        assert (dist - prox) * layout.branch_length_um[branch] == pytest.approx(cv_length_um)
        assert (prox + dist) / 2 == pytest.approx(position, abs=1e-12)
    for node, (branch, position) in layout.arbor_points.items():
        zero = [i for i, pieces in enumerate(cables)
                if (branch, position, position) in pieces and all(p == d for _, p, d in pieces)]
        assert len(zero) == 1, (node, branch, position)
    assert graph.n_nodes - graph.n_cvs - len(layout.arbor_points) == merged


# Arbor against NEURON ---------------------------------------------------------------------


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("cvs", [1, 3, 11])
@pytest.mark.parametrize("name", list(TREES))
def test_trees_agree(name, cvs):
    """Forks, tips, section ends and off-centre probes on every section; clamps on branches
    and tips; junctions between dendrites of different cells; children at x = 0 (of the
    root too); per-section properties and CV counts: Arbor and NEURON within 1e-9 mV."""
    worst = _assert_agree(TREES[name](cvs))
    print(f"{name}, {cvs} CVs per section: max |arbor - neuron| = {worst:.3g} mV")


@requires_arbor
@requires_neuron
def test_cables_next_to_a_tree_agree():
    """A model with a tree lays its plain cables out the same way (one section each)."""
    cable = {"name": "c", **CELL, "length_um": 150.0, "radius_um": 1.0}
    single = {"name": "u", **CELL, "sections": [_section("only", length=90.0, radius=0.8)]}
    junctions = [{"sites": [{"cell": "c", "x": 0.25}, {"cell": "y", "section": "d2", "x": 1.0}],
                  "g_uS": 0.01},
                 {"sites": [{"cell": "u", "x": 1.0}, {"cell": "y", "section": "root", "x": 0.1}],
                  "g_uS": 0.004}]
    model = _model("mixed", [cable, _y_cell(), single], 3, junctions=junctions,
                   stimuli=[_clamp("c", "cable", 0.9, 0.1)],
                   probes=_probes([_y_cell(), single]) + [{"cell": "c", "x": x}
                                                          for x in PROBE_XS])
    assert _assert_agree(model) <= MATCHED_ATOL_MV


@requires_neuron
def test_neuron_threads_split_trees_by_cell():
    """NEURON threads take whole cells (a tree's sections stay with their root): two
    threads give the one-thread traces."""
    model = _network(3)
    one, two = _run("neuron", model, nthread=1), _run("neuron", model, nthread=2)
    assert two.info["nthread"] == 2
    assert _worst(one, two)[0] <= 1e-12


# What a probe reads -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_point_nodes_read_the_conductance_weighted_mean_of_their_neighbours(backend):
    """A zero-area node carries no membrane current: at every step its voltage is
    ``sum(g_k V_k) / sum(g_k)`` over the CV centres it touches (the graph's edges).  Checked
    on each simulator's own traces, one CV per section (every neighbour is a section's
    middle), at every point node of the asymmetric tree: forks (Arbor's zero-length CV,
    NEURON's end node), the root's x = 0 end with two children, and section ends continued
    by one child (NEURON's end node; Arbor has no CV there and the adapter computes it)."""
    model = _deep(1)
    graph = cv_graph(model)
    result = _run(backend, model)
    names = [section.name for section in model.cells[0].tree()]
    row = {label: i for i, label in enumerate(result.probes)}
    checked = []
    for point in range(graph.n_cvs, graph.n_nodes):
        edges = graph.edge_a == point
        neighbours, conductances = graph.edge_b[edges], graph.edge_g_uS[edges]
        sections = [names[int(graph.section[n])] for n in neighbours]
        if any(model.section_cvs(model.cells[0])[names.index(s)] != 1 for s in sections):
            continue  # bc keeps its own 2 CVs: no probe on its first centre
        middles = np.array([result.values_mV[row[f"t.{s}_x0.5"]] for s in sections])
        owner, end = names[int(graph.section[point])], float(graph.x[point])
        value = result.values_mV[row[f"t.{owner}_x{end:g}"]]
        np.testing.assert_allclose(value, conductances @ middles / conductances.sum(),
                                   rtol=0, atol=1e-9)
        checked.append(f"{owner}({end:g})")
    assert checked == ["root(0)", "root(1)", "a(1)", "a1(1)"]  # b and bc: bc has 2 CVs


# Tapered sections -------------------------------------------------------------------------


def _tapered(radius_end: float, profile) -> dict:
    """A soma with a linearly tapered dendrite and a piecewise profile continued by a
    widening child."""
    return {"name": "p", **CELL, "sections": [
        _section("soma", length=20.0, radius=5.0, cvs=1),
        _section("t", "soma", length=200.0, radius=None, radius_start_um=1.0,
                 radius_end_um=radius_end),
        _section("pw", "soma", length=150.0, radius=None, profile_um=profile),
        _section("pwc", "pw", length=50.0, radius=None, profile_um=[[0, 0.25], [50, 0.5]])]}


def _taper_model(cell: dict, cvs: int):
    return _model(f"taper{cvs}", [cell], cvs, stimuli=[_clamp("p", "t", 1.0, 0.05)])


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("cvs", [1, 3, 11])
def test_tapers_with_float32_exact_geometry_agree_to_round_off(cvs):
    """Frustum areas (slant height) and resistances ``ra l / (pi r1 r2)`` are the same
    arithmetic in both simulators: with radii and distances a 32-bit float holds exactly,
    Arbor and NEURON agree to round-off (measured 2.6e-12 / 1.6e-12 / 4.3e-12 mV)."""
    cell = _tapered(0.25, [[0, 0.75], [40, 0.75], [60, 0.375], [150, 0.25]])
    assert _assert_agree(_taper_model(cell, cvs)) <= MATCHED_ATOL_MV


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("cvs, measured_mV", [(1, 5.2e-8), (3, 2.2e-7), (11, 3.9e-7)])
def test_tapers_differ_by_neurons_single_precision_3d_points(cvs, measured_mV):
    """NEURON keeps ``pt3dadd`` points as 32-bit floats (``diam3d`` of 0.6 reads
    0.6000000238418579): segment areas and axial resistances of a taper move by ~1e-8
    relative, and the traces by up to 4e-7 mV (a radius of 0.3 / 0.8 / 0.4 um here).
    Pinned: above round-off, within :data:`TAPER_ATOL_MV`."""
    cell = _tapered(0.3, [[0, 0.8], [40, 0.8], [60, 0.4], [150, 0.25]])
    worst, probe, _ = _worst(_run("arbor", _taper_model(cell, cvs)),
                             _run("neuron", _taper_model(cell, cvs)))
    assert 1e-8 < worst <= TAPER_ATOL_MV
    assert worst == pytest.approx(measured_mV, rel=0.1)
    assert probe.startswith("p.t_")  # the tapered tip the clamp drives


def test_cv_graph_puts_an_interior_radius_step_in_the_proximal_cv():
    """A radius step (two profile points at one distance) is a zero-length frustum whose
    annulus is membrane (NEURON's 3-D areas, Arbor's zero-length segments): in the CV that
    holds it, the proximal one on a CV boundary.  Each side keeps its own radius (the graph
    once read the step as a taper from 1 to 0.5 um over the distal half)."""
    from crosssim.cvgraph import piece_area_um2, piece_resistance_MOhm
    from crosssim.model.schema import Section

    step = Section(name="st", length_um=100.0,
                   profile_um=[[0, 1.0], [50, 1.0], [50, 0.5], [100, 0.5]])
    annulus = np.pi * (1.0**2 - 0.5**2)
    assert piece_area_um2(step, 0.0, 1.0) == pytest.approx(step.area_um2)
    assert piece_area_um2(step, 0.0, 0.5) == pytest.approx(2 * np.pi * 1.0 * 50 + annulus)
    assert piece_area_um2(step, 0.5, 1.0) == pytest.approx(2 * np.pi * 0.5 * 50)
    # ra = 100 ohm cm = 1 MOhm um: 25 um at r = 1 and 25 um at r = 0.5
    assert piece_resistance_MOhm(step, 100.0, 0.25, 0.75) == pytest.approx(
        25 / np.pi + 25 / (np.pi * 0.25))
    ends = Section(name="ends", length_um=100.0, profile_um=[[0, 0.5], [0, 1.0], [100, 1.0]])
    assert piece_area_um2(ends, 0.0, 1.0) == pytest.approx(2 * np.pi * 100)  # no end annulus


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("cvs", [1, 2, 4])
def test_radius_steps_agree(cvs):
    """Steps inside sections (on a CV boundary at 2 and 4 CVs) and at section ends: Arbor
    and NEURON within 1e-9 mV (measured 1.8e-12 / 5.9e-12 / 2.2e-12)."""
    cell = {"name": "p", **CELL, "sections": [
        _section("soma", length=20.0, radius=5.0, cvs=1),
        _section("st", "soma", length=100.0, radius=None,
                 profile_um=[[0, 1.0], [50, 1.0], [50, 0.5], [100, 0.5]]),
        _section("st2", "soma", length=120.0, radius=None,
                 profile_um=[[0, 0.5], [0, 1.0], [30, 1.0], [30, 0.75], [70, 0.25],
                             [120, 0.25], [120, 0.5]]),
        _section("c", "st2", length=30.0, radius=0.25)]}
    model = _model(f"steps{cvs}", [cell], cvs, stimuli=[_clamp("p", "st", 1.0, 0.05)])
    assert _assert_agree(model) <= MATCHED_ATOL_MV


# Arbor's own interpolating probe ----------------------------------------------------------


def _arbor_native_probes(model) -> np.ndarray:
    """Arbor's own ``cable_probe_membrane_voltage`` at every probe of a one-cell model, on
    the adapter's CVs and sites (n_probes, n_steps)."""
    import arbor

    from crosssim.backends.arbor import _compat
    from crosssim.backends.arbor.recipe import CrossSimRecipe

    cell = model.cells[0]
    recipe = CrossSimRecipe(model)
    layout = recipe.layout(cell)
    places = [layout.position(cell.section_index(p.section), p.x) for p in model.probes]

    class Native(CrossSimRecipe):
        def probes(self, gid):
            return [_compat.voltage_probe(_compat.branch_locations(sorted(set(places))), "p")]

    simulation = arbor.simulation(Native(model))
    sim = model.simulation
    handle = simulation.sample((0, "p"), _compat.sample_schedule(
        sim.sample_times_ms()[:-1] + 0.5 * sim.dt_ms))
    _compat.run(simulation, sim.t_stop_ms, sim.dt_ms)
    read = {(meta.branch, meta.pos): np.asarray(data)[:, 1]
            for data, meta in simulation.samples(handle)}
    return np.array([read[place] for place in places])


@requires_arbor
@pytest.mark.parametrize("cvs, measured_mV", [(1, 0.72), (3, 0.058), (11, 0.0017)])
def test_arbor_own_probe_weights_by_resistance(cvs, measured_mV):
    """Arbor's own probe interpolates linearly in axial resistance: on uniform sections that
    is the graph's rule at forks, tips, section ends and off-centre (to 1e-9 mV), on a
    taper it is not (the graph interpolates in x), by up to 0.72 / 0.058 / 0.0017 mV at the
    tapered tip."""
    cell = {"name": "y", **CELL, "sections": [
        _section("root", length=100.0, radius=1.0), _section("d1", "root", length=80.0),
        _section("d2", "root", length=120.0), _section("c", "d1", length=60.0, radius=0.25),
        _section("z", "root", parent_x=0.0, length=50.0, radius=0.4),
        _section("t", "d2", length=100.0, radius=None, radius_start_um=0.5,
                 radius_end_um=0.2)]}
    model = _model(f"native{cvs}", [cell], cvs, stimuli=[_clamp("y", "c", 1.0, 0.05)])
    ours = _run("arbor", model).values_mV[:, :-1]
    difference = np.abs(_arbor_native_probes(model) - ours).max(axis=1)
    tapered = np.array([probe.section == "t" for probe in model.probes])
    assert difference[~tapered].max() <= MATCHED_ATOL_MV
    assert difference[tapered].max() == pytest.approx(measured_mV, rel=0.05)


@requires_arbor
def test_arbor_interpolating_probe_fails_on_the_second_cell_of_a_group():
    """Why tree models read whole-cell samples: Arbor 0.12.2's ``fvm_interpolate_voltage``
    integrates the axial resistivity of the cell group's *first* cell
    (``D.axial_resistivity[0].at(branch)``), so a location probe on a branch that cell lacks
    raises, and on a branch it has, weights by the wrong cell's resistivity.  Junctions put
    the soma cell (6 branches) and the deep tree (7) in one group."""
    import arbor

    from crosssim.backends.arbor import _compat
    from crosssim.backends.arbor.recipe import CrossSimRecipe

    model = _network(1)

    class LocationProbes(CrossSimRecipe):
        def probes(self, gid):
            if gid != 1:
                return []
            return [_compat.voltage_probe(_compat.branch_locations([(6, 0.5)]), "p")]

    with pytest.raises(IndexError, match="range_check"):  # raised while building
        arbor.simulation(LocationProbes(model))


# The command line -------------------------------------------------------------------------


TREE_TOML = """
name = "tree_check"

[simulation]
t_stop_ms = 2.0
dt_ms = 0.025

[discretization]
max_extent_um = 20.0

[[cells]]
name = "s"
cm_F_per_m2 = 0.01
ra_ohm_cm = 100.0
g_leak_S_per_cm2 = 1e-4
e_leak_mV = -65.0
sections = [
  {name = "soma", length_um = 20.0, radius_um = 10.0, cvs = 1},
  {name = "d1", parent = "soma", length_um = 150.0, radius_um = 0.5},
  {name = "d2", parent = "soma", length_um = 100.0, radius_start_um = 0.75, radius_end_um = 0.25},
  {name = "d3", parent = "soma", parent_x = 0.0, length_um = 80.0, radius_um = 0.4},
]

[[cells]]
name = "c"
cm_F_per_m2 = 0.01
ra_ohm_cm = 100.0
g_leak_S_per_cm2 = 1e-4
e_leak_mV = -70.0
length_um = 120.0
radius_um = 0.5

[[gap_junctions]]
sites = [{cell = "s", section = "d1", x = 1.0}, {cell = "c", x = 0.5}]
g_uS = 0.01

[[probes]]
cell = "s"
section = "d1"
x = 1.0

[[probes]]
cell = "s"
section = "soma"
x = 1.0

[[probes]]
cell = "c"
x = 0.3

[[stimuli]]
cell = "s"
section = "d2"
x = 1.0
delay_ms = 0.2
duration_ms = 1.0
amplitude_nA = 0.05
"""


@requires_arbor
@requires_neuron
def test_check_passes_on_a_tree_model(tmp_path: Path):
    path = tmp_path / "tree.toml"
    path.write_text(TREE_TOML)
    result = subprocess.run(
        [sys.executable, "-m", "crosssim", "check", str(path), *CORE, "--references", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "arbor vs neuron" in result.stdout
