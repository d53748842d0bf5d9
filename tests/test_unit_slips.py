"""Likely unit slips (a uF/cm^2 value in an F/m^2 field, mS/cm^2 in S/cm^2, volts in mV)
are warned about, never refused, as ``unit-slip`` notes that reach every output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from report_fixtures import synthetic_check

from crosssim.builtin import builtin_model
from crosssim.model import apply_overrides
from crosssim.notes import model_notes


@pytest.mark.parametrize("setting, subject, meant", [
    ("cells.a.cm_F_per_m2=1.0", "cells.a.cm_F_per_m2", "cm_F_per_m2 = 0.01"),
    ("cells.b.g_leak_S_per_cm2=10", "cells.b.g_leak_S_per_cm2", "g_leak_S_per_cm2 = 0.01"),
    ("cells.a.e_leak_mV=-0.1", "cells.a.e_leak_mV", "e_leak_mV = -100"),
    ("cells.a.ra_ohm_cm=0.9", "cells.a.ra_ohm_cm", "ra_ohm_cm = 90"),
])
def test_a_probable_unit_slip_is_a_note_naming_it(setting, subject, meant):
    model = apply_overrides(builtin_model("two_cells"), [setting])  # accepted: a warning
    slips = [note for note in model_notes(model, ["arbor", "neuron"])
             if note.kind == "unit-slip"]
    assert [note.subject for note in slips] == [subject]
    assert "looks like a value in" in slips[0].message and meant in slips[0].action


def test_ordinary_models_have_no_unit_slip_note():
    for name in ("two_cells", "chain", "ring", "grid"):
        notes = model_notes(builtin_model(name), ["arbor", "neuron"])
        assert not [note for note in notes if note.kind == "unit-slip"], name


def test_cells_with_the_same_slip_share_one_note():
    model = apply_overrides(builtin_model("ring", {"n_cells": 5}),
                            [f"cells.c{i}.cm_F_per_m2=1" for i in range(5)])
    (slip,) = [note for note in model_notes(model, []) if note.kind == "unit-slip"]
    assert slip.subject == "cells.{c0, c1, c2 and 2 more}.cm_F_per_m2"


def test_the_unit_slip_reaches_every_output():
    from crosssim.report.html import render_html
    from crosssim.report.junit import junit_bytes
    from crosssim.report.markdown import render_markdown
    from crosssim.report.text import render_table

    model = apply_overrides(builtin_model("two_cells"), ["cells.a.cm_F_per_m2=1.0"])
    outcome = synthetic_check(model, analytic_abs_mV=1e-6)
    text = "looks like a value in uF/cm^2"
    assert text in render_table(outcome)
    assert any(n["kind"] == "unit-slip" for n in json.loads(json.dumps(
        outcome.to_document()))["notes"])
    suite = ET.fromstring(junit_bytes(outcome)).find("testsuite")
    assert any(p.get("name").endswith(".unit-slip") for p in suite.iter("property"))
    assert text.replace("^", "\\^") in render_markdown(outcome, {}) or text in \
        render_markdown(outcome, {})
    assert text in render_html(outcome, {}, figures=[], given_toml="", resolved_toml="",
                               run_id="r", files=[])
