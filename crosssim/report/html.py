"""The report page: one self-contained HTML file (inline CSS, figures as PNG data URIs, no JS).

Every string that comes from the user or a backend (model name, description, probe and
source names, failure reasons, TOML) goes through :func:`html.escape`.  Numbers shown are
those of ``report.json``, formatted by :func:`crosssim.outcome.format_mV`; each
deviation cell also carries the exact value in a ``data-value`` attribute.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crosssim.report.document import (
    ReportFigure,
    ordered_comparisons,
    pair_label,
    probes_failing_first,
    sources_of,
    status,
    tolerance_ratio,
    verdict_sentence,
)
from crosssim.report.text import format_mV

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.outcome import CheckOutcome, Comparison

#: Rows of the comparison table shown open (more if more fail); the rest up to
#: MAX_TABLE_ROWS is folded in a <details> element, anything beyond is left to report.json.
INLINE_ROWS = 30
MAX_TABLE_ROWS = 400
#: Probes that get their own deviation matrix (failing probes first).
MAX_MATRIX_PROBES = 12
#: Characters of model TOML shown inline; the full text is in the model files.
MAX_TOML_CHARS = 30_000
#: A gated deviation above this fraction of its tolerance is marked "close to the limit".
WARN_FRACTION = 0.5
#: Runs of a convergence study listed open; a longer level table is folded in <details>.
INLINE_LEVEL_ROWS = 12

VERDICT_TEXT = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}
_MARK = {"fail": "\u2717", "pass": "\u2713", "warn": "\u2713", "info": ""}

CSS = """
:root { --pass: #1a7f37; --fail: #cf222e; --error: #8250df; --warn: #9a6700;
        --pass-bg: #dafbe1; --fail-bg: #ffebe9; --warn-bg: #fff8c5; --info-bg: #f6f8fa;
        --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1f2328; margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 80rem;
       line-height: 1.45; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; padding-bottom: .25rem;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.meta, .note, figcaption { color: var(--muted); font-size: .9rem; }
.description { margin: .2rem 0 .6rem; }
.verdict { border-radius: 8px; padding: .9rem 1.2rem; margin: 1rem 0; color: #fff; }
.verdict .word { font-size: 1.9rem; font-weight: 700; letter-spacing: .05em; margin-right: .8rem; }
.verdict .sentence { font-size: 1.1rem; }
.verdict .worst { display: block; margin-top: .3rem; font-size: .95rem; opacity: .95; }
.verdict-pass { background: var(--pass); }
.verdict-fail { background: var(--fail); }
.verdict-error { background: var(--error); }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td { background: var(--fail-bg); }
td.status, td.pair { font-weight: 600; white-space: nowrap; }
td.pair { font-weight: 400; }
.wide { overflow-x: auto; }
table.comparisons { font-size: .84rem; }
table.comparisons th { font-size: .8rem; }
tr.fail td.status, td.fail { color: var(--fail); }
tr.pass td.status { color: var(--pass); }
.matrix td { text-align: center; font-variant-numeric: tabular-nums; white-space: nowrap; }
.matrix th[scope=row] { text-align: right; }
.matrix td.pass { background: var(--pass-bg); }
.matrix td.warn { background: var(--warn-bg); color: var(--warn); }
.matrix td.fail { background: var(--fail-bg); color: var(--fail); font-weight: 700; }
.matrix td.info { background: var(--info-bg); }
.matrix td.self { background: #eaeef2; color: var(--muted); }
.matrix td.none { color: var(--muted); }
.matrices { display: flex; flex-wrap: wrap; gap: 0 2rem; }
.legend span { display: inline-block; padding: 0 .5rem; margin-right: .4rem;
               border: 1px solid var(--line); }
.legend .pass { background: var(--pass-bg); } .legend .warn { background: var(--warn-bg); }
.legend .fail { background: var(--fail-bg); } .legend .info { background: var(--info-bg); }
details summary { cursor: pointer; color: #0969da; margin: .2rem 0 .6rem; }
td.floor { background: var(--warn-bg); color: var(--warn); font-weight: 600; }
td.failed { color: var(--fail); }
ul.terms { margin: .2rem 0 1rem; padding-left: 1.2rem; }
.errors li { margin-bottom: .4rem; }
.errors pre { margin: .2rem 0; }
figure { margin: 1rem 0 1.5rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px;
      padding: .6rem .8rem; overflow: auto; max-height: 32rem; font-size: .82rem;
      white-space: pre-wrap; word-break: break-word; }
.models { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr));
          gap: 0 1.5rem; }
code { font-size: .9em; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .85rem; }
@media print {
  body { max-width: none; padding: 0; }
  pre { max-height: none; overflow: visible; }
  .verdict, .matrix td, tr.fail td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; } figure, table { break-inside: avoid; }
}
"""


def escape(value: Any) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def data_uri_png(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of ``png``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _number_cell(value: float | None, *, css: str = "num") -> str:
    exact = "" if value is None or not math.isfinite(value) else f' data-value="{value!r}"'
    return f'<td class="{css}"{exact}>{escape(format_mV(value))}</td>'


def _cell_status(comparison: Comparison) -> str:
    """``fail``, ``warn`` (passes but uses more than WARN_FRACTION), ``pass`` or ``info``."""
    state = status(comparison)
    ratio = tolerance_ratio(comparison)
    if state == "pass" and ratio is not None and ratio > WARN_FRACTION:
        return "warn"
    return state


def _status_text(comparison: Comparison) -> str:
    state = status(comparison)
    if state == "fail":
        return "\u2717 fail"
    if state == "pass":
        return "\u2713 pass"
    return "reported"


def _verdict_section(outcome: CheckOutcome) -> str:
    verdict = outcome.verdict
    failing = outcome.failing()
    worst_line = ""
    if failing:
        first = ordered_comparisons(failing)[0]
        worst_line = (f"worst: {escape(pair_label(first))} at probe {escape(first.probe)}: "
                      f"max |dV| {escape(format_mV(first.max_abs_mV))} mV &gt; tolerance "
                      f"{escape(format_mV(first.tolerance_mV))} mV")
        if first.suggested_tolerance_mV is not None:
            worst_line += (f"; suggested tolerance "
                           f"{escape(format_mV(first.suggested_tolerance_mV))} mV")
    else:
        gated = [c for c in outcome.comparisons if tolerance_ratio(c) is not None]
        if gated:
            closest = max(gated, key=lambda c: tolerance_ratio(c))
            worst_line = (f"closest to its limit: {escape(pair_label(closest))} at probe "
                          f"{escape(closest.probe)}: {escape(format_mV(closest.max_abs_mV))} "
                          f"mV of {escape(format_mV(closest.tolerance_mV))} mV")
    return (f'<section class="verdict verdict-{verdict}" id="verdict" role="status">'
            f'<span class="word">{VERDICT_TEXT[verdict]}</span>'
            f'<span class="sentence">{escape(verdict_sentence(outcome))}</span>'
            + (f'<span class="worst">{worst_line}</span>' if worst_line else "")
            + "</section>")


def _errors_section(outcome: CheckOutcome) -> str:
    if not outcome.failures:
        return ""
    items = "".join(f"<li><strong>{escape(name)}</strong> failed:<pre>{escape(reason)}</pre></li>"
                    for name, reason in sorted(outcome.failures.items()))
    return (f'<section id="errors"><h2>Sources that failed</h2>'
            f'<ul class="errors">{items}</ul>'
            "<p class=note>Comparisons involving these sources are missing below.</p></section>")


def _comparison_row(c: Comparison, *, windowed: bool, suggested: bool) -> str:
    state = status(c)
    mismatched = f"{c.n_mismatched}/{c.n_samples}" if c.passed is not None else ""
    return (
        f'<tr class="{state}" data-a="{escape(c.a)}" data-b="{escape(c.b)}" '
        f'data-probe="{escape(c.probe)}">'
        f'<td class="status">{_status_text(c)}</td>'
        f'<td class="pair">{escape(pair_label(c))}</td><td>{escape(c.probe)}</td>'
        + _number_cell(c.max_abs_mV) + _number_cell(c.tolerance_mV)
        + _number_cell(c.t_max_abs_ms) + _number_cell(c.a_at_max_mV)
        + _number_cell(c.b_at_max_mV) + _number_cell(c.rms_mV)
        + _number_cell(c.max_rel_range) + _number_cell(c.final_abs_mV)
        + f'<td class="num">{escape(mismatched)}</td>'
        + (_number_cell(c.window_start_ms) if windowed else "")
        + ((_number_cell(c.suggested_tolerance_mV) if state == "fail"
            else '<td class="num"></td>') if suggested else "")
        + "</tr>")


def _comparisons_section(outcome: CheckOutcome) -> str:
    ordered = ordered_comparisons(outcome.comparisons)
    if not ordered:
        return ('<section id="comparisons"><h2>Comparisons</h2>'
                "<p class=note>No comparison could be made.</p></section>")
    windowed = any(c.window_start_ms > 0 for c in ordered)
    failing = len(outcome.failing())
    head = ("<thead><tr><th>result</th><th>pair</th><th>probe</th><th>max |dV| (mV)</th>"
            "<th>tolerance (mV)</th><th>at t (ms)</th><th>a there (mV)</th>"
            "<th>b there (mV)</th><th>RMS (mV)</th><th>max / range</th>"
            "<th>final |dV| (mV)</th><th>mismatched</th>"
            + ("<th>from t (ms)</th>" if windowed else "")
            + ("<th>suggested tolerance (mV)</th>" if failing else "") + "</tr></thead>")

    def table(comparisons: Sequence[Comparison]) -> str:
        rows = "".join(_comparison_row(c, windowed=windowed, suggested=bool(failing))
                       for c in comparisons)
        return (f'<div class="wide"><table class="comparisons">{head}<tbody>{rows}</tbody>'
                "</table></div>")

    listed = ordered[:MAX_TABLE_ROWS]
    inline = listed[:max(INLINE_ROWS, failing)]
    folded = listed[len(inline):]
    text = table(inline)
    if folded:
        text += (f"<details><summary>Show {len(folded)} more comparisons (within tolerance "
                 f"or only reported)</summary>{table(folded)}</details>")
    if len(ordered) > MAX_TABLE_ROWS:
        text += (f"<p class=note>{len(ordered) - MAX_TABLE_ROWS} more comparisons (within "
                 "tolerance or only reported) are in <a href=\"report.json\">report.json</a>."
                 "</p>")
    summary = (f"{len(ordered)} comparisons, {failing} failing; failing first. "
               "Backend pairs (<em>a vs b</em>) are symmetric; <em>a - reference</em> is "
               "one-sided. Tolerance <em>n/a</em>: reported, not gated."
               + (" Samples before <em>from t</em> are ignored." if windowed else ""))
    return (f'<section id="comparisons"><h2>Comparisons</h2><p class=note>{summary}</p>'
            f"{text}</section>")


def _matrix_table(title: str, sources: Sequence[str],
                  lookup: Mapping[frozenset, Comparison], *, probe: str) -> str:
    header = "".join(f'<th scope="col">{escape(name)}</th>' for name in sources)
    rows = []
    for row in sources:
        cells = []
        for column in sources:
            if row == column:
                cells.append('<td class="self">\u2014</td>')
                continue
            comparison = lookup.get(frozenset((row, column)))
            if comparison is None:
                cells.append('<td class="none">n/a</td>')
                continue
            state = _cell_status(comparison)
            tolerance = ("not gated" if comparison.tolerance_mV is None
                         else f"tolerance {format_mV(comparison.tolerance_mV)} mV")
            tip = (f"{pair_label(comparison)} at {comparison.probe}: max |dV| "
                   f"{format_mV(comparison.max_abs_mV)} mV at t = "
                   f"{format_mV(comparison.t_max_abs_ms)} ms; {tolerance}")
            exact = (f' data-value="{comparison.max_abs_mV!r}"'
                     if math.isfinite(comparison.max_abs_mV) else "")
            mark = _MARK[state]
            cells.append(f'<td class="{state}" data-row="{escape(row)}" '
                         f'data-column="{escape(column)}" title="{escape(tip)}"{exact}>'
                         f'{escape(format_mV(comparison.max_abs_mV))}'
                         + (f" {mark}" if mark else "") + "</td>")
        rows.append(f'<tr><th scope="row">{escape(row)}</th>{"".join(cells)}</tr>')
    return (f'<table class="matrix" data-probe="{escape(probe)}"><caption>{title}</caption>'
            f'<thead><tr><th></th>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _matrix_section(outcome: CheckOutcome) -> str:
    sources = sources_of(outcome)
    by_probe: dict[str, dict[frozenset, Comparison]] = {}
    for comparison in outcome.comparisons:
        by_probe.setdefault(comparison.probe, {})[
            frozenset((comparison.a, comparison.b))] = comparison
    probes = [p for p in probes_failing_first(outcome) if p in by_probe]
    if not probes:
        return ""
    tables = []
    if len(probes) > MAX_MATRIX_PROBES:
        worst: dict[frozenset, Comparison] = {}
        for lookup in by_probe.values():
            for key, comparison in lookup.items():
                held = worst.get(key)
                if held is None or _worse(comparison, held):
                    worst[key] = comparison
        tables.append(_matrix_table(f"worst over all {len(probes)} probes", sources, worst,
                                    probe="*"))
    for probe in probes[:MAX_MATRIX_PROBES]:
        tables.append(_matrix_table(f"probe <strong>{escape(probe)}</strong>", sources,
                                    by_probe[probe], probe=probe))
    more = ""
    if len(probes) > MAX_MATRIX_PROBES:
        more = (f"<p class=note>Matrices of {len(probes) - MAX_MATRIX_PROBES} more probes are "
                "left out; every value is in the comparison table and report.json.</p>")
    legend = ('<p class="legend note">Largest |dV| in mV between row and column source. '
              '<span class="fail">\u2717 over tolerance</span>'
              f'<span class="warn">\u2713 within, above {WARN_FRACTION:.0%} of tolerance</span>'
              '<span class="pass">\u2713 within tolerance</span>'
              '<span class="info">reported, not gated</span></p>')
    return (f'<section id="matrix"><h2>Deviation matrix</h2>{legend}'
            f'<div class="matrices">{"".join(tables)}</div>{more}</section>')


def _worse(candidate: Comparison, held: Comparison) -> bool:
    """Whether ``candidate`` should represent its pair in the worst-over-probes matrix."""
    rank = {"fail": 2, "pass": 1, "info": 0}
    if rank[status(candidate)] != rank[status(held)]:
        return rank[status(candidate)] > rank[status(held)]
    return candidate.max_abs_mV > held.max_abs_mV


def _figures_section(figures: Sequence[ReportFigure]) -> str:
    if not figures:
        return ""
    parts = []
    for figure in figures:
        parts.append(
            f'<figure><img src="{data_uri_png(figure.png)}" alt="{escape(figure.title)}">'
            f"<figcaption><strong>{escape(figure.title)}.</strong> {escape(figure.caption)} "
            f'(<a href="{escape(figure.filename)}">{escape(figure.filename)}</a>)'
            "</figcaption></figure>")
    return f'<section id="figures"><h2>Figures</h2>{"".join(parts)}</section>'


def _order_cell(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return '<td class="num">n/a</td>'
    return f'<td class="num" data-value="{value!r}">{value:.2f}</td>'


def _convergence_section(document: Mapping[str, Any] | None,
                         figure: ReportFigure | None) -> str:
    """Figure, fitted orders and per-run errors of a convergence study (its JSON document)."""
    if document is None:
        return ""
    from crosssim.report.convergence import (
        level_rows,
        methods_sentence,
        order_rows,
        space_name,
        summary_sentence,
    )

    parts = [f"<p class=note>{escape(summary_sentence(document))} Time integration: "
             f"{escape(methods_sentence(document))}.</p>"]
    if figure is not None:
        parts.append(
            f'<figure><img src="{data_uri_png(figure.png)}" alt="{escape(figure.title)}">'
            f"<figcaption><strong>{escape(figure.title)}.</strong> {escape(figure.caption)} "
            f'(<a href="{escape(figure.filename)}">{escape(figure.filename)}</a>)'
            "</figcaption></figure>")
    orders = order_rows(document)
    if orders:
        body = []
        for row in orders:
            local = ", ".join("n/a" if v is None else f"{v:.2f}" for v in row.local_orders)
            body.append(
                f'<tr data-backend="{escape(row.backend)}" data-study="{escape(row.study)}">'
                f"<td>{escape(row.backend)}</td><td>{escape(row.study_label)}</td>"
                + _order_cell(row.order_max) + _order_cell(row.order_rms)
                + f'<td class="num">{escape(local)}</td>'
                + ('<td class="floor">floor</td>' if row.floor else "<td>no</td>")
                + _number_cell(row.finest_error_mV) + _number_cell(row.richardson_error_mV)
                + _number_cell(row.estimated_finest_error_mV) + "</tr>")
        parts.append(
            "<h3>Fitted orders</h3>"
            '<div class="wide"><table class="orders"><thead><tr><th>backend</th>'
            "<th>study</th><th>order (max)</th><th>order (RMS)</th><th>local orders</th>"
            "<th>error floor</th><th>finest level error (mV)</th>"
            "<th>Richardson error (mV)</th><th>estimated finest error (mV)</th></tr></thead>"
            f'<tbody>{"".join(body)}</tbody></table></div>'
            '<ul class="note terms"><li><strong>order (max / RMS)</strong>: least-squares '
            "slope of log error on log step over the levels; the error is the largest (or "
            "RMS) deviation from the exact solution, largest over the probes.</li>"
            "<li><strong>local orders</strong>: between successive levels, coarse to fine."
            "</li><li><strong>error floor</strong>: the last local order is below half the "
            "fitted one: the other discretisation (or the sample grid) limits the error; "
            "refine it too.</li><li><strong>Richardson error</strong>: error of the trace "
            "extrapolated from the two finest levels; <strong>estimated finest error</strong>"
            ": |extrapolated - finest|, the estimate one has without an exact solution "
            "(n/a: order below 0.5, not extrapolated).</li></ul>")
    levels = level_rows(document)
    if levels:
        body = []
        for row in levels:
            space = "n/a" if row.space_value is None else f"{row.space_value:g}"
            if row.error is not None:
                tail = (f'<td class="failed" colspan="3">failed: {escape(row.error)}</td>'
                        "<td></td>")
            else:
                tail = (_number_cell(row.max_abs_mV) + _number_cell(row.rms_mV)
                        + f"<td>{escape(row.worst_probe)}</td>"
                        + f"<td>{'cached' if row.cached else ''}</td>")
            body.append(
                f'<tr data-backend="{escape(row.backend)}" data-study="{escape(row.study)}">'
                f"<td>{escape(row.study)}</td><td>{escape(row.backend)}</td>"
                + _number_cell(row.dt_ms) + f'<td class="num">{escape(space)}</td>'
                + _number_cell(row.cv_length_um) + tail + "</tr>")
        table = ('<div class="wide"><table class="levels"><thead><tr><th>study</th>'
                 f"<th>backend</th><th>dt (ms)</th><th>{escape(space_name(document))}</th>"
                 "<th>CV length (um)</th><th>max |error| (mV)</th><th>RMS (mV)</th>"
                 "<th>worst probe</th><th></th></tr></thead>"
                 f'<tbody>{"".join(body)}</tbody></table></div>')
        note = ('<p class=note>Per probe: <a href="convergence.csv">convergence.csv</a> '
                "and the <code>convergence</code> block of "
                '<a href="report.json">report.json</a>.</p>')
        if len(levels) > INLINE_LEVEL_ROWS:
            parts.append(f"<h3>Errors per run</h3><details><summary>Show the {len(levels)} "
                         f"runs of the study</summary>{table}</details>{note}")
        else:
            parts.append(f"<h3>Errors per run</h3>{table}{note}")
    errors = document.get("errors") or []
    if errors:
        items = "".join(f"<li><strong>{escape(e.get('source'))}</strong> failed:"
                        f"<pre>{escape(e.get('reason'))}</pre></li>" for e in errors)
        parts.append(f'<h3>Runs that failed</h3><ul class="errors">{items}</ul>')
    runs = document.get("runs") or {}
    wall = document.get("wall_time_s")
    parts.append(
        f"<p class=note>{escape(runs.get('computed', 0))} run(s) computed, "
        f"{escape(runs.get('cached', 0))} from the results cache"
        + (f", {wall:.1f} s" if isinstance(wall, (int, float)) else "")
        + (f" ({escape(document['executor'])})" if document.get("executor") else "")
        + ".</p>")
    return f'<section id="convergence"><h2>Convergence</h2>{"".join(parts)}</section>'


def _key_value_table(rows: Sequence[tuple[str, Any]], *, css: str = "") -> str:
    body = "".join(f"<tr><th scope=\"row\">{escape(key)}</th><td>{value}</td></tr>"
                   for key, value in rows)
    return f'<table class="{css}"><tbody>{body}</tbody></table>'


def _tolerance_section(outcome: CheckOutcome) -> str:
    tolerance = outcome.model.tolerance

    def shown(value: float | None) -> str:
        return "reported, not gated" if value is None else f"{escape(format_mV(value))} mV"

    rows = [("simulator vs simulator (backends_abs_mV)", shown(tolerance.backends_abs_mV)),
            ("simulator - exact cable (analytic_abs_mV)", shown(tolerance.analytic_abs_mV)),
            ("simulator - lumped (lumped_abs_mV)", shown(tolerance.lumped_abs_mV)),
            ("samples ignored before (window_start_ms)",
             f"{escape(format_mV(tolerance.window_start_ms))} ms")]
    text = _key_value_table(rows, css="tolerances")
    if tolerance.probes:
        head = ("<tr><th>probe</th><th>backends (mV)</th><th>analytic (mV)</th>"
                "<th>lumped (mV)</th></tr>")
        body = "".join(
            f"<tr><td>{escape(name)}</td>" + _number_cell(value.backends_abs_mV)
            + _number_cell(value.analytic_abs_mV) + _number_cell(value.lumped_abs_mV) + "</tr>"
            for name, value in tolerance.probes.items())
        text += (f"<h3>Per-probe overrides</h3><table><thead>{head}</thead>"
                 f"<tbody>{body}</tbody></table>")
    return f'<section id="tolerances"><h2>Tolerances</h2>{text}</section>'


def _short(value: Any) -> str:
    """A detail value for people: floats to 4 significant digits, lists of them likewise."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return str(value)


def _sources_section(outcome: CheckOutcome, environment: Mapping[str, Any]) -> str:
    times = environment.get("wall_time_s") or {}
    rows = []
    for name in sources_of(outcome):
        if name in outcome.results:
            info = outcome.results[name].info
            details = "; ".join(f"{escape(key)}: {escape(_short(value))}"
                                for key, value in info.items())
            state = "ran"
        elif name in outcome.failures:
            details, state = escape(outcome.failures[name]), "<span class=fail>failed</span>"
        else:
            details, state = "", "not run"
        seconds = times.get(name)
        shown = "" if seconds is None else f"{seconds:.3f}"
        rows.append(f"<tr><td>{escape(name)}</td><td>{state}</td>"
                    f'<td class="num">{escape(shown)}</td><td>{details}</td></tr>')
    return ('<section id="sources"><h2>Sources</h2><table><thead><tr><th>source</th>'
            "<th>state</th><th>wall time (s)</th><th>details</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table></section>')


_ENVIRONMENT_LABELS = [
    ("crosssim", "crosssim"), ("neuron", "NEURON"), ("arbor", "Arbor"), ("python", "Python"),
    ("numpy", "numpy"), ("platform", "platform"), ("machine", "machine"),
    ("mod_sha256", "MOD sources sha256"), ("mod_files", "MOD files"),
    ("model_sha256", "model sha256 (resolved TOML)"), ("date_utc", "date (UTC)"),
]


def _environment_section(environment: Mapping[str, Any]) -> str:
    rows = []
    for key, label in _ENVIRONMENT_LABELS:
        value = environment.get(key)
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value)) or None
        shown = "not installed" if value is None and key in ("neuron", "arbor") else value
        rows.append((label, f"<code>{escape(shown if shown is not None else 'n/a')}</code>"))
    times = environment.get("wall_time_s") or {}
    if times:
        rows.append(("wall time per source", escape(
            ", ".join(f"{name} {seconds:.3f} s" for name, seconds in times.items()))))
    return f'<section id="environment"><h2>Environment</h2>{_key_value_table(rows)}</section>'


def _toml_block(text: str, filename: str) -> str:
    note = ""
    if len(text) > MAX_TOML_CHARS:
        text = text[:MAX_TOML_CHARS]
        note = (f"<p class=note>Shortened; the whole model is in "
                f'<a href="{escape(filename)}">{escape(filename)}</a>.</p>')
    return f"<pre>{escape(text)}</pre>{note}"


def _model_section(given_toml: str, resolved_toml: str) -> str:
    return ('<section id="model"><h2>Model</h2><div class="models">'
            '<div><h3>As given (<a href="model.toml">model.toml</a>)</h3>'
            f"{_toml_block(given_toml, 'model.toml')}</div>"
            '<div><h3>As resolved, defaults filled '
            '(<a href="model.resolved.toml">model.resolved.toml</a>)</h3>'
            f"{_toml_block(resolved_toml, 'model.resolved.toml')}</div></div></section>")


def render_html(outcome: CheckOutcome, environment: Mapping[str, Any], *,
                figures: Sequence[ReportFigure] = (), given_toml: str, resolved_toml: str,
                run_id: str = "", files: Sequence[str] = (),
                convergence: Mapping[str, Any] | None = None,
                convergence_figure: ReportFigure | None = None) -> str:
    """The complete report page as one HTML string (UTF-8, no external resources).

    ``convergence`` (a study's JSON document) adds the "Convergence" section, with
    ``convergence_figure`` embedded in it.
    """
    model = outcome.model
    description = (f'<p class="description">{escape(model.description)}</p>'
                   if model.description else "")
    sources = ", ".join(escape(name) for name in sources_of(outcome))
    meta = (f'<p class="meta">{escape(environment.get("date_utc", ""))} &middot; run '
            f"<code>{escape(run_id)}</code> &middot; sources: {sources} &middot; "
            f"{len(model.cells)} cells, {len(model.gap_junctions)} gap junctions, "
            f"t = 0..{escape(format_mV(model.simulation.t_stop_ms))} ms, dt "
            f"{escape(format_mV(model.simulation.dt_ms))} ms</p>")
    links = " &middot; ".join(f'<a href="{escape(name)}">{escape(name)}</a>' for name in files)
    body = "".join([
        f"<header><h1>crosssim report: {escape(model.name)}</h1>{description}{meta}</header>",
        _verdict_section(outcome),
        _errors_section(outcome),
        _comparisons_section(outcome),
        _matrix_section(outcome),
        _figures_section(figures),
        _convergence_section(convergence, convergence_figure),
        _tolerance_section(outcome),
        _sources_section(outcome, environment),
        _environment_section(environment),
        _model_section(given_toml, resolved_toml),
        f"<footer>Files of this run: {links}. "
        '<a href="../../index.html">All runs</a>.</footer>' if files else
        '<footer><a href="../../index.html">All runs</a>.</footer>',
    ])
    title = f"{VERDICT_TEXT[outcome.verdict]} \u2014 crosssim report: {model.name}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>\n")
