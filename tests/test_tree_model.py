"""The model format for section trees and active membranes: what is accepted, what it means,
and one-line refusals naming the field.  Numbers are derived by hand in each test."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap

import pytest

from crosssim.errors import InvalidModelError
from crosssim.model import (
    ROOT_SECTION,
    apply_overrides,
    dumps_model,
    load_model,
    loads_model,
    model_from_dict,
)

ISSUE_EXAMPLE = textwrap.dedent("""\
    name = "branched"
    [simulation]
    t_stop_ms = 5.0
    dt_ms = 0.025
    [discretization]
    cvs_per_section = 3
    [[cells]]
    name = "a"
    cm_F_per_m2 = 0.01
    ra_ohm_cm = 100.0
    g_leak_S_per_cm2 = 1e-4
    e_leak_mV = -65.0
    [[cells.sections]]
    name = "soma"
    length_um = 20.0
    radius_um = 10.0
    [[cells.sections]]
    name = "dend1"
    parent = "soma"
    parent_x = 1.0
    length_um = 200.0
    radius_um = 1.0
    [[cells]]
    name = "c"
    length_um = 100.0
    radius_um = 1.0
    cm_F_per_m2 = 0.01
    ra_ohm_cm = 100.0
    g_leak_S_per_cm2 = 1e-4
    e_leak_mV = -70.0
    [[probes]]
    cell = "a"
    section = "dend1"
    x = 0.5
    [[stimuli]]
    cell = "a"
    section = "dend1"
    x = 1.0
    delay_ms = 1.0
    duration_ms = 2.0
    amplitude_nA = 0.1
    [[gap_junctions]]
    sites = [{cell = "a", section = "dend1", x = 1.0}, {cell = "c", x = 0.2}]
    g_uS = 0.01
    """)


def test_the_issue_example_reads_as_a_tree_with_its_sites():
    model = loads_model(ISSUE_EXAMPLE)
    a, c = model.cells
    assert [s.name for s in a.tree()] == ["soma", "dend1"] and a.parents() == (-1, 0)
    assert c.tree()[0].name == ROOT_SECTION and c.is_cable and not a.is_cable
    assert model.has_trees and model.first_tree() is a
    assert model.section_cvs(a) == (3, 3) and model.cvs(a) == 6
    # membrane area: 2 pi r L per cylinder
    assert a.area_um2 == pytest.approx(2 * math.pi * (10 * 20 + 1 * 200))
    (junction,) = model.gap_junctions
    assert junction.cells == ("a", "c") and junction.sections == ("dend1", None)
    assert junction.x == (1.0, 0.2)
    assert model.probe_labels == ["a.dend1_x0.5"]
    assert model.stimuli[0].section == "dend1"


def test_a_tree_model_round_trips_through_toml_in_both_forms():
    model = loads_model(ISSUE_EXAMPLE)
    for resolved in (False, True):
        again = loads_model(dumps_model(model, resolved=resolved))
        # resolved writes every default out (v_init_mV = e_leak_mV)
        assert [c.model_copy(update={"v_init_mV": c.initial_mV}) for c in again.cells] == [
            c.model_copy(update={"v_init_mV": c.initial_mV}) for c in model.cells]
        assert again.gap_junctions == model.gap_junctions
        assert again.effective_probes()[0].label == "a.dend1_x0.5"


def test_junction_sections_form_for_two_branched_cells():
    data = loads_model(ISSUE_EXAMPLE).to_dict()
    data["gap_junctions"] = [{"cells": ["a", "a"], "sections": ["soma", "dend1"],
                              "x": [0.5, 1.0], "g_uS": 0.001}]
    model = model_from_dict(data)
    assert model.gap_junctions[0].sections == ("soma", "dend1")
    assert "sections = [" in dumps_model(model)


def test_set_reaches_a_section_field_by_name():
    model = apply_overrides(loads_model(ISSUE_EXAMPLE),
                            [("cells.a.sections.dend1.radius_um", 0.8)])
    assert model.cells[0].section("dend1").radius_um == 0.8
    # area of the dendrite follows: 2 pi 0.8 200
    assert model.cells[0].section("dend1").area_um2 == pytest.approx(2 * math.pi * 0.8 * 200)


def test_per_section_discretization_and_properties():
    data = loads_model(ISSUE_EXAMPLE).to_dict()
    data["discretization"] = {"max_extent_um": 30.0}
    data["cells"][0]["sections"][0]["cvs"] = 1
    data["cells"][0]["sections"][1]["e_leak_mV"] = -70.0
    model = model_from_dict(data)
    a = model.cells[0]
    # 200 um at 30 um per CV: ceil(6.67) = 7; the soma keeps its own count
    assert model.section_cvs(a) == (1, 7)
    assert a.value(a.section("dend1"), "e_leak_mV") == -70.0
    assert a.value(a.section("soma"), "e_leak_mV") == -65.0
    assert model.section_cvs(model.cells[1]) == (4,)  # 100 / 30 -> 4


def test_taper_and_profile_areas_are_frustums():
    data = loads_model(ISSUE_EXAMPLE).to_dict()
    dend = data["cells"][0]["sections"][1]
    dend.pop("radius_um")
    dend.update(radius_start_um=2.0, radius_end_um=1.0)
    model = model_from_dict(data)
    section = model.cells[0].section("dend1")
    # lateral frustum area pi (r1 + r2) * slant, slant = sqrt(200^2 + 1^2)
    assert section.area_um2 == pytest.approx(math.pi * 3.0 * math.sqrt(200**2 + 1))
    assert not section.is_uniform and model.has_trees
    dend.pop("radius_start_um"), dend.pop("radius_end_um")
    dend["profile_um"] = [[0.0, 2.0], [100.0, 2.0], [200.0, 1.0]]
    section = model_from_dict(data).cells[0].section("dend1")
    assert section.area_um2 == pytest.approx(
        2 * math.pi * 2.0 * 100 + math.pi * 3.0 * math.sqrt(100**2 + 1))


def test_a_one_section_cell_is_read_as_a_cable_by_cable_only_sources():
    data = loads_model(ISSUE_EXAMPLE).to_dict()
    data["cells"][0]["sections"] = [{"name": "soma", "length_um": 20.0, "radius_um": 10.0}]
    data["probes"] = [{"cell": "a", "section": "soma", "x": 0.5}]
    data["stimuli"] = []
    data["gap_junctions"] = []
    model = model_from_dict(data)
    assert not model.has_trees
    cables = model.cables()
    assert cables.cells[0].length_um == 20.0 and cables.cells[0].radius_um == 10.0
    assert cables.effective_probes()[0].label == "a.soma_x0.5"  # labels survive


@pytest.mark.parametrize("change, field, words", [
    (lambda d: d["cells"][0]["sections"][1].update(parent_x=0.5),
     "cells.0.sections.1.parent_x", "allowed: 0 or 1"),
    (lambda d: d["cells"][0]["sections"][1].update(parent="axon"),
     "cells.0.sections.1.parent", "unknown section 'axon'"),
    (lambda d: d["cells"][0]["sections"][0].update(parent="dend1"),
     "cells.0.sections.0.parent", "the first section is the root"),
    (lambda d: d["cells"][0]["sections"][1].update(name="soma"),
     "cells.0.sections.1.name", "duplicate section name 'soma'"),
    (lambda d: d["cells"][0]["sections"][1].pop("radius_um"),
     "cells.0.sections.1", "exactly one of radius_um"),
    (lambda d: d["probes"][0].update(section="dend2"),
     "probes.0.section", "cell 'a' has no section 'dend2'"),
    (lambda d: d["probes"].append({"cell": "c", "section": "soma", "x": 0.5}),
     "probes.1.section", "leave section out"),
    (lambda d: d["gap_junctions"][0]["sites"][0].update(section="axon"),
     "gap_junctions.0.sections.0", "no section 'axon'"),
    (lambda d: d["gap_junctions"][0]["sites"][0].update(where=1),
     "gap_junctions.0.sites.0.where", "unknown key"),
    (lambda d: d["cells"][0].update(length_um=10.0),
     "cells.0", "not both"),
    (lambda d: d.update(discretization={"cvs_per_cell": 3}),
     "discretization.cvs_per_cell", "cvs_per_section"),
    (lambda d: d["cells"][0]["sections"].append(
        {"name": "x", "parent": "soma", "length_um": 5.0,
         "profile_um": [[0.0, 1.0], [4.0, 1.0]]}),
     "cells.0.sections.2.profile_um", "distances from 0 to length_um"),
])
def test_bad_trees_are_refused_in_one_line_naming_the_field(change, field, words):
    data = loads_model(ISSUE_EXAMPLE).to_dict()
    change(data)
    with pytest.raises(InvalidModelError) as caught:
        model_from_dict(data, source="m.toml")
    text = without_names(caught.value.one_line())
    assert "\n" not in str(caught.value).strip()
    assert field in text and words in text and "m.toml" in text


def test_a_cycle_of_parents_is_refused():
    data = loads_model(ISSUE_EXAMPLE).to_dict()
    data["cells"][0]["sections"] += [
        {"name": "p", "parent": "q", "length_um": 5.0, "radius_um": 1.0},
        {"name": "q", "parent": "p", "length_um": 5.0, "radius_um": 1.0}]
    with pytest.raises(InvalidModelError, match="its own ancestor"):
        model_from_dict(data)


def test_swc_cell_is_read_relative_to_the_model_file(tmp_path):
    (tmp_path / "morph").mkdir()
    (tmp_path / "morph" / "y.swc").write_text(textwrap.dedent("""\
        # a soma and a Y of dendrites
        1 1 0 0 0 5 -1
        2 3 5 0 0 1 1
        3 3 25 0 0 1 2
        4 3 25 30 0 0.5 3
        5 3 25 -40 0 0.5 3
        """))
    text = ISSUE_EXAMPLE.replace(
        '[[cells.sections]]\nname = "soma"\nlength_um = 20.0\nradius_um = 10.0\n'
        '[[cells.sections]]\nname = "dend1"\nparent = "soma"\nparent_x = 1.0\n'
        'length_um = 200.0\nradius_um = 1.0\n', 'swc = "morph/y.swc"\n')
    text = text.replace('section = "dend1"', 'section = "dend_1"')
    path = tmp_path / "model.toml"
    path.write_text(text)
    model = load_model(path)
    a = model.cells[0]
    names = [s.name for s in a.tree()]
    assert names[0] == "soma" and len(names) == 4
    soma = a.tree()[0]
    assert soma.length_um == pytest.approx(10.0) and soma.radius_um == pytest.approx(5.0)
    # the daughters start at the fork sample (25, 0): lengths 30 and 40
    lengths = sorted(s.length_um for s in a.tree()[2:])
    assert lengths == pytest.approx([30.0, 40.0])


def test_a_bad_swc_file_is_exit_2_naming_the_file_and_line(tmp_path):
    (tmp_path / "bad.swc").write_text("1 1 0 0 0 5 -1\n2 3 5 0 0 -1 1\n")
    text = ISSUE_EXAMPLE.split("[[cells.sections]]")[0] + 'swc = "bad.swc"\n' + \
        "[[cells]]" + ISSUE_EXAMPLE.split("[[cells]]")[2].split("[[probes]]")[0]
    path = tmp_path / "model.toml"
    path.write_text(text)
    done = subprocess.run([sys.executable, "-m", "crosssim", "check", str(path),
                           "--backend", "arbor", "--references", "none"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "bad.swc:2" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def without_names(text: str) -> str:
    """An error text with the entry names dropped from its path (``cells.0(a)`` ->
    ``cells.0``), so a test can name the path by index."""
    return re.sub(r"\.(\d+)\([^)]*\)", r".\1", text)


HH_CELL = {"name": "a", "length_um": 20.0, "radius_um": 10.0, "cm_F_per_m2": 0.01,
           "ra_ohm_cm": 100.0, "membrane": "hh"}


def hh_model(**cell):
    return model_from_dict({"name": "hh", "simulation": {"t_stop_ms": 10.0, "dt_ms": 0.025},
                            "cells": [{**HH_CELL, **cell}]})


def test_an_hh_cell_needs_no_passive_leak_and_starts_at_minus_65():
    model = hh_model()
    cell = model.cells[0]
    assert model.is_active and cell.initial_mV == -65.0
    section = cell.tree()[0]
    assert cell.hh_of(section).gnabar_S_per_cm2 == 0.12 and cell.leak_of(section) is None
    assert model.simulation.celsius == 6.3
    assert hh_model(hh={"ena_mV": 55.0}).cells[0].hh_of(section).ena_mV == 55.0


@pytest.mark.parametrize("cell, field, words", [
    ({"membrane": "passive"}, "g_leak_S_per_cm2", "a passive membrane needs its leak"),
    ({"membrane": "passive", "hh": {}, "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -65.0},
     "cells.0.hh", 'membrane = "hh"'),
    ({"hh": {"gnabar_S_per_cm2": "0.12"}}, "cells.0.hh.gnabar_S_per_cm2", "a number"),
    ({"membrane": "HH"}, "cells.0.membrane", "passive"),
    ({"g_leak_S_per_cm2": 1e-4}, "e_leak_mV", "both"),
])
def test_bad_membranes_are_refused_naming_the_field(cell, field, words):
    with pytest.raises(InvalidModelError) as caught:
        hh_model(**cell)
    text = without_names(caught.value.one_line())
    assert field in text and words in text


MYLEAK = textwrap.dedent("""\
    NEURON {
        SUFFIX myleak
        NONSPECIFIC_CURRENT i
        RANGE g, e
    }
    UNITS { (mV) = (millivolt) (mA) = (milliamp) (S) = (siemens) }
    PARAMETER {
        g = 0.001 (S/cm2)  : conductance
        e = -70 (mV)
    }
    ASSIGNED { v (mV) i (mA/cm2) }
    BREAKPOINT { i = g*(v - e) }
    """)


def test_user_mechanisms_are_declared_and_used_by_suffix_with_their_parameters(tmp_path):
    (tmp_path / "mech").mkdir()
    (tmp_path / "mech" / "myleak.mod").write_text(MYLEAK)
    text = textwrap.dedent("""\
        name = "usermech"
        [simulation]
        t_stop_ms = 5.0
        dt_ms = 0.025
        [[mechanisms]]
        mod = "mech/myleak.mod"
        [[cells]]
        name = "a"
        length_um = 20.0
        radius_um = 10.0
        cm_F_per_m2 = 0.01
        ra_ohm_cm = 100.0
        membrane = "passive"
        g_leak_S_per_cm2 = 1e-5
        e_leak_mV = -65.0
        [cells.channels.myleak]
        g = 2e-4
        """)
    (tmp_path / "m.toml").write_text(text)
    model = load_model(tmp_path / "m.toml")
    (mechanism,) = model.mechanisms
    assert mechanism.suffix == "myleak" and mechanism.parameters == ("g", "e")
    assert mechanism.mod == str(tmp_path / "mech" / "myleak.mod")  # absolute: reusable
    assert model.is_active and model.cells[0].channels == {"myleak": {"g": 2e-4}}
    (tmp_path / "bad.toml").write_text(text.replace("g = 2e-4", "gbar = 2e-4"))
    with pytest.raises(InvalidModelError) as caught:
        load_model(tmp_path / "bad.toml")
    assert "cells.0.channels.myleak.gbar" in without_names(caught.value.one_line())
    assert "one of myleak's PARAMETERs: g, e" in caught.value.one_line()
    (tmp_path / "bad2.toml").write_text(text.replace("[cells.channels.myleak]",
                                                     "[cells.channels.kdr]"))
    with pytest.raises(InvalidModelError, match="unknown mechanism 'kdr'.*myleak"):
        load_model(tmp_path / "bad2.toml")
    (tmp_path / "bad3.toml").write_text(text.replace("mech/myleak.mod", "mech/none.mod"))
    with pytest.raises(InvalidModelError, match="mechanisms.0.mod.*not found"):
        load_model(tmp_path / "bad3.toml")


def test_default_sources_that_cannot_run_a_model_are_left_out_with_the_reason(monkeypatch):
    import crosssim.sources as sources
    from crosssim.check import select_sources

    monkeypatch.setattr(sources, "_REGISTRY", dict(sources._REGISTRY))
    sources.register_source(sources.SourceSpec(
        "cablesim", sources.SIMULATOR, "cablesim_module:run", (), "cables only"))
    tree = loads_model(ISSUE_EXAMPLE)
    chosen, notes = select_sources(None, [], tree)
    assert "cablesim" not in chosen and {"arbor", "neuron"} <= set(chosen)
    (note,) = [n for n in notes if n.subject == "cablesim"]
    assert note.kind == "source-skipped"
    assert note.message == ("not applicable: cell 'a' has sections (branched, tapered or with "
                            "per-section properties); this source handles unbranched uniform "
                            "cables only")
    cables = loads_model(ISSUE_EXAMPLE.split("[[cells.sections]]")[0]
                         + "length_um = 20.0\nradius_um = 1.0\n"
                         + "[[cells]]" + ISSUE_EXAMPLE.split("[[cells]]")[2].split(
                             "[[probes]]")[0])
    assert "cablesim" in select_sources(None, [], cables)[0]
    # named explicitly, it is run and skipped by check, never a failure
    assert hh_model().is_active
    assert sources.source_spec("cablesim").not_applicable(hh_model()).startswith(
        "active membrane (cell 'a': hh)")


def test_the_lumped_steady_state_of_an_active_model_is_not_applicable():
    from crosssim.analytic import lumped_steady_state
    from crosssim.errors import SourceNotApplicableError

    with pytest.raises(SourceNotApplicableError,
                       match=r"active membrane \(cell 'a': hh\); the lumped model is passive"):
        lumped_steady_state(hh_model())
