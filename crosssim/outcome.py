"""The result of a check: per (source pair, probe) comparisons, failures, notes, the verdict.

These plain data types are the contract between the comparison (``crosssim.compare``,
``crosssim.check``) and everything that presents it (text table, JSON, JUnit, HTML,
Markdown, sweeps).  ``CheckOutcome.to_document()`` is the JSON document of
``crosssim check --format json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from crosssim.decomposition import Decomposition
from crosssim.errors import EXIT_BACKEND, EXIT_DEVIATION, EXIT_OK
from crosssim.files import json_ready
from crosssim.notes import Note

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.result import RunResult
    from crosssim.sources import SourceKind

Verdict = Literal["pass", "fail", "error"]
#: ``backends``: simulator vs simulator (symmetric); ``reference``: simulator - reference
#: (one-sided, ``b`` is the reference); ``references``: reference vs reference (reported).
PairKind = Literal["backends", "reference", "references"]
PAIR_KINDS: tuple[PairKind, ...] = ("backends", "reference", "references")


FixKind = Literal["dt", "cvs", "window", "tolerance"]


@dataclass(frozen=True)
class Suggestion:
    """The change that would make a failing comparison pass, chosen from the evidence.

    ``fix``: ``dt`` (a smaller time step), ``cvs`` (more control volumes), ``window`` (a
    window start past an initial transient) or ``tolerance`` (only when nothing else
    explains the deviation); ``action``: the command-line flags that make the change
    (``--set simulation.dt_ms=0.001``, ``--window-start 0.02``, ``--tolerance-analytic
    0.16``); ``why``: the evidence, one sentence for people.
    """

    fix: FixKind
    action: str
    why: str


@dataclass
class Comparison:
    """Deviation between sources ``a`` and ``b`` at one probe, on their common grid (mV, ms).

    For a simulator-vs-reference pair, ``a`` is the simulator and ``b`` the reference
    (one-sided); simulator-vs-simulator is symmetric.  ``tolerance_mV`` None means reported,
    not gated, and then ``passed`` is None.  ``*_rel_range`` are normalised by the range of
    ``b``'s trace (max - min; falls back to max |b| when the trace is flat).
    """

    a: str
    b: str
    probe: str
    kind: PairKind
    max_abs_mV: float
    t_max_abs_ms: float
    a_at_max_mV: float
    b_at_max_mV: float
    rms_mV: float
    max_rel_range: float
    rms_rel_range: float
    final_abs_mV: float
    n_samples: int
    n_mismatched: int
    tolerance_mV: float | None
    passed: bool | None
    window_start_ms: float = 0.0
    #: numpy.testing's max relative difference: max |a - b| / |b| (symmetric: / max(|a|, |b|)).
    max_rel_diff: float = math.nan
    #: The observed max_abs_mV with headroom (x1.5), rounded up to 2 significant figures.
    suggested_tolerance_mV: float | None = None
    #: How the two traces were put on one grid: ``exact`` (by index) or ``interpolated``.
    alignment: str = "exact"
    #: The round-off floor (mV) estimated for pairs that compute the same recurrence
    #: (simulator vs simulator, simulator vs its discrete reference); the gate is never
    #: below it.  None for other pairs.
    floor_mV: float | None = None
    #: The time of the last sample over the tolerance, and of the sample after it (None
    #: when none is over, or the last sample is): evidence for a window start.
    t_last_mismatch_ms: float | None = None
    t_after_mismatch_ms: float | None = None
    #: For a failing comparison: the fix the evidence points to (:mod:`crosssim.suggestions`).
    suggestion: Suggestion | None = None

    @property
    def gate(self) -> str | None:
        """What gates this pair: ``backends`` (simulator vs simulator), the reference's name
        (simulator - reference) or None (reference vs reference, never gated).  It is the
        key of the tolerance (``<gate>_abs_mV``) and of the sweep column ``worst_<gate>_mV``."""
        if self.kind == "backends":
            return "backends"
        return self.b if self.kind == "reference" else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN/inf become None)."""
        return json_ready(asdict(self))


@dataclass
class SpikeCheck:
    """Spike trains of sources ``a`` and ``b`` at one probe (active membranes), found by
    crosssim in the sampled traces (:mod:`crosssim.spikes`), and the voltage deviation away
    from spikes.  Times in ms, voltages in mV.

    Gates: counts may differ by ``count_tolerance``; matched spikes (i-th with i-th) by
    ``time_tolerance_ms``; for two simulators, the voltage away from spikes by
    ``subthreshold_tolerance_mV``.  ``passed`` None: reported only (reference vs reference).
    ``message`` says the result in one line, naming the spike-time shift.
    """

    a: str
    b: str
    probe: str
    kind: PairKind
    count_a: int
    count_b: int
    matched: int
    max_shift_ms: float | None
    mean_shift_ms: float | None
    worst_spike: int | None
    worst_time_a_ms: float | None
    worst_time_b_ms: float | None
    latency_a_ms: float | None
    latency_b_ms: float | None
    max_isi_difference_ms: float | None
    subthreshold_max_abs_mV: float | None
    t_subthreshold_max_ms: float | None
    subthreshold_samples: int
    time_tolerance_ms: float | None
    count_tolerance: int | None
    subthreshold_tolerance_mV: float | None
    passed: bool | None
    message: str
    times_a_ms: list[float] = field(default_factory=list)
    times_b_ms: list[float] = field(default_factory=list)
    #: For a failing pair of simulators: the change that would pass it (also at the end
    #: of ``message``); see :func:`crosssim.suggestions.attach_spike_suggestions`.
    suggestion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN/inf become None)."""
        return json_ready(asdict(self))


@dataclass
class CheckOutcome:
    """Everything one ``check`` produced."""

    model: Model
    results: dict[str, RunResult]
    failures: dict[str, str]
    comparisons: list[Comparison]
    wall_time_s: dict[str, float] = field(default_factory=dict)
    #: Explanations that travel with the result (model notes, sources left out or skipped).
    notes: list[Note] = field(default_factory=list)
    #: The kind of every source that was asked for: ``simulator`` or ``reference``.
    kinds: dict[str, SourceKind] = field(default_factory=dict)
    #: Each simulator's error split into implementation, time stepping and space, when the
    #: references that make the split (analytic, semidiscrete, discrete) ran.
    decomposition: list[Decomposition] = field(default_factory=list)
    #: Spike trains compared per pair and probe (models with active membranes).
    spikes: list[SpikeCheck] = field(default_factory=list)

    def sources(self, kind: SourceKind | None = None) -> list[str]:
        """The sources asked for (simulators first), optionally of one kind."""
        names = list(self.kinds) or list(dict.fromkeys([*self.results, *self.failures]))
        ordered = sorted(names, key=lambda name: self.kinds.get(name, "simulator") != "simulator")
        return [name for name in ordered if kind in (None, self.kinds.get(name, "simulator"))]

    @property
    def verdict(self) -> Verdict:
        """``error`` if a source failed, else ``fail`` if a gated comparison failed, else
        ``pass``."""
        if self.failures:
            return "error"
        if self.failing() or self.failing_spikes():
            return "fail"
        return "pass"

    @property
    def exit_code(self) -> int:
        """3 for error, 1 for fail, 0 for pass."""
        return {"pass": EXIT_OK, "fail": EXIT_DEVIATION, "error": EXIT_BACKEND}[self.verdict]

    def failing(self) -> list[Comparison]:
        """The gated comparisons that exceeded their tolerance."""
        return [c for c in self.comparisons if c.passed is False]

    def gate_counts(self) -> tuple[int, int, int]:
        """``(gated, failing, reported)``: comparisons and spike comparisons that are gated,
        that fail their gate, and that are reported only."""
        everything: list[Comparison | SpikeCheck] = [*self.comparisons, *self.spikes]
        gated = sum(1 for c in everything if c.passed is not None)
        failing = sum(1 for c in everything if c.passed is False)
        return gated, failing, len(everything) - gated

    def failing_spikes(self) -> list[SpikeCheck]:
        """The gated spike comparisons that failed."""
        return [c for c in self.spikes if c.passed is False]

    def to_document(self) -> dict[str, Any]:
        """The JSON document of ``crosssim check --format json``."""
        return {
            "model": self.model.name,
            "verdict": self.verdict,
            "sources": [{"name": name, "kind": self.kinds.get(name, "simulator")}
                        for name in self.sources()],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "errors": [{"source": name, "reason": reason}
                       for name, reason in sorted(self.failures.items())],
            "notes": [note.to_dict() for note in self.notes],
            "decomposition": [part.to_dict() for part in self.decomposition],
            "spikes": [spike.to_dict() for spike in self.spikes],
            "wall_time_s": dict(self.wall_time_s),
        }
