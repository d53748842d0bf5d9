"""Suggested fixes chosen from evidence (``crosssim.suggestions``): a window for an initial
transient, dt for a stiff junction or a time-stepping error, CVs for a space error, a
tolerance only when nothing else explains it; and the suggestion in every output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import numpy as np
import pytest
from conftest import requires_arbor, requires_neuron
from report_fixtures import synthetic_check

from crosssim.builtin import builtin_model
from crosssim.compare import compare_results
from crosssim.decomposition import Decomposition
from crosssim.model import apply_overrides
from crosssim.notes import model_notes
from crosssim.result import RunResult
from crosssim.schema import schema
from crosssim.suggestions import suggest


def _pair(model, offset_mV: np.ndarray, tolerance: float):
    times = model.simulation.sample_times_ms()
    base = np.full((1, times.size), -65.0)
    a = RunResult("arbor", ["p"], times, base + offset_mV[None, :])
    b = RunResult("analytic", ["p"], times, base)
    (c,) = compare_results(a, b, kind="reference", tolerance_mV=tolerance)
    return c


def test_mismatches_only_at_the_start_suggest_a_window_at_the_next_sample():
    model = apply_overrides(builtin_model("two_cells"), ["simulation.t_stop_ms=10"])
    offset = np.zeros(model.simulation.n_samples)
    offset[1] = 0.14  # only the sample at t = 0.01 ms (1 of 1001), as next to a clamp
    c = _pair(model, offset, tolerance=0.1)
    assert (c.passed, c.n_mismatched, c.t_last_mismatch_ms, c.t_after_mismatch_ms) == (
        False, 1, 0.01, 0.02)
    fix = suggest(c, model)
    assert fix.fix == "window" and fix.action == "--window-start 0.02"
    assert "t <= 0.01 ms" in fix.why
    offset[600] = 0.14  # a mismatch late in the run: no transient, no window
    late = _pair(model, offset, tolerance=0.1)
    assert suggest(late, model).fix == "tolerance"


def _part(dominant, stepping, space):
    return Decomposition("arbor", "p", "discrete", 1e-12, stepping, space,
                         stepping + space, dominant)


def test_the_dominant_part_chooses_dt_or_cvs_and_sizes_the_change():
    model = builtin_model("two_cells")  # dt 0.01 ms, 1 CV per cell
    c = _pair(model, np.full(model.simulation.n_samples, 0.05), tolerance=0.03)
    c.a, c.probe = "arbor", "p"
    fix = suggest(c, model, [_part("time_stepping", 0.05, 0.001)])
    # first order: dt * (0.03 / 1.5 - 0.001) / 0.05 = 0.0038 ms -> the round 0.002 ms
    assert fix.fix == "dt"
    assert fix.action == "--set simulation.dt_ms=0.002 --set simulation.sample_dt_ms=0.01"
    fix = suggest(c, model, [_part("space", 0.001, 0.05)])
    # second order: 1 CV * sqrt(0.05 / 0.019) = 1.6 -> 3 (odd: the middle stays a centre)
    assert fix.fix == "cvs" and fix.action == "--set discretization.cvs_per_cell=3"
    both = suggest(c, model, [_part("space", 0.04, 0.05)])
    assert both.fix == "cvs" and "simulation.dt_ms=" in both.action
    implementation = suggest(c, model, [_part("implementation", 0.0, 0.0)])
    assert implementation.fix == "tolerance"
    assert suggest(c, model).fix == "tolerance"  # no decomposition: nothing else explains it
    assert "--references all" in suggest(c, model).why


def test_a_stiff_junction_suggests_the_dt_it_needs_not_a_tolerance():
    model = apply_overrides(builtin_model("two_cells"), ["gap_junctions.0.g_uS=10"])
    c = _pair(model, np.full(model.simulation.n_samples, 14.0), tolerance=0.2)
    fix = suggest(c, model, notes=model_notes(model, ["arbor", "neuron"]))
    needed = model.simulation.dt_ms / max(r for *_, r in model.stiff_junctions())
    assert fix.fix == "dt" and "g*dt/C" in fix.why
    dt = float(fix.action.split()[1].split("=")[1])
    assert dt < needed and (0.01 / dt) == round(0.01 / dt)  # on the sample grid


@pytest.fixture
def stiff_outcome():
    model = apply_overrides(builtin_model("two_cells"), ["gap_junctions.0.g_uS=10"])
    return synthetic_check(model, analytic_abs_mV=1e-4)


def test_the_suggestion_reaches_every_output(stiff_outcome, tmp_path):
    from crosssim.report.html import render_html
    from crosssim.report.junit import junit_bytes
    from crosssim.report.markdown import render_markdown
    from crosssim.report.summary import render_summary
    from crosssim.report.text import render_table
    from crosssim.suite import SuiteMember, SuiteOutcome, SuiteResult

    outcome = stiff_outcome
    failing = outcome.failing()
    assert failing and all(c.suggestion.fix == "dt" for c in failing)
    action = failing[0].suggestion.action
    document = json.loads(json.dumps(outcome.to_document()))
    jsonschema.validate(document, schema("check"))
    assert {c["suggestion"]["fix"] for c in document["comparisons"] if c["passed"] is False} \
        == {"dt"}
    text = render_table(outcome)
    assert f"Suggested fix (dt): {action}" in text
    assert f"To pass every comparison: {action}" in text
    junit = ET.fromstring(junit_bytes(outcome))
    assert all(f"Suggested fix (dt): {action}" in f.text for f in junit.iter("failure"))
    markdown = render_markdown(outcome, {})
    assert "**Suggested fixes**" in markdown and action in markdown
    page = render_html(outcome, {}, figures=[], given_toml="", resolved_toml="", run_id="r",
                       files=[])
    banner = page[page.index('id="verdict"'):page.index("</section>", page.index('id="verdict"'))]
    assert f"suggested fix (dt): <code>{action}</code>" in banner
    assert "suggested tolerance" not in banner
    member = SuiteMember("two_cells", "<built-in two_cells>", outcome.model)
    assert action in render_summary(SuiteOutcome([SuiteResult(member, outcome)]))


@requires_arbor
@requires_neuron
def test_a_stiff_junction_check_passes_once_its_suggestion_is_followed():
    from crosssim.check import check

    model = apply_overrides(builtin_model("two_cells"), ["gap_junctions.0.g_uS=10"])
    strong = check(model)
    fixes = {c.suggestion.fix for c in strong.failing()}
    assert fixes == {"dt"}, [c.suggestion for c in strong.failing()]
    words = strong.failing()[0].suggestion.action.split()
    fixed = apply_overrides(model, words[1::2])
    assert check(fixed).verdict == "pass"
