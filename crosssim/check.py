"""``check``: run the sources, compare every pair, gate on tolerances; returns data only.

Sources come from the registry (:mod:`crosssim.sources`): simulators and references.  Every
pair is compared at every probe; the kinds of the two sources decide how it is gated, never
their names:

=========================  ==============  ==============================================
pair                       kind            tolerance (mV)
=========================  ==============  ==============================================
simulator vs simulator     ``backends``    ``backends_abs_mV`` (symmetric)
simulator - reference R    ``reference``   R's tolerance: ``R_abs_mV`` (``analytic_abs_mV``,
                                           ``lumped_abs_mV``) or ``reference_abs_mV.R``;
                                           None: reported only (one-sided, R is truth)
reference vs reference     ``references``  never gated (reported only)
=========================  ==============  ==============================================

Per-probe values in ``model.tolerance.probes`` override the model-wide ones; a tolerance
passed to :func:`check` overrides both, for every probe.  A source that is missing, crashes
or returns NaN becomes ``outcome.failures[name]`` (verdict ``error``), never a pass; a
reference that does not apply to the model is skipped with a note.  Rendering lives in
:mod:`crosssim.report` (``report.text.render_table`` is the terminal table).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosssim.compare import AlignmentError, compare_results, infer_grid
from crosssim.errors import (
    BackendError,
    CrossSimError,
    MechanismSourceError,
    SourceNotApplicableError,
    UsageError,
    raise_if_interrupted,
)
from crosssim.notes import Note, model_notes
from crosssim.outcome import CheckOutcome, Comparison, PairKind, SpikeCheck

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.result import RunResult
    from crosssim.sources import SourceKind
    from crosssim.tracefiles import TraceSource

__all__ = [
    "HEADROOM",
    "UNSET",
    "check",
    "check_window",
    "compare_spike_trains",
    "pair_kind",
    "probe_tolerance",
    "cancel_children",
    "run_sources",
    "select_sources",
    "start_children",
    "started_runner",
    "source_pairs",
]

#: Headroom of a suggested tolerance over the observed maximum deviation.
HEADROOM = 1.5


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()

Runner = Callable[[str, "Model"], "RunResult"]


def pair_kind(kind_a: SourceKind, kind_b: SourceKind) -> PairKind:
    """The kind of a pair from the kinds of its two sources."""
    if kind_a == kind_b:
        return "backends" if kind_a == "simulator" else "references"
    return "reference"


def source_pairs(kinds: Mapping[str, SourceKind]) -> list[tuple[str, str, PairKind]]:
    """Every unordered pair of the sources in ``kinds`` (name -> kind): simulators first (in
    the given order), references after, so a simulator is always ``a`` and a reference
    ``b``."""
    ordered = ([name for name, kind in kinds.items() if kind == "simulator"]
               + [name for name, kind in kinds.items() if kind != "simulator"])
    return [(a, b, pair_kind(kinds[a], kinds[b]))
            for i, a in enumerate(ordered) for b in ordered[i + 1:]]


def probe_tolerance(model: Model, gate: str | None, probe: str,
                    overrides: Mapping[str, float | None] | None = None) -> float | None:
    """The tolerance in mV that gates pairs of ``gate`` at ``probe`` (None: report only).

    ``gate``: ``backends`` or a reference's name (:attr:`Comparison.gate`); None (reference
    vs reference) is never gated.  Order: ``overrides`` (from :func:`check` or the command
    line, for every probe), then ``model.tolerance.probes[probe]``, then the model-wide value.
    """
    if gate is None:
        return None
    if overrides and gate in overrides:
        return overrides[gate]
    per_probe = model.tolerance.probes.get(probe)
    if per_probe is not None and per_probe.for_source(gate) is not None:
        return per_probe.for_source(gate)
    return model.tolerance.for_source(gate)


def check_window(model: Model, window_start_ms: float | None) -> float:
    """The window start in ms (``window_start_ms`` or the model's), checked to lie in
    ``0 .. t_stop_ms`` (UsageError otherwise)."""
    window = model.tolerance.window_start_ms if window_start_ms is None else window_start_ms
    if not (isinstance(window, (int, float)) and 0 <= window <= model.simulation.t_stop_ms):
        raise UsageError(f"window start {window!r} ms: allowed 0 <= start <= t_stop_ms "
                         f"({model.simulation.t_stop_ms:g})")
    return float(window)


def _validate(result: Any, name: str, model: Model) -> None:
    """Raise BackendError if ``result`` is not a finite RunResult covering the model's grid."""
    from crosssim.result import RunResult

    if not isinstance(result, RunResult):
        raise BackendError(name, f"returned {type(result).__name__}, not a RunResult")
    if result.backend != name:
        raise BackendError(name, f"returned traces labelled {result.backend!r}")
    result.check_finite()
    labels = [probe.label for probe in model.effective_probes()]
    missing = [label for label in labels if label not in result.probes]
    if missing:
        raise BackendError(name, "no trace for probe(s) " + ", ".join(missing[:5]))
    try:
        grid = infer_grid(result.times_ms, label=name)
    except AlignmentError as exc:
        raise BackendError(name, str(exc).removeprefix(f"{name}: ")) from None
    simulation = model.simulation
    step = simulation.sample_interval_ms
    slack = 1e-3 * step
    if grid.start_ms > slack or grid.stop_ms < simulation.t_stop_ms - slack:
        raise BackendError(
            name, f"covers t = {grid.start_ms:g}..{grid.stop_ms:g} ms, the model needs "
            f"t = 0..{simulation.t_stop_ms:g} ms ({grid.count} samples, "
            f"expected {simulation.n_samples})")


def _default_runner(name: str, model: Model) -> RunResult:
    import numpy as np

    from crosssim.sources import run_source

    # Extreme models overflow to inf/NaN; that is recorded as this source's failure, so
    # numpy's RuntimeWarnings would only add noise on stderr.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return run_source(name, model)


def start_children(model: Model, names: Sequence[str]) -> dict[str, Any]:
    """Start the sources among ``names`` that run in a child process (NEURON) before the
    others run, so the child's start-up and run overlap with them: name -> the started run,
    or the exception starting it raised (raised again when that source's turn comes).
    Stop them with :func:`cancel_children` (a finished run is stopped already)."""
    import importlib

    from crosssim import sources
    from crosssim.sources import source_spec

    started: dict[str, Any] = {}
    if getattr(sources.run_source, "__module__", None) != sources.__name__:
        return started  # run_source was replaced (tests, embedding code): it runs them all
    for name in names:
        try:
            spec = source_spec(name)
        except CrossSimError:
            continue  # unknown: run_sources reports it
        module = spec.child
        if module is None or spec.missing():
            continue
        if ((not spec.active and model.first_active() is not None)
                or (not spec.trees and model.first_tree() is not None)):
            continue  # run_source says why the source does not apply
        try:
            started[name] = importlib.import_module(module).start(model)
        except Exception as exc:  # noqa: BLE001 - raised again when this source's turn comes
            started[name] = exc
    return started


def cancel_children(started: Mapping[str, Any]) -> None:
    """Stop the child processes :func:`start_children` started (no-op once finished)."""
    for pending in started.values():
        if not isinstance(pending, BaseException):
            pending.cancel()


def started_runner(started: Mapping[str, Any], *,
                   before_wait: Callable[[], None] | None = None) -> Runner:
    """A runner for :func:`run_sources`: a source in ``started`` is waited for (after
    ``before_wait()``, work to overlap with the child), every other one runs as usual."""

    def runner(name: str, model: Model) -> RunResult:
        if name not in started:
            return _default_runner(name, model)
        pending = started[name]
        if isinstance(pending, BaseException):
            raise pending
        if before_wait is not None:
            before_wait()
        import numpy as np

        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = pending.finish()
        result.check_finite()
        return result

    return runner


def run_sources(model: Model, names: Sequence[str], *, runner: Runner | None = None,
                progress: Any = None) -> tuple[dict[str, RunResult], dict[str, str],
                                               dict[str, float], list[Note]]:
    """Run each source on ``model``: the one loop every command uses.

    Returns (results, failures, wall times, notes): ``failures`` maps a source that is
    missing, crashed or returned something unusable to its reason; a source that does not
    apply to the model (:class:`SourceNotApplicableError`) is left out with a note.  One
    source failing never stops the others; an invalid model or usage error propagates.
    ``progress`` has ``start(label)`` and ``finish(label, outcome)``.
    """
    runner = runner or _default_runner
    results: dict[str, RunResult] = {}
    failures: dict[str, str] = {}
    wall: dict[str, float] = {}
    notes: list[Note] = []
    if progress is not None and hasattr(progress, "begin"):
        progress.begin(len(names))
    for name in names:
        if progress is not None:
            progress.start(name)
        started = time.perf_counter()
        reason = skipped = None
        try:
            result = runner(name, model)
            _validate(result, name, model)
        except SourceNotApplicableError as exc:
            skipped = exc.message
        except MechanismSourceError:
            raise  # the user's MOD file is refused: bad input (exit 2), not a source failure
        except BackendError as exc:
            raise_if_interrupted(exc)
            reason = exc.message
        except CrossSimError:
            raise  # invalid model / usage / resource limit: not a source failure
        except Exception as exc:  # noqa: BLE001 - a crashing source must never pass
            raise_if_interrupted(exc)  # Ctrl-C wrapped by a C extension stops the check
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        wall[name] = time.perf_counter() - started
        if skipped is not None:
            notes.append(Note("source-skipped", name, f"not applicable: {skipped}"))
            if progress is not None:
                progress.finish(name, f"skipped ({skipped})")
            continue
        if reason is not None:
            failures[name] = reason
            if progress is not None:
                progress.finish(name, f"FAILED ({reason})")
            continue
        results[name] = result
        if progress is not None:
            progress.finish(name)
    return results, failures, wall, notes


def select_sources(backends: Sequence[str] | None = None,
                   references: Sequence[str] | None = None, model: Model | None = None,
                   ) -> tuple[dict[str, SourceKind], list[Note]]:
    """The sources to run, name -> kind, and notes on default sources left out.

    ``backends`` / ``references``: names chosen by the user (None: the registry's default
    sources of that kind that are installed; a default one that is not installed is left
    out with a note saying how to add it, and so is one whose ``leave_out`` finds ``model``
    too costly; a name starting with ``+`` adds a source to the defaults).  ``backends``
    may name references too (the command line's ``--backend``): every name is run with the
    kind the registry gives it.
    Unknown names raise UsageError listing the known ones; a chosen source that is not
    installed is run anyway and fails with the install hint (verdict ``error``).
    """
    from crosssim.sources import REFERENCE, SIMULATOR, default_sources, source_spec

    chosen: dict[str, SourceKind] = {}
    notes: list[Note] = []
    for names, kind in ((backends, SIMULATOR), (references, REFERENCE)):
        extra = [name[1:] for name in names or () if name.startswith("+")]
        if names is None or extra:
            for name in default_sources(kind):
                spec = source_spec(name)
                reason = (spec.leave_out(model) if spec.leave_out is not None
                          and model is not None and name not in extra else None)
                skipped = spec.not_applicable(model) if model is not None else None
                if spec.optional and not spec.is_available():
                    notes.append(Note("source-left-out", name,
                                      f"{kind} not installed, left out of this run",
                                      spec.install_hint()))
                elif reason is not None:
                    if spec.note_left_out:
                        notes.append(Note("source-left-out", name,
                                          f"left out of this default run: {reason}",
                                          f"--references +{name} to run it"))
                elif skipped is not None:  # never run: every study leaves it out alike
                    notes.append(Note("source-skipped", name, f"not applicable: {skipped}"))
                else:
                    chosen[name] = kind
            names = extra
        for name in names:
            try:
                chosen[name] = source_spec(name).kind
            except BackendError as exc:
                raise UsageError(exc.message.replace("unknown source",
                                                     f"unknown source {name!r}")) from None
    return chosen, notes


def _trace_sources(traces: Sequence[str | Path | TraceSource], model: Model,
                   reserved: Iterable[str]) -> list[TraceSource]:
    """Load the trace files among ``traces`` (sources already loaded pass through)."""
    if not traces:
        return []
    from crosssim.tracefiles import TraceSource, load_trace_files

    loaded = [item for item in traces if isinstance(item, TraceSource)]
    paths = [item for item in traces if not isinstance(item, TraceSource)]
    return loaded + load_trace_files(paths, model=model,
                                     reserved=[*reserved, *(s.name for s in loaded)])


def _tolerance_overrides(backends_abs_mV: Any, analytic_abs_mV: Any, lumped_abs_mV: Any,
                         tolerances: Mapping[str, float | None] | None,
                         ) -> dict[str, float | None]:
    overrides: dict[str, float | None] = {}
    given = {"backends": backends_abs_mV, "analytic": analytic_abs_mV,
             "lumped": lumped_abs_mV, **(tolerances or {})}
    for key, value in given.items():
        if value is UNSET:
            continue
        if value is not None and not (isinstance(value, (int, float)) and value >= 0
                                      and math.isfinite(value)):
            raise UsageError(f"{key}_abs_mV: tolerance must be a finite number >= 0 or None, "
                             f"got {value!r}")
        overrides[key] = None if value is None else float(value)
    return overrides


def compare_all(model: Model, results: Mapping[str, RunResult],
                kinds: Mapping[str, SourceKind], *,
                overrides: Mapping[str, float | None] | None = None,
                window_start_ms: float = 0.0, interpolate: bool = False,
                partial: Iterable[str] = (),
                ) -> tuple[list[Comparison], dict[str, str], list[Note]]:
    """Compare every pair of ``results`` at every probe both have, and gate it (module
    docstring).

    ``partial``: sources that may cover only part of the model's run or of its probes
    (traces from files): their pairs are compared on the span both cover, never
    extrapolated; every other pair must cover ``0 .. t_stop_ms``.  Pairs that compute the
    same recurrence (two simulators; a simulator and the reference of its own scheme) are
    gated at least at the model's round-off floor.  Returns the comparisons, the pairs that
    could not be aligned (``"a vs b"`` -> reason) and notes (pairs not compared, gates
    raised to the floor).
    """
    labels = [probe.label for probe in model.effective_probes()]
    partial = set(partial)
    comparisons: list[Comparison] = []
    failures: dict[str, str] = {}
    notes: list[Note] = []
    floor = _Floor(model)
    for a, b, kind in source_pairs({name: kinds[name] for name in kinds if name in results}):
        gate = "backends" if kind == "backends" else (b if kind == "reference" else None)
        same_recurrence = kind == "backends" or (kind == "reference" and _steps_like(b))
        if kind == "reference" and same_recurrence:
            schemes = (results[a].info.get("scheme"), results[b].info.get("scheme"))
            if schemes[0] != schemes[1]:
                stepped = schemes[0] or "an unknown scheme"
                notes.append(Note("other", f"{a} vs {b}", f"not compared: {a} steps "
                                  f"{stepped}, {b} is the {schemes[1]} recurrence"))
                continue
        shared = [label for label in labels
                  if label in results[a].probes and label in results[b].probes]
        if not shared:
            continue  # the file's notes say which probes it lacks
        tolerances = [probe_tolerance(model, gate, label, overrides) for label in shared]
        if model.is_active and not (overrides and gate in overrides):
            # spikes shift by microseconds between correct simulators, and a shift times
            # the upstroke slope is volts: spikes and the voltage away from them gate
            tolerances = [None] * len(shared)
        if kind == "reference" and same_recurrence:  # held to simulator-pair standards
            tolerances = [probe_tolerance(model, "backends", label, overrides)
                          if tolerance is None else tolerance
                          for label, tolerance in zip(shared, tolerances)]
        # active models gate spikes, not voltages: no floor (the passive matrix may be singular)
        pair_floor = floor.value() if same_recurrence and not model.is_active else None
        if pair_floor is not None:
            raised = [t for t in tolerances if t is not None and t < pair_floor]
            if raised:
                floor.raised.add(gate or "backends")
            tolerances = [None if t is None else max(t, pair_floor) for t in tolerances]
        whole_run = not ({a, b} & partial)
        try:
            pair = compare_results(
                results[a], results[b], kind=kind, tolerance_mV=tolerances, probes=shared,
                window_start_ms=window_start_ms, start_ms=0.0 if whole_run else None,
                stop_ms=model.simulation.t_stop_ms if whole_run else None,
                interpolate=interpolate)
        except AlignmentError as exc:
            failures[f"{a} vs {b}"] = str(exc)
            continue
        for comparison in pair:
            comparison.floor_mV = pair_floor
        comparisons.extend(pair)
    notes.extend(floor.notes())
    return comparisons, failures, notes


def compare_spike_trains(model: Model, results: Mapping[str, RunResult],
                         kinds: Mapping[str, SourceKind], *, window_start_ms: float = 0.0,
                         interpolate: bool = False, partial: Iterable[str] = (),
                         ) -> list[SpikeCheck]:
    """Spike trains of every pair at every probe both have (active models; empty list for
    passive ones), gated by ``model.tolerance``'s spike fields (:class:`SpikeCheck`).

    Spikes are found in each source's own samples (``model.spikes``), from
    ``window_start_ms`` on and within the span both sources cover; the voltage away from
    spikes is compared on the pair's common grid (:func:`crosssim.compare.align`).
    """
    if not model.is_active:
        return []
    from crosssim.compare import align
    from crosssim.spikes import (
        compare_spikes,
        detect_spikes,
        voltage_deviation_away_from_spikes,
    )

    labels = [probe.label for probe in model.effective_probes()]
    settings, tolerance = model.spikes, model.tolerance
    partial = set(partial)
    found: list[SpikeCheck] = []
    for a, b, kind in source_pairs({name: kinds[name] for name in kinds if name in results}):
        shared = [label for label in labels
                  if label in results[a].probes and label in results[b].probes]
        if not shared:
            continue
        whole_run = not ({a, b} & partial)
        try:
            aligned = align(results[a], results[b], probes=shared,
                            start_ms=0.0 if whole_run else None,
                            stop_ms=model.simulation.t_stop_ms if whole_run else None,
                            interpolate=interpolate)
        except AlignmentError:
            continue  # compare_all reports the pair
        span = (max(window_start_ms, float(aligned.times_ms[0])), float(aligned.times_ms[-1]))
        keep = aligned.times_ms >= window_start_ms
        for row, label in enumerate(aligned.probes):
            trains = []
            for name in (a, b):
                own = results[name]
                spikes = detect_spikes(own.times_ms, own.trace(label),
                                       threshold_mV=settings.threshold_mV,
                                       refractory_ms=settings.refractory_ms)
                trains.append(spikes[(spikes >= span[0]) & (spikes <= span[1])])
            spikes_ab = compare_spikes(trains[0], trains[1], stimulus_onset_ms=span[0],
                                       label_a=a, label_b=b)
            away = voltage_deviation_away_from_spikes(
                aligned.times_ms[keep], aligned.a[row][keep], aligned.b[row][keep],
                trains[0], trains[1], half_width_ms=settings.away_half_width_ms)
            gated = kind != "references"
            found.append(_spike_check(a, b, label, kind, spikes_ab, away, gated=gated,
                                      time_tol=tolerance.spike_time_abs_ms,
                                      count_tol=tolerance.spike_count_abs,
                                      volt_tol=(tolerance.subthreshold_abs_mV
                                                if kind == "backends" else None)))
    return found


def _spike_check(a: str, b: str, probe: str, kind: PairKind, spikes: Any, away: Any, *,
                 gated: bool, time_tol: float, count_tol: int,
                 volt_tol: float | None) -> SpikeCheck:
    """One :class:`SpikeCheck` from a spike comparison and the deviation away from spikes."""
    problems = []
    if abs(spikes.count_a - spikes.count_b) > count_tol:
        where = (f" (first unmatched spike at {spikes.first_unmatched_ms:.4f} ms in "
                 f"{spikes.first_unmatched_label})" if spikes.first_unmatched_ms is not None
                 else "")
        problems.append(f"spike count differs: {a} {spikes.count_a}, {b} {spikes.count_b}"
                        + (f" (tolerance {count_tol})" if count_tol else "") + where)
    shift = spikes.max_abs_shift_ms
    worst = (f" at spike {spikes.worst_spike_number} ({a}: {spikes.worst_time_a_ms:.4f} ms, "
             f"{b}: {spikes.worst_time_b_ms:.4f} ms)" if shift is not None else "")
    if shift is not None and shift > time_tol:
        problems.append(f"spike times differ by up to {shift * 1e3:.3g} us "
                        f"(tolerance {time_tol * 1e3:g} us){worst}")
    if (volt_tol is not None and away.max_abs_mV is not None
            and away.max_abs_mV > volt_tol):
        problems.append(f"voltage away from spikes differs by {away.max_abs_mV:.3g} mV "
                        f"(tolerance {volt_tol:g} mV) at {away.t_max_abs_ms:g} ms")
    if problems:
        message = "; ".join(problems)
    elif shift is None:
        message = (f"no spikes in either ({a}, {b})" if not (spikes.count_a or spikes.count_b)
                   else f"no spike pairs ({a} {spikes.count_a}, {b} {spikes.count_b})")
    else:
        message = (f"{spikes.matched} spikes matched, largest shift {shift * 1e3:.3g} us"
                   f"{worst}")
    return SpikeCheck(
        a=a, b=b, probe=probe, kind=kind, count_a=spikes.count_a, count_b=spikes.count_b,
        matched=spikes.matched, max_shift_ms=shift, mean_shift_ms=spikes.mean_abs_shift_ms,
        worst_spike=spikes.worst_spike_number, worst_time_a_ms=spikes.worst_time_a_ms,
        worst_time_b_ms=spikes.worst_time_b_ms, latency_a_ms=spikes.latency_a_ms,
        latency_b_ms=spikes.latency_b_ms,
        max_isi_difference_ms=spikes.max_abs_isi_difference_ms,
        subthreshold_max_abs_mV=away.max_abs_mV, t_subthreshold_max_ms=away.t_max_abs_ms,
        subthreshold_samples=away.samples_used,
        time_tolerance_ms=time_tol if gated else None,
        count_tolerance=count_tol if gated else None,
        subthreshold_tolerance_mV=volt_tol if gated else None,
        passed=(not problems) if gated else None, message=message,
        times_a_ms=[float(t) for t in spikes.times_a_ms],
        times_b_ms=[float(t) for t in spikes.times_b_ms])


def _steps_like(name: str) -> bool:
    """Whether source ``name`` computes a simulator's own recurrence (registry flag)."""
    from crosssim.sources import source_spec

    try:
        return source_spec(name).steps_like_simulators
    except BackendError:  # a source from a file is no registered source
        return False


class _Floor:
    """The round-off floor of ``model`` (:func:`crosssim.analytic.roundoff_floor_mV`),
    estimated once on first use; remembers the gates it raised, to say so."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._value: float | None = None
        self._done = False
        self.raised: set[str] = set()

    def value(self) -> float | None:
        if not self._done:
            self._done = True
            from crosssim.analytic.discretized import roundoff_floor_mV

            try:
                self._value = roundoff_floor_mV(self.model)
            except Exception:  # noqa: BLE001 - no floor is no reason to stop a check
                self._value = None
            if self._value is not None and not math.isfinite(self._value):
                self._value = None
        return self._value

    def notes(self) -> list[Note]:
        if not self.raised or self._value is None:
            return []
        from crosssim.analytic.discretized import FLOOR_FACTOR

        gates = ", ".join(sorted(self.raised))
        return [Note("roundoff-floor", gates,
                     f"tolerance below the round-off floor of this model, "
                     f"{self._value:.2g} mV ({FLOOR_FACTOR:g} x machine epsilon x the "
                     "condition of the step matrix x the voltage scale x sqrt(steps)): two "
                     "correct solvers of the same recurrence differ by up to that much, so "
                     "these pairs are gated at the floor")]


def check(model: Model, *, backends: Sequence[str] | None = None,
          references: Sequence[str] | None = None,
          backends_abs_mV: float | None = UNSET, analytic_abs_mV: float | None = UNSET,
          lumped_abs_mV: float | None = UNSET,
          tolerances: Mapping[str, float | None] | None = None,
          window_start_ms: float | None = None, interpolate: bool = False,
          runner: Runner | None = None, progress: Any = None,
          extra_notes: Iterable[Note] = (),
          traces: Sequence[str | Path | TraceSource] = ()) -> CheckOutcome:
    """Run ``backends`` (simulators; default: every installed default simulator) and
    ``references`` (default: every installed default reference) on ``model``, compare all
    pairs at every probe and gate them (see the module docstring).

    Tolerances in mV given here replace the model's for every probe (None: report only):
    ``backends_abs_mV``, ``analytic_abs_mV``, ``lumped_abs_mV``, or ``tolerances`` keyed by
    ``backends`` or any reference's name.  ``window_start_ms`` replaces
    ``model.tolerance.window_start_ms``.  ``runner(name, model)`` returns a RunResult
    (default: the registry's source; tests inject synthetic sources).  ``progress`` has
    ``start(label)``/``finish(label, outcome)``.  Notes that explain the result (the model's,
    sources left out or skipped, ``extra_notes``) are in ``outcome.notes``.

    ``traces``: trace files (see :mod:`crosssim.tracefiles`) or sources already loaded from
    them; each joins the comparison with the kind its file declares, on the span and the
    probes it covers (a bad file raises TraceFileError before anything runs).
    """
    overrides = _tolerance_overrides(backends_abs_mV, analytic_abs_mV, lumped_abs_mV,
                                     tolerances)
    window = check_window(model, window_start_ms)
    kinds, notes = select_sources(backends, references, model)
    files = _trace_sources(traces, model, reserved=kinds)
    notes = [*model_notes(model, list(kinds)), *notes, *extra_notes,
             *(note for source in files for note in source.notes)]
    # The NEURON child starts first and runs while the sources in this process do; it is
    # waited for last (progress shows it last), its results take their usual place.
    names = list(kinds)
    started = start_children(model, names) if runner is None else {}
    try:
        results, failures, wall, run_notes = run_sources(
            model, [name for name in names if name not in started] + list(started),
            runner=started_runner(started) if started else runner, progress=progress)
    finally:
        cancel_children(started)
    if started:  # back in the order of the sources
        results = {name: results[name] for name in names if name in results}
        failures = {name: failures[name] for name in names if name in failures}
        wall = {name: wall[name] for name in names if name in wall}
    for source in files:
        kinds[source.name] = source.kind
        results[source.name] = source.result
    comparisons, pair_failures, pair_notes = compare_all(
        model, results, kinds, overrides=overrides, window_start_ms=window,
        interpolate=interpolate, partial=[source.name for source in files])
    failures.update(pair_failures)
    spikes = compare_spike_trains(model, results, kinds, window_start_ms=window,
                                  interpolate=interpolate,
                                  partial=[source.name for source in files])
    from crosssim.decomposition import decompose
    from crosssim.suggestions import attach_spike_suggestions, attach_suggestions

    all_notes = [*notes, *run_notes, *pair_notes]
    decomposition = decompose(model, results, kinds, window_start_ms=window)
    attach_suggestions(comparisons, model, decomposition, all_notes)
    attach_spike_suggestions(spikes, model)
    return CheckOutcome(model=model, results=results, failures=failures,
                        comparisons=comparisons, wall_time_s=wall, notes=all_notes,
                        kinds=kinds, decomposition=decomposition, spikes=spikes)
