"""Text for terminals and assertion messages: numbers, tables, check results, notes.

Everything a command prints about a result is rendered here from the result's data
(:class:`~crosssim.outcome.CheckOutcome`, notes); the library computes, this module formats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from crosssim.check import HEADROOM
from crosssim.compare import suggest_tolerance
from crosssim.suggestions import tolerance_flag, tolerance_key

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.decomposition import Decomposition
    from crosssim.notes import Note
    from crosssim.outcome import CheckOutcome, Comparison, SpikeCheck
    from crosssim.result import RunResult
    from crosssim.suite import SuiteOutcome

__all__ = [
    "failure_message",
    "format_mV",
    "passing_flags",
    "plural",
    "render_decomposition",
    "render_notes",
    "render_sources",
    "render_suite_table",
    "render_table",
    "run_summary",
    "text_table",
    "tolerance_flag",
    "tolerance_key",
]


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 cell``, ``2 cells``, ``1 gap junction`` (``many``: an irregular plural)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def format_mV(value: float | None, digits: int = 4) -> str:
    """A deviation or voltage for people: ``digits`` significant digits, ``n/a`` for
    None/NaN, ``0`` for zero (shared by the terminal table and the reports)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def format_us(value_ms: float | None, missing: str = "") -> str:
    """A time difference given in ms, for people in us to 3 significant digits (spike
    shifts are microseconds); ``missing`` for None."""
    return missing if value_ms is None else f"{value_ms * 1e3:.3g}"


def text_table(rows: Sequence[Sequence[str]], numeric: Iterable[int] = ()) -> list[str]:
    """Rows aligned in columns (the first row is the header, underlined with dashes);
    columns in ``numeric`` are right-aligned.  Trailing blanks are stripped."""
    numeric = set(numeric)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in numeric and k else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * width for width in widths if width))
    return lines


def render_notes(notes: Iterable[Note]) -> list[str]:
    """One line per note (``note: SUBJECT: MESSAGE (fix: ACTION)``)."""
    return [note.text() for note in notes]


def _pair(c: Comparison) -> str:
    return f"{c.a} vs {c.b}"


def failure_message(c: Comparison, decomposition: Iterable[Decomposition] = ()) -> str:
    """numpy.testing-style report of one comparison (meant for failing ones).

    Tolerance first, then mismatched samples, the worst sample (time, both values labelled
    with the source names), the largest absolute and relative difference, where the error
    comes from (from ``decomposition``, when the simulator's was made), the suggested fix
    and its evidence (:mod:`crosssim.suggestions`), and the tolerance that would pass
    (observed maximum x1.5, rounded up to 2 significant figures).
    """
    if c.kind == "backends":
        sides = "symmetric"
    else:
        sides = f"one-sided: {c.b} is the reference"
    window = f", samples from t >= {c.window_start_ms:g} ms" if c.window_start_ms > 0 else ""
    tolerance = "not gated" if c.tolerance_mV is None else f"atol={c.tolerance_mV:g} mV"
    if c.floor_mV is not None and c.tolerance_mV == c.floor_mV:
        tolerance += " (the round-off floor)"
    share = 100.0 * c.n_mismatched / c.n_samples if c.n_samples else 0.0
    suggested = c.suggested_tolerance_mV
    if suggested is None:
        suggested = suggest_tolerance(c.max_abs_mV, HEADROOM)
    lines = [
        f"{_pair(c)} @ {c.probe}: not equal to tolerance {tolerance} ({sides}{window})",
        f"Mismatched samples: {c.n_mismatched} / {c.n_samples} ({share:.3g}%)",
        f"Worst sample: t = {c.t_max_abs_ms:g} ms: {c.a} = {c.a_at_max_mV:.9g} mV, "
        f"{c.b} = {c.b_at_max_mV:.9g} mV",
        f"Max absolute difference: {format_mV(c.max_abs_mV, 6)} mV",
        f"Max relative difference: {format_mV(c.max_rel_diff, 6)}",
    ]
    lines += _cause_lines(c, decomposition)
    fix = c.suggestion
    other_fix = fix is not None and fix.fix != "tolerance"
    if fix is not None and other_fix:
        lines.append(f"Suggested fix ({fix.fix}): {fix.action}")
        lines.append(f"Why: {fix.why}")
    if c.gate is not None and suggested is not None and math.isfinite(suggested):
        label = "Tolerance that would pass instead" if other_fix else "Suggested tolerance"
        lines.append(
            f"{label}: {tolerance_key(c.gate)} = {suggested:g} mV (observed max "
            f"x{HEADROOM:g}, rounded up to 2 significant figures; CLI: "
            f"{tolerance_flag(c.gate, suggested)})")
    if fix is not None and not other_fix:
        lines.append(f"Why a tolerance: {fix.why}")
    return "\n".join(lines)


def _cause_lines(c: Comparison, decomposition: Iterable[Decomposition]) -> list[str]:
    """Where the deviation of a simulator comes from, when its decomposition was made."""
    from crosssim.decomposition import FIXES
    from crosssim.report.document import cause, decomposition_at, part_label
    from crosssim.sources import ANALYTIC

    decomposition = list(decomposition)
    part = cause(c, decomposition)
    if part is None:
        return []
    if c.b != ANALYTIC:
        return [f"Cause: implementation: {c.a} does not compute the recurrence {c.b} solves "
                f"exactly (fix: {FIXES['implementation']})"]
    found = decomposition_at(c, decomposition)
    if found is None:  # pragma: no cover - cause() found it
        return []
    return [f"Error decomposition (largest |part|): implementation "
            f"{format_mV(found.implementation_mV, 3)} mV, time stepping "
            f"{format_mV(found.time_stepping_mV, 3)} mV, space "
            f"{format_mV(found.space_mV, 3)} mV",
            f"Cause: {part_label(part)} dominates (fix: {found.fix})"]


def render_decomposition(decomposition: Sequence[Decomposition], max_rows: int = 40) -> list[str]:
    """The error decomposition as table lines (empty when there is none)."""
    if not decomposition:
        return []
    rows = [("simulator", "probe", "implementation mV", "time stepping mV", "space mV",
             "total mV", "dominant")]
    for part in list(decomposition)[:max_rows]:
        rows.append((part.simulator, part.probe, format_mV(part.implementation_mV, 3),
                     format_mV(part.time_stepping_mV, 3), format_mV(part.space_mV, 3),
                     format_mV(part.total_mV, 3), part.dominant.replace("_", " ")))
    lines = ["", "where the error comes from (simulator - exact = implementation [- discrete] "
             "+ time stepping [discrete - semidiscrete] + space [semidiscrete - exact]):",
             *text_table(rows, numeric={2, 3, 4, 5})]
    if len(decomposition) > max_rows:
        lines.append(f"({max_rows} of {len(decomposition)} shown; all with --format json)")
    return lines


def _verdict_cell(c: Comparison) -> str:
    if c.passed is None:
        return "report"
    return "pass" if c.passed else "FAIL"


def _header(outcome: CheckOutcome) -> str:
    model = outcome.model
    simulation = model.simulation
    cvs = model.discretization.describe()
    window = ""
    starts = {c.window_start_ms for c in outcome.comparisons}
    if any(start > 0 for start in starts):
        window = f", window t >= {max(starts):g} ms"
    return (f"crosssim check: {model.name} ({plural(len(model.cells), 'cell')}, {cvs}, "
            f"dt {simulation.dt_ms:g} ms, {simulation.n_samples} samples/probe to "
            f"{simulation.t_stop_ms:g} ms{window})")


def _severity(c: Comparison) -> float:
    """How bad a comparison is: max deviation over its tolerance (or the deviation itself)."""
    if not math.isfinite(c.max_abs_mV):
        return math.inf
    if c.tolerance_mV:
        return c.max_abs_mV / c.tolerance_mV
    return math.inf if c.tolerance_mV == 0 and c.max_abs_mV > 0 else c.max_abs_mV


def _shown_rows(comparisons: Sequence[Comparison],
                max_rows: int) -> list[tuple[Comparison, str]]:
    """(comparison, probe cell) to show: all of them, or per pair its failing probes and its
    worst one when there are more than ``max_rows``."""
    if len(comparisons) <= max_rows:
        return [(c, c.probe) for c in comparisons]
    by_pair: dict[tuple[str, str], list[Comparison]] = {}
    for c in comparisons:
        by_pair.setdefault((c.a, c.b), []).append(c)
    shown = []
    for group in by_pair.values():
        worst = max(group, key=_severity)
        failing = sorted((c for c in group if c.passed is False and c is not worst),
                         key=_severity, reverse=True)[:3]
        shown.append((worst, f"{worst.probe} (worst of {len(group)})"))
        shown.extend((c, c.probe) for c in failing)
    return shown


def render_table(outcome: CheckOutcome, *, details: bool = True, max_rows: int = 60,
                 max_details: int = 10) -> str:
    """The comparison table for a terminal (plain ASCII), then failure details and errors.

    One row per (pair, probe): max |a-b| and its time, RMS, max / range of the reference
    trace, final |a-b|, the tolerance and the verdict (``report`` when not gated).  With
    more than ``max_rows`` comparisons, each pair shows its worst probe (and up to three
    failing ones); at most ``max_details`` failure messages follow the table.
    """
    floors = any(c.floor_mV is not None for c in outcome.comparisons)
    head = ("pair", "probe", "max|a-b| mV", "at t ms", "rms mV", "max/range",
            "final|a-b| mV", *(("floor mV",) if floors else ()), "tol mV", "verdict")
    rows = [head]
    between_references = [c for c in outcome.comparisons if c.kind == "references"]
    listed = [c for c in outcome.comparisons if c.kind != "references"]
    shown = _shown_rows(listed, max_rows)
    for c, probe in shown:
        # as many digits as the tolerance: a gate raised to the floor shows the same number
        floor = (("-" if c.floor_mV is None else f"{c.floor_mV:.3g}"),) if floors else ()
        rows.append((
            _pair(c), probe, format_mV(c.max_abs_mV, 3), f"{c.t_max_abs_ms:g}",
            format_mV(c.rms_mV, 3),
            format_mV(c.max_rel_range, 2), format_mV(c.final_abs_mV, 3), *floor,
            "-" if c.tolerance_mV is None else f"{c.tolerance_mV:.3g}", _verdict_cell(c)))
    lines = [_header(outcome), *text_table(rows, numeric=range(2, len(head) - 1))]
    if not outcome.comparisons:
        lines.append("(no comparisons: fewer than two sources produced traces)")
    elif len(shown) < len(listed):
        lines.append(f"({len(shown)} of {len(listed)} comparisons shown; "
                     "all of them with --format json)")
    if between_references:
        worst = max(between_references, key=lambda c: c.max_abs_mV)
        lines.append(f"({len(between_references)} reference-vs-reference comparisons, "
                     f"reported only, largest {format_mV(worst.max_abs_mV, 3)} mV "
                     f"({_pair(worst)} @ {worst.probe}); all of them with --format json)")
    lines += render_spikes(outcome.spikes)
    lines += render_decomposition(outcome.decomposition)
    if details:
        failing = sorted(outcome.failing(), key=_severity, reverse=True)  # worst first
        for c in failing[:max_details]:
            lines.append("")
            lines.append(failure_message(c, outcome.decomposition))
        if len(failing) > max_details:
            lines.append("")
            lines.append(f"... and {len(failing) - max_details} more failing comparisons "
                         "(all of them with --format json)")
    if outcome.failures:
        lines.append("")
        for name, reason in sorted(outcome.failures.items()):
            lines.append(f"{name}: FAILED: {reason}")
    if outcome.notes:
        lines.append("")
        lines.extend(render_notes(outcome.notes))
    gated, n_failing, reported = outcome.gate_counts()
    lines.append("")
    summary = {
        "pass": f"PASS: all {gated} gated comparisons within tolerance",
        "fail": f"FAIL: {n_failing} of {gated} gated comparisons exceed tolerance",
        "error": f"ERROR: {len(outcome.failures)} source(s) failed "
                 f"({', '.join(sorted(outcome.failures))}); {n_failing} of {gated} "
                 "gated comparisons exceed tolerance",
    }[outcome.verdict]
    flags = passing_flags(outcome)
    if flags:
        lines.append(f"To pass every comparison: {flags} ({_fix_reasons(outcome)})")
    lines.append(f"{summary} ({reported} reported only)")  # the verdict is the last line
    return "\n".join(lines)


def render_spikes(spikes: Sequence[SpikeCheck], max_rows: int = 40) -> list[str]:
    """The spike table of an active model (empty for passive ones): per pair and probe the
    spike counts, the largest and mean spike-time shift, the voltage deviation away from
    spikes, the verdict; then the message of every failing row."""
    if not spikes:
        return []

    def us(value: float | None) -> str:
        return format_us(value, "-")

    head = ("pair", "probe", "spikes a/b", "max shift us", "mean shift us",
            "away max mV", "tol us", "verdict")
    rows = [head]
    for c in spikes[:max_rows]:
        verdict = "report" if c.passed is None else ("ok" if c.passed else "FAIL")
        rows.append((f"{c.a} vs {c.b}", c.probe, f"{c.count_a}/{c.count_b}",
                     us(c.max_shift_ms), us(c.mean_shift_ms),
                     format_mV(c.subthreshold_max_abs_mV, 3), us(c.time_tolerance_ms),
                     verdict))
    lines = ["", "Spikes (found by crosssim in the sampled traces):",
             *text_table(rows, numeric=range(2, len(head) - 1))]
    if len(spikes) > max_rows:
        lines.append(f"({max_rows} of {len(spikes)} spike comparisons shown; all of them "
                     "with --format json)")
    for c in spikes:
        if c.passed is False:
            lines.append(f"{c.a} vs {c.b} @ {c.probe}: {c.message}")
    return lines


def render_suite_table(suite: SuiteOutcome) -> str:
    """One row per model of a suite (failing first): its verdict, failing / gated
    comparisons and the worst one against its tolerance; the suite's verdict is the last line.
    """
    from crosssim.report.document import pair_label, suite_sentence, worst_comparison

    order = {"error": 0, "fail": 1, "pass": 2}
    rows = [("model", "verdict", "failing", "worst (max |dV| / tolerance, mV)", "source")]
    for result in sorted(suite.results, key=lambda r: order[r.outcome.verdict]):
        outcome = result.outcome
        gated = [c for c in outcome.comparisons if c.passed is not None]
        worst = worst_comparison(outcome)
        shown = ("-" if worst is None else
                 f"{pair_label(worst)} @ {worst.probe}: {format_mV(worst.max_abs_mV, 3)} / "
                 f"{format_mV(worst.tolerance_mV, 3)}")
        verdict = {"pass": "pass", "fail": "FAIL", "error": "ERROR"}[outcome.verdict]
        if outcome.failures:
            shown += f"; failed: {', '.join(sorted(outcome.failures))}"
        rows.append((result.member.label, verdict, f"{len(outcome.failing())} of {len(gated)}",
                     shown, result.member.source))
    word = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}[suite.verdict]
    lines = [f"crosssim check: {len(suite.results)} models", *text_table(rows), "",
             f"{word}: {suite_sentence(suite.counts())}"]
    return "\n".join(lines)


def passing_flags(outcome: CheckOutcome) -> str:
    """Command-line flags that would pass every failing comparison, from their suggested
    fixes: the latest window start, the smallest dt, the most CVs, and for the comparisons
    whose fix is a tolerance the largest suggestion of each gate; '' when nothing fails."""
    import shlex

    window = dt = None
    settings: dict[str, float] = {}
    largest: dict[str, float] = {}
    for c in outcome.failing():
        suggestion = c.suggestion
        if suggestion is None or suggestion.fix == "tolerance":
            suggested = c.suggested_tolerance_mV
            if suggested is None:
                suggested = suggest_tolerance(c.max_abs_mV, HEADROOM)
            if c.gate is not None and suggested is not None and math.isfinite(suggested):
                largest[c.gate] = max(largest.get(c.gate, 0.0), suggested)
            continue
        words = shlex.split(suggestion.action)
        for flag, value in zip(words[::2], words[1::2]):
            if flag == "--window-start":
                window = max(window or 0.0, float(value))
            elif flag == "--set":
                key, _, number = value.partition("=")
                if key == "simulation.dt_ms":
                    dt = min(dt or math.inf, float(number))
                elif key in ("discretization.max_extent_um", "simulation.sample_dt_ms"):
                    settings[key] = min(settings.get(key, math.inf), float(number))
                else:
                    settings[key] = max(settings.get(key, 0.0), float(number))
    flags = [] if window is None else [f"--window-start {window:g}"]
    if dt is not None:
        flags.append(f"--set simulation.dt_ms={dt:g}")
    flags += [f"--set {key}={value:g}" for key, value in sorted(settings.items())]
    flags += [tolerance_flag(gate, value) for gate, value in sorted(largest.items())]
    return " ".join(flags)


def _fix_reasons(outcome: CheckOutcome) -> str:
    """Which fixes the flags of :func:`passing_flags` come from, e.g. ``fixes: cvs, dt``."""
    kinds = sorted({c.suggestion.fix if c.suggestion else "tolerance"
                    for c in outcome.failing()})
    if kinds == ["tolerance"]:
        return f"observed max x{HEADROOM:g} per kind"
    return "suggested fixes: " + ", ".join(kinds) + "; see each failure's 'Why'"


def run_summary(results: Sequence[RunResult], failures: Mapping[str, str],
                reference: RunResult | None = None) -> list[str]:
    """Final value per source and probe, the largest |a - b| between backends, and (with a
    ``reference``, the exact cable solution) the largest |backend - reference|."""
    lines = []
    for result in [*results, *([reference] if reference is not None else [])]:
        finals = ", ".join(f"{probe} {values[-1]:.6f} mV"
                           for probe, values in zip(result.probes, result.values_mV))
        lines.append(f"{result.backend:>8}: final {finals}  ({result.wall_time_s:.3g} s)")
    for name, reason in failures.items():
        lines.append(f"{name:>8}: FAILED: {reason}")
    pairs = [(first, second, second.backend)
             for i, first in enumerate(results) for second in results[i + 1:]]
    if reference is not None:
        pairs += [(result, reference, "exact cable") for result in results]
    for first, second, label in pairs:
        if first.values_mV.shape != second.values_mV.shape:
            continue
        diff = np.abs(first.values_mV - second.values_mV)
        row, col = np.unravel_index(int(np.argmax(diff)), diff.shape)
        gated = "; see 'crosssim check' for the gated comparison" if second is reference else ""
        lines.append(
            f"largest |{first.backend} - {label}| = {diff[row, col]:.3g} mV "
            f"(probe {first.probes[row]}, t = {first.times_ms[col]:g} ms{gated})")
    return lines


def render_sources(rows: Sequence[Mapping[str, object]]) -> str:
    """The table of ``crosssim sources`` (rows of :func:`crosssim.sources.source_table`)."""
    table = [("source", "kind", "installed", "default", "origin", "description")]
    for row in rows:
        installed = "yes" if row["installed"] else f"no ({row['install']})"
        table.append((str(row["name"]), str(row["kind"]), installed,
                      "yes" if row["default"] else "no", str(row["origin"]),
                      str(row["description"])))
    return "\n".join(text_table(table))
