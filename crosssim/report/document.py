"""``report.json`` and what every report format shares: ordering, status and number format.

``report.json`` is the document of ``crosssim check --format json``
(:meth:`CheckOutcome.to_document`) plus a ``schema_version`` and an ``environment`` block
(:func:`crosssim.report.environment.collect_environment`), and, for a report with a
convergence study, a ``convergence`` block (:meth:`ConvergenceResult.to_document`).
The HTML and Markdown pages show the numbers of this same document, formatted by
:func:`crosssim.outcome.format_mV`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from crosssim.files import json_ready, json_text
from crosssim.outcome import Comparison

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.decomposition import Decomposition, Part
    from crosssim.outcome import CheckOutcome

#: Version of the report.json layout; bump when a key changes meaning or disappears.
#: (Optional keys may be added without a bump: ``convergence`` is present only when the
#: report includes a convergence study.)
SCHEMA_VERSION = 1

Status = Literal["fail", "pass", "info"]


def report_document(outcome: CheckOutcome, environment: Mapping[str, Any],
                    convergence: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The check document with ``schema_version`` first and ``environment`` last (JSON-ready).

    ``convergence`` (a study's :meth:`ConvergenceResult.to_document`), when given, is added
    as the ``convergence`` block before ``environment``; without it the key is absent.
    """
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **outcome.to_document()}
    if convergence is not None:
        document["convergence"] = dict(convergence)
    document["environment"] = dict(environment)
    return json_ready(document)


def dumps_document(document: Mapping[str, Any]) -> str:
    """``document`` as indented JSON text (strict: no NaN), ending in a newline."""
    return json_text(document)


def status(comparison: Comparison) -> Status:
    """``fail`` (gated, over tolerance), ``pass`` (gated, within) or ``info`` (not gated)."""
    if comparison.passed is False:
        return "fail"
    if comparison.passed is True:
        return "pass"
    return "info"


def tolerance_ratio(comparison: Comparison) -> float | None:
    """``max_abs_mV / tolerance_mV`` (how much of the tolerance is used), None if not gated."""
    tolerance = comparison.tolerance_mV
    if tolerance is None or not math.isfinite(comparison.max_abs_mV):
        return None
    if tolerance == 0:
        return 0.0 if comparison.max_abs_mV == 0 else math.inf
    return comparison.max_abs_mV / tolerance


def ordered_comparisons(comparisons: Iterable[Comparison]) -> list[Comparison]:
    """Failing first (the most over its tolerance first), then gated passes, then the
    comparisons that are only reported; passes and reported ones keep their given order."""
    comparisons = list(comparisons)
    failing = [c for c in comparisons if status(c) == "fail"]

    def excess(comparison: Comparison) -> float:
        ratio = tolerance_ratio(comparison)
        return ratio if ratio is not None and not math.isnan(ratio) else math.inf

    failing.sort(key=excess, reverse=True)
    return (failing + [c for c in comparisons if status(c) == "pass"]
            + [c for c in comparisons if status(c) == "info"])


def sources_of(outcome: CheckOutcome) -> list[str]:
    """Every source the check involved (asked for, ran or compared; a failure of a pair,
    ``"a vs b"``, is no source): simulators first (sorted), then references in the order
    they were asked for."""
    names = dict.fromkeys(outcome.sources())
    names.update(dict.fromkeys(outcome.results))
    for comparison in outcome.comparisons:
        names.update(dict.fromkeys((comparison.a, comparison.b)))
    references = [name for name in names if outcome.kinds.get(name) == "reference"]
    return sorted(set(names) - set(references)) + references


def probes_of(outcome: CheckOutcome) -> list[str]:
    """Probe labels in model order, then any other probe named by a comparison."""
    labels = [probe.label for probe in outcome.model.effective_probes()]
    extra = sorted({c.probe for c in outcome.comparisons} - set(labels))
    return labels + extra


def probes_failing_first(outcome: CheckOutcome) -> list[str]:
    """:func:`probes_of`, with the probes of failing comparisons moved to the front."""
    failing = {c.probe for c in outcome.failing()}
    return sorted(probes_of(outcome), key=lambda probe: probe not in failing)


def pair_label(comparison: Comparison) -> str:
    """``arbor vs neuron`` (symmetric) or ``arbor - analytic`` (one-sided, a minus reference)."""
    joiner = " vs " if comparison.kind == "backends" else " - "
    return f"{comparison.a}{joiner}{comparison.b}"


def verdict_sentence(outcome: CheckOutcome) -> str:
    """One line that says what the verdict means, e.g. ``2 of 6 gated comparisons exceed ...``."""
    gated, failing, _ = outcome.gate_counts()
    if outcome.verdict == "error":
        names = ", ".join(sorted(outcome.failures))
        return (f"{len(outcome.failures)} source(s) failed ({names}); "
                f"{failing} of {gated} gated comparisons exceed their tolerance")
    if outcome.verdict == "fail":
        return f"{failing} of {gated} gated comparisons exceed their tolerance"
    return f"all {gated} gated comparisons are within tolerance"


#: The fix each dominant part calls for, in a few words for table cells (the whole
#: sentence is :data:`crosssim.decomposition.FIXES`).
SHORT_FIXES: dict[str, str] = {
    "implementation": "the simulator, not the model",
    "time_stepping": "smaller dt",
    "space": "more CVs",
}


def part_label(part: str) -> str:
    """``time stepping`` for ``time_stepping``: a part of the decomposition for people."""
    return part.replace("_", " ")


def decomposition_at(comparison: Comparison,
                     decomposition: Iterable[Decomposition]) -> Decomposition | None:
    """The decomposition of the simulator of ``comparison`` (its ``a``) at its probe, if made."""
    for part in decomposition:
        if (part.simulator, part.probe) == (comparison.a, comparison.probe):
            return part
    return None


def cause(comparison: Comparison, decomposition: Iterable[Decomposition]) -> Part | None:
    """The part of the error that explains a simulator's deviation in ``comparison``.

    Simulator - exact solution (``analytic``): the dominant part of the simulator's
    decomposition at that probe (None if it was not made).  Simulator - the reference that
    steps its own recurrence (a pair with a round-off floor): ``implementation``, since the
    two compute the same numbers.  Any other pair: None.
    """
    from crosssim.sources import ANALYTIC

    if comparison.kind != "reference":
        return None
    if comparison.b == ANALYTIC:
        found = decomposition_at(comparison, decomposition)
        return None if found is None else found.dominant
    return "implementation" if comparison.floor_mV is not None else None


def cause_text(part: str) -> str:
    """``space \u2192 more CVs``: a dominant part and its fix in a few words."""
    return f"{part_label(part)} \u2192 {SHORT_FIXES[part]}"


def raised_to_floor(comparison: Comparison) -> bool:
    """Whether the tolerance of ``comparison`` was raised to its round-off floor (the
    tolerance asked for was below it; :func:`crosssim.check.compare_all`)."""
    return (comparison.floor_mV is not None and comparison.tolerance_mV is not None
            and comparison.tolerance_mV == comparison.floor_mV)


@dataclass(frozen=True)
class ReportFigure:
    """A figure of a report: its title, one-sentence caption, file name and PNG bytes."""

    title: str
    caption: str
    filename: str
    png: bytes


def worst_comparison(outcome: CheckOutcome) -> Comparison | None:
    """The comparison that is most over its tolerance, or (nothing failing) the gated one
    closest to its limit; None when nothing is gated."""
    gated = [c for c in outcome.comparisons if tolerance_ratio(c) is not None]
    if not gated:
        return None
    failing = [c for c in gated if status(c) == "fail"]
    if failing:
        return ordered_comparisons(failing)[0]

    def used(comparison: Comparison) -> float:
        ratio = tolerance_ratio(comparison)
        return -1.0 if ratio is None or math.isnan(ratio) else ratio

    return max(gated, key=used)


def suite_sentence(counts: Mapping[str, int]) -> str:
    """One line on a suite's verdict from its counts (``pass``/``fail``/``error`` -> n)."""
    total = sum(counts.values())
    if counts.get("error"):
        return (f"{counts['error']} of {total} models had a source fail; "
                f"{counts.get('fail', 0)} exceed a tolerance")
    if counts.get("fail"):
        return f"{counts['fail']} of {total} models exceed a tolerance"
    return f"all {total} models within tolerance"
