"""The fix a failing comparison calls for, chosen from evidence: dt, CVs, a window, a tolerance.

Evidence, in order:

1. **window**: every mismatched sample lies in the first :data:`WINDOW_SHARE` of the run
   (an initial transient: a clamp next to a cable end, a discontinuous start) -> a window
   start at the sample after the last mismatched one;
2. **dt**: a junction too stiff for dt (the ``stiff-junction`` note) -> the dt it needs; or
   the error decomposition (:mod:`crosssim.decomposition`) says time stepping dominates ->
   the dt that brings that part under the tolerance (first order: ``dt * target / part``;
   Crank-Nicolson without junctions: second order);
3. **cvs**: the decomposition says space dominates -> the CV count that brings that part
   under the tolerance, assuming second order in CV size (``cvs * sqrt(part / target)``);
   when the other part alone exceeds its share too, both changes are given;
4. **tolerance**: only when nothing above explains the deviation (simulator vs simulator,
   an implementation difference, no decomposition), the observed maximum x1.5.

The target of a part is the tolerance divided by the headroom, less the other parts, so the
suggested change leaves room.  The numbers are estimates from one run; ``crosssim converge``
measures the orders.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from crosssim.outcome import Comparison, SpikeCheck, Suggestion

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.decomposition import Decomposition
    from crosssim.model import Model
    from crosssim.notes import Note

__all__ = ["HEADROOM", "WINDOW_SHARE", "attach_spike_suggestions", "attach_suggestions",
           "suggest", "tolerance_flag", "tolerance_key"]

#: Headroom of a suggested tolerance over the observed maximum deviation, and of a
#: suggested dt / CV count over the estimate that would just pass.
HEADROOM = 1.5
#: Mismatches confined to this first share of the run count as an initial transient.
WINDOW_SHARE = 0.05


def tolerance_key(gate: str) -> str:
    """The model key of a gate's tolerance: ``analytic_abs_mV`` for the fields of
    ``[tolerance]``, ``reference_abs_mV.NAME`` for any other reference."""
    from crosssim.model import Tolerance

    field = f"{gate}_abs_mV"
    return field if field in Tolerance.model_fields else f"reference_abs_mV.{gate}"


def tolerance_flag(gate: str, value: float) -> str:
    """The command-line flag that sets a gate's tolerance: ``--tolerance-analytic 0.2`` for
    the named fields of ``[tolerance]``, ``--tolerance NAME=0.2`` for any other reference."""
    key = tolerance_key(gate)
    if key.startswith("reference_abs_mV."):
        return f"--tolerance {gate}={value:g}"
    return f"--tolerance-{gate} {value:g}"


def _window(c: Comparison, model: Model) -> Suggestion | None:
    last, after = c.t_last_mismatch_ms, c.t_after_mismatch_ms
    if last is None or after is None or c.n_mismatched == 0:
        return None
    span = model.simulation.t_stop_ms - c.window_start_ms
    if span <= 0 or last - c.window_start_ms > WINDOW_SHARE * span:
        return None
    share = 100.0 * c.n_mismatched / c.n_samples if c.n_samples else 0.0
    return Suggestion(
        "window", f"--window-start {after:g}",
        f"all {c.n_mismatched} mismatched samples ({share:.2g}%) lie at t <= {last:g} ms, in "
        f"the first {100 * WINDOW_SHARE:g}% of the run: an initial transient; from "
        f"t = {after:g} ms on every sample is within {c.tolerance_mV:g} mV "
        "(model: tolerance.window_start_ms)")


def _dt_on_grid(model: Model, wanted_ms: float) -> float:
    """A round dt <= ``wanted_ms`` (1, 2 or 5 x 10^k) that divides the sample interval, so
    the samples stay where they are; ``interval / k`` when no round one does."""
    interval = model.simulation.sample_interval_ms
    exponent = math.floor(math.log10(wanted_ms))
    for power in (exponent, exponent - 1):
        for mantissa in (5, 2, 1):
            candidate = float(f"{mantissa}e{power}")
            steps = interval / candidate
            if candidate <= wanted_ms and abs(steps - round(steps)) <= 1e-9 * steps:
                return candidate
    steps = max(1, math.ceil(interval / wanted_ms - 1e-9))
    return float(f"{interval / steps:.6g}")


def attach_spike_suggestions(spikes: Sequence[SpikeCheck], model: Model) -> None:
    """For two simulators whose matched spikes shift apart by more than the gate (counts
    equal), the dt that would bring the shift under it, on the evidence that the spike-time
    difference between correct simulators is a time-stepping difference falling as dt^2
    (hh on Arbor and NEURON: 9.35 / 2.36 / 0.60 / 0.15 us at dt 0.05 / 0.025 / 0.0125 /
    0.00625 ms): ``suggestion`` is set and the message ends with it."""
    dt = model.simulation.dt_ms
    for check in spikes:
        tolerance, shift = check.time_tolerance_ms, check.max_shift_ms
        if (check.passed is not False or check.kind != "backends" or tolerance is None
                or shift is None or shift <= tolerance or check.count_a != check.count_b
                or tolerance <= 0):
            continue
        halvings = 1
        while shift / 4**halvings > 0.8 * tolerance and halvings < 10:
            halvings += 1
        new_dt = dt / 2**halvings
        check.suggestion = (
            f"{_dt_setting(model, new_dt)} (the simulators' spike-time difference is a "
            f"time-stepping one, falling as dt^2: about {shift / 4**halvings * 1e3:.2g} us "
            f"there), or --set tolerance.spike_time_abs_ms="
            f"{float(f'{shift * 1.5:.2g}'):g} to accept {shift * 1e3:.3g} us")
        check.message += f"; fix: {check.suggestion}"


def _dt_setting(model: Model, dt: float) -> str:
    """``--set simulation.dt_ms=DT``, keeping the sample interval when it follows dt."""
    setting = f"--set simulation.dt_ms={dt:g}"
    if model.simulation.sample_dt_ms is None:
        setting += f" --set simulation.sample_dt_ms={model.simulation.dt_ms:g}"
    return setting


def _cvs_setting(model: Model, factor: float) -> str:
    """The discretization setting that refines space by ``factor`` (> 1)."""
    discretization = model.discretization
    if discretization.count is not None:
        cvs = discretization.count
        wanted = max(cvs + 1, math.ceil(cvs * factor))
        if cvs % 2 == 1 and wanted % 2 == 0:
            wanted += 1  # keep a site in the middle at a CV centre
        return f"--set discretization.{discretization.count_key}={wanted}"
    assert discretization.max_extent_um is not None  # exactly one of the three is set
    extent = discretization.max_extent_um / factor
    return f"--set discretization.max_extent_um={float(f'{extent:.3g}'):g}"


def _time_order(model: Model) -> float:
    """The order in dt of the simulators' scheme: 2 for Crank-Nicolson without junctions,
    else 1 (implicit Euler; junctions are coupled explicitly)."""
    if model.backends.neuron.secondorder and not model.gap_junctions:
        return 2.0
    return 1.0


def _stiff(notes: Iterable[Note]) -> Note | None:
    return next((note for note in notes if note.kind == "stiff-junction"), None)


def _stiff_dt(model: Model) -> float | None:
    stiff = model.stiff_junctions()
    if not stiff:
        return None
    ratio = max(item[2] for item in stiff)
    return model.simulation.dt_ms / ratio


def _from_decomposition(c: Comparison, part: Decomposition, model: Model) -> Suggestion | None:
    tolerance = c.tolerance_mV or 0.0
    budget = tolerance / HEADROOM
    stepping, space, implementation = part.time_stepping_mV, part.space_mV, part.implementation_mV
    if part.dominant == "implementation" or budget <= implementation:
        return None
    dt = model.simulation.dt_ms
    order = _time_order(model)
    parts = (f"time stepping {stepping:.3g} mV, space {space:.3g} mV, implementation "
             f"{implementation:.3g} mV")
    if part.dominant == "time_stepping":
        target = budget - space - implementation
        both = target <= 0
        if both:  # space must come down too: half the budget each
            target = (budget - implementation) / 2
        new_dt = _dt_on_grid(model, dt * (target / stepping) ** (1 / order))
        action = _dt_setting(model, new_dt)
        why = (f"the error against the exact solution is mostly time stepping ({parts}); "
               f"dt {dt:g} -> {new_dt:g} ms brings it under {target:.2g} mV (order "
               f"{order:g} in dt)")
        if both:
            action += " " + _cvs_setting(model, math.sqrt(space / target))
            why += "; the space part alone exceeds that share too, so refine the CVs as well"
        return Suggestion("dt", action, why)
    target = budget - stepping - implementation
    both = target <= 0
    if both:
        target = (budget - implementation) / 2
    factor = math.sqrt(space / target)
    action = _cvs_setting(model, factor)
    why = (f"the error against the exact solution is mostly space ({parts}); "
           f"{factor:.2g}x finer CVs bring it under {target:.2g} mV (estimated for order 2 "
           "in CV size; sites at CV centres help)")
    if both:
        new_dt = _dt_on_grid(model, dt * (target / stepping) ** (1 / _time_order(model)))
        action += " " + _dt_setting(model, new_dt)
        why += f"; the time-stepping part alone exceeds that share too, so dt -> {new_dt:g} ms"
    return Suggestion("cvs", action, why)


def _tolerance(c: Comparison, why: str) -> Suggestion | None:
    if c.gate is None or c.suggested_tolerance_mV is None \
            or not math.isfinite(c.suggested_tolerance_mV):
        return None
    value = c.suggested_tolerance_mV
    return Suggestion("tolerance", tolerance_flag(c.gate, value),
                      f"{why}; {tolerance_key(c.gate)} = {value:g} mV is the observed maximum "
                      f"x{HEADROOM:g}, rounded up to 2 significant figures")


def suggest(c: Comparison, model: Model, decomposition: Sequence[Decomposition] = (),
            notes: Iterable[Note] = ()) -> Suggestion | None:
    """The fix for the failing comparison ``c`` (None for one that passes or is not gated)."""
    from crosssim.sources import ANALYTIC

    if c.passed is not False:
        return None
    stiff = _stiff(notes) if c.kind == "reference" and c.floor_mV is None else None
    stiff_dt = _stiff_dt(model) if stiff is not None else None
    if stiff is not None and stiff_dt is not None:
        new_dt = _dt_on_grid(model, stiff_dt / 2)
        return Suggestion("dt", _dt_setting(model, new_dt),
                          f"{stiff.subject}: {stiff.message}; it needs dt < {stiff_dt:.3g} "
                          f"ms, and {new_dt:g} ms leaves a factor of 2")
    window = _window(c, model)
    if window is not None:
        return window
    if c.kind == "backends":
        return _tolerance(c, "two simulators with the same discretization and dt differ only "
                          "by round-off or by what they implement differently, which no "
                          "model setting changes")
    if c.kind == "reference" and c.floor_mV is not None:  # a simulator vs its own recurrence
        return _tolerance(c, f"{c.a} does not compute the recurrence {c.b} solves exactly: "
                          "an implementation difference, not a discretization error")
    if c.b == ANALYTIC:
        for part in decomposition:
            if (part.simulator, part.probe) == (c.a, c.probe):
                found = _from_decomposition(c, part, model)
                if found is not None:
                    return found
                return _tolerance(c, "the error decomposition points at the implementation "
                                  f"({part.implementation_mV:.3g} mV), not at dt or the CVs")
        return _tolerance(c, "no evidence points at dt, the CVs or a window (the error "
                          "decomposition needs the semidiscrete and discrete references: "
                          "--references all)")
    return _tolerance(c, f"no evidence points at dt, the CVs or a window against {c.b}")


def attach_suggestions(comparisons: Iterable[Comparison], model: Model,
                       decomposition: Sequence[Decomposition] = (),
                       notes: Sequence[Note] = ()) -> None:
    """Set ``suggestion`` on every failing comparison (in place)."""
    for c in comparisons:
        c.suggestion = suggest(c, model, decomposition, notes)
