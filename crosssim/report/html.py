"""The report page: one self-contained HTML file (inline CSS, figures as PNG data URIs, no JS).

The page is the Jinja2 template ``templates/report.html.j2`` with its stylesheet
``templates/report.css``, both package files read through :mod:`importlib.resources` when a
page is first rendered (as xarray does for its HTML repr).  This module prepares plain view
data (already formatted strings and numbers); the templates lay it out, with autoescaping on,
so every string from the user or a backend (model name, description, probe and source
names, failure reasons, notes, TOML) is escaped by the template engine.  Numbers shown are
those of ``report.json``, formatted by :func:`crosssim.report.text.format_mV`; each number
cell also carries the exact value in a ``data-value`` attribute.
"""

from __future__ import annotations

import base64
import functools
import importlib.resources
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crosssim.report.document import (
    ReportFigure,
    cause,
    cause_text,
    ordered_comparisons,
    pair_label,
    part_label,
    probes_failing_first,
    raised_to_floor,
    status,
    tolerance_ratio,
    verdict_sentence,
)
from crosssim.report.text import format_mV, format_us, plural, tolerance_key

if TYPE_CHECKING:  # pragma: no cover
    import jinja2
    from markupsafe import Markup

    from crosssim.decomposition import Decomposition
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

#: Package and folder of the templates and the stylesheet.
TEMPLATE_PACKAGE = "crosssim.report"
TEMPLATE_FOLDER = "templates"
STYLESHEET = "report.css"


def _package_text(name: str) -> str | None:
    """The text of package file ``templates/<name>``, None if there is no such file."""
    resource = importlib.resources.files(TEMPLATE_PACKAGE) / TEMPLATE_FOLDER / name
    if not resource.is_file():
        return None
    return resource.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The Jinja2 environment of the report pages: templates from the package files,
    autoescaping on, undefined names an error.  Created on first use, then shared."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_package_text), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


@functools.lru_cache(maxsize=1)
def stylesheet() -> Markup:
    """The pages' CSS (package file ``templates/report.css``), marked safe for its
    ``<style>`` element: CSS is no HTML, entities there would not be decoded."""
    from markupsafe import Markup

    text = _package_text(STYLESHEET)
    if text is None:  # pragma: no cover - a broken installation
        raise FileNotFoundError(f"{TEMPLATE_PACKAGE}/{TEMPLATE_FOLDER}/{STYLESHEET} is missing")
    if "</style" in text.lower():  # pragma: no cover - would end the element early
        raise ValueError(f"{STYLESHEET} must not contain '</style'")
    return Markup(text)


def render_page(template: str, **context: Any) -> str:
    """Template ``template`` of the package rendered with ``context`` and the stylesheet."""
    return template_environment().get_template(template).render(
        stylesheet=stylesheet(), **context)


def data_uri_png(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of ``png``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _number(value: float | None) -> dict[str, str | None]:
    """A number cell: the text people read (:func:`format_mV`) and the exact value
    (``repr``, None when there is none) for ``data-value``."""
    exact = repr(value) if value is not None and math.isfinite(value) else None
    return {"text": format_mV(value), "exact": exact}


def _order(value: float | None) -> dict[str, str | None]:
    """A fitted order cell: two decimals, ``n/a`` when there is none."""
    if value is None or not math.isfinite(value):
        return {"text": "n/a", "exact": None}
    return {"text": f"{value:.2f}", "exact": repr(value)}


_BLANK = {"text": "", "exact": None}


def _figure(figure: ReportFigure) -> dict[str, str]:
    return {"title": figure.title, "caption": figure.caption, "filename": figure.filename,
            "uri": data_uri_png(figure.png)}


def _cell_status(comparison: Comparison) -> str:
    """``fail``, ``warn`` (passes but uses more than WARN_FRACTION), ``pass`` or ``info``."""
    state = status(comparison)
    ratio = tolerance_ratio(comparison)
    if state == "pass" and ratio is not None and ratio > WARN_FRACTION:
        return "warn"
    return state


def source_names(outcome: CheckOutcome) -> list[str]:
    """The sources of the page: those asked for (simulators first), then any other source a
    comparison names (an outcome built without ``kinds``)."""
    names = list(dict.fromkeys(outcome.sources()))
    for comparison in outcome.comparisons:
        for name in (comparison.a, comparison.b):
            if name not in names:
                names.append(name)
    return names


def _references(outcome: CheckOutcome) -> list[str]:
    """The references that ran, in the order asked for, then any other gate a comparison
    names."""
    names = [name for name in outcome.sources("reference") if name in outcome.results]
    for comparison in outcome.comparisons:
        gate = comparison.gate
        if gate not in (None, "backends") and gate not in names:
            names.append(gate)
    return names


def _header(outcome: CheckOutcome, environment: Mapping[str, Any], run_id: str) -> dict:
    model = outcome.model
    return {"name": model.name, "description": model.description,
            "date": str(environment.get("date_utc", "")), "run_id": run_id,
            "sources": source_names(outcome), "n_cells": len(model.cells),
            "n_junctions": len(model.gap_junctions),
            "cells": plural(len(model.cells), "cell"),
            "junctions": plural(len(model.gap_junctions), "gap junction"),
            "t_stop_ms": format_mV(model.simulation.t_stop_ms),
            "dt_ms": format_mV(model.simulation.dt_ms)}


def _verdict(outcome: CheckOutcome) -> dict:
    """The banner: verdict word and sentence, the worst (or closest) comparison, notes."""
    worst = None
    failing = outcome.failing()
    if failing:
        first = ordered_comparisons(failing)[0]
        worst = {"failing": True, "pair": pair_label(first), "probe": first.probe,
                 "max_abs_mV": format_mV(first.max_abs_mV),
                 "tolerance_mV": format_mV(first.tolerance_mV),
                 "suggested_mV": (None if first.suggested_tolerance_mV is None
                                  else format_mV(first.suggested_tolerance_mV)),
                 "suggestion": first.suggestion}
    else:
        gated = [(c, ratio) for c in outcome.comparisons
                 if (ratio := tolerance_ratio(c)) is not None]
        if gated:
            closest = max(gated, key=lambda pair: pair[1])[0]
            worst = {"failing": False, "pair": pair_label(closest), "probe": closest.probe,
                     "max_abs_mV": format_mV(closest.max_abs_mV),
                     "tolerance_mV": format_mV(closest.tolerance_mV)}
    count = len(outcome.notes)
    notes = ("" if not count else "1 note below explains this result." if count == 1
             else f"{count} notes below explain this result.")
    return {"state": outcome.verdict, "word": VERDICT_TEXT[outcome.verdict],
            "sentence": verdict_sentence(outcome), "worst": worst, "notes_sentence": notes}


def _notes(outcome: CheckOutcome) -> list[dict]:
    return [{"kind": note.kind, "subject": note.subject, "message": note.message,
             "action": note.action} for note in outcome.notes]


def _result_text(comparison: Comparison) -> str:
    state = status(comparison)
    if state == "fail":
        return "\u2717 fail"
    if state == "pass":
        return "\u2713 pass"
    return "reported"


def _cause_cell(c: Comparison, decomposition: Sequence[Decomposition]) -> dict[str, str]:
    """For a failing simulator - reference row: the dominant part of the error and its fix."""
    from crosssim.decomposition import FIXES

    part = cause(c, decomposition) if status(c) == "fail" else None
    if part is None:
        return {"text": "", "title": ""}
    return {"text": cause_text(part), "title": f"fix: {FIXES[part]}"}


def _comparison_row(c: Comparison, decomposition: Sequence[Decomposition] = ()) -> dict:
    state = status(c)
    return {
        "state": state, "a": c.a, "b": c.b, "probe": c.probe, "result": _result_text(c),
        "pair": pair_label(c),
        "numbers": [_number(value) for value in (
            c.max_abs_mV, c.tolerance_mV, c.t_max_abs_ms, c.a_at_max_mV, c.b_at_max_mV,
            c.rms_mV, c.max_rel_range, c.final_abs_mV)],
        "mismatched": f"{c.n_mismatched}/{c.n_samples}" if c.passed is not None else "",
        "window_start": _number(c.window_start_ms),
        "suggested": _number(c.suggested_tolerance_mV) if state == "fail" else _BLANK,
        "floor": _BLANK if c.floor_mV is None else _number(c.floor_mV),
        "floor_raised": raised_to_floor(c),
        "cause": _cause_cell(c, decomposition),
    }


def _comparisons(outcome: CheckOutcome) -> dict:
    """The comparison table: failing first, INLINE_ROWS open (or every failing one), the
    rest up to MAX_TABLE_ROWS folded, the count of those left to report.json."""
    ordered = ordered_comparisons(outcome.comparisons)
    failing = len(outcome.failing())
    listed = ordered[:MAX_TABLE_ROWS]
    inline = listed[:max(INLINE_ROWS, failing)]
    parts = outcome.decomposition
    return {"count": len(ordered), "failing": failing,
            "windowed": any(c.window_start_ms > 0 for c in ordered),
            "suggested": bool(failing),
            "floors": any(c.floor_mV is not None for c in ordered),
            "raised": any(raised_to_floor(c) for c in ordered),
            "causes": any(cause(c, parts) is not None for c in outcome.failing()),
            "inline": [_comparison_row(c, parts) for c in inline],
            "folded": [_comparison_row(c, parts) for c in listed[len(inline):]],
            "left_out": max(0, len(ordered) - MAX_TABLE_ROWS)}


def _decomposition_row(part: Decomposition, failing: bool) -> dict:
    from crosssim.decomposition import FIXES, PARTS

    values = {"implementation": part.implementation_mV,
              "time_stepping": part.time_stepping_mV, "space": part.space_mV}
    return {"failing": failing, "simulator": part.simulator,
            "probe": part.probe, "discrete": part.discrete,
            "parts": [{**_number(values[name]), "dominant": name == part.dominant}
                      for name in PARTS],
            "total": _number(part.total_mV), "dominant": part_label(part.dominant),
            "fix": FIXES[part.dominant]}


def _decomposition(outcome: CheckOutcome, figure: ReportFigure | None) -> dict | None:
    """The "Where the error comes from" section: a row per simulator and probe (those whose
    simulator - exact comparison fails first; INLINE_ROWS open, the rest up to
    MAX_TABLE_ROWS folded) and the figure of the parts over time.  None without a
    decomposition."""
    from crosssim.sources import ANALYTIC

    if not outcome.decomposition:
        return None
    failing = {(c.a, c.probe) for c in outcome.failing()
               if c.kind == "reference" and c.b == ANALYTIC}
    ordered = sorted(outcome.decomposition,
                     key=lambda part: (part.simulator, part.probe) not in failing)
    listed = ordered[:MAX_TABLE_ROWS]
    inline = listed[:max(INLINE_ROWS, len(failing))]

    def row(part: Decomposition) -> dict:
        return _decomposition_row(part, (part.simulator, part.probe) in failing)

    window = max((c.window_start_ms for c in outcome.comparisons), default=0.0)
    return {"inline": [row(part) for part in inline],
            "folded": [row(part) for part in listed[len(inline):]],
            "left_out": max(0, len(ordered) - MAX_TABLE_ROWS),
            "window": format_mV(window) if window > 0 else None,
            "figure": None if figure is None else _figure(figure)}


def _worse(candidate: Comparison, held: Comparison) -> bool:
    """Whether ``candidate`` should represent its pair in the worst-over-probes matrix."""
    rank = {"fail": 2, "pass": 1, "info": 0}
    if rank[status(candidate)] != rank[status(held)]:
        return rank[status(candidate)] > rank[status(held)]
    return candidate.max_abs_mV > held.max_abs_mV


def _matrix_cell(comparison: Comparison | None, row: str, column: str) -> dict:
    if row == column:
        return {"state": "self"}
    if comparison is None:
        return {"state": "none"}
    state = _cell_status(comparison)
    tolerance = ("not gated" if comparison.tolerance_mV is None
                 else f"tolerance {format_mV(comparison.tolerance_mV)} mV")
    tip = (f"{pair_label(comparison)} at {comparison.probe}: max |dV| "
           f"{format_mV(comparison.max_abs_mV)} mV at t = "
           f"{format_mV(comparison.t_max_abs_ms)} ms; {tolerance}")
    return {"state": state, "column": column, "tip": tip,
            "value": _number(comparison.max_abs_mV), "mark": _MARK[state]}


def _matrix(sources: Sequence[str], lookup: Mapping[frozenset, Comparison], *, probe: str,
            over_probes: int = 0) -> dict:
    """One matrix: the largest |dV| between each row and column source."""
    rows = [{"source": row,
             "cells": [_matrix_cell(lookup.get(frozenset((row, column))), row, column)
                       for column in sources]}
            for row in sources]
    return {"probe": probe, "over_probes": over_probes, "sources": list(sources),
            "rows": rows}


def _matrices(outcome: CheckOutcome) -> dict | None:
    """A matrix per probe (failing probes first, at most MAX_MATRIX_PROBES), led by the
    worst over all probes when some are left out; None without comparisons."""
    sources = source_names(outcome)
    by_probe: dict[str, dict[frozenset, Comparison]] = {}
    for comparison in outcome.comparisons:
        by_probe.setdefault(comparison.probe, {})[
            frozenset((comparison.a, comparison.b))] = comparison
    probes = [p for p in probes_failing_first(outcome) if p in by_probe]
    if not probes:
        return None
    tables = []
    if len(probes) > MAX_MATRIX_PROBES:
        worst: dict[frozenset, Comparison] = {}
        for lookup in by_probe.values():
            for key, comparison in lookup.items():
                held = worst.get(key)
                if held is None or _worse(comparison, held):
                    worst[key] = comparison
        tables.append(_matrix(sources, worst, probe="*", over_probes=len(probes)))
    tables.extend(_matrix(sources, by_probe[probe], probe=probe)
                  for probe in probes[:MAX_MATRIX_PROBES])
    return {"tables": tables, "left_out": max(0, len(probes) - MAX_MATRIX_PROBES),
            "warn_percent": f"{WARN_FRACTION:.0%}"}


def _convergence(document: Mapping[str, Any] | None,
                 figure: ReportFigure | None) -> dict | None:
    """Figure, fitted orders and per-run errors of a convergence study (its JSON document)."""
    if document is None:
        return None
    from crosssim.report.convergence import (
        is_spike_study,
        level_rows,
        methods_sentence,
        order_rows,
        space_name,
        summary_sentence,
    )

    if is_spike_study(document):
        return _spike_convergence(document, figure)
    orders = [{
        "backend": row.backend, "study": row.study, "study_label": row.study_label,
        "order_max": _order(row.order_max), "order_rms": _order(row.order_rms),
        "local_orders": ", ".join("n/a" if v is None else f"{v:.2f}" for v in row.local_orders),
        "floor": row.floor, "finest_error_mV": _number(row.finest_error_mV),
        "richardson_error_mV": _number(row.richardson_error_mV),
        "estimated_finest_error_mV": _number(row.estimated_finest_error_mV),
    } for row in order_rows(document)]
    levels = [{
        "study": row.study, "backend": row.backend, "dt_ms": _number(row.dt_ms),
        "space_value": "n/a" if row.space_value is None else f"{row.space_value:g}",
        "cv_length_um": _number(row.cv_length_um), "error": row.error,
        "max_abs_mV": _number(row.max_abs_mV), "rms_mV": _number(row.rms_mV),
        "worst_probe": row.worst_probe, "cached": row.cached,
    } for row in level_rows(document)]
    runs = document.get("runs") or {}
    wall = document.get("wall_time_s")
    return {
        "metric": document.get("metric", "voltage_mV"),
        "summary": summary_sentence(document), "methods": methods_sentence(document),
        "figure": None if figure is None else _figure(figure),
        "orders": orders, "levels": levels, "fold_levels": len(levels) > INLINE_LEVEL_ROWS,
        "space_name": space_name(document),
        "errors": [{"source": error.get("source"), "reason": error.get("reason")}
                   for error in document.get("errors") or []],
        "computed": runs.get("computed", 0), "cached": runs.get("cached", 0),
        "wall_time": f"{wall:.1f} s" if isinstance(wall, (int, float)) else None,
        "executor": document.get("executor") or None,
    }


def _spike_convergence(document: Mapping[str, Any], figure: ReportFigure | None) -> dict:
    """The "Convergence" section of a spike-time study (active models), errors in ms."""
    from crosssim.report.convergence import (
        SPIKE_METRIC,
        methods_sentence,
        space_name,
        spike_level_rows,
        spike_order_rows,
        spike_summary_sentence,
    )

    orders = [{
        "backend": row.backend, "study": row.study, "study_label": row.study_label,
        "order_max": _order(row.order_max), "order_mean": _order(row.order_mean),
        "local_orders": ", ".join("n/a" if v is None else f"{v:.2f}" for v in row.local_orders),
        "floor": row.floor, "finest_error_ms": _number(row.finest_error_ms),
        "reference": row.reference, "reference_note": row.reference_note,
        "excluded": row.excluded,
    } for row in spike_order_rows(document)]
    levels = [{
        "study": row.study, "backend": row.backend, "dt_ms": _number(row.dt_ms),
        "space_value": "n/a" if row.space_value is None else f"{row.space_value:g}",
        "cv_length_um": _number(row.cv_length_um), "error": row.error,
        "spikes": "" if row.spikes is None else str(row.spikes),
        "reference_spikes": "" if row.reference_spikes is None else str(row.reference_spikes),
        "max_error_ms": _number(row.max_error_ms), "mean_error_ms": _number(row.mean_error_ms),
        "worst_probe": row.worst_probe, "excluded": row.excluded, "cached": row.cached,
    } for row in spike_level_rows(document)]
    runs = document.get("runs") or {}
    wall = document.get("wall_time_s")
    return {
        "metric": SPIKE_METRIC,
        "summary": spike_summary_sentence(document), "methods": methods_sentence(document),
        "figure": None if figure is None else _figure(figure),
        "orders": orders, "levels": levels, "fold_levels": len(levels) > INLINE_LEVEL_ROWS,
        "space_name": space_name(document), "notes": list(document.get("notes") or []),
        "errors": [{"source": error.get("source"), "reason": error.get("reason")}
                   for error in document.get("errors") or []],
        "computed": runs.get("computed", 0), "cached": runs.get("cached", 0),
        "wall_time": f"{wall:.1f} s" if isinstance(wall, (int, float)) else None,
        "executor": document.get("executor") or None,
    }


def _tolerances(outcome: CheckOutcome) -> dict:
    """The model-wide tolerance of every gate that applies (simulator pairs and each
    reference that ran), the window, and the per-probe overrides."""
    tolerance = outcome.model.tolerance
    references = _references(outcome)

    def shown(value: float | None) -> str:
        return "reported, not gated" if value is None else f"{format_mV(value)} mV"

    rows = [{"label": "simulator vs simulator (backends_abs_mV)",
             "value": shown(tolerance.for_source("backends"))}]
    rows += [{"label": f"simulator - {name} ({tolerance_key(name)})",
              "value": shown(tolerance.for_source(name))} for name in references]
    rows.append({"label": "samples ignored before (window_start_ms)",
                 "value": f"{format_mV(tolerance.window_start_ms)} ms"})
    gates = ["backends", *references]
    probes = [{"name": name,
               "cells": [_number(override.for_source(gate)) for gate in gates]}
              for name, override in tolerance.probes.items()]
    return {"rows": rows, "gates": gates, "probes": probes}


def _short(value: Any) -> str:
    """A detail value for people: floats to 4 significant digits, lists of them likewise."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return str(value)


def _sources(outcome: CheckOutcome, environment: Mapping[str, Any]) -> list[dict]:
    """A row per source: its kind, whether it ran, its wall time and what it reports."""
    times = environment.get("wall_time_s") or {}
    rows = []
    for name in source_names(outcome):
        if name in outcome.results:
            details = "; ".join(f"{key}: {_short(value)}"
                                for key, value in outcome.results[name].info.items())
            state = "ran"
        elif name in outcome.failures:
            details, state = outcome.failures[name], "failed"
        else:
            details, state = "", "not run"
        seconds = times.get(name)
        rows.append({"name": name, "kind": outcome.kinds.get(name, ""), "state": state,
                     "wall_time_s": "" if seconds is None else f"{seconds:.3f}",
                     "details": details})
    return rows


_ENVIRONMENT_LABELS = [
    ("crosssim", "crosssim"), ("neuron", "NEURON"), ("arbor", "Arbor"), ("python", "Python"),
    ("numpy", "numpy"), ("platform", "platform"), ("machine", "machine"),
    ("mod_sha256", "MOD sources sha256"), ("mod_files", "MOD files"),
    ("model_sha256", "model sha256 (resolved TOML)"), ("date_utc", "date (UTC)"),
]


def _environment(environment: Mapping[str, Any]) -> list[dict]:
    rows = []
    for key, label in _ENVIRONMENT_LABELS:
        value = environment.get(key)
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value)) or None
        if value is None:
            value = "not installed" if key in ("neuron", "arbor") else "n/a"
        rows.append({"label": label, "value": str(value), "code": True})
    times = environment.get("wall_time_s") or {}
    if times:
        rows.append({"label": "wall time per source", "code": False,
                     "value": ", ".join(f"{name} {seconds:.3f} s"
                                        for name, seconds in times.items())})
    return rows


def _spikes(outcome: CheckOutcome, figure: ReportFigure | None) -> dict | None:
    """The section "Spikes": one row per pair and probe, then the raster."""
    if not outcome.spikes:
        return None
    rows = [{"pair": f"{c.a} vs {c.b}", "probe": c.probe,
             "counts": f"{c.count_a} / {c.count_b}", "max_shift_us": format_us(c.max_shift_ms),
             "mean_shift_us": format_us(c.mean_shift_ms),
             "latency": ("" if c.latency_a_ms is None or c.latency_b_ms is None
                         else f"{c.latency_a_ms:.4f} / {c.latency_b_ms:.4f}"),
             "isi_us": format_us(c.max_isi_difference_ms),
             "away_mV": format_mV(c.subthreshold_max_abs_mV),
             "tolerance_us": format_us(c.time_tolerance_ms),
             "state": "report" if c.passed is None else ("pass" if c.passed else "fail"),
             "message": c.message} for c in outcome.spikes]
    return {"rows": rows, "figure": None if figure is None else _figure(figure)}


def _model_block(heading: str, filename: str, text: str) -> dict:
    return {"heading": heading, "filename": filename, "text": text[:MAX_TOML_CHARS],
            "shortened": len(text) > MAX_TOML_CHARS}


def render_html(outcome: CheckOutcome, environment: Mapping[str, Any], *,
                figures: Sequence[ReportFigure] = (), given_toml: str, resolved_toml: str,
                run_id: str = "", files: Sequence[str] = (),
                convergence: Mapping[str, Any] | None = None,
                convergence_figure: ReportFigure | None = None,
                decomposition_figure: ReportFigure | None = None,
                morphology_figure: ReportFigure | None = None,
                spike_figure: ReportFigure | None = None) -> str:
    """The complete report page as one HTML string (UTF-8, no external resources).

    ``convergence`` (a study's JSON document) adds the "Convergence" section, with
    ``convergence_figure`` embedded in it.  An outcome with a decomposition gets the
    section "Where the error comes from", with ``decomposition_figure`` embedded in it.
    ``morphology_figure`` (the cells' dendrograms) adds the section "Morphology"; an
    active model's spike comparisons add the section "Spikes" with ``spike_figure``.
    """
    return render_page(
        "report.html.j2",
        header=_header(outcome, environment, run_id),
        verdict=_verdict(outcome),
        notes=_notes(outcome),
        failures=[{"source": name, "reason": reason}
                  for name, reason in sorted(outcome.failures.items())],
        comparisons=_comparisons(outcome),
        matrices=_matrices(outcome),
        decomposition=_decomposition(outcome, decomposition_figure),
        spikes=_spikes(outcome, spike_figure),
        figures=[_figure(figure) for figure in figures],
        morphology=None if morphology_figure is None else _figure(morphology_figure),
        convergence=_convergence(convergence, convergence_figure),
        tolerances=_tolerances(outcome),
        sources=_sources(outcome, environment),
        environment=_environment(environment),
        models=[_model_block("As given", "model.toml", given_toml),
                _model_block("As resolved, defaults filled", "model.resolved.toml",
                             resolved_toml)],
        files=list(files),
    )
