"""Markdown for a CI step summary: ``crosssim check --summary FILE``.

``FILE`` is typically ``$GITHUB_STEP_SUMMARY``.  Made to be read where it lands, without
the report folder next to it: no image and no relative link (a step summary shows neither),
one line per model, then per model a compact text table of its worst deviations, the notes
and the suggested fixes, failing models first and open.  Paths to the full reports are
printed as text (they are in the job's artifacts, not beside the summary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crosssim.report.document import (
    ordered_comparisons,
    pair_label,
    suite_sentence,
    tolerance_ratio,
    worst_comparison,
)
from crosssim.report.markdown import md_code, md_text
from crosssim.report.text import format_mV, text_table

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.outcome import CheckOutcome, Comparison
    from crosssim.suite import SuiteOutcome, SuiteResult

__all__ = ["MAX_DEVIATIONS", "render_summary"]

#: Rows of each model's table of worst deviations.
MAX_DEVIATIONS = 6
_VERDICT = {"pass": "\u2705 pass", "fail": "\u274c FAIL", "error": "\u26a0\ufe0f ERROR"}
_HEADING = {"pass": "\u2705 PASS", "fail": "\u274c FAIL", "error": "\u26a0\ufe0f ERROR"}
_ORDER = {"error": 0, "fail": 1, "pass": 2}


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _worst_rows(outcome: CheckOutcome, limit: int) -> list[Comparison]:
    """The gated comparisons most over (or closest to) their tolerance, then the largest
    reported-only deviations of simulators against references, ``limit`` in all."""
    gated = [c for c in outcome.comparisons if tolerance_ratio(c) is not None]
    failing = [c for c in ordered_comparisons(gated) if c.passed is False]
    passing = sorted((c for c in gated if c.passed), key=lambda c: -(tolerance_ratio(c) or 0))
    reported = sorted((c for c in outcome.comparisons
                       if c.passed is None and c.kind == "reference"),
                      key=lambda c: -c.max_abs_mV if c.max_abs_mV == c.max_abs_mV else 0)
    return (failing + passing + reported)[:limit]


def _deviation_table(outcome: CheckOutcome, limit: int) -> list[str]:
    rows = [("pair", "probe", "max|dV| mV", "at t ms", "tol mV", "used", "verdict")]
    for c in _worst_rows(outcome, limit):
        ratio = tolerance_ratio(c)
        used = "-" if ratio is None else f"{100 * ratio:.3g}%"
        verdict = "report" if c.passed is None else ("pass" if c.passed else "FAIL")
        rows.append((pair_label(c), c.probe, format_mV(c.max_abs_mV, 3), f"{c.t_max_abs_ms:g}",
                     format_mV(c.tolerance_mV, 3), used, verdict))
    if len(rows) == 1:
        return []
    shown = len(rows) - 1
    total = sum(1 for c in outcome.comparisons if c.kind != "references")
    lines = ["```text", *text_table(rows, numeric={2, 3, 4, 5}), "```"]
    if total > shown:
        lines.append(f"_{shown} of {total} comparisons shown (worst first)._")
    return lines


def _model_section(result: SuiteResult) -> list[str]:
    outcome = result.outcome
    verdict = outcome.verdict
    open_attribute = " open" if verdict != "pass" else ""
    lines = [f"<details{open_attribute}><summary>{_VERDICT[verdict]} "
             f"<code>{md_text(result.member.label)}</code> ({md_text(result.member.source)})"
             "</summary>", ""]
    lines += _deviation_table(outcome, MAX_DEVIATIONS)
    if outcome.failures:
        lines += ["", "**Sources that failed**", ""]
        lines += [f"- {md_code(name)}: {md_text(reason)}"
                  for name, reason in sorted(outcome.failures.items())]
    suggestions = _suggestion_lines(outcome)
    if suggestions:
        lines += ["", "**To pass**", "", *suggestions]
    if outcome.notes:
        lines += ["", "**Notes**", ""]
        lines += [f"- {md_code(note.subject)}: {md_text(note.message)}"
                  + (f" \u2014 *fix:* {md_text(note.action)}" if note.action else "")
                  for note in outcome.notes]
    report = result.outputs.get("report_html")
    if report:
        lines += ["", f"Full report (in the job's artifacts): {md_code(report)}"]
    lines += ["", "</details>", ""]
    return lines


def _suggestion_lines(outcome: CheckOutcome) -> list[str]:
    """One bullet per distinct suggested fix of the failing comparisons."""
    seen: dict[str, str] = {}
    for c in outcome.failing():
        suggestion = getattr(c, "suggestion", None)
        if suggestion is not None:
            seen.setdefault(suggestion.action, suggestion.why)
    return [f"- {md_code(action)}: {md_text(why)}" for action, why in seen.items()]


def _overview(results: Sequence[SuiteResult]) -> list[str]:
    lines = [_row(["model", "verdict", "failing / gated", "worst max \\|dV\\| (mV)",
                   "tolerance (mV)", "where"]),
             _row(["---", "---", "---:", "---:", "---:", "---"])]
    for result in results:
        outcome = result.outcome
        worst = worst_comparison(outcome)
        gated = sum(1 for c in outcome.comparisons if c.passed is not None)
        where = "" if worst is None else md_text(f"{pair_label(worst)} @ {worst.probe}")
        if outcome.failures:
            where = (where + "; " if where else "") + md_text(
                "failed: " + ", ".join(sorted(outcome.failures)))
        lines.append(_row([
            md_code(result.member.label), _VERDICT[outcome.verdict],
            f"{len(outcome.failing())} / {gated}",
            "" if worst is None else format_mV(worst.max_abs_mV, 3),
            "" if worst is None else format_mV(worst.tolerance_mV, 3), where]))
    return lines


def render_summary(suite: SuiteOutcome) -> str:
    """The step summary of a suite (one model or many), ending in a newline."""
    results = sorted(suite.results, key=lambda r: _ORDER[r.outcome.verdict])
    count = len(results)
    title = (f"crosssim check: {md_code(results[0].member.label)}" if count == 1
             else f"crosssim check: {count} models")
    lines = [f"### {_HEADING[suite.verdict]} \u00b7 {title}", "",
             f"**{md_text(suite_sentence(suite.counts()))}**", ""]
    lines += _overview(results)
    lines.append("")
    for result in results:
        lines += _model_section(result)
    return "\n".join(lines).rstrip("\n") + "\n"
