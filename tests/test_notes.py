"""Notes are data: a note that explains a result reaches every output (text table, JSON,
JUnit, HTML, Markdown, assert_agree's message, the sweep table), not only stderr."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from report_fixtures import fake_source

from crosssim.builtin import builtin_model
from crosssim.check import check
from crosssim.errors import ToleranceExceededError
from crosssim.model import apply_overrides
from crosssim.notes import model_notes


@pytest.fixture
def stiff():
    """The seed with a 10 uS junction: g*dt/C = 10.6 at dt 0.01 ms (hand-derived: the
    1-CV cell's C = cm * 2 pi r L = 0.005 F/m^2 * 1.885e-9 m^2 = 9.42 pF; g dt / C =
    1e-5 S * 1e-5 s / 9.42e-12 F = 10.6)."""
    return apply_overrides(builtin_model("two_cells"), ["gap_junctions.0.g_uS=10"])


def _outcome(model):
    return check(model, backends=["arbor", "neuron"],
                 runner=lambda name, m: fake_source(name, m))


def test_the_stiff_junction_note_has_its_numbers_and_its_fix(stiff):
    [note] = model_notes(stiff, ["arbor", "neuron"])
    assert note.kind == "stiff-junction" and note.subject == "gap_junctions.0"
    assert "g*dt/C = 10.6" in note.message
    # the fix: dt below C/g = 9.42e-4 ms
    assert note.action.startswith("simulation.dt_ms < 0.000942")
    assert model_notes(builtin_model("two_cells"), ["arbor", "neuron"]) == []


def test_notes_reach_text_json_junit_markdown_and_html(stiff, tmp_path):
    from crosssim.report.html import render_html
    from crosssim.report.junit import junit_bytes
    from crosssim.report.markdown import render_markdown
    from crosssim.report.text import render_table

    outcome = _outcome(stiff)
    [note] = [n for n in outcome.notes if n.kind == "stiff-junction"]
    assert note.text() in render_table(outcome)
    document = json.loads(json.dumps(outcome.to_document()))
    assert document["notes"][0] == {"kind": "stiff-junction", "subject": "gap_junctions.0",
                                    "message": note.message, "action": note.action}
    root = ET.fromstring(junit_bytes(outcome))
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["note.0.stiff-junction"] == note.text()
    markdown = render_markdown(outcome, {})
    assert "**Notes**" in markdown and "g\\*dt/C = 10.6" in markdown
    html = render_html(outcome, {}, given_toml="", resolved_toml="")
    assert "g*dt/C = 10.6" in html and "0.000942" in html


def test_notes_reach_the_assertion_message(stiff):
    from crosssim.testing import assert_agree

    with pytest.raises(ToleranceExceededError) as raised:
        assert_agree(stiff, backends=["arbor", "neuron"], backends_abs_mV=0.0,
                     runner=lambda name, m: fake_source(name, m))
    assert "note: gap_junctions.0: g*dt/C = 10.6" in str(raised.value)


def test_notes_reach_the_sweep_table(stiff):
    from crosssim.study import sweep
    from crosssim.study.sweeps import parse_grid

    result = sweep(builtin_model("two_cells"), parse_grid(["gap_junctions.0.g_uS=0.01,10"]),
                   backends=["arbor"], references=["lumped"])
    frame = result.to_frame()
    assert frame.loc[0, "notes"] == ""
    assert "g*dt/C = 10.6" in frame.loc[1, "notes"]
