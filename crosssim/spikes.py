"""Spikes of active (Hodgkin-Huxley) membranes: detection, spike-time metrics, and the
voltage deviation that remains once the samples around spikes are set aside.

Why a layer of its own: two simulators that agree closely on an hh membrane still differ by
mV-sized amounts during action potentials, because a spike shifted by a few microseconds
moves the whole upstroke (200-300 mV/ms, 6.3 C): a 5 us shift is a 1 mV difference.
Voltage tolerances therefore gate on the wrong quantity; spike counts and spike times are
the meaningful comparison, and voltages are compared only away from spikes.

The simulators' own detectors disagree (Arbor interpolates the crossing, NEURON reports the
end of the step), so crosssim detects spikes itself from the sampled traces
(:func:`detect_spikes`), the same way for every source.  Pure numpy; nothing is imported
from a simulator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_HALF_WIDTH_ms",
    "DEFAULT_REFRACTORY_ms",
    "DEFAULT_THRESHOLD_mV",
    "DEFAULT_TIME_TOLERANCE_ms",
    "DeviationAwayFromSpikes",
    "SpikeComparison",
    "compare_spikes",
    "detect_spikes",
    "spike_gate",
    "spike_windows_mask",
    "voltage_deviation_away_from_spikes",
]

#: Spikes are upward crossings of 0 mV: above every hh subthreshold excursion (the trace
#: stays below about -50 mV between spikes) and on the steepest part of the upstroke, where
#: the interpolated crossing time is least sensitive to sampling.
DEFAULT_THRESHOLD_mV = 0.0

#: A crossing less than 1 ms after the previous spike is not a new spike (see
#: :func:`detect_spikes`): wiggles around the threshold on the upstroke are not spikes.  hh
#: at 6.3 C fires at most about every 8 ms (at 50 uA/cm2; more current blocks it), so no
#: real spike is lost.  The hold does not cover the downstroke, which crosses 0 mV 0.9-1.2
#: ms after the upstroke: a trace noisy there needs a longer hold.
DEFAULT_REFRACTORY_ms = 1.0

#: Samples within 3 ms of a spike belong to it.  Measured on an hh point neuron at 6.3 C
#: (10 uA/cm2, RK4): the upstroke leaves the slow ramp (|dV/dt| > 5 mV/ms) 1.2 ms before
#: the 0 mV crossing (1.9 ms for the first spike, from rest) and repolarisation ends (|dV/dt|
#: back below 2.2 mV/ms) 2.6-2.9 ms after it; 2 ms after, V still falls at 60 mV/ms.
#: Outside +-3 ms a spike shift of 10 us therefore moves V by at most ~0.02 mV.  Warmer
#: membranes have shorter spikes, so 3 ms is conservative for them.
DEFAULT_HALF_WIDTH_ms = 3.0

#: Largest accepted shift of a matched spike.  About 5x the largest shift measured between
#: Arbor and NEURON on hh at dt 0.05 ms (9.4 us) and one step of that grid; a model
#: difference moves spikes by more (1 C warmer: the first hh spike 0.06 ms earlier at 10
#: uA/cm2, the fourth 4 ms earlier).
DEFAULT_TIME_TOLERANCE_ms = 0.05


def _trace(name: str, values: Any) -> np.ndarray:
    """``values`` as a finite 1-D float array; ValueError naming ``name`` otherwise."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name}: {bad.size} non-finite value(s), the first at index "
                         f"{bad[0]} ({array[bad[0]]}); allowed: finite numbers")
    return array


def _non_negative(name: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} = {value!r}; allowed: a finite number >= 0")
    return float(value)


def _times_and_voltage(t_ms: Any, v_mV: Any,
                       v_name: str = "v_mV") -> tuple[np.ndarray, np.ndarray]:
    times = _trace("t_ms", t_ms)
    voltage = _trace(v_name, v_mV)
    if times.shape != voltage.shape:
        raise ValueError(f"t_ms has {times.size} samples, {v_name} {voltage.size}")
    if np.any(np.diff(times) <= 0):
        first = int(np.flatnonzero(np.diff(times) <= 0)[0])
        raise ValueError(f"t_ms must increase strictly; t[{first}] = {times[first]!r}, "
                         f"t[{first + 1}] = {times[first + 1]!r}")
    return times, voltage


def detect_spikes(t_ms: np.ndarray, v_mV: np.ndarray, *,
                  threshold_mV: float = DEFAULT_THRESHOLD_mV,
                  refractory_ms: float = DEFAULT_REFRACTORY_ms) -> np.ndarray:
    """Spike times in ms (float array, increasing) of the sampled trace ``v_mV(t_ms)``.

    A spike is an upward crossing between two samples, ``v[i-1] < threshold_mV <= v[i]``;
    its time is interpolated linearly between them,
    ``t[i-1] + (threshold - v[i-1]) / (v[i] - v[i-1]) * (t[i] - t[i-1])``
    (``t[i]`` itself when ``v[i]`` equals the threshold).

    Refractory hold: a crossing is accepted only if its time is at least ``refractory_ms``
    after the previously accepted spike; rejected crossings do not restart the hold.  As a
    crossing needs a sample below threshold just before it, a new spike requires the trace to
    have gone back below threshold *and* the hold to have expired.

    A trace that starts at or above threshold has no spike at its first sample: that spike
    began before the record.  Its first spike is the first upward crossing, with no hold
    counted from ``t_ms[0]``.

    ``t_ms`` must increase strictly and both arrays must be finite and 1-D of one length
    (ValueError otherwise).
    """
    times, voltage = _times_and_voltage(t_ms, v_mV)
    if not math.isfinite(threshold_mV):
        raise ValueError(f"threshold_mV = {threshold_mV!r}; allowed: a finite number")
    hold_ms = _non_negative("refractory_ms", refractory_ms)
    after = np.flatnonzero((voltage[:-1] < threshold_mV) & (voltage[1:] >= threshold_mV)) + 1
    before = after - 1
    fraction = (threshold_mV - voltage[before]) / (voltage[after] - voltage[before])
    crossings = times[before] + fraction * (times[after] - times[before])
    accepted: list[float] = []
    for crossing in crossings.tolist():
        if not accepted or crossing - accepted[-1] >= hold_ms:
            accepted.append(crossing)
    return np.array(accepted, dtype=float)


@dataclass(frozen=True)
class SpikeComparison:
    """Spike trains of two sources compared spike by spike.

    Spikes are matched in order (the i-th of ``a`` with the i-th of ``b``) over the
    ``matched`` = min(count) first spikes; differences are ``b - a`` in ms.  Fields that need
    a pair (or an interval, or a spike) are None when there is none.  Backend vs backend is
    symmetric: ``a`` and ``b`` are labels, neither is the reference.
    """

    label_a: str
    label_b: str
    times_a_ms: tuple[float, ...]
    times_b_ms: tuple[float, ...]
    stimulus_onset_ms: float
    #: Spikes in each train, and how many were paired.
    count_a: int
    count_b: int
    matched: int
    #: Largest and mean |b - a| over the matched spikes.
    max_abs_shift_ms: float | None
    mean_abs_shift_ms: float | None
    #: The matched spike with the largest |b - a|: its signed shift, its number (1-based, the
    #: first of equal ones) and both times.
    worst_shift_ms: float | None
    worst_spike_number: int | None
    worst_time_a_ms: float | None
    worst_time_b_ms: float | None
    #: First spike time minus ``stimulus_onset_ms``.
    latency_a_ms: float | None
    latency_b_ms: float | None
    #: Inter-spike intervals of each train, and the largest |b - a| over the intervals
    #: between matched spikes.
    isi_a_ms: tuple[float, ...]
    isi_b_ms: tuple[float, ...]
    max_abs_isi_difference_ms: float | None
    #: The first spike of the longer train that has no partner, and whose it is.
    first_unmatched_ms: float | None
    first_unmatched_label: str | None

    @property
    def counts_match(self) -> bool:
        """True when both trains have the same number of spikes."""
        return self.count_a == self.count_b

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, None, lists): ``json.dumps`` takes it as it is."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


def _spike_train(name: str, values: Any) -> np.ndarray:
    times = _trace(name, values)
    if np.any(np.diff(times) < 0):
        raise ValueError(f"{name}: spike times must be in increasing order")
    return times


def _latency(times: np.ndarray, onset_ms: float) -> float | None:
    return float(times[0] - onset_ms) if times.size else None


def compare_spikes(times_a_ms: Sequence[float] | np.ndarray,
                   times_b_ms: Sequence[float] | np.ndarray, *,
                   stimulus_onset_ms: float = 0.0,
                   label_a: str = "a", label_b: str = "b") -> SpikeComparison:
    """Compare two spike trains (times in ms, increasing): counts, matched shifts, latencies
    and inter-spike intervals, as a :class:`SpikeComparison`."""
    a = _spike_train("times_a_ms", times_a_ms)
    b = _spike_train("times_b_ms", times_b_ms)
    if not math.isfinite(stimulus_onset_ms):
        raise ValueError(f"stimulus_onset_ms = {stimulus_onset_ms!r}; allowed: a finite number")
    matched = min(a.size, b.size)
    shifts = b[:matched] - a[:matched]
    worst = int(np.argmax(np.abs(shifts))) if matched else None
    isi_a = np.diff(a)
    isi_b = np.diff(b)
    isi_pairs = max(matched - 1, 0)
    longer, longer_label = (a, label_a) if a.size > b.size else (b, label_b)
    unmatched = a.size != b.size
    return SpikeComparison(
        label_a=label_a,
        label_b=label_b,
        times_a_ms=tuple(a.tolist()),
        times_b_ms=tuple(b.tolist()),
        stimulus_onset_ms=float(stimulus_onset_ms),
        count_a=int(a.size),
        count_b=int(b.size),
        matched=matched,
        max_abs_shift_ms=float(np.max(np.abs(shifts))) if matched else None,
        mean_abs_shift_ms=float(np.mean(np.abs(shifts))) if matched else None,
        worst_shift_ms=float(shifts[worst]) if worst is not None else None,
        worst_spike_number=worst + 1 if worst is not None else None,
        worst_time_a_ms=float(a[worst]) if worst is not None else None,
        worst_time_b_ms=float(b[worst]) if worst is not None else None,
        latency_a_ms=_latency(a, stimulus_onset_ms),
        latency_b_ms=_latency(b, stimulus_onset_ms),
        isi_a_ms=tuple(isi_a.tolist()),
        isi_b_ms=tuple(isi_b.tolist()),
        max_abs_isi_difference_ms=(
            float(np.max(np.abs(isi_b[:isi_pairs] - isi_a[:isi_pairs]))) if isi_pairs else None),
        first_unmatched_ms=float(longer[matched]) if unmatched else None,
        first_unmatched_label=longer_label if unmatched else None,
    )


def _ms(value: float) -> str:
    """A time in ms to 0.1 us, trailing zeros dropped: ``12.3456``, ``40.1``."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def spike_gate(comparison: SpikeComparison, *, count_must_match: bool = True,
               time_tol_ms: float = DEFAULT_TIME_TOLERANCE_ms) -> tuple[bool, str]:
    """Pass or fail of a spike comparison, with a one-line reason naming the spike shift.

    Fails when the counts differ (unless ``count_must_match`` is False) or when a matched
    spike is shifted by more than ``time_tol_ms``; both reasons are given when both hold.
    """
    tolerance = _non_negative("time_tol_ms", time_tol_ms)
    c = comparison
    problems: list[str] = []
    if count_must_match and c.first_unmatched_ms is not None:
        problems.append(
            f"spike count differs: {c.label_a} {c.count_a}, {c.label_b} {c.count_b} "
            f"(first unmatched spike at {_ms(c.first_unmatched_ms)} ms "
            f"in {c.first_unmatched_label})")
    if c.max_abs_shift_ms is None or c.worst_time_a_ms is None or c.worst_time_b_ms is None:
        if problems:
            return False, problems[0]
        counts = (f"{c.label_a} {c.count_a}, {c.label_b} {c.count_b}"
                  if c.count_a or c.count_b else f"none in {c.label_a} or {c.label_b}")
        return True, f"no spike pairs to compare (spikes: {counts})"
    worst = (f"at spike {c.worst_spike_number} ({c.label_a}: {_ms(c.worst_time_a_ms)} ms, "
             f"{c.label_b}: {_ms(c.worst_time_b_ms)} ms)")
    if c.max_abs_shift_ms > tolerance:
        problems.append(f"spike times differ by up to {c.max_abs_shift_ms:.3g} ms "
                        f"(tolerance {tolerance:g} ms) {worst}")
    if problems:
        return False, "; ".join(problems)
    counts = (f"{c.matched} spikes each" if c.counts_match else
              f"{c.matched} matched of {c.label_a} {c.count_a}, {c.label_b} {c.count_b}")
    return True, (f"spike times agree within {tolerance:g} ms ({counts}): largest shift "
                  f"{c.max_abs_shift_ms:.3g} ms {worst}")


def spike_windows_mask(t_ms: np.ndarray,
                       spike_times_ms_list: Sequence[Sequence[float] | np.ndarray],
                       half_width_ms: float = DEFAULT_HALF_WIDTH_ms) -> np.ndarray:
    """Boolean mask over ``t_ms``: True for samples away from every spike of every train,
    ``|t - spike| > half_width_ms`` (a sample exactly ``half_width_ms`` away is excluded)."""
    times = _trace("t_ms", t_ms)
    half_width = _non_negative("half_width_ms", half_width_ms)
    trains = [_trace(f"spike_times_ms_list[{k}]", train)
              for k, train in enumerate(spike_times_ms_list)]
    spikes = np.sort(np.concatenate(trains)) if trains else np.empty(0)
    if spikes.size == 0:
        return np.ones(times.shape, dtype=bool)
    # the nearest spike of each sample is one of its two neighbours in the sorted spikes
    right = np.searchsorted(spikes, times).clip(max=spikes.size - 1)
    left = (right - 1).clip(min=0)
    nearest = np.minimum(np.abs(times - spikes[left]), np.abs(times - spikes[right]))
    return np.asarray(nearest > half_width)


@dataclass(frozen=True)
class DeviationAwayFromSpikes:
    """Largest |v_a - v_b| in mV over the samples farther than ``half_width_ms`` from every
    spike of both traces; the worst sample's time and both values (None when no sample is
    left)."""

    half_width_ms: float
    samples_used: int
    samples_total: int
    max_abs_mV: float | None
    t_max_abs_ms: float | None
    a_at_max_mV: float | None
    b_at_max_mV: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (int, float, None): ``json.dumps`` takes it as it is."""
        return asdict(self)


def voltage_deviation_away_from_spikes(
        t_ms: np.ndarray, v_a_mV: np.ndarray, v_b_mV: np.ndarray,
        spikes_a_ms: Sequence[float] | np.ndarray, spikes_b_ms: Sequence[float] | np.ndarray,
        *, half_width_ms: float = DEFAULT_HALF_WIDTH_ms) -> DeviationAwayFromSpikes:
    """Max |v_a - v_b| over the samples of one grid ``t_ms`` away from all spikes of both.

    Samples with ``|t - spike| <= half_width_ms`` for any spike of either train are skipped
    (:func:`spike_windows_mask`); the result says how many samples were used.
    """
    times, a = _times_and_voltage(t_ms, v_a_mV, "v_a_mV")
    _, b = _times_and_voltage(times, v_b_mV, "v_b_mV")
    mask = spike_windows_mask(times, [spikes_a_ms, spikes_b_ms], half_width_ms)
    used = np.flatnonzero(mask)
    if used.size == 0:
        return DeviationAwayFromSpikes(float(half_width_ms), 0, int(times.size),
                                       None, None, None, None)
    worst = int(used[np.argmax(np.abs(a[used] - b[used]))])
    return DeviationAwayFromSpikes(
        half_width_ms=float(half_width_ms),
        samples_used=int(used.size),
        samples_total=int(times.size),
        max_abs_mV=float(abs(a[worst] - b[worst])),
        t_max_abs_ms=float(times[worst]),
        a_at_max_mV=float(a[worst]),
        b_at_max_mV=float(b[worst]),
    )
