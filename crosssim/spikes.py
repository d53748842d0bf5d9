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
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_REFRACTORY_ms",
    "DEFAULT_THRESHOLD_mV",
    "detect_spikes",
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
