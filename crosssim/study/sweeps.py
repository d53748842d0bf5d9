"""Parameter sweeps: a full ``check`` at every point of a Cartesian grid of model fields.

A grid dimension is ``PATH=VALUES`` with ``PATH`` any model field as in ``--set``
(``gap_junctions.0.g_uS``, ``cells.b.length_um``, ``discretization.cvs_per_cell``) and
``VALUES`` one of

* a list: ``0.001,0.01,0.1`` (each item a TOML value: numbers, ``true``, ``"text"``,
  ``[0.25, 0.75]``);
* a linear range ``START:STOP:COUNT`` (both ends included; whole numbers stay whole when
  every value is whole, so ``1:9:5`` gives 1, 3, 5, 7, 9);
* a logarithmic range ``log:START:STOP:COUNT`` (``log:1e-3:1e-1:3`` gives 0.001, 0.01, 0.1).

Every (point, source) run is one task of :func:`crosssim.study.executors.run_tasks` (so the
whole sweep fills every worker and the cache answers what was computed before); the
comparison of each point is :func:`crosssim.check.check` on those results, so a sweep row
holds the same numbers as a direct ``check`` of that point.  A point whose overrides make an
invalid model, or whose source fails, is recorded with its reason; the sweep goes on.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from crosssim.errors import (
    EXIT_BACKEND,
    EXIT_DEVIATION,
    EXIT_OK,
    BackendError,
    InvalidModelError,
    UsageError,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from crosssim.model import Model
    from crosssim.outcome import CheckOutcome
    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import Executor, TaskProgress

__all__ = [
    "GridDimension",
    "SweepPoint",
    "SweepResult",
    "grid_points",
    "parse_grid",
    "param_cell",
    "parse_grid_values",
    "sweep",
    "validate_grid",
    "value_text",
]

#: Largest number of points a sweep may have (a typo like 1:100:100000 fails fast).
MAX_POINTS = 100_000
#: Per-comparison metrics copied into the sweep table.
COMPARISON_METRICS = ("max_abs_mV", "t_max_abs_ms", "rms_mV", "final_abs_mV", "tolerance_mV",
                      "passed")


@dataclass(frozen=True)
class GridDimension:
    """One swept field: its dotted path and its values, in order."""

    path: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        return self.path


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--grid {spec}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"--grid {spec}: {text!r} is not a finite number")
    return value


def _count(text: str, spec: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise UsageError(f"--grid {spec}: the count {text!r} is not a whole number") from None
    if count < 1:
        raise UsageError(f"--grid {spec}: the count must be >= 1 (got {count})")
    return count


def _is_whole_literal(text: str) -> bool:
    text = text.strip().lstrip("+-")
    return text.isdigit()


def _neat(value: float) -> float:
    """``value`` rounded to 12 significant digits (0.30000000000000004 -> 0.3)."""
    return float(f"{value:.12g}")


def _split_items(text: str) -> list[str]:
    """Split on commas outside brackets and quotes."""
    items, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items]


def parse_grid_values(text: str, *, spec: str | None = None) -> tuple[Any, ...]:
    """The values of one grid dimension from ``VALUES`` (list, ``a:b:n`` or ``log:a:b:n``)."""
    from crosssim.model import parse_override

    spec = spec or text
    text = text.strip()
    if not text:
        raise UsageError(f"--grid {spec}: no values after '='")
    parts = text.split(":")
    if parts[0].strip().lower() == "log":
        if len(parts) != 4:
            raise UsageError(f"--grid {spec}: a log range is log:START:STOP:COUNT")
        start, stop = _number(parts[1], spec), _number(parts[2], spec)
        count = _count(parts[3], spec)
        if start <= 0 or stop <= 0:
            raise UsageError(f"--grid {spec}: a log range needs START and STOP > 0")
        values = np.geomspace(start, stop, count) if count > 1 else np.array([start])
        return tuple(_neat(float(v)) for v in values)
    if len(parts) == 3 and "[" not in text and '"' not in text:
        start, stop = _number(parts[0], spec), _number(parts[1], spec)
        count = _count(parts[2], spec)
        values = np.linspace(start, stop, count) if count > 1 else np.array([start])
        whole = _is_whole_literal(parts[0]) and _is_whole_literal(parts[1])
        if whole and all(float(v).is_integer() for v in values):
            return tuple(int(v) for v in values)
        return tuple(_neat(float(v)) for v in values)
    if len(parts) > 1 and "[" not in text and '"' not in text:
        raise UsageError(f"--grid {spec}: a range is START:STOP:COUNT or log:START:STOP:COUNT")
    items: list[Any] = []
    for item in _split_items(text):
        if not item:
            raise UsageError(f"--grid {spec}: empty value in the list")
        _, value = parse_override(f"v={item}")
        items.append(value)
    return tuple(items)


def parse_grid(specs: Sequence[str]) -> list[GridDimension]:
    """Parse ``--grid PATH=VALUES`` options (UsageError for a bad spec or a repeated path)."""
    if not specs:
        raise UsageError("give at least one --grid PATH=VALUES, e.g. "
                         "--grid gap_junctions.0.g_uS=0.001,0.01,0.1")
    dimensions: list[GridDimension] = []
    seen: set[str] = set()
    for spec in specs:
        if "=" not in spec:
            raise UsageError(f"--grid {spec!r}: expected PATH=VALUES, e.g. "
                             "cells.b.length_um=50,100,200 or cells.b.length_um=50:200:4")
        path, _, text = spec.partition("=")
        path = path.strip()
        if not path or any(not part for part in path.split(".")):
            raise UsageError(f"--grid {spec!r}: empty path")
        if path in seen:
            raise UsageError(f"--grid {spec!r}: {path} is swept twice")
        seen.add(path)
        values = parse_grid_values(text, spec=spec)
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise UsageError(f"--grid {spec!r}: a value is repeated")
        dimensions.append(GridDimension(path=path, values=values))
    total = math.prod(len(d.values) for d in dimensions)
    if total > MAX_POINTS:
        raise UsageError(f"--grid: {total} points is more than {MAX_POINTS}")
    return dimensions


def validate_grid(model: Model, dimensions: Sequence[GridDimension]) -> None:
    """UsageError when a path does not name a field of ``model`` (a typo, not a bad value)."""
    from crosssim.model import path_problem

    for dimension in dimensions:
        problem = path_problem(model, dimension.path)
        if problem:
            raise UsageError(f"--grid {dimension.path}: {problem}")


def grid_points(dimensions: Sequence[GridDimension]) -> list[dict[str, Any]]:
    """The Cartesian product as ``{path: value}`` dicts, the last dimension varying fastest."""
    return [dict(zip((d.path for d in dimensions), combo))
            for combo in itertools.product(*(d.values for d in dimensions))]


@dataclass
class SweepPoint:
    """One grid point: its parameters, its check (None if the model was invalid), errors."""

    index: int
    params: dict[str, Any]
    outcome: CheckOutcome | None = None
    error: str | None = None
    cached_runs: int = 0

    @property
    def verdict(self) -> str:
        if self.outcome is None:
            return "error"
        return self.outcome.verdict

    @property
    def reason(self) -> str | None:
        """Why the point errored (invalid model, failed sources), or None."""
        if self.error:
            return self.error
        if self.outcome is not None and self.outcome.failures:
            return "; ".join(f"{name}: {reason}"
                             for name, reason in sorted(self.outcome.failures.items()))
        return None


@dataclass
class SweepResult:
    """All points of a sweep, the run counts and the table."""

    model: Model
    dimensions: list[GridDimension]
    sources: list[str]
    points: list[SweepPoint]
    computed: int
    cached: int
    failed_runs: int
    wall_time_s: float
    executor: str = ""
    #: The sources among ``sources`` that are references.
    references: list[str] = field(default_factory=list)
    _table: Any = field(default=None, repr=False)
    _frame: Any = field(default=None, repr=False)

    def gates(self) -> list[str]:
        """What the ``worst_<gate>_mV`` columns are per: simulator pairs (``backends``),
        each reference, and reference pairs (``references``)."""
        return ["backends", *self.references, "references"]

    def counts(self) -> dict[str, int]:
        """Points per verdict: ``{"pass": .., "fail": .., "error": ..}``."""
        counts = {"pass": 0, "fail": 0, "error": 0}
        for point in self.points:
            counts[point.verdict] += 1
        return counts

    @property
    def exit_code(self) -> int:
        """3 if any point errored, else 1 if any failed its tolerance, else 0."""
        counts = self.counts()
        if counts["error"]:
            return EXIT_BACKEND
        if counts["fail"]:
            return EXIT_DEVIATION
        return EXIT_OK

    def table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """``(columns, rows)``: one row per point (a dict with every column): parameters,
        verdict, error, worst values, per-comparison metrics ``<a>-<b>:<probe>:<metric>``
        (mV, ms).  Missing numbers are NaN, a missing ``:passed`` is None.  What
        ``sweep.csv`` and ``sweep.parquet`` hold, without pandas (0.5 s to import)."""
        if self._table is None:
            self._table = _table(self)
        return self._table

    def column_types(self) -> dict[str, str]:
        """The typed columns of :meth:`table`: ``bool`` (``:passed``, None where the
        comparison is missing), ``float64`` (mV, ms, ratios), ``int64`` (counts)."""
        types = {column: _column_type(column) for column in self.table()[0]}
        return {column: kind for column, kind in types.items() if kind is not None}

    def to_frame(self) -> pd.DataFrame:
        """:meth:`table` as a DataFrame (``:passed`` columns nullable booleans)."""
        if self._frame is None:
            import pandas as pd

            columns, rows = self.table()
            frame = pd.DataFrame(rows, columns=columns)
            for column in columns:
                if column.endswith(":passed"):
                    frame[column] = frame[column].astype("boolean")
            self._frame = frame
        return self._frame

    def worst_point(self) -> SweepPoint | None:
        """The point with the largest ``worst_ratio`` (deviation / tolerance)."""
        ratios = [row["worst_ratio"] for row in self.table()[1]]
        finite = [i for i, ratio in enumerate(ratios) if not math.isnan(ratio)]
        if finite:
            return self.points[max(finite, key=lambda i: ratios[i])]
        return None


def param_cell(value: Any) -> Any:
    """A parameter value as a table cell (lists and tables become JSON text)."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def _table(result: SweepResult) -> tuple[list[str], list[dict[str, Any]]]:
    rows = []
    for point in result.points:
        row: dict[str, Any] = {"point": point.index}
        for path, value in point.params.items():
            row[path] = param_cell(value)
        row["verdict"] = point.verdict
        row["error"] = point.reason
        worst: dict[str, float] = {}
        worst_ratio, worst_pair = math.nan, None
        n_failing = 0
        if point.outcome is not None:
            for c in point.outcome.comparisons:
                key = f"worst_{c.gate or 'references'}_mV"
                if math.isfinite(c.max_abs_mV):
                    worst[key] = max(worst.get(key, -math.inf), c.max_abs_mV)
                if c.tolerance_mV is not None and math.isfinite(c.max_abs_mV):
                    ratio = (c.max_abs_mV / c.tolerance_mV if c.tolerance_mV > 0 else
                             (0.0 if c.max_abs_mV == 0 else math.inf))
                    if not (ratio <= worst_ratio):
                        worst_ratio, worst_pair = ratio, f"{c.a} vs {c.b} @ {c.probe}"
                if c.passed is False:
                    n_failing += 1
        row["n_failing"] = n_failing
        row["worst_ratio"] = worst_ratio
        row["worst_pair"] = worst_pair
        for gate in result.gates():
            row[f"worst_{gate}_mV"] = worst.get(f"worst_{gate}_mV", math.nan)
        row["notes"] = ("; ".join(note.text() for note in point.outcome.notes)
                        if point.outcome is not None else "")
        if point.outcome is not None:
            for c in point.outcome.comparisons:
                prefix = f"{c.a}-{c.b}:{c.probe}"
                for metric in COMPARISON_METRICS:
                    row[f"{prefix}:{metric}"] = getattr(c, metric)
        row["cached_runs"] = point.cached_runs
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))  # first-seen order
    kinds = {column: _column_type(column) for column in columns}
    for row in rows:
        for column in columns:
            value = row.get(column)
            if kinds[column] == "bool":
                row[column] = None if value is None else bool(value)
            elif kinds[column] == "float64":
                row[column] = math.nan if value is None else float(value)
            else:
                row[column] = value
    return columns, rows


def _column_type(column: str) -> str | None:
    """The type of a sweep-table column: ``bool`` (``:passed``), ``float64`` (mV, ms, the
    ratio), ``int64`` (counts), None (parameters and text: as the values come)."""
    if column.endswith(":passed"):
        return "bool"
    if column.endswith(("_mV", "_ms")) or column == "worst_ratio":
        return "float64"
    if column in ("point", "n_failing", "cached_runs"):
        return "int64"
    return None


def sweep(model: Model, dimensions: Sequence[GridDimension], *,
          backends: Sequence[str] | None = None, references: Sequence[str] | None = None,
          executor: Executor | None = None, cache: ResultsCache | None = None,
          progress: TaskProgress | None = None, check_options: Mapping[str, Any] | None = None
          ) -> SweepResult:
    """Run a full check at every point of the grid ``dimensions`` over ``model``.

    ``backends`` and ``references`` default to the installed default sources (see
    :func:`crosssim.check.select_sources`); ``check_options`` go to
    :func:`crosssim.check.check` (tolerances, window).
    Raises UsageError for a path that names no model field; everything else (invalid
    parameter combinations, failing sources) is recorded per point.
    """
    from crosssim.check import check, select_sources
    from crosssim.model import apply_overrides
    from crosssim.study.executors import SourceTask, run_tasks

    started = time.perf_counter()
    dimensions = list(dimensions)
    validate_grid(model, dimensions)
    kinds, left_out = select_sources(backends, references, model)
    sources = list(kinds)
    names = [name for name in sources if kinds[name] == "simulator"]
    refs = [name for name in sources if kinds[name] != "simulator"]

    points: list[SweepPoint] = []
    point_models: dict[int, Model] = {}
    tasks: list[SourceTask] = []
    for index, params in enumerate(grid_points(dimensions)):
        point = SweepPoint(index=index, params=params)
        points.append(point)
        try:
            point_model = apply_overrides(model, list(params.items()),
                                          source=f"<sweep point {index}>")
        except InvalidModelError as exc:
            point.error = f"invalid model: {exc.one_line()}"
            continue
        point_models[index] = point_model
        label = ", ".join(f"{path.rsplit('.', 1)[-1]}={value_text(value)}"
                          for path, value in params.items())
        for source in sources:
            tasks.append(SourceTask(source, point_model, label=f"point {index} ({label}) {source}"))
    run = run_tasks(tasks, executor=executor, cache=cache, progress=progress)
    by_point: dict[int, dict[str, Any]] = {}
    task_iter = iter(run.outcomes)
    for index in point_models:
        by_point[index] = {source: next(task_iter) for source in sources}

    options = dict(check_options or {})
    for index, point_model in point_models.items():
        outcomes = by_point[index]

        def runner(name: str, _model: Model, _outcomes=outcomes):
            outcome = _outcomes[name]
            if outcome.result is None:
                raise BackendError(name, outcome.error or "failed")
            return outcome.result

        point = points[index]
        point.cached_runs = sum(1 for outcome in outcomes.values() if outcome.cached)
        point.outcome = check(point_model, backends=names, references=refs, runner=runner,
                              extra_notes=left_out, **options)
        point.outcome.wall_time_s = {name: (outcome.result.wall_time_s if outcome.result
                                            is not None else math.nan)
                                     for name, outcome in outcomes.items()}
    executor_text = getattr(executor, "description", "") if executor is not None else "local"
    return SweepResult(model=model, dimensions=dimensions, sources=sources, points=points,
                       computed=run.computed, cached=run.cached, failed_runs=run.failed,
                       wall_time_s=time.perf_counter() - started, executor=executor_text,
                       references=refs)


def value_text(value: Any) -> str:
    """A swept value for people: floats in ``%g`` form, anything else as ``str``."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
