"""The built-in models with branched cells: ``ball_and_stick`` and the ``tree`` generator.

Shapes, counts, names, sites and parameter checks come from the models alone (no
simulator): the tree's radii follow Rall's 3/2 rule, its junctions close a ring tip to tip,
its probes are capped, and every bad parameter is refused in one line naming what is allowed.
"""

from __future__ import annotations

import math

import pytest

from crosssim import cli
from crosssim.builtin import builtin_model, builtin_parameters
from crosssim.errors import ResourceLimitError, UsageError
from crosssim.model import dumps_model, loads_model

#: Sections per cell the generator refuses beyond (crosssim.builtin.trees, not imported at
#: collection: other modules parametrise over the built-ins registered by then).
MAX_SECTIONS_PER_CELL = 10_000


def _paths_um(cell) -> dict[str, float]:
    """Path distance from the root's x = 0 to the far end of each section, in um."""
    tree, parents = cell.tree(), cell.parents()
    end: dict[str, float] = {}
    for section, parent in zip(tree, parents):
        start = 0.0 if parent < 0 else (end[tree[parent].name] if section.parent_x == 1.0
                                        else end[tree[parent].name] - tree[parent].length_um)
        end[section.name] = start + section.length_um
    return end


# ball_and_stick ------------------------------------------------------------------------------


def test_ball_and_stick_is_two_somata_with_dendrites_joined_at_the_tips():
    model = builtin_model("ball_and_stick")
    assert [cell.name for cell in model.cells] == ["a", "b"]
    for cell in model.cells:
        soma, dend = cell.tree()
        assert (soma.name, soma.length_um, soma.radius_um, soma.parent) == ("soma", 20, 10, None)
        assert (dend.name, dend.length_um, dend.radius_um) == ("dend", 200, 1)
        assert (dend.parent, dend.parent_x) == ("soma", 1.0)
        assert cell.parents() == (-1, 0)
        assert not cell.is_cable
    assert model.cells[0].e_leak_mV != model.cells[1].e_leak_mV  # the junction carries current
    (junction,) = model.gap_junctions
    assert junction.cells == ("a", "b") and junction.sections == ("dend", "dend")
    assert junction.x == (1.0, 1.0) and junction.g_uS > 0
    assert model.probe_labels == ["a_soma", "a_tip", "b_soma", "b_tip"]
    sites = {p.label: (p.cell, p.section, p.x) for p in model.probes}
    assert sites["a_soma"] == ("a", "soma", 0.5) and sites["b_tip"] == ("b", "dend", 1.0)
    (clamp,) = model.stimuli
    assert (clamp.cell, clamp.section, clamp.x) == ("a", "soma", 0.5) and clamp.amplitude_nA > 0
    assert clamp.delay_ms + clamp.duration_ms < model.simulation.t_stop_ms


def test_ball_and_stick_settings_are_realistic_and_like_the_other_builtins():
    model = builtin_model("ball_and_stick")
    assert model.discretization.cvs_per_section == 5  # odd: x = 0.5 is a CV centre
    assert model.section_cvs(model.cells[0]) == (5, 5)
    assert model.simulation.dt_ms == 0.025
    assert model.tolerance.backends_abs_mV == 1e-6 and model.tolerance.analytic_abs_mV == 0.2
    for cell in model.cells:
        assert cell.cm_F_per_m2 == 0.01 and 100 <= cell.ra_ohm_cm <= 150
        assert cell.g_leak_S_per_cm2 == 1e-4 and cell.tau_ms == pytest.approx(10.0)
    assert model.stiff_junctions() == []  # g dt / C well below 1 at the tips
    assert builtin_parameters("ball_and_stick") == {}


def test_ball_and_stick_round_trips_through_toml():
    model = builtin_model("ball_and_stick")
    again = loads_model(dumps_model(model))
    assert again.to_dict(resolved=True) == model.to_dict(resolved=True)


# tree: shapes -----------------------------------------------------------------------------


def test_tree_defaults_are_four_binary_trees_of_depth_three_in_a_ring():
    model = builtin_model("tree")
    assert model.name == "tree_4x15"
    assert [cell.name for cell in model.cells] == ["c0", "c1", "c2", "c3"]
    assert all(len(cell.tree()) == 15 for cell in model.cells)
    assert len(model.gap_junctions) == 4
    assert model.discretization.cvs_per_section == 5
    assert [cell.e_leak_mV for cell in model.cells] == [-70.0, -60.0, -70.0, -60.0]


@pytest.mark.parametrize("depth, branching, sections", [
    (0, 2, 1), (1, 3, 4), (2, 4, 21), (3, 2, 15), (4, 2, 31), (3, 1, 4)])
def test_depth_and_branching_give_full_trees(depth, branching, sections):
    from crosssim.builtin.trees import tree_size

    assert tree_size(depth, branching) == sections
    model = builtin_model("tree", {"n_cells": 3, "depth": depth, "branching": branching})
    cell = model.cells[0]
    assert len(cell.tree()) == sections
    children = [sum(p == i for p in cell.parents()) for i in range(sections)]
    assert set(children) <= {0, branching}
    tips = [i for i, count in enumerate(children) if count == 0]
    assert len(tips) == branching ** depth
    ends = _paths_um(cell)
    assert {ends[cell.tree()[i].name] for i in tips} == {100.0 * (depth + 1)}


def test_radii_follow_rall_and_every_section_has_the_given_length():
    model = builtin_model("tree", {"n_cells": 3, "depth": 3, "branching": 3,
                                   "section_length_um": 40.0, "root_radius_um": 1.5})
    cell = model.cells[0]
    tree, parents = cell.tree(), cell.parents()
    assert tree[0].name == "root" and tree[0].radius_um == 1.5
    assert all(section.length_um == 40.0 and section.parent_x == 1.0 for section in tree)
    for i, section in enumerate(tree):
        children = [tree[k] for k, p in enumerate(parents) if p == i]
        if children:  # d_parent^(3/2) = sum of d_child^(3/2)
            assert sum(c.radius_um ** 1.5 for c in children) == pytest.approx(
                section.radius_um ** 1.5, rel=1e-12)
    assert [s.name for s in tree[:5]] == ["root", "d0", "d1", "d2", "d0_0"]
    assert tree[4].parent == "d0"


def test_sections_per_cell_fills_breadth_first():
    model = builtin_model("tree", {"n_cells": 1000, "sections_per_cell": 20})
    assert model.name == "tree_1000x20"
    assert len(model.cells) == 1000 and {len(c.tree()) for c in model.cells} == {20}
    assert len(model.gap_junctions) == 1000
    assert sum(model.cvs(cell) for cell in model.cells) == 1000 * 20 * 5
    cell = model.cells[0]
    ends = _paths_um(cell)
    # 15 sections fill depth 3, the other 5 start depth 4 under d0_0, d0_0, d0_1, ...
    assert sorted(set(ends.values())) == [100.0, 200.0, 300.0, 400.0, 500.0]
    assert sum(distance == 500.0 for distance in ends.values()) == 5
    assert [s.parent for s in cell.tree()[15:]] == ["d0_0_0"] * 2 + ["d0_0_1"] * 2 + ["d0_1_0"]


def test_junctions_join_the_last_tip_of_each_cell_to_the_first_tip_of_the_next():
    model = builtin_model("tree", {"n_cells": 5, "depth": 2, "branching": 2})
    index = model.cell_index()
    pairs = [(index[a], index[b]) for a, b in (j.cells for j in model.gap_junctions)]
    assert pairs == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]
    for junction in model.gap_junctions:
        assert junction.sections == ("d1_1", "d0_0") and junction.x == (1.0, 1.0)
        assert junction.g_uS == 0.005
    assert [len(builtin_model("tree", {"n_cells": n}).gap_junctions) for n in (1, 2, 3)] == [
        0, 1, 3]


def test_probes_at_root_and_tip_of_a_capped_spread_of_cells_and_a_clamp_on_cell_0():
    model = builtin_model("tree", {"n_cells": 1000, "depth": 2})
    assert model.probe_labels == [f"c{i:03d}_{where}" for i in (0, 333, 666, 999)
                                  for where in ("root", "tip")]
    for probe in model.probes:
        assert (probe.section, probe.x) in (("root", 0.5), ("d1_1", 1.0))
    assert len(builtin_model("tree", {"n_cells": 3, "n_probed_cells": 10}).probes) == 6
    (clamp,) = model.stimuli
    assert (clamp.cell, clamp.section, clamp.x, clamp.amplitude_nA) == ("c000", "root", 0.5, 0.1)
    assert builtin_model("tree", {"clamp_nA": 0}).stimuli == ()


def test_parameters_reach_the_model():
    model = builtin_model("tree", {"n_cells": 3, "cvs_per_section": 3, "g_uS": 0.002,
                                   "e_leak_mV": -80.0, "e_leak_alt_mV": -50.0,
                                   "t_stop_ms": 4.0, "dt_ms": 0.01, "sample_dt_ms": 0.1})
    assert model.discretization.cvs_per_section == 3
    assert {j.g_uS for j in model.gap_junctions} == {0.002}
    assert [c.e_leak_mV for c in model.cells] == [-80.0, -50.0, -80.0]
    assert model.simulation.n_samples == 41 and model.simulation.dt_ms == 0.01


# tree: refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("params, words", [
    ({"n_cells": 0}, "--param n_cells=0: allowed: a whole number >= 1"),
    ({"depth": -1}, "--param depth=-1: allowed: a whole number >= 0"),
    ({"branching": 0}, "--param branching=0: allowed: a whole number >= 1"),
    ({"branching": 2.5}, "whole number"),
    ({"sections_per_cell": -3}, "sections_per_cell=-3: allowed: a whole number >= 0"),
    ({"depth": 4, "sections_per_cell": 20}, "allowed: one of them"),
    ({"depth": 40}, f"depth=40 with branching=2: more than {MAX_SECTIONS_PER_CELL} sections"),
    ({"sections_per_cell": 10**6}, f"allowed: at most {MAX_SECTIONS_PER_CELL}"),
    ({"section_length_um": 0}, "section_length_um=0: allowed: a number > 0"),
    ({"root_radius_um": "thick"}, "root_radius_um='thick': allowed: a finite number"),
    ({"cvs_per_section": 0}, "cvs_per_section=0: allowed: a whole number >= 1"),
    ({"g_uS": -0.1}, "g_uS=-0.1: allowed: a number >= 0"),
    ({"dt_ms": 0}, "dt_ms=0: allowed: a number > 0"),
    ({"n_probed_cells": 0}, "n_probed_cells=0: allowed: a whole number >= 1"),
    ({"cells": 1000}, "unknown --param cells; allowed: branching"),
    ({"n_probes": 3}, "unknown --param n_probes"),
])
def test_bad_parameters_are_refused_in_one_line(params, words):
    from crosssim.builtin.trees import MAX_SECTIONS_PER_CELL as limit

    assert limit == MAX_SECTIONS_PER_CELL
    with pytest.raises(UsageError) as caught:
        builtin_model("tree", params)
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_oversized_tree_network_is_refused_with_the_estimate():
    with pytest.raises(ResourceLimitError, match=r"10000000 cells x 75 CVs"):
        builtin_model("tree", {"n_cells": 10**7})


def test_the_command_line_lists_builds_and_refuses(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    tree = out[out.index("tree "):out.index("two_cells ")]
    assert "depth=3, branching=2, sections_per_cell=0" in tree
    assert "ball_and_stick" in out
    assert cli.main(["models", "tree", "--param", "n_cells=3",
                     "--param", "sections_per_cell=20"]) == 0
    model = loads_model(capsys.readouterr().out)
    assert len(model.cells) == 3 and len(model.cells[0].tree()) == 20
    assert cli.main(["models", "tree", "--param", "branching=0"]) == 2
    err = capsys.readouterr().err
    assert "branching=0: allowed: a whole number >= 1" in err


def test_every_builtin_tree_site_is_at_a_section_end_or_a_cv_centre():
    for model in (builtin_model("ball_and_stick"), builtin_model("tree")):
        cvs = model.discretization.cvs_per_section
        centres = {(k + 0.5) / cvs for k in range(cvs)} | {0.0, 1.0}
        sites = [p.x for p in model.probes] + [s.x for s in model.stimuli]
        sites += [x for j in model.gap_junctions for x in j.x]
        assert all(any(math.isclose(x, c) for c in centres) for x in sites)
