"""crosssim.check: pairs, tolerance routing, failures, messages, JUnit, assert_agree; and the
numerical truth: each backend converges to the exact cable solution as dt and CVs shrink."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points

import numpy as np
import pytest
from conftest import BACKENDS, requires_arbor, requires_neuron

from crosssim.builtin import builtin_model
from crosssim.check import check as _check
from crosssim.check import pair_kind, probe_tolerance, source_pairs
from crosssim.errors import BackendError, InvalidModelError, ToleranceExceededError
from crosssim.model import apply_overrides, model_from_dict
from crosssim.report.junit import junit_bytes
from crosssim.report.text import failure_message, render_table
from crosssim.result import RunResult
from crosssim.testing import assert_agree as _assert_agree

#: The pairing tests use the two references the synthetic sources provide.
CLASSIC = ["analytic", "lumped"]


def check(model, **kwargs):
    kwargs.setdefault("references", CLASSIC)
    return _check(model, **kwargs)


def assert_agree(model, **kwargs):
    __tracebackhide__ = True
    kwargs.setdefault("references", CLASSIC)
    return _assert_agree(model, **kwargs)

pytest_plugins = ["pytester"]

#: Offsets (mV, decaying as exp(-t)) of each synthetic source from a common trace.
OFFSETS = {"arbor": 0.0, "neuron": 1e-12, "analytic": 0.02, "lumped": 0.045}


def synthetic_runner(offsets=OFFSETS, broken=None):
    """A runner returning smooth traces on the model's grid, offset per source."""

    def run(name, model):
        if broken and name in broken:
            return broken[name](model)
        t = model.simulation.sample_times_ms()
        labels = [probe.label for probe in model.effective_probes()]
        base = np.vstack([-70 + (10 + i) * np.exp(-t / 5) for i in range(len(labels))])
        return RunResult(name, labels, t, base + offsets[name] * np.exp(-t))

    return run


@pytest.fixture
def seed():
    return builtin_model("two_cells")


# Pairs and tolerances -------------------------------------------------------------------------


def test_pairs_put_simulators_first_and_follow_the_kinds_not_the_names():
    kinds = {"lumped": "reference", "arbor": "simulator", "analytic": "reference",
             "neuron": "simulator"}
    pairs = source_pairs(kinds)
    assert pairs == [("arbor", "neuron", "backends"), ("arbor", "lumped", "reference"),
                     ("arbor", "analytic", "reference"), ("neuron", "lumped", "reference"),
                     ("neuron", "analytic", "reference"), ("lumped", "analytic", "references")]
    assert pair_kind("reference", "reference") == "references"
    assert pair_kind("simulator", "simulator") == "backends"
    # a name means nothing: a reference called "arbor" is paired as a reference
    assert source_pairs({"x": "simulator", "arbor": "reference"}) == [
        ("x", "arbor", "reference")]


def test_probe_tolerance_order(seed):
    model = apply_overrides(seed, ["tolerance.probes.a_gj.analytic_abs_mV=0.5",
                                   "tolerance.lumped_abs_mV=0.2"])
    assert probe_tolerance(model, "analytic", "a_gj") == 0.5
    assert probe_tolerance(model, "analytic", "b_gj") == model.tolerance.analytic_abs_mV == 0.2
    assert probe_tolerance(model, "backends", "a_gj") == 1e-6
    assert probe_tolerance(model, "lumped", "b_gj") == 0.2
    assert probe_tolerance(model, None, "a_gj") is None
    assert probe_tolerance(model, "discrete", "a_gj") is None  # no tolerance: reported
    gated = apply_overrides(model, [("tolerance.reference_abs_mV", {"discrete": 1e-9}),
                                    ("tolerance.probes.b_gj.reference_abs_mV",
                                     {"discrete": 2e-9})])
    assert probe_tolerance(gated, "discrete", "a_gj") == 1e-9
    assert probe_tolerance(gated, "discrete", "b_gj") == 2e-9
    overrides = {"analytic": 0.01}
    assert probe_tolerance(model, "analytic", "a_gj", overrides) == 0.01
    assert probe_tolerance(seed, "lumped", "a_gj") is None


def test_all_pairs_compared_and_gated_by_kind(seed):
    outcome = check(seed, backends=["arbor", "neuron"], runner=synthetic_runner())
    assert outcome.verdict == "pass" and outcome.exit_code == 0
    assert len(outcome.comparisons) == 6 * 2
    by_kind = {}
    for c in outcome.comparisons:
        by_kind.setdefault(c.gate or "references", []).append(c)
    assert {c.kind for c in by_kind["analytic"] + by_kind["lumped"]} == {"reference"}
    assert {c.tolerance_mV for c in by_kind["backends"]} == {1e-6}
    analytic = {c.tolerance_mV for c in by_kind["analytic"]}
    assert analytic == {seed.tolerance.analytic_abs_mV} == {0.2}
    assert all(c.passed is None for c in by_kind["lumped"] + by_kind["references"])
    references = by_kind["references"][0]
    assert references.max_abs_mV == pytest.approx(0.025)


def test_tightened_tolerance_fails_with_exit_code_1(seed):
    outcome = check(seed, backends=["arbor", "neuron"], analytic_abs_mV=0.01,
                    runner=synthetic_runner())
    assert outcome.verdict == "fail" and outcome.exit_code == 1
    failing = outcome.failing()
    assert {(c.a, c.b) for c in failing} == {("arbor", "analytic"), ("neuron", "analytic")}
    assert all(c.suggested_tolerance_mV == 0.03 for c in failing)


def test_per_probe_override_and_report_only(seed):
    model = apply_overrides(seed, ["tolerance.probes.b_gj.analytic_abs_mV=0.001"])
    outcome = check(model, backends=["arbor"], runner=synthetic_runner())
    assert [c.probe for c in outcome.failing()] == ["b_gj"]
    outcome = check(model, backends=["arbor"], analytic_abs_mV=None,
                    runner=synthetic_runner())
    assert outcome.verdict == "pass"
    assert all(c.passed is None for c in outcome.comparisons)
    outcome = check(model, backends=["arbor"], lumped_abs_mV=0.04, runner=synthetic_runner())
    assert {(c.a, c.b) for c in outcome.failing()} == {("arbor", "lumped"), ("arbor",
                                                                               "analytic")}


def test_window_skips_the_start(seed):
    outcome = check(seed, backends=["arbor"], analytic_abs_mV=0.01, window_start_ms=1.0,
                    runner=synthetic_runner())
    assert outcome.verdict == "pass"  # 0.02 * exp(-1) < 0.01
    assert all(c.window_start_ms == 1.0 for c in outcome.comparisons)


def _nan(model):
    t = model.simulation.sample_times_ms()
    values = np.zeros((2, t.size))
    values[1, 7] = np.nan
    return RunResult("neuron", ["a_gj", "b_gj"], t, values)


def _short(model):
    t = model.simulation.sample_times_ms()[:-1]  # T/dt samples: does not reach t_stop
    return RunResult("neuron", ["a_gj", "b_gj"], t, np.zeros((2, t.size)))


def _missing_probe(model):
    t = model.simulation.sample_times_ms()
    return RunResult("neuron", ["a_gj"], t, np.zeros((1, t.size)))


def _crash(model):
    raise RuntimeError("segmentation fault in the simulator")


def _backend_error(model):
    raise BackendError("neuron", "not installed: cannot import neuron")


@pytest.mark.parametrize("broken, reason", [
    (_nan, "non-finite voltage"),
    (_short, "covers t = 0..4.99 ms"),
    (_missing_probe, "no trace for probe(s) b_gj"),
    (_crash, "RuntimeError: segmentation fault"),
    (_backend_error, "not installed"),
])
def test_a_failing_source_is_an_error_never_a_pass(seed, broken, reason):
    outcome = check(seed, backends=["arbor", "neuron"],
                    runner=synthetic_runner(broken={"neuron": broken}))
    assert outcome.verdict == "error" and outcome.exit_code == 3
    assert reason in outcome.failures["neuron"]
    assert not any("neuron" in (c.a, c.b) for c in outcome.comparisons)
    assert any(c.a == "arbor" for c in outcome.comparisons)  # the others still compared


def test_invalid_model_errors_are_not_turned_into_source_failures(seed):
    def invalid(model):
        raise InvalidModelError("unsupported", field="cells")

    with pytest.raises(InvalidModelError):
        check(seed, backends=["arbor"], runner=synthetic_runner(broken={"arbor": invalid}))


def test_bad_arguments_are_usage_errors(seed):
    from crosssim.errors import UsageError

    with pytest.raises(UsageError, match="window"):
        check(seed, backends=[], window_start_ms=6.0, runner=synthetic_runner())
    with pytest.raises(UsageError, match="finite number"):
        check(seed, backends=[], analytic_abs_mV=-1.0, runner=synthetic_runner())


# Messages, table, JUnit ---------------------------------------------------------------------


def test_failure_message_follows_numpy_testing(seed):
    outcome = check(seed, backends=["arbor"], analytic_abs_mV=0.01,
                    runner=synthetic_runner())
    message = failure_message(outcome.failing()[0])
    lines = message.splitlines()
    assert lines[0] == ("arbor vs analytic @ a_gj: not equal to tolerance atol=0.01 mV "
                        "(one-sided: analytic is the reference)")
    assert lines[1] == "Mismatched samples: 70 / 501 (14%)"
    assert lines[2].startswith("Worst sample: t = 0 ms: arbor = -60 mV, analytic = -59.98 mV")
    assert lines[3] == "Max absolute difference: 0.02 mV"
    assert lines[4].startswith("Max relative difference: 0.000333")
    assert "analytic_abs_mV = 0.03 mV" in lines[5] and "--tolerance-analytic 0.03" in lines[5]


def test_table_lists_every_comparison_then_details_and_verdict(seed):
    outcome = check(seed, backends=["arbor", "neuron"], analytic_abs_mV=0.01,
                    runner=synthetic_runner(broken={"neuron": _crash}))
    table = render_table(outcome)
    lines = table.splitlines()
    assert lines[0].startswith("crosssim check: two_cells (2 cells, 1 CV/cell")
    assert lines[1].split()[:2] == ["pair", "probe"]
    rows = [line for line in lines
            if line.startswith(("arbor vs", "analytic vs")) and "@" not in line]
    assert len(rows) == 4  # reference-vs-reference pairs are summed up in one line
    assert sum(row.endswith("FAIL") for row in rows) == 2
    assert sum(row.endswith("report") for row in rows) == 2
    assert ("(2 reference-vs-reference comparisons, reported only, largest 0.025 mV "
            "(analytic vs lumped @ a_gj)") in table
    assert "Mismatched samples: 70 / 501" in table
    assert "neuron: FAILED: RuntimeError: segmentation fault" in table
    assert lines[-1].startswith("ERROR: 1 source(s) failed (neuron)")


def test_table_of_a_large_model_shows_the_worst_probe_per_pair(seed):
    data = seed.to_dict()
    data["probes"] = [{"cell": "a", "x": i / 100, "name": f"p{i}"} for i in range(100)]
    model = model_from_dict(data)

    def run(name, model):
        t = model.simulation.sample_times_ms()
        values = np.vstack([np.full(t.size, -70.0) + OFFSETS[name] * (1 + i / 100)
                            for i in range(100)])
        return RunResult(name, model.probe_labels, t, values)

    outcome = check(model, backends=["arbor", "neuron"], analytic_abs_mV=0.035, runner=run)
    table = render_table(outcome)
    assert "arbor vs analytic   p99 (worst of 100)" in table
    assert "(11 of 500 comparisons shown; all of them with --format json)" in table
    assert "(100 reference-vs-reference comparisons, reported only" in table
    assert table.count("Mismatched samples") == 10
    assert "... and 38 more failing comparisons" in table
    assert table.index("@ p99:") < table.index("@ p98:")  # worst first


def test_junit_xml_one_case_per_comparison_and_escaped(seed):
    def crash(model):
        raise RuntimeError('bad <xml> & "quotes" \x00 \x1b[31m')

    outcome = check(seed, backends=["arbor", "neuron"], analytic_abs_mV=0.01,
                    runner=synthetic_runner(broken={"neuron": crash}))
    root = ET.fromstring(junit_bytes(outcome))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("tests") == str(len(cases)) == "7"
    assert (suite.get("failures"), suite.get("errors")) == ("2", "1")
    # reported-only comparisons (arbor - lumped, analytic vs lumped) are skipped, not passed
    assert suite.get("skipped") == root.get("skipped") == "4"
    names = [case.get("name") for case in cases]
    assert "arbor vs analytic @ a_gj" in names and "source neuron" in names
    assert {case.get("classname") for case in cases} == {"two_cells"}
    failure = cases[names.index("arbor vs analytic @ a_gj")].find("failure")
    assert "Mismatched samples: 70 / 501" in failure.text
    assert "0.02 mV" in failure.get("message")
    error = cases[names.index("source neuron")].find("error")
    assert 'bad <xml> & "quotes"' in error.get("message")
    reported = cases[names.index("analytic vs lumped @ a_gj")]
    assert reported.find("failure") is None
    assert reported.find("skipped").get("message").startswith("reported, not gated: max |")
    assert failure is not None and cases[names.index("arbor vs analytic @ a_gj")].find(
        "skipped") is None


# assert_agree and the pytest plugin ---------------------------------------------------------------


def test_assert_agree_raises_an_assertion_error_carrying_the_outcome(seed, tmp_path):
    assert assert_agree(seed, backends=["arbor"], runner=synthetic_runner()).verdict == "pass"
    with pytest.raises(ToleranceExceededError) as info:
        assert_agree(seed, backends=["arbor"], analytic_abs_mV=0.01, runner=synthetic_runner(),
                     save_to=tmp_path / "repro")
    assert isinstance(info.value, AssertionError)
    assert info.value.outcome.verdict == "fail"
    assert "Mismatched samples" in str(info.value) and "pair" in str(info.value)
    assert sorted(p.name for p in (tmp_path / "repro").iterdir()) == [
        "check.json", "model.toml", "traces.csv"]
    with pytest.raises(BackendError) as info:
        assert_agree(seed, backends=["arbor"], runner=synthetic_runner(
            broken={"arbor": _crash}))
    assert info.value.outcome.failures == {"arbor": "RuntimeError: segmentation fault in the "
                                                     "simulator"}


def test_pytest_plugin_fixture_hides_frames_and_saves_artifacts(pytester):
    pytester.makepyfile(
        """
        import numpy as np
        from crosssim.result import RunResult
        from crosssim.builtin import builtin_model

        def runner(name, model):
            t = model.simulation.sample_times_ms()
            offset = 0.02 if name == "analytic" else 0.0
            return RunResult(name, ["a_gj", "b_gj"], t, np.full((2, t.size), -70.0) + offset)

        def test_agree(crosssim_agree):
            crosssim_agree(builtin_model("two_cells"), backends=["arbor"],
                           analytic_abs_mV=0.01, runner=runner)
        """
    )
    installed = any(ep.value == "crosssim.pytest_plugin"
                    for ep in entry_points(group="pytest11"))
    result = pytester.runpytest_inprocess(*([] if installed else ["-p", "crosssim.pytest_plugin"]))
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "ToleranceExceededError" in output
    assert "Mismatched samples: 501 / 501 (100%)" in output
    assert "saved in" in output
    assert "outcome = check(" not in output  # assert_agree's own frame is hidden
    assert "crosssim: simulators installed" in output


def test_plugin_and_comparison_layer_import_no_simulator():
    code = ("import sys, crosssim.pytest_plugin, crosssim.testing, crosssim.check, "
            "crosssim.compare, crosssim.report.junit, crosssim.commands.check; "
            "bad = [m for m in ('arbor', 'neuron') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# Numerical truth: real backends against the exact cable solution -----------------------------

def _refined(model, **fields):
    overrides = [(f"{section}.{key}", value) for section, values in fields.items()
                 for key, value in values.items()]
    return apply_overrides(model, overrides)


def _against_exact(model, backend, **kwargs):
    outcome = check(model, backends=[backend], references=("analytic",), **kwargs)
    assert not outcome.failures, outcome.failures
    return {c.probe: c for c in outcome.comparisons}


@pytest.fixture(scope="module")
def fine_seed_outcome():
    """The seed model at dt 0.001 ms, 101 CVs per cell, every step sampled, every source."""
    model = _refined(builtin_model("two_cells"),
                     discretization={"cvs_per_cell": 101},
                     simulation={"dt_ms": 0.001, "sample_dt_ms": 0.001})
    installed = [name for name in ("arbor", "neuron")
                 if importlib.util.find_spec(name) is not None]
    return check(model, backends=installed, references=("analytic",))


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_fine_seed_within_002_mV_of_exact_at_every_sample(fine_seed_outcome, backend):
    assert backend not in fine_seed_outcome.failures, fine_seed_outcome.failures
    comparisons = [c for c in fine_seed_outcome.comparisons
                   if (c.a, c.b) == (backend, "analytic")]
    assert len(comparisons) == 2
    for c in comparisons:
        assert c.n_samples == 5001 and c.window_start_ms == 0.0
        assert c.max_abs_mV <= 0.02, failure_message(c)


@pytest.mark.slow
@requires_arbor
@requires_neuron
def test_matched_arbor_and_neuron_agree_to_1e_9_mV(fine_seed_outcome, seed):
    matched = [c for c in fine_seed_outcome.comparisons if c.kind == "backends"]
    coarse = check(seed, backends=["arbor", "neuron"], references=())
    matched += coarse.comparisons
    assert len(matched) == 4
    for c in matched:
        assert c.max_abs_mV <= 1e-9, failure_message(c)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_error_halves_with_dt_implicit_euler(seed, backend):
    """101 CVs (space resolved); max error over the trace, sampled every 0.04 ms."""
    errors = []
    for dt in (0.02, 0.01, 0.005):
        model = _refined(seed, discretization={"cvs_per_cell": 101},
                         simulation={"dt_ms": dt, "sample_dt_ms": 0.04})
        errors.append(max(c.max_abs_mV for c in _against_exact(model, backend).values()))
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    assert all(1.8 <= ratio <= 2.2 for ratio in ratios), (errors, ratios)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_error_falls_with_cv_size_squared_at_cv_centres(seed, backend):
    """Odd CV counts keep x = 0.5 a CV centre.  At t = 50 ms (10 membrane time constants)
    the time-step error has decayed and the spatial error remains."""
    counts = (5, 11, 21)
    errors = []
    for cvs in counts:
        model = _refined(seed, discretization={"cvs_per_cell": cvs},
                         simulation={"t_stop_ms": 50.0, "dt_ms": 0.01, "sample_dt_ms": 5.0})
        errors.append(max(c.final_abs_mV for c in _against_exact(model, backend).values()))
    for i in range(2):
        expected = (counts[i + 1] / counts[i]) ** 2  # ~4x per halving of the CV size
        assert errors[i] / errors[i + 1] == pytest.approx(expected, rel=0.1), errors
    assert errors[-1] < 1e-4
    assert math.isfinite(errors[0]) and errors[0] < 0.002
