"""Arbor and NEURON on section trees: the shared CV layout of :mod:`crosssim.cvgraph`
(zero-area point nodes where section ends meet), sites on CV centres, probes read by the
graph's stencils.  Each simulator is the other's truth; simulators are imported inside tests.
"""

from __future__ import annotations

from crosssim.cvgraph import cv_graph
from crosssim.model import model_from_dict

CELL = {"cm_F_per_m2": 0.01, "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -65.0}


def _model(name: str, cells, *, cvs: int = 1, junctions=(), probes=(), stimuli=(),
           t_stop: float = 2.0, dt: float = 0.025):
    return model_from_dict({
        "name": name, "simulation": {"t_stop_ms": t_stop, "dt_ms": dt},
        "discretization": {"cvs_per_section": cvs}, "cells": list(cells),
        "gap_junctions": list(junctions), "probes": list(probes), "stimuli": list(stimuli)})


def test_a_child_at_x0_of_a_child_shares_the_grandparents_point_node():
    """A section hanging from x = 0 of a section that hangs from x = 1 of its parent sits on
    that parent's x = 1 end: one point node for the three ends (NEURON's ``sec(0)`` of a
    child is its parent's node), not a sealed end."""
    cell = {"name": "a", **CELL, "sections": [
        {"name": "g", "length_um": 100.0, "radius_um": 1.0},
        {"name": "p", "parent": "g", "length_um": 50.0, "radius_um": 0.5},
        {"name": "c", "parent": "p", "parent_x": 0.0, "length_um": 50.0, "radius_um": 0.5}]}
    graph = cv_graph(_model("grandchild", [cell]))
    point = graph.end_node[0][0][1]
    assert point >= graph.n_cvs
    assert graph.end_node[0] == ((-1, point), (point, -1), (point, -1))
    assert sorted(graph.edge_b[graph.edge_a == point].tolist()) == [0, 1, 2]
