"""Spike detection and spike metrics (crosssim.spikes) against hand-derived answers, and on
a Hodgkin-Huxley point neuron integrated here with RK4 (no simulator needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crosssim.spikes import (
    detect_spikes,
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
