"""``check``: run the backends and the references, compare every pair, gate on tolerances.

Sources are the simulator backends (``arbor``, ``neuron``) and two references: the exact
cable solution (``analytic``) and the isopotential solution (``lumped``).  Every pair is
compared at every probe; which tolerance gates a pair depends on its kind:

=====================  ==================  =====================================
pair                   kind                tolerance (mV)
=====================  ==================  =====================================
backend vs backend     ``backends``        ``backends_abs_mV`` (symmetric)
backend vs analytic    ``analytic``        ``analytic_abs_mV`` (analytic is truth)
backend vs lumped      ``lumped``          ``lumped_abs_mV`` (None: report only)
analytic vs lumped     ``references``      never gated (report only)
=====================  ==================  =====================================

Per-probe values in ``model.tolerance.probes`` override the model-wide ones; a tolerance
passed to :func:`check` overrides both, for every probe.  A source that is missing, crashes
or returns NaN becomes ``outcome.failures[name]`` (verdict ``error``), never a pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from crosssim.compare import AlignmentError, compare_results, infer_grid, suggest_tolerance
from crosssim.errors import BackendError, CrossSimError, UsageError, raise_if_interrupted
from crosssim.outcome import (
    ANALYTIC,
    LUMPED,
    CheckOutcome,
    Comparison,
    PairKind,
    format_mV,
)

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.result import RunResult
    from crosssim.model import Model

__all__ = [
    "CHECK_DOCUMENT_SCHEMA",
    "HEADROOM",
    "REFERENCES",
    "check",
    "failure_message",
    "pair_kind",
    "probe_tolerance",
    "render_table",
    "run_source",
    "source_pairs",
]

#: The reference sources, in the order they are run and compared.
REFERENCES: tuple[str, ...] = (ANALYTIC, LUMPED)

#: Headroom of a suggested tolerance over the observed maximum deviation.
HEADROOM = 1.5

#: Tolerance keyword of each gated pair kind (as in ``[tolerance]`` and the CLI flags).
_TOLERANCE_KEY: dict[str, str] = {
    "backends": "backends_abs_mV",
    "analytic": "analytic_abs_mV",
    "lumped": "lumped_abs_mV",
}
_FLAG = {"backends": "--tolerance-backends", "analytic": "--tolerance-analytic",
         "lumped": "--tolerance-lumped"}


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()

Runner = Callable[[str, "Model"], "RunResult"]


def pair_kind(a: str, b: str) -> PairKind:
    """The kind of the pair (a, b): ``backends``, ``analytic``, ``lumped`` or ``references``."""
    a_ref, b_ref = a in REFERENCES, b in REFERENCES
    if a_ref and b_ref:
        return "references"
    if not a_ref and not b_ref:
        return "backends"
    return ANALYTIC if ANALYTIC in (a, b) else LUMPED  # type: ignore[return-value]


def source_pairs(names: Iterable[str]) -> list[tuple[str, str, PairKind]]:
    """Every unordered pair of ``names``: backends first (in the given order), references
    after, so a backend is always ``a`` and a reference ``b``."""
    names = list(dict.fromkeys(names))
    ordered = [n for n in names if n not in REFERENCES] + [n for n in REFERENCES if n in names]
    return [(a, b, pair_kind(a, b)) for i, a in enumerate(ordered) for b in ordered[i + 1:]]


def probe_tolerance(model: Model, kind: PairKind, probe: str,
                    overrides: dict[str, float | None] | None = None) -> float | None:
    """The tolerance in mV that gates ``kind`` at ``probe`` (None: report only).

    Order: ``overrides`` (from :func:`check` or the command line, for every probe), then
    ``model.tolerance.probes[probe]``, then the model-wide value.  ``references`` is never
    gated.
    """
    if kind == "references":
        return None
    key = _TOLERANCE_KEY[kind]
    if overrides and key in overrides:
        return overrides[key]
    per_probe = model.tolerance.probes.get(probe)
    if per_probe is not None and getattr(per_probe, key) is not None:
        return getattr(per_probe, key)
    return getattr(model.tolerance, key)


def run_source(name: str, model: Model) -> RunResult:
    """Run one source: a registered backend, or the ``analytic``/``lumped`` reference."""
    if name in (ANALYTIC, LUMPED):
        import numpy as np

        from crosssim.analytic import exact_cable, lumped

        # Extreme models overflow to inf/NaN; that is recorded as this source's failure by
        # _validate, so numpy's RuntimeWarnings would only add noise on stderr.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return (exact_cable if name == ANALYTIC else lumped)(model)
    from crosssim.backends.base import run_backend

    return run_backend(name, model)


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


def _run_all(model: Model, names: Sequence[str], runner: Runner,
             progress: Any) -> tuple[dict[str, RunResult], dict[str, str], dict[str, float]]:
    results: dict[str, RunResult] = {}
    failures: dict[str, str] = {}
    wall: dict[str, float] = {}
    for name in names:
        if progress is not None:
            progress.start(name)
        started = time.perf_counter()
        try:
            result = runner(name, model)
            _validate(result, name, model)
        except BackendError as exc:
            raise_if_interrupted(exc)
            reason = exc.message
        except CrossSimError:
            raise  # invalid model / usage / resource limit: not a source failure
        except Exception as exc:  # noqa: BLE001 - a crashing source must never pass
            raise_if_interrupted(exc)  # Ctrl-C wrapped by a C extension stops the check
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        else:
            reason = None
        wall[name] = time.perf_counter() - started
        if reason is not None:
            failures[name] = reason
            if progress is not None:
                progress.finish(name, f"FAILED ({reason})")
            continue
        results[name] = result
        if progress is not None:
            progress.finish(name)
    return results, failures, wall


def check(model: Model, *, backends: Sequence[str] | None = None,
          references: Sequence[str] = REFERENCES,
          backends_abs_mV: float | None = UNSET, analytic_abs_mV: float | None = UNSET,
          lumped_abs_mV: float | None = UNSET, window_start_ms: float | None = None,
          interpolate: bool = False, runner: Runner | None = None,
          progress: Any = None) -> CheckOutcome:
    """Run ``backends`` (default: every registered one) and ``references`` on ``model``,
    compare all pairs at every probe and gate them (see the module docstring).

    Tolerances in mV given here replace the model's for every probe (None: report only);
    ``window_start_ms`` replaces ``model.tolerance.window_start_ms``.  ``runner(name, model)``
    returns a RunResult (default :func:`run_source`; tests inject synthetic sources).
    ``progress`` has ``start(label)``/``finish(label, outcome)`` (e.g. commands' Progress).
    """
    from crosssim.backends.base import known_backends

    backend_names = list(known_backends() if backends is None else backends)
    for name in references:
        if name not in REFERENCES:
            raise UsageError(f"unknown reference {name!r}; known: {', '.join(REFERENCES)}")
    overrides: dict[str, float | None] = {}
    for key, value in (("backends_abs_mV", backends_abs_mV),
                       ("analytic_abs_mV", analytic_abs_mV),
                       ("lumped_abs_mV", lumped_abs_mV)):
        if value is UNSET:
            continue
        if value is not None and not (isinstance(value, (int, float)) and value >= 0
                                      and math.isfinite(value)):
            raise UsageError(f"{key}: tolerance must be a finite number >= 0 or None, "
                             f"got {value!r}")
        overrides[key] = None if value is None else float(value)
    window = model.tolerance.window_start_ms if window_start_ms is None else window_start_ms
    if not (isinstance(window, (int, float)) and 0 <= window <= model.simulation.t_stop_ms):
        raise UsageError(f"window start {window!r} ms: allowed 0 <= start <= t_stop_ms "
                         f"({model.simulation.t_stop_ms:g})")

    names = list(dict.fromkeys([*backend_names, *references]))
    results, failures, wall = _run_all(model, names, runner or run_source, progress)

    labels = [probe.label for probe in model.effective_probes()]
    comparisons: list[Comparison] = []
    for a, b, kind in source_pairs(names):
        if a not in results or b not in results:
            continue
        tolerances = [probe_tolerance(model, kind, label, overrides) for label in labels]
        try:
            comparisons.extend(compare_results(
                results[a], results[b], kind=kind, tolerance_mV=tolerances, probes=labels,
                window_start_ms=float(window), start_ms=0.0,
                stop_ms=model.simulation.t_stop_ms, interpolate=interpolate))
        except AlignmentError as exc:
            failures[f"{a} vs {b}"] = str(exc)
    return CheckOutcome(model=model, results=results, failures=failures,
                        comparisons=comparisons, wall_time_s=wall)


# Messages and the text table ----------------------------------------------------------------


def _pair(c: Comparison) -> str:
    return f"{c.a} vs {c.b}"


def failure_message(c: Comparison) -> str:
    """numpy.testing-style report of one comparison (meant for failing ones).

    Tolerance first, then mismatched samples, the worst sample (time, both values labelled
    with the source names), the largest absolute and relative difference, and a suggested
    tolerance (observed maximum x1.5, rounded up to 2 significant figures).
    """
    if c.kind == "backends":
        sides = "symmetric"
    else:
        sides = f"one-sided: {c.b} is the reference"
    window = f", samples from t >= {c.window_start_ms:g} ms" if c.window_start_ms > 0 else ""
    tolerance = "not gated" if c.tolerance_mV is None else f"atol={c.tolerance_mV:g} mV"
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
    if c.kind in _TOLERANCE_KEY and suggested is not None and math.isfinite(suggested):
        key = _TOLERANCE_KEY[c.kind]
        lines.append(
            f"Suggested tolerance: {key} = {suggested:g} mV (observed max x{HEADROOM:g}, "
            f"rounded up to 2 significant figures; CLI: {_FLAG[c.kind]} {suggested:g})")
    return "\n".join(lines)


def _verdict_cell(c: Comparison) -> str:
    if c.passed is None:
        return "report"
    return "pass" if c.passed else "FAIL"


def _header(outcome: CheckOutcome) -> str:
    model = outcome.model
    simulation = model.simulation
    discretization = model.discretization
    if discretization.cvs_per_cell is not None:
        cvs = f"{discretization.cvs_per_cell} CV/cell"
    else:
        cvs = f"CVs <= {discretization.max_extent_um:g} um"
    window = ""
    starts = {c.window_start_ms for c in outcome.comparisons}
    if any(start > 0 for start in starts):
        window = f", window t >= {max(starts):g} ms"
    return (f"crosssim check: {model.name} ({len(model.cells)} cells, {cvs}, "
            f"dt {simulation.dt_ms:g} ms, {simulation.n_samples} samples/probe to "
            f"{simulation.t_stop_ms:g} ms{window})")


def _severity(c: Comparison) -> float:
    """How bad a comparison is: max deviation over its tolerance (or the deviation itself)."""
    if not math.isfinite(c.max_abs_mV):
        return math.inf
    if c.tolerance_mV:
        return c.max_abs_mV / c.tolerance_mV
    return math.inf if c.tolerance_mV == 0 and c.max_abs_mV > 0 else c.max_abs_mV


def _shown_rows(outcome: CheckOutcome, max_rows: int) -> list[tuple[Comparison, str]]:
    """(comparison, probe cell) to show: all of them, or per pair its failing probes and its
    worst one when there are more than ``max_rows``."""
    comparisons = outcome.comparisons
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
    head = ("pair", "probe", "max|a-b| mV", "at t ms", "rms mV", "max/range",
            "final|a-b| mV", "tol mV", "verdict")
    rows = [head]
    shown = _shown_rows(outcome, max_rows)
    for c, probe in shown:
        rows.append((
            _pair(c), probe, format_mV(c.max_abs_mV, 3), f"{c.t_max_abs_ms:g}",
            format_mV(c.rms_mV, 3),
            format_mV(c.max_rel_range, 2), format_mV(c.final_abs_mV, 3),
            "-" if c.tolerance_mV is None else f"{c.tolerance_mV:g}", _verdict_cell(c)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    numeric = {2, 3, 4, 5, 6, 7}
    lines = [_header(outcome)]
    for k, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in numeric and k else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * width for width in widths))
    if not outcome.comparisons:
        lines.append("(no comparisons: fewer than two sources produced traces)")
    elif len(shown) < len(outcome.comparisons):
        lines.append(f"({len(shown)} of {len(outcome.comparisons)} comparisons shown; "
                     "all of them with --format json)")
    if details:
        failing = sorted(outcome.failing(), key=_severity, reverse=True)  # worst first
        for c in failing[:max_details]:
            lines.append("")
            lines.append(failure_message(c))
        if len(failing) > max_details:
            lines.append("")
            lines.append(f"... and {len(failing) - max_details} more failing comparisons "
                         "(all of them with --format json)")
    if outcome.failures:
        lines.append("")
        for name, reason in sorted(outcome.failures.items()):
            lines.append(f"{name}: FAILED: {reason}")
    gated = [c for c in outcome.comparisons if c.passed is not None]
    failing = outcome.failing()
    lines.append("")
    summary = {
        "pass": f"PASS: all {len(gated)} gated comparisons within tolerance",
        "fail": f"FAIL: {len(failing)} of {len(gated)} gated comparisons exceed tolerance",
        "error": f"ERROR: {len(outcome.failures)} source(s) failed "
                 f"({', '.join(sorted(outcome.failures))}); {len(failing)} of {len(gated)} "
                 "gated comparisons exceed tolerance",
    }[outcome.verdict]
    reported = len(outcome.comparisons) - len(gated)
    flags = passing_flags(outcome)
    if flags:
        lines.append(f"To pass every comparison: {flags} (observed max x{HEADROOM:g} per kind)")
    lines.append(f"{summary} ({reported} reported only)")  # the verdict is the last line
    return "\n".join(lines)


def passing_flags(outcome: CheckOutcome) -> str:
    """Command-line tolerance flags that would pass every failing comparison (the largest
    suggestion of each kind), or '' when nothing fails."""
    largest: dict[str, float] = {}
    for c in outcome.failing():
        suggested = c.suggested_tolerance_mV
        if suggested is None:
            suggested = suggest_tolerance(c.max_abs_mV, HEADROOM)
        if c.kind in _FLAG and suggested is not None and math.isfinite(suggested):
            largest[c.kind] = max(largest.get(c.kind, 0.0), suggested)
    return " ".join(f"{_FLAG[kind]} {value:g}" for kind, value in sorted(largest.items()))


# The JSON document ---------------------------------------------------------------------------

_NUMBER_OR_NULL = {"type": ["number", "null"]}

#: JSON Schema (draft 2020-12) of ``CheckOutcome.to_document()`` as printed by
#: ``crosssim check --format json`` and written to ``check.json``.
CHECK_DOCUMENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "crosssim check document",
    "type": "object",
    "required": ["model", "verdict", "comparisons", "errors", "wall_time_s"],
    "properties": {
        "model": {"type": "string"},
        "verdict": {"enum": ["pass", "fail", "error"]},
        "comparisons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["a", "b", "probe", "kind", "max_abs_mV", "t_max_abs_ms",
                             "a_at_max_mV", "b_at_max_mV", "rms_mV", "max_rel_range",
                             "rms_rel_range", "final_abs_mV", "n_samples", "n_mismatched",
                             "tolerance_mV", "passed", "window_start_ms"],
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": "string"},
                    "probe": {"type": "string"},
                    "kind": {"enum": ["backends", "analytic", "lumped", "references"]},
                    "max_abs_mV": _NUMBER_OR_NULL,
                    "t_max_abs_ms": _NUMBER_OR_NULL,
                    "a_at_max_mV": _NUMBER_OR_NULL,
                    "b_at_max_mV": _NUMBER_OR_NULL,
                    "rms_mV": _NUMBER_OR_NULL,
                    "max_rel_range": _NUMBER_OR_NULL,
                    "rms_rel_range": _NUMBER_OR_NULL,
                    "max_rel_diff": _NUMBER_OR_NULL,
                    "final_abs_mV": _NUMBER_OR_NULL,
                    "n_samples": {"type": "integer", "minimum": 1},
                    "n_mismatched": {"type": "integer", "minimum": 0},
                    "tolerance_mV": _NUMBER_OR_NULL,
                    "suggested_tolerance_mV": _NUMBER_OR_NULL,
                    "passed": {"type": ["boolean", "null"]},
                    "window_start_ms": {"type": "number", "minimum": 0},
                    "alignment": {"enum": ["exact", "interpolated"]},
                },
            },
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "reason"],
                "properties": {"source": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "wall_time_s": {"type": "object", "additionalProperties": {"type": "number"}},
    },
}
