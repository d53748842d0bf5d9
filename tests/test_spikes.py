"""Spike detection and spike metrics (crosssim.spikes) against hand-derived answers, and on
a Hodgkin-Huxley point neuron integrated here with RK4 (no simulator needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from crosssim.spikes import (
    DEFAULT_HALF_WIDTH_ms,
    compare_spikes,
    detect_spikes,
    spike_gate,
    spike_windows_mask,
    voltage_deviation_away_from_spikes,
)

# Detection -----------------------------------------------------------------------------------


def test_crossing_time_is_the_linear_interpolation_between_the_straddling_samples():
    t = np.arange(8) * 0.25
    v = np.array([-70.0, -70.0, -10.0, 30.0, 20.0, -40.0, -70.0, -70.0])
    # -10 mV at 0.5 ms, 30 mV at 0.75 ms: 0 mV a quarter of the way, 0.5 + 0.25 / 4
    np.testing.assert_array_equal(detect_spikes(t, v), [0.5625])
    # at 20 mV: half of the way from -10 to 30, 0.5 + 0.25 / 2
    np.testing.assert_array_equal(detect_spikes(t, v, threshold_mV=10.0), [0.625])


def test_a_sample_exactly_at_threshold_is_the_crossing():
    t = np.array([0.0, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(detect_spikes(t, np.array([-1.0, 0.0, 5.0, -1.0])), [0.1])


def test_sine_crossings_match_the_hand_interpolation_and_the_analytic_times():
    # 40 sin(2 pi (t - 0.33) / 10) rises through 0 at t = 0.33 + 10 k; samples every 0.1 ms
    t = np.arange(501) * 0.1
    v = 40.0 * np.sin(2 * np.pi * (t - 0.33) / 10.0)
    spikes = detect_spikes(t, v, threshold_mV=0.0)
    # straddling samples at 10 k + 0.3 (40 sin(-0.006 pi)) and 10 k + 0.4 (40 sin(0.014 pi))
    low, high = math.sin(0.006 * math.pi), math.sin(0.014 * math.pi)
    expected = np.arange(5) * 10.0 + 0.3 + 0.1 * low / (low + high)
    np.testing.assert_allclose(spikes, expected, rtol=0, atol=1e-12)
    # the sine is nearly straight there: interpolation error of order dt^3, below 0.1 us
    np.testing.assert_allclose(spikes, np.arange(5) * 10.0 + 0.33, rtol=0, atol=1e-4)


def test_refractory_hold_counts_from_the_last_accepted_spike():
    # -1/+1 mV alternating every 0.25 ms: crossings at 0.375, 0.875, 1.375, 1.875, 2.375 ms
    t = np.arange(11) * 0.25
    v = np.array([-70.0, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1])
    np.testing.assert_array_equal(detect_spikes(t, v, refractory_ms=0.0),
                                  [0.375, 0.875, 1.375, 1.875, 2.375])
    # 1 ms hold: 0.875 rejected, 1.375 exactly 1 ms later accepted, then 1.875 rejected
    np.testing.assert_array_equal(detect_spikes(t, v), [0.375, 1.375, 2.375])
    # 1.1 ms hold: 0.875 and 1.375 rejected; a rejected crossing does not restart the hold,
    # so 1.875 (1.5 ms after 0.375) is a spike and 2.375 (0.5 ms after it) is not
    np.testing.assert_array_equal(detect_spikes(t, v, refractory_ms=1.1), [0.375, 1.875])


def test_noise_around_threshold_makes_no_double_spikes():
    # brief bumps from -65 to +35 mV (above 0 mV for 0.39 ms), +-20 mV uniform noise
    t = np.arange(5000) * 0.01
    centres = np.array([5.0, 17.0, 29.0, 41.0])
    bumps = 100.0 * np.exp(-(((t[:, None] - centres) / 0.3) ** 2)).sum(axis=1)
    rng = np.random.default_rng(7)
    v = -65.0 + bumps + rng.uniform(-20.0, 20.0, t.size)
    assert detect_spikes(t, v, refractory_ms=0.0).size > centres.size  # the noise re-crosses
    spikes = detect_spikes(t, v)
    assert spikes.size == centres.size
    # the noiseless rise crosses 0 mV at centre - 0.3 sqrt(ln(100 / 65)) = centre - 0.197 ms
    np.testing.assert_allclose(spikes, centres - 0.3 * math.sqrt(math.log(100 / 65)),
                               rtol=0, atol=0.1)


def test_a_trace_that_never_crosses_has_no_spikes():
    t = np.arange(100) * 0.1
    assert detect_spikes(t, -65.0 + 64.999 * np.sin(t) ** 2).size == 0
    assert detect_spikes(t, np.full(t.size, 20.0)).size == 0  # above threshold throughout
    assert detect_spikes(np.empty(0), np.empty(0)).size == 0
    assert detect_spikes(np.array([0.0]), np.array([5.0])).size == 0


def test_a_trace_starting_above_threshold_has_no_spike_at_its_start():
    t = np.arange(8) * 0.25
    v = np.array([10.0, 5.0, -5.0, 15.0, 20.0, -10.0, -20.0, -30.0])
    # the spike under way at t = 0 is not counted; the next rise (-5 -> 15 mV) is, even
    # though it comes 0.5625 ms after the start: no hold counts from the first sample
    np.testing.assert_array_equal(detect_spikes(t, v), [0.5 + 0.25 * 5 / 20])


@pytest.mark.parametrize(("t", "v", "message"), [
    ([0.0, 0.1, 0.2], [-70.0, np.nan, 10.0], "v_mV: 1 non-finite value"),
    ([0.0, np.inf, 0.2], [-70.0, 0.0, 10.0], "t_ms: 1 non-finite value"),
    ([0.0, 0.1, 0.1], [-70.0, 0.0, 10.0], "t_ms must increase strictly"),
    ([0.0, 0.1], [-70.0, 0.0, 10.0], "t_ms has 2 samples, v_mV 3"),
    ([[0.0, 0.1]], [[-70.0, 0.0]], "expected a 1-D array"),
])
def test_bad_traces_are_refused(t, v, message):
    with pytest.raises(ValueError, match=message):
        detect_spikes(np.array(t), np.array(v))


def test_a_negative_refractory_period_is_refused():
    with pytest.raises(ValueError, match="refractory_ms = -1.0; allowed"):
        detect_spikes(np.arange(3.0), np.zeros(3), refractory_ms=-1.0)


# Comparison and gate -------------------------------------------------------------------------


def test_matched_spikes_give_shifts_latencies_and_intervals():
    c = compare_spikes([10.0, 20.0, 30.0], [10.0625, 19.875, 30.25], stimulus_onset_ms=5.0)
    assert (c.count_a, c.count_b, c.matched) == (3, 3, 3)
    # b - a: +0.0625, -0.125, +0.25
    assert c.max_abs_shift_ms == 0.25
    assert c.mean_abs_shift_ms == pytest.approx(0.4375 / 3, abs=1e-15)
    assert (c.worst_shift_ms, c.worst_spike_number) == (0.25, 3)
    assert (c.worst_time_a_ms, c.worst_time_b_ms) == (30.0, 30.25)
    assert (c.latency_a_ms, c.latency_b_ms) == (5.0, 5.0625)
    assert c.isi_a_ms == (10.0, 10.0)
    assert c.isi_b_ms == (9.8125, 10.375)
    assert c.max_abs_isi_difference_ms == 0.375  # 10.375 - 10
    assert c.first_unmatched_ms is None and c.counts_match


def test_the_worst_shift_keeps_its_sign():
    c = compare_spikes([10.0, 20.0], [10.125, 19.5])
    assert (c.worst_shift_ms, c.worst_spike_number, c.max_abs_shift_ms) == (-0.5, 2, 0.5)
    assert c.latency_a_ms == 10.0  # onset 0 by default


def test_unequal_counts_match_in_order_over_the_shorter_train():
    c = compare_spikes([5.0, 10.0, 20.0, 30.0, 40.1], [5.0, 10.0, 20.0, 30.5])
    assert (c.count_a, c.count_b, c.matched) == (5, 4, 4)
    assert (c.max_abs_shift_ms, c.worst_spike_number) == (0.5, 4)
    assert c.max_abs_isi_difference_ms == 0.5  # intervals of matched spikes: 3 pairs
    assert (c.first_unmatched_ms, c.first_unmatched_label) == (40.1, "a")


def test_count_mismatch_message_names_both_counts_and_the_first_unmatched_spike():
    c = compare_spikes([5.0, 10.0, 20.0, 30.0, 40.1], [5.0, 10.0, 20.0, 30.0])
    assert spike_gate(c) == (
        False, "spike count differs: a 5, b 4 (first unmatched spike at 40.1 ms in a)")
    passed, message = spike_gate(c, count_must_match=False)
    assert passed
    assert message == ("spike times agree within 0.05 ms (4 matched of a 5, b 4): "
                       "largest shift 0 ms at spike 1 (a: 5 ms, b: 5 ms)")


def test_time_shift_message_names_the_shift_the_spike_and_both_times():
    c = compare_spikes([1.0, 5.0, 12.3456], [1.0, 5.001, 12.3579],
                       label_a="arbor", label_b="neuron")
    assert spike_gate(c, time_tol_ms=0.01) == (
        False, "spike times differ by up to 0.0123 ms (tolerance 0.01 ms) at spike 3 "
        "(arbor: 12.3456 ms, neuron: 12.3579 ms)")
    assert spike_gate(c, time_tol_ms=0.02)[0]
    both = compare_spikes([1.0, 5.0, 12.3456, 20.0], [1.0, 5.001, 12.3579])
    assert spike_gate(both, time_tol_ms=0.01)[1] == (
        "spike count differs: a 4, b 3 (first unmatched spike at 20 ms in a); spike times "
        "differ by up to 0.0123 ms (tolerance 0.01 ms) at spike 3 (a: 12.3456 ms, "
        "b: 12.3579 ms)")


def test_no_spikes_in_either_train_passes_and_one_empty_train_fails():
    none = compare_spikes([], [])
    assert none.max_abs_shift_ms is None and none.latency_a_ms is None
    assert spike_gate(none) == (True, "no spike pairs to compare (spikes: none in a or b)")
    one = compare_spikes([], [7.25])
    assert spike_gate(one) == (
        False, "spike count differs: a 0, b 1 (first unmatched spike at 7.25 ms in b)")
    assert spike_gate(one, count_must_match=False) == (
        True, "no spike pairs to compare (spikes: a 0, b 1)")


def test_comparison_serialises_to_json_as_plain_data():
    for c in (compare_spikes([10.0, 20.0], [10.5]), compare_spikes([], [])):
        data = c.to_dict()
        assert json.loads(json.dumps(data, allow_nan=False)) == data
    data = compare_spikes([10.0, 20.0], [10.5]).to_dict()
    assert data["times_a_ms"] == [10.0, 20.0]
    assert data["isi_b_ms"] == []
    assert data["max_abs_isi_difference_ms"] is None
    assert data["worst_shift_ms"] == 0.5


def test_unordered_spike_times_are_refused():
    with pytest.raises(ValueError, match="times_b_ms: spike times must be in increasing"):
        compare_spikes([1.0, 2.0], [2.0, 1.0])


# Away from spikes ----------------------------------------------------------------------------


def test_windows_mask_excludes_samples_within_the_half_width_of_any_spike():
    t = np.arange(21) * 0.5  # 0 .. 10 ms
    mask = spike_windows_mask(t, [[2.0], [2.2, 8.0]], half_width_ms=1.0)
    # [1, 3] around 2.0 (5 samples, both ends included), [1.2, 3.2] adds none, [7, 9] 5 more
    excluded = t[~mask]
    np.testing.assert_array_equal(excluded, [1.0, 1.5, 2.0, 2.5, 3.0, 7.0, 7.5, 8.0, 8.5, 9.0])
    assert mask.sum() == 11
    assert spike_windows_mask(t, [[], []]).all()
    assert spike_windows_mask(t, []).all()
    # the default half width is 3 ms: around a spike at 5 ms, 2 .. 8 ms go (13 samples)
    assert DEFAULT_HALF_WIDTH_ms == 3.0
    assert spike_windows_mask(t, [[5.0]]).sum() == 21 - 13


def test_voltage_deviation_away_from_spikes_skips_the_spike_windows():
    t = np.arange(21) * 0.5
    v_a = np.zeros(t.size)
    v_b = np.zeros(t.size)
    v_b[4] = 5.0    # t = 2 ms, inside a spike window
    v_b[12] = 0.25  # t = 6 ms, away
    v_b[20] = -0.5  # t = 10 ms, away
    deviation = voltage_deviation_away_from_spikes(t, v_a, v_b, [2.0], [2.2, 8.0],
                                                   half_width_ms=1.0)
    assert deviation.to_dict() == {
        "half_width_ms": 1.0, "samples_used": 11, "samples_total": 21, "max_abs_mV": 0.5,
        "t_max_abs_ms": 10.0, "a_at_max_mV": 0.0, "b_at_max_mV": -0.5}
    everywhere = voltage_deviation_away_from_spikes(t, v_a, v_b, [5.0], [], half_width_ms=6.0)
    assert (everywhere.samples_used, everywhere.max_abs_mV, everywhere.t_max_abs_ms) == (
        0, None, None)


# A Hodgkin-Huxley point neuron ---------------------------------------------------------------

HH_ONSET_ms = 5.0
HH_STOP_ms = 60.0


def _vtrap(x: float, y: float) -> float:
    """x / (exp(x / y) - 1), its limit y (1 - x / 2y) near x = 0."""
    ratio = x / y
    return y * (1 - ratio / 2) if abs(ratio) < 1e-6 else x / math.expm1(ratio)


def _hh_rates(v: float) -> tuple[float, float, float, float, float, float]:
    """alpha and beta of m, h, n in 1/ms at 6.3 C (rest near -65 mV)."""
    return (0.1 * _vtrap(-(v + 40), 10), 4 * math.exp(-(v + 65) / 18),
            0.07 * math.exp(-(v + 65) / 20), 1 / (1 + math.exp(-(v + 35) / 10)),
            0.01 * _vtrap(-(v + 55), 10), 0.125 * math.exp(-(v + 65) / 80))


def _hh_derivative(state: tuple[float, ...], stimulus: float) -> tuple[float, ...]:
    v, m, h, n = state
    am, bm, ah, bh, an, bn = _hh_rates(v)
    # C = 1 uF/cm2; gNa 120, gK 36, gL 0.3 mS/cm2; ENa 50, EK -77, EL -54.387 mV
    ionic = 120 * m**3 * h * (v - 50) + 36 * n**4 * (v + 77) + 0.3 * (v + 54.387)
    return (stimulus - ionic, am * (1 - m) - bm * m, ah * (1 - h) - bh * h,
            an * (1 - n) - bn * n)


def _run_hh(dt_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """V in mV every ``dt_ms`` (RK4) from rest, 10 uA/cm2 from HH_ONSET_ms to HH_STOP_ms.

    The onset is a step boundary on both grids; the stimulus is constant within a step."""
    steps = round(HH_STOP_ms / dt_ms)
    onset_step = round(HH_ONSET_ms / dt_ms)
    am, bm, ah, bh, an, bn = _hh_rates(-65.0)
    state: tuple[float, ...] = (-65.0, am / (am + bm), ah / (ah + bh), an / (an + bn))
    v = np.empty(steps + 1)
    v[0] = state[0]
    half = dt_ms / 2
    for step in range(steps):
        stimulus = 10.0 if step >= onset_step else 0.0
        k1 = _hh_derivative(state, stimulus)
        k2 = _hh_derivative(tuple(y + half * k for y, k in zip(state, k1)), stimulus)
        k3 = _hh_derivative(tuple(y + half * k for y, k in zip(state, k2)), stimulus)
        k4 = _hh_derivative(tuple(y + dt_ms * k for y, k in zip(state, k3)), stimulus)
        state = tuple(y + dt_ms / 6 * (a + 2 * b + 2 * c + d)
                      for y, a, b, c, d in zip(state, k1, k2, k3, k4))
        v[step + 1] = state[0]
    return np.arange(steps + 1) * dt_ms, v


@pytest.fixture(scope="module")
def hh_traces() -> dict[float, tuple[np.ndarray, np.ndarray]]:
    return {dt: _run_hh(dt) for dt in (0.01, 0.005)}


def test_hh_spikes_agree_between_time_steps(hh_traces):
    coarse = detect_spikes(*hh_traces[0.01])
    fine = detect_spikes(*hh_traces[0.005])
    # Observed once and checked against the known hh behaviour: 10 uA/cm2 at 6.3 C fires
    # periodically at ~68 Hz.  The first spike comes 1.9 ms after onset (6.90 ms), the first
    # interval from rest is 14.9 ms, the next ones 14.6 ms: 21.8, 36.5, 51.1 ms; a fifth
    # would come at ~65.7 ms, after the 60 ms end.  So 4 spikes on both grids.
    assert coarse.size == fine.size == 4
    np.testing.assert_allclose(fine, [6.90, 21.82, 36.47, 51.11], rtol=0, atol=0.01)
    c = compare_spikes(coarse, fine, stimulus_onset_ms=HH_ONSET_ms,
                       label_a="dt 0.01", label_b="dt 0.005")
    assert c.latency_b_ms == pytest.approx(1.90, abs=0.01)
    assert c.isi_b_ms[0] == pytest.approx(14.92, abs=0.01)
    assert c.isi_b_ms[1:] == pytest.approx([14.65, 14.64], abs=0.01)
    assert c.max_abs_shift_ms is not None and c.max_abs_shift_ms < 0.05
    passed, message = spike_gate(c)
    assert passed, message
    assert message.startswith("spike times agree within 0.05 ms (4 spikes each)")


def test_hh_shifted_spikes_fail_the_time_gate_while_voltage_away_from_spikes_agrees(
        hh_traces):
    # b is a delayed by one step (10 us): the size of the Arbor-NEURON spike shifts
    t, a = hh_traces[0.01]
    b = np.concatenate([a[:1], a[:-1]])
    spikes_a, spikes_b = detect_spikes(t, a), detect_spikes(t, b)
    c = compare_spikes(spikes_a, spikes_b)
    np.testing.assert_allclose(np.subtract(c.times_b_ms, c.times_a_ms), 0.01, atol=1e-9)
    passed, message = spike_gate(c, time_tol_ms=0.005)
    assert not passed
    assert message.startswith("spike times differ by up to 0.01 ms (tolerance 0.005 ms)")
    # over all samples, 10 us times the upstroke slope (~300 mV/ms): about 3 mV
    assert np.max(np.abs(a - b)) > 2.5
    away = voltage_deviation_away_from_spikes(t, a, b, spikes_a, spikes_b)
    # outside +-3 ms only the slow interspike ramp is left, |dV/dt| <= 2.2 mV/ms (the jump
    # of 10 mV/ms at the stimulus onset, 5 ms, lies within 3 ms of the first spike)
    assert away.max_abs_mV is not None and 0.01 < away.max_abs_mV < 0.022
    assert away.samples_used > 0.55 * t.size
