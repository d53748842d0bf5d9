"""Alignment and metrics of crosssim.compare, on synthetic traces with hand-computed answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssim import compare
from crosssim.compare import (
    AlignmentError,
    align,
    compare_results,
    deviation_metrics,
    infer_grid,
    suggest_tolerance,
)
from crosssim.result import RunResult


def source(name, times, rows, probes=("p", "q")):
    times = np.asarray(times, dtype=float)
    values = np.vstack([row(times) if callable(row) else row for row in rows])
    return RunResult(name, list(probes), times, values)


def ramp(t):
    return -70.0 + 2.0 * t


def wave(t):
    return -65.0 + 5.0 * np.sin(t)


# Grids ---------------------------------------------------------------------------------------


def test_infer_grid_accepts_rounding_drift():
    times = np.cumsum(np.full(50_001, 0.001)) - 0.001  # accumulated t += dt, like NEURON
    grid = infer_grid(times)
    assert grid.count == 50_001
    assert grid.step_ms == pytest.approx(0.001, rel=1e-9)
    assert grid.stop_ms == pytest.approx(50.0, rel=1e-9)


@pytest.mark.parametrize("times, reason", [
    ([0.0], "at least 2"),
    ([0.0, 0.1, 0.1, 0.3], "uniform"),
    ([0.0, 0.1, 0.25, 0.3], "uniform"),
    ([0.3, 0.2, 0.1], "increase"),
    ([0.0, np.nan, 0.2], "finite"),
])
def test_infer_grid_rejects(times, reason):
    with pytest.raises(AlignmentError, match=reason):
        infer_grid(np.asarray(times), label="x")


# Alignment -----------------------------------------------------------------------------------


def test_neuron_style_and_arbor_style_sample_counts_align_by_index():
    dt, steps = 0.01, 500
    neuron = source("neuron", np.arange(steps + 1) * dt, [ramp, wave])  # T/dt + 1 samples
    arbor = source("arbor", np.arange(steps) * dt, [ramp, wave])  # T/dt samples
    aligned = align(arbor, neuron)
    assert aligned.method == "exact"
    assert aligned.times_ms.shape == (steps,)
    assert aligned.times_ms[-1] == pytest.approx(4.99)
    assert np.shares_memory(aligned.a, arbor.values_mV)  # exact alignment copies nothing
    np.testing.assert_array_equal(aligned.a, aligned.b)


def test_a_source_that_does_not_cover_the_window_is_an_error_naming_it():
    dt, steps = 0.01, 500
    neuron = source("neuron", np.arange(steps + 1) * dt, [ramp, wave])
    arbor = source("arbor", np.arange(steps) * dt, [ramp, wave])
    with pytest.raises(AlignmentError, match=r"arbor covers t = 0\.\.4\.99 ms.*0\.\.5 ms.*"
                                             "not extrapolating"):
        align(arbor, neuron, start_ms=0.0, stop_ms=5.0)
    with pytest.raises(AlignmentError, match="not extrapolating"):
        align(arbor, neuron, start_ms=0.0, stop_ms=5.0, interpolate=True)
    late = source("late", 1.0 + np.arange(401) * dt, [ramp, wave])
    with pytest.raises(AlignmentError, match="late covers t = 1..5 ms"):
        align(late, neuron, start_ms=0.0)


def test_disjoint_spans_are_refused():
    first = source("first", np.arange(11) * 0.1, [ramp, wave])
    second = source("second", 2.0 + np.arange(11) * 0.1, [ramp, wave])
    with pytest.raises(AlignmentError, match="do not overlap"):
        align(first, second, interpolate=True)


def test_rounding_drift_does_not_break_exact_alignment():
    rng = np.random.default_rng(1)
    nominal = np.arange(1001) * 0.025
    drifting = nominal + rng.uniform(-1e-9, 1e-9, nominal.size)
    a = source("arbor", nominal, [ramp, wave])
    b = source("neuron", drifting, [ramp, wave])
    aligned = align(a, b, start_ms=0.0, stop_ms=25.0)
    assert aligned.method == "exact"
    assert aligned.times_ms.size == 1001
    np.testing.assert_array_equal(aligned.times_ms, nominal)  # the first source's times


@pytest.mark.parametrize("coarse_step", [0.02, 0.03, 0.1])
def test_different_sample_dt_that_divide_take_the_coarse_samples(coarse_step):
    fine = source("arbor", np.arange(501) * 0.01, [ramp, wave])
    n_coarse = round(5.0 / coarse_step) + 1
    coarse = source("analytic", np.arange(n_coarse) * coarse_step, [ramp, wave])
    for aligned in (align(fine, coarse), align(coarse, fine)):
        assert aligned.method == "exact"
        assert aligned.times_ms.size == min(n_coarse, math.floor(5.0 / coarse_step + 1e-9) + 1)
        np.testing.assert_allclose(aligned.a, aligned.b, rtol=0, atol=1e-12)
        assert aligned.step_ms == pytest.approx(coarse_step)


def test_coarse_grid_with_an_offset_on_the_fine_grid_aligns_exactly():
    fine = source("fine", np.arange(501) * 0.01, [ramp, wave])
    coarse = source("coarse", 0.01 + np.arange(250) * 0.02, [ramp, wave])  # 0.01, 0.03, ...
    aligned = align(fine, coarse)
    assert aligned.method == "exact"
    assert aligned.times_ms[0] == pytest.approx(0.01)
    np.testing.assert_allclose(aligned.a, aligned.b, atol=1e-12)


def test_grids_that_do_not_coincide_need_interpolate_true():
    fine = source("arbor", np.arange(501) * 0.01, [ramp, ramp])
    odd = source("other", np.arange(334) * 0.015, [ramp, ramp])
    with pytest.raises(AlignmentError, match="interpolate=True"):
        align(fine, odd)
    aligned = align(fine, odd, interpolate=True)
    assert aligned.method == "interpolated"
    assert aligned.interpolated_source == "arbor"  # the finer one goes onto the coarser grid
    assert aligned.step_ms == pytest.approx(0.015)
    assert aligned.times_ms[-1] <= 5.0 + 1e-12
    np.testing.assert_allclose(aligned.a, aligned.b, atol=1e-12)  # linear: exact


def test_offset_grids_interpolate_only_inside_both_spans():
    a = source("a", np.arange(101) * 0.05, [ramp, ramp])
    b = source("b", 0.025 + np.arange(100) * 0.05, [ramp, ramp])  # half a step later
    with pytest.raises(AlignmentError, match="offset"):
        align(a, b)
    aligned = align(a, b, interpolate=True)
    assert aligned.times_ms[0] >= 0.025 - 1e-12
    assert aligned.times_ms[-1] <= 4.975 + 1e-12
    np.testing.assert_allclose(aligned.a, aligned.b, atol=1e-12)


def test_probes_are_matched_by_name_and_missing_ones_named():
    t = np.arange(11) * 0.1
    a = source("arbor", t, [ramp, wave], probes=("p", "q"))
    b = source("neuron", t, [wave, ramp], probes=("q", "p"))
    aligned = align(a, b)
    np.testing.assert_array_equal(aligned.a, aligned.b)
    c = source("lumped", t, [ramp, wave], probes=("p", "r"))
    with pytest.raises(AlignmentError, match="lumped: has no probe q"):
        align(a, c)


# Metrics -------------------------------------------------------------------------------------

T4 = np.array([0.0, 0.1, 0.2, 0.3])
A4 = np.array([[0.0, 1.0, 2.0, 3.0]])
B4 = np.array([[0.0, 0.5, 2.5, 3.0]])


def test_metrics_match_hand_computed_values():
    m = deviation_metrics(T4, A4, B4, tolerance_mV=0.4)
    assert m.n_samples == 4
    assert m.max_abs_mV[0] == 0.5
    assert m.t_max_abs_ms[0] == 0.1  # the first of equal maxima
    assert (m.a_at_max_mV[0], m.b_at_max_mV[0]) == (1.0, 0.5)
    assert m.rms_mV[0] == pytest.approx(math.sqrt(0.5 / 4))
    assert m.max_rel_range[0] == pytest.approx(0.5 / 3.0)  # range of b: 3 - 0
    assert m.rms_rel_range[0] == pytest.approx(math.sqrt(0.125) / 3.0)
    assert m.final_abs_mV[0] == 0.0
    assert m.n_mismatched[0] == 2
    assert m.max_rel_diff[0] == pytest.approx(1.0)  # 0.5 / 0.5; the 0/0 sample is left out
    symmetric = deviation_metrics(T4, A4, B4, symmetric=True)
    assert symmetric.max_rel_diff[0] == pytest.approx(0.5)  # 0.5 / max(1, 0.5)
    assert symmetric.n_mismatched[0] == 0  # not gated


def test_tolerance_is_inclusive_like_numpy_atol():
    assert deviation_metrics(T4, A4, B4, tolerance_mV=0.5).n_mismatched[0] == 0


def test_window_skips_early_samples_tolerating_rounding():
    m = deviation_metrics(T4, A4, B4, tolerance_mV=0.4, window_start_ms=0.2 - 1e-13)
    assert m.n_samples == 2
    assert m.t_max_abs_ms[0] == 0.2
    assert m.max_rel_range[0] == pytest.approx(0.5 / 0.5)  # range of b in the window
    m = deviation_metrics(T4, A4, B4, window_start_ms=0.15)
    assert m.n_samples == 2
    with pytest.raises(AlignmentError, match="window start"):
        deviation_metrics(T4, A4, B4, window_start_ms=0.5)


def test_flat_reference_normalises_by_its_magnitude():
    b = np.full((1, 4), -70.0)
    m = deviation_metrics(T4, b + 0.7, b)
    assert m.max_rel_range[0] == pytest.approx(0.01)
    zero = np.zeros((1, 4))
    m = deviation_metrics(T4, zero + 0.1, zero)
    assert m.max_rel_range[0] == math.inf
    assert deviation_metrics(T4, zero, zero).max_rel_range[0] == 0.0


def test_nan_is_a_mismatch_and_the_worst_sample():
    a = A4.copy()
    a[0, 2] = np.nan
    m = deviation_metrics(T4, a, B4, tolerance_mV=10.0)
    assert math.isnan(m.max_abs_mV[0])
    assert m.t_max_abs_ms[0] == 0.2
    assert m.n_mismatched[0] == 1


def test_metrics_do_not_depend_on_the_block_size(monkeypatch):
    rng = np.random.default_rng(2)
    t = np.arange(300) * 0.1
    a = rng.normal(-70, 5, (37, 300))
    b = a + rng.normal(0, 0.01, a.shape)
    tolerance = rng.uniform(0, 0.03, 37)
    whole = deviation_metrics(t, a, b, tolerance_mV=tolerance, symmetric=True)
    monkeypatch.setattr(compare, "_BLOCK_VALUES", 1000)  # 3 rows per block
    blocked = deviation_metrics(t, a, b, tolerance_mV=tolerance, symmetric=True)
    for name in ("max_abs_mV", "t_max_abs_ms", "rms_mV", "max_rel_diff", "max_rel_range",
                 "n_mismatched", "final_abs_mV"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(blocked, name))
    # and each row matches a direct one-probe computation
    for i in (0, 17, 36):
        diff = np.abs(a[i] - b[i])
        assert whole.max_abs_mV[i] == diff.max()
        assert whole.n_mismatched[i] == np.count_nonzero(diff > tolerance[i])
        assert whole.rms_mV[i] == pytest.approx(np.sqrt(np.mean(diff ** 2)), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=30),
       st.lists(st.floats(-1, 1), min_size=2, max_size=30))
def test_backend_pairs_are_symmetric(values, noise):
    n = min(len(values), len(noise))
    t = np.arange(n) * 0.5
    a = np.array([values[:n]])
    b = a + np.array([noise[:n]])
    ab = deviation_metrics(t, a, b, tolerance_mV=0.5, symmetric=True)
    ba = deviation_metrics(t, b, a, tolerance_mV=0.5, symmetric=True)
    for name in ("max_abs_mV", "t_max_abs_ms", "rms_mV", "max_rel_diff", "final_abs_mV",
                 "n_mismatched"):
        np.testing.assert_allclose(getattr(ab, name), getattr(ba, name), rtol=1e-12)


# Suggested tolerance and compare_results --------------------------------------------------------


@pytest.mark.parametrize("observed, suggested", [
    (0.02531, 0.038), (0.105277, 0.16), (1.0, 1.5), (0.02, 0.03), (6.66e-13, 1e-12),
    (0.0666, 0.1), (0.0, 0.0), (7.0, 11.0),
])
def test_suggested_tolerance(observed, suggested):
    assert suggest_tolerance(observed) == suggested


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-15, 1e6))
def test_suggested_tolerance_has_headroom_and_two_figures(observed):
    suggested = suggest_tolerance(observed)
    assert suggested >= 1.5 * observed * (1 - 1e-12)
    assert suggested <= 1.5 * observed * 1.1 + 1e-300
    mantissa = f"{suggested:.6e}".split("e")[0].replace(".", "").rstrip("0")
    assert len(mantissa) <= 2


def test_compare_results_builds_json_ready_comparisons():
    t = np.arange(501) * 0.01
    a = source("arbor", t, [wave, ramp])
    b = source("analytic", t, [lambda x: wave(x) + 0.01 * np.exp(-x), ramp])
    comparisons = compare_results(a, b, kind="reference", tolerance_mV=[0.005, None],
                                  window_start_ms=0.0, start_ms=0.0, stop_ms=5.0)
    first, second = comparisons
    assert (first.a, first.b, first.probe, first.kind, first.gate) == (
        "arbor", "analytic", "p", "reference", "analytic")
    assert first.passed is False and first.n_mismatched == 70  # exp(-t) > 0.5 for t < 0.69
    assert first.max_abs_mV == pytest.approx(0.01)
    assert first.suggested_tolerance_mV == 0.015
    assert second.passed is None and second.tolerance_mV is None and second.n_mismatched == 0
    assert second.max_abs_mV == 0.0
    text = json.dumps([c.to_dict() for c in comparisons], allow_nan=False)
    assert '"alignment": "exact"' in text
    assert type(first.n_samples) is int and type(first.max_abs_mV) is float
