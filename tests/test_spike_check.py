"""Spikes in ``check``: active models are gated by spike count, spike time and the voltage
away from spikes; whole-trace voltages are reported.  Synthetic traces whose spikes are
triangles, so every crossing time is known exactly (a linear ramp is interpolated exactly)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crosssim.check import check
from crosssim.model import model_from_dict
from crosssim.result import RunResult
from crosssim.sources import run_source

#: A spike rises from -65 mV at s - 0.5 ms to +35 mV at s + 0.5 ms (100 mV/ms) and falls
#: back by s + 1.5 ms: it crosses 0 mV upwards at s + 0.15 ms.
CROSSING_OFFSET_MS = 0.15


def hh_model(**tolerance) -> object:
    return model_from_dict({
        "name": "hh_cell",
        "simulation": {"t_stop_ms": 50.0, "dt_ms": 0.025},
        "cells": [{"name": "a", "length_um": 20.0, "radius_um": 10.0, "cm_F_per_m2": 0.01,
                   "ra_ohm_cm": 100.0, "membrane": "hh"}],
        "probes": [{"cell": "a", "x": 0.5, "name": "soma"}],
        "stimuli": [{"cell": "a", "x": 0.5, "delay_ms": 5.0, "duration_ms": 40.0,
                     "amplitude_nA": 0.5}],
        "tolerance": tolerance,
    })


def spiking_trace(times_ms: np.ndarray, spikes_ms: list[float], offset_mV: float = 0.0
                  ) -> np.ndarray:
    v = np.full(times_ms.shape, -65.0 + offset_mV)
    for s in spikes_ms:
        rise = (times_ms >= s - 0.5) & (times_ms <= s + 0.5)
        v[rise] = -65.0 + 100.0 * (times_ms[rise] - (s - 0.5))
        fall = (times_ms > s + 0.5) & (times_ms <= s + 1.5)
        v[fall] = 35.0 - 100.0 * (times_ms[fall] - (s + 0.5))
    return v


def runner_for(spikes: dict[str, list[float]], offsets: dict[str, float] | None = None):
    def runner(name, model):
        if name not in spikes:
            return run_source(name, model)
        times = model.simulation.sample_times_ms()
        trace = spiking_trace(times, spikes[name], (offsets or {}).get(name, 0.0))
        return RunResult(backend=name, probes=["soma"], times_ms=times, values_mV=trace[None, :])
    return runner


def run(spikes, offsets=None, references=(), **tolerance):
    model = hh_model(**tolerance)
    return check(model, backends=list(spikes), references=list(references),
                 runner=runner_for(spikes, offsets))


def test_spikes_a_few_microseconds_apart_pass_and_are_measured_exactly():
    outcome = run({"arbor": [10.0, 25.0, 40.0], "neuron": [10.002, 25.004, 40.003]})
    assert outcome.verdict == "pass"
    (spikes,) = outcome.spikes
    assert (spikes.count_a, spikes.count_b, spikes.matched) == (3, 3, 3)
    assert spikes.max_shift_ms == pytest.approx(0.004, abs=1e-9)
    assert spikes.mean_shift_ms == pytest.approx(0.003, abs=1e-9)
    assert spikes.worst_spike == 2
    assert spikes.times_a_ms == pytest.approx([10.15, 25.15, 40.15], abs=1e-9)
    assert spikes.latency_a_ms == pytest.approx(10.15, abs=1e-9)
    assert spikes.subthreshold_max_abs_mV == pytest.approx(0.0, abs=1e-12)
    # the whole-trace voltage differs by a shift times the slope (0.004 ms x 100 mV/ms) and
    # is reported, not gated
    (voltage,) = outcome.comparisons
    assert voltage.tolerance_mV is None and voltage.passed is None
    assert voltage.max_abs_mV == pytest.approx(0.4, abs=1e-6)
    assert any(note.kind == "active-membrane" for note in outcome.notes)


def test_a_spike_shift_over_the_tolerance_fails_naming_the_shift():
    outcome = run({"arbor": [10.0, 25.0], "neuron": [10.0, 25.02]})
    assert outcome.verdict == "fail" and outcome.exit_code == 1
    (spikes,) = outcome.failing_spikes()
    assert spikes.message.startswith("spike times differ by up to 20 us (tolerance 10 us) "
                                     "at spike 2 (arbor: 25.1500 ms, neuron: 25.1700 ms)")


def test_the_spike_time_tolerance_is_the_models():
    assert run({"arbor": [10.0], "neuron": [10.02]}, spike_time_abs_ms=0.03).verdict == "pass"


def test_a_missing_spike_fails_on_the_count():
    outcome = run({"arbor": [10.0, 25.0, 40.0], "neuron": [10.0, 25.0]})
    assert outcome.verdict == "fail"
    (spikes,) = outcome.failing_spikes()
    assert "spike count differs: arbor 3, neuron 2" in spikes.message
    assert "first unmatched spike at 40.1500 ms in arbor" in spikes.message
    assert run({"arbor": [10.0, 25.0, 40.0], "neuron": [10.0, 25.0]},
               spike_count_abs=1).verdict == "pass"


def test_voltage_away_from_spikes_is_gated_between_simulators():
    outcome = run({"arbor": [10.0], "neuron": [10.0]}, offsets={"neuron": 0.08})
    assert outcome.verdict == "fail"
    (spikes,) = outcome.failing_spikes()
    assert spikes.subthreshold_max_abs_mV == pytest.approx(0.08, abs=1e-9)
    assert "voltage away from spikes differs by 0.08 mV (tolerance 0.05 mV)" in spikes.message


def test_passive_references_are_skipped_on_active_models_not_failed():
    outcome = run({"arbor": [10.0], "neuron": [10.0]}, references=["analytic", "lumped"])
    assert outcome.verdict == "pass" and not outcome.failures
    skipped = {note.subject: note.message for note in outcome.notes
               if note.kind == "source-skipped"}
    assert set(skipped) == {"analytic", "lumped"}
    assert "active membrane" in skipped["analytic"]


def test_spikes_reach_the_check_document_and_its_schema():
    import jsonschema

    from crosssim.schema import schema

    outcome = run({"arbor": [10.0, 25.0], "neuron": [10.0, 25.02]})
    document = json.loads(json.dumps(outcome.to_document()))
    jsonschema.validate(document, schema("check"))
    (entry,) = document["spikes"]
    assert entry["passed"] is False and entry["max_shift_ms"] == pytest.approx(0.02)
    assert entry["times_b_ms"] == pytest.approx([10.15, 25.17])


def test_spikes_reach_the_terminal_table_junit_and_assert_agree():
    import xml.etree.ElementTree as ET

    from crosssim.report.junit import junit_bytes
    from crosssim.report.text import render_table
    from crosssim.testing import ToleranceExceededError, assert_agree

    outcome = run({"arbor": [10.0, 25.0], "neuron": [10.0, 25.02]})
    table = render_table(outcome)
    assert "Spikes (found by crosssim in the sampled traces):" in table
    assert "arbor vs neuron @ soma: spike times differ by up to 20 us" in table
    assert table.splitlines()[-1].startswith("FAIL: 1 of 1 gated comparisons")
    suite = ET.fromstring(junit_bytes(outcome)).find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    (failure,) = suite.iter("failure")
    assert failure.get("message", "").startswith("spike times differ by up to 20 us")
    with pytest.raises(ToleranceExceededError, match="spike times differ by up to 20 us"):
        assert_agree(hh_model(), backends=["arbor", "neuron"], references=[],
                     runner=runner_for({"arbor": [10.0, 25.0], "neuron": [10.0, 25.02]}))


def test_reports_carry_the_spike_table_and_the_raster(tmp_path):
    from crosssim.report.writer import write_report

    outcome = run({"arbor": [10.0, 25.0], "neuron": [10.0, 25.02]})
    folder = write_report(outcome, tmp_path)
    html = (folder / "index.html").read_text()
    markdown = (folder / "report.md").read_text()
    assert '<section id="spikes">' in html and "spike times differ by up to 20 us" in html
    assert "**Spikes**" in markdown and "| `soma` | 2 / 2 | 20 |" in markdown
    assert (folder / "spikes.png").stat().st_size > 1000
    assert "2 of 2" not in html  # one spike gate: the verdict counts it once
    assert "1 of 1 gated comparisons exceed their tolerance" in markdown


def test_a_spike_shift_between_simulators_suggests_the_dt_that_would_pass():
    # 20 us at dt 0.025 ms: a dt^2 difference is 5 us at 0.0125, under 0.8 x 10 us
    outcome = run({"arbor": [10.0, 25.0], "neuron": [10.0, 25.02]})
    (spikes,) = outcome.failing_spikes()
    assert spikes.suggestion is not None
    assert spikes.suggestion.startswith("--set simulation.dt_ms=0.0125 "
                                        "--set simulation.sample_dt_ms=0.025")
    assert "--set tolerance.spike_time_abs_ms=0.03 to accept 20 us" in spikes.suggestion
    assert spikes.message.endswith(spikes.suggestion)
    # a count mismatch is no time-stepping difference: no dt is suggested
    (counted,) = run({"arbor": [10.0, 25.0, 40.0], "neuron": [10.0, 25.0]}).failing_spikes()
    assert counted.suggestion is None
