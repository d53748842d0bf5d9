"""``report.md``: GitHub-flavoured Markdown short enough for a PR comment or a CI step summary.

The verdict line, the notes that explain the result, one table (failing first, at most
:data:`MAX_ROWS` rows), the failed sources, the figures as relative image links, the fitted
orders of a convergence study (when the report has one) and one line of environment.  User
strings are escaped so they cannot open a table cell, a link or an HTML tag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crosssim.report.document import (
    ReportFigure,
    cause,
    cause_text,
    ordered_comparisons,
    pair_label,
    part_label,
    raised_to_floor,
    status,
    verdict_sentence,
)
from crosssim.report.text import format_mV, format_us

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.outcome import CheckOutcome, Comparison

#: Table rows shown (failing first); the rest is counted.
MAX_ROWS = 25
#: Rows of the decomposition table; with more simulators x probes, each simulator's worst
#: probe.
MAX_DECOMPOSITION_ROWS = 8
_VERDICT = {"pass": "\u2705 PASS", "fail": "\u274c FAIL", "error": "\u26a0\ufe0f ERROR"}
_STATUS = {"fail": "\u274c fail", "pass": "\u2705 pass", "info": "reported"}
_SPECIAL = re.compile(r"([\\`*_\[\]{}()#|!~])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_text(value: Any) -> str:
    """``value`` as one line of Markdown text: ``& < >`` as entities (no tag can form),
    other Markdown punctuation backslash-escaped."""
    text = " ".join(str(value).split())
    text = re.sub(r"[&<>]", lambda match: _ENTITIES[match.group()], text)
    return _SPECIAL.sub(r"\\\1", text)


def md_code(value: Any) -> str:
    """``value`` as inline code (names), or as escaped text when it holds a character that
    code spans cannot carry safely (backtick, ``|``, ``& < >``)."""
    text = " ".join(str(value).split())
    if not text or any(char in text for char in "`|&<>"):
        return md_text(text)
    return f"`{text}`"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _order(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _convergence(document: Mapping[str, Any], figure: ReportFigure | None) -> list[str]:
    """The fitted orders of a convergence study as one short table, and its figure."""
    from crosssim.report.convergence import is_spike_study, methods_sentence, order_rows

    if is_spike_study(document):
        return _spike_convergence(document, figure)
    lines = ["", ("**Convergence** (error against the exact cable solution; time "
                  f"integration: {md_text(methods_sentence(document))})"), ""]
    rows = order_rows(document)
    if rows:
        lines += [_row(["backend", "study", "order (max)", "order (RMS)", "error floor",
                        "Richardson error (mV)"]),
                  _row(["---", "---", "---:", "---:", "---", "---:"])]
        lines += [_row([md_code(row.backend), md_text(row.study_label), _order(row.order_max),
                        _order(row.order_rms), "\u26a0\ufe0f floor" if row.floor else "no",
                        format_mV(row.richardson_error_mV)]) for row in rows]
    else:
        lines.append("_No order could be fitted._")
    errors = document.get("errors") or []
    if errors:
        lines += ["", f"_{len(errors)} run(s) of the study failed: see `report.json`._"]
    if figure is not None:
        lines += ["", f"![{md_text(figure.title)}]({figure.filename})"]
    return lines


def _spike_convergence(document: Mapping[str, Any], figure: ReportFigure | None) -> list[str]:
    """The fitted orders of a spike-time study (active models) as one table, and its figure."""
    from crosssim.report.convergence import methods_sentence, spike_order_rows

    lines = ["", ("**Convergence of the spike times** (error = largest |spike time - reference "
                  "spike time| over matched spikes, ms; each simulator's reference is its own "
                  "spike times extrapolated from its two finest levels; time integration: "
                  f"{md_text(methods_sentence(document))})"), ""]
    rows = spike_order_rows(document)
    if rows:
        lines += [_row(["backend", "study", "order (max)", "order (mean)", "error floor",
                        "finest level error (ms)", "reference spike times",
                        "levels not fitted"]),
                  _row(["---", "---", "---:", "---:", "---", "---:", "---", "---:"])]
        lines += [_row([md_code(row.backend), md_text(row.study_label), _order(row.order_max),
                        _order(row.order_mean), "\u26a0\ufe0f floor" if row.floor else "no",
                        format_mV(row.finest_error_ms), md_text(row.reference),
                        str(row.excluded)]) for row in rows]
    else:
        lines.append("_No order could be fitted._")
    errors = document.get("errors") or []
    if errors:
        lines += ["", f"_{len(errors)} run(s) of the study failed: see `report.json`._"]
    if figure is not None:
        lines += ["", f"![{md_text(figure.title)}]({figure.filename})"]
    return lines


def _floor(c: Comparison) -> str:
    """The round-off floor cell: blank for pairs without one, marked when the tolerance was
    raised to it."""
    if c.floor_mV is None:
        return ""
    return format_mV(c.floor_mV) + (" (raised)" if raised_to_floor(c) else "")


def _spikes(outcome: CheckOutcome, figure: ReportFigure | None) -> list[str]:
    """The spike comparisons of an active model as a table, then the raster."""
    if not outcome.spikes:
        return []
    lines = ["", "**Spikes** (found by crosssim in the sampled traces)", "",
             _row(["pair", "probe", "spikes a / b", "max shift (us)", "mean shift (us)",
                   "max \\|dV\\| away from spikes (mV)", "tolerance (us)", "result"]),
             _row(["---", "---", "---:", "---:", "---:", "---:", "---:", "---"])]
    for c in outcome.spikes[:MAX_ROWS]:
        result = ("reported" if c.passed is None else "pass" if c.passed
                  else f"**FAIL**: {md_text(c.message)}")
        lines.append(_row([md_text(f"{c.a} vs {c.b}"), md_code(c.probe),
                           f"{c.count_a} / {c.count_b}", format_us(c.max_shift_ms),
                           format_us(c.mean_shift_ms), format_mV(c.subthreshold_max_abs_mV),
                           format_us(c.time_tolerance_ms), result]))
    if len(outcome.spikes) > MAX_ROWS:
        lines += ["", f"_{len(outcome.spikes) - MAX_ROWS} more spike comparisons: see "
                      "`report.json` or `index.html`._"]
    if figure is not None:
        lines += ["", f"![{md_text(figure.title)}]({figure.filename})"]
    return lines


def _decomposition(outcome: CheckOutcome, figure: ReportFigure | None) -> list[str]:
    """The error decomposition as one short table (every simulator and probe, or each
    simulator's worst probe when there are more than MAX_DECOMPOSITION_ROWS), the fixes of
    the dominant parts shown, and the figure."""
    from crosssim.decomposition import FIXES
    from crosssim.sources import ANALYTIC

    parts = list(outcome.decomposition)
    if not parts:
        return []
    failing = {(c.a, c.probe) for c in outcome.failing()
               if c.kind == "reference" and c.b == ANALYTIC}
    parts.sort(key=lambda part: (part.simulator, part.probe) not in failing)
    probe_cells = {id(part): md_code(part.probe) for part in parts}
    if len(parts) > MAX_DECOMPOSITION_ROWS:
        by_simulator: dict[str, list] = {}
        for part in parts:
            by_simulator.setdefault(part.simulator, []).append(part)
        parts = []
        for group in by_simulator.values():
            worst = group[max(range(len(group)),
                              key=lambda i: (group[i].total_mV, -i))]  # first on ties
            probe_cells[id(worst)] = f"{md_code(worst.probe)} (worst of {len(group)})"
            parts.append(worst)
    lines = ["", ("**Where the error comes from** (simulator \u2212 exact = implementation "
                  "+ time stepping + space; largest \\|part\\| in mV)"), "",
             _row(["simulator", "probe", "implementation", "time stepping", "space", "total",
                   "dominant \u2192 fix"]),
             _row(["---", "---", "---:", "---:", "---:", "---:", "---"])]
    for part in parts:
        lines.append(_row([md_code(part.simulator), probe_cells[id(part)],
                           format_mV(part.implementation_mV), format_mV(part.time_stepping_mV),
                           format_mV(part.space_mV), format_mV(part.total_mV),
                           md_text(cause_text(part.dominant))]))
    dominant = list(dict.fromkeys(part.dominant for part in parts))
    lines += ["", "_Fix: " + "; ".join(f"{part_label(name)}: {md_text(FIXES[name])}"
                                       for name in dominant) + "._"]
    if figure is not None:
        lines += ["", f"![{md_text(figure.title)}]({figure.filename})"]
    return lines


def _suggestions(comparisons: Sequence[Comparison]) -> list[str]:
    """The distinct suggested fixes of the failing comparisons, with their evidence."""
    fixes: dict[str, tuple[str, list[str]]] = {}
    for c in comparisons:
        if c.passed is False and c.suggestion is not None:
            why, where = fixes.setdefault(c.suggestion.action, (c.suggestion.why, []))
            where.append(f"{pair_label(c)} @ {c.probe}")
    if not fixes:
        return []
    lines = ["", "**Suggested fixes**", ""]
    for action, (why, where) in fixes.items():
        shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        lines.append(f"- {md_code(action)} ({md_text(shown)}): {md_text(why)}")
    return lines


def render_markdown(outcome: CheckOutcome, environment: Mapping[str, Any], *,
                    figures: Sequence[ReportFigure] = (), run_id: str = "",
                    convergence: Mapping[str, Any] | None = None,
                    convergence_figure: ReportFigure | None = None,
                    decomposition_figure: ReportFigure | None = None,
                    morphology_figure: ReportFigure | None = None,
                    spike_figure: ReportFigure | None = None) -> str:
    """The Markdown report (ends in a newline).

    ``convergence`` (a study's JSON document) adds its fitted orders and figure; an outcome
    with a decomposition adds its table and ``decomposition_figure``; ``morphology_figure``
    (the cells' dendrograms) follows the other figures.  An active model's spike
    comparisons get their table, with ``spike_figure`` (the raster) after it.
    """
    model = outcome.model
    lines = [f"### {_VERDICT[outcome.verdict]} \u00b7 crosssim: {md_code(model.name)}", ""]
    lines.append(f"**{md_text(verdict_sentence(outcome))}** \u00b7 "
                 f"{md_text(environment.get('date_utc', ''))}"
                 + (f" \u00b7 run {md_code(run_id)}" if run_id else ""))
    if model.description:
        lines += ["", f"> {md_text(model.description)}"]
    if outcome.notes:
        lines += ["", "**Notes**", ""]
        lines += [f"- {md_code(note.subject)}: {md_text(note.message)}"
                  + (f" \u2014 *fix:* {md_text(note.action)}" if note.action else "")
                  for note in outcome.notes]
    if outcome.failures:
        lines += ["", "**Sources that failed**", ""]
        lines += [f"- {md_code(name)}: {md_text(reason)}"
                  for name, reason in sorted(outcome.failures.items())]
    ordered = ordered_comparisons(outcome.comparisons)
    if ordered:
        # a failing gate says what would pass it (as the HTML page and the terminal do)
        suggest = any(status(c) == "fail" for c in ordered)
        floors = any(c.floor_mV is not None for c in ordered)
        causes = any(cause(c, outcome.decomposition) is not None for c in outcome.failing())
        lines += ["", _row(["pair", "probe", "max \\|dV\\| (mV)", "tolerance (mV)"]
                           + (["round-off floor (mV)"] if floors else [])
                           + (["suggested tolerance (mV)"] if suggest else [])
                           + (["cause \u2192 fix"] if causes else []) + ["result"]),
                  _row(["---", "---", "---:", "---:"] + (["---:"] if floors else [])
                       + (["---:"] if suggest else []) + (["---"] if causes else [])
                       + ["---"])]
        shown = ordered[:MAX_ROWS]
        for c in shown:
            extra = [_floor(c)] if floors else []
            if suggest:
                extra.append(format_mV(c.suggested_tolerance_mV)
                             if status(c) == "fail" and c.suggested_tolerance_mV is not None
                             else "")
            if causes:
                part = cause(c, outcome.decomposition) if status(c) == "fail" else None
                extra.append(md_text(cause_text(part)) if part else "")
            lines.append(_row([md_text(pair_label(c)), md_code(c.probe),
                               format_mV(c.max_abs_mV), format_mV(c.tolerance_mV)]
                              + extra + [_STATUS[status(c)]]))
        rest = ordered[len(shown):]
        if rest:
            failing = sum(status(c) == "fail" for c in rest)
            lines += ["", (f"_{len(rest)} more comparisons ({failing} failing): see "
                           "`report.json` or `index.html`._")]
        if any(raised_to_floor(c) for c in shown):
            lines += ["", "_Round-off floor (raised): the tolerance asked for was below "
                          "the floor, so the pair is gated at the floor._"]
        lines += _suggestions(ordered)
        window = max((c.window_start_ms for c in ordered), default=0.0)
        if window > 0:
            lines += ["", f"_Samples before t = {window:g} ms are ignored "
                          "(`tolerance.window_start_ms`)._"]
    else:
        lines += ["", "_No comparison could be made._"]
    lines += _spikes(outcome, spike_figure)
    lines += _decomposition(outcome, decomposition_figure)
    if figures:
        lines += [""]
        lines += [f"![{md_text(figure.title)}]({figure.filename})" for figure in figures]
    if morphology_figure is not None:
        lines += ["", f"**{md_text(morphology_figure.title)}**", "",
                  f"![{md_text(morphology_figure.title)}]({morphology_figure.filename})"]
    if convergence is not None:
        lines += _convergence(convergence, convergence_figure)
    versions = ", ".join(
        f"{label} {md_text(environment[key])}" for key, label in
        (("crosssim", "crosssim"), ("neuron", "NEURON"), ("arbor", "Arbor"),
         ("python", "Python"), ("numpy", "numpy")) if environment.get(key))
    model_hash = str(environment.get("model_sha256") or "")[:12]
    lines += ["", (f"<sub>{versions} \u00b7 model sha256 {md_code(model_hash)} \u00b7 "
                   "full report: `index.html`</sub>")]
    return "\n".join(lines) + "\n"
