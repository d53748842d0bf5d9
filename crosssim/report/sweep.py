"""A parameter sweep for people: the terminal summary and the heatmap.

Both are drawn from :meth:`crosssim.study.sweeps.SweepResult.table`, the table written as
``sweep.csv``, so what is shown is what is stored.  The heatmap is computed here as plain
data and drawn by :mod:`crosssim.report.raster` (Pillow, no matplotlib).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crosssim.errors import UsageError
from crosssim.report.raster import HeatmapFigure, save_heatmap_png
from crosssim.report.text import text_table
from crosssim.study.sweeps import param_cell, value_text

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.study.sweeps import SweepResult

__all__ = ["cell_number", "default_heatmap_metric", "heatmap_data", "plot_sweep_heatmap",
           "render_text"]

#: Largest heatmap in inches: a cell gets 0.9 x 0.6 in up to this size, less beyond it (a
#: 1,000-point sweep was a 900-inch, 99,000-pixel-wide image).
MAX_WIDTH_IN = 16.0
MAX_HEIGHT_IN = 12.0
#: Most labelled ticks per heatmap axis (beyond it every k-th value is labelled).
MAX_TICK_LABELS = 24


def default_heatmap_metric(result: SweepResult) -> str:
    """``worst_backends_mV`` when two simulators ran, else ``worst_analytic_mV``, else
    ``worst_ratio``."""
    columns, rows = result.table()
    for column in ("worst_backends_mV", "worst_analytic_mV", "worst_ratio"):
        if column in columns and any(not math.isnan(row[column]) for row in rows):
            return column
    return "worst_ratio"


def heatmap_data(result: SweepResult, *, metric: str | None = None,
                 axes_params: Sequence[str] | None = None) -> HeatmapFigure:
    """The heatmap of ``metric`` (default :func:`default_heatmap_metric`) over two swept
    parameters (default the first two; the largest value over any others), as plain data
    for :func:`~crosssim.report.raster.render_heatmap`: failing cells outlined and marked
    FAIL (only where the quantity shown fails; a point failing another gate gets a dashed
    outline naming it), errored ones ERROR.  UsageError for a metric that is not a column
    or an axis that was not swept."""
    columns, rows = result.table()
    metric = metric or default_heatmap_metric(result)
    if metric not in columns:
        raise UsageError(f"heatmap metric {metric!r} is not a column; numeric columns: "
                         + ", ".join(c for c in columns if c.startswith("worst_")))
    paths = [d.path for d in result.dimensions]
    chosen = list(axes_params or paths[:2])
    for name in chosen:
        if name not in paths:
            raise UsageError(f"heatmap axis {name!r} is not a swept parameter; swept: "
                             + ", ".join(paths))
    x_path = chosen[0]
    y_path = chosen[1] if len(chosen) > 1 else None
    x_values = [param_cell(v) for v in next(d for d in result.dimensions
                                             if d.path == x_path).values]
    y_values = ([param_cell(v) for v in next(d for d in result.dimensions
                                              if d.path == y_path).values]
                if y_path else [None])
    grid = np.full((len(y_values), len(x_values)), np.nan)
    status = np.full(grid.shape, "", dtype=object)
    # "fail" marks a cell only when what it shows fails; a point that fails another gate
    # is "other" (dashed outline, the failing gates named), never FAIL under its number
    rank = {"": 0, "pass": 1, "other": 2, "fail": 3, "error": 4}
    others_failing: dict[tuple[int, int], set[str]] = {}
    points = {point.index: point for point in result.points}
    # the grid positions of the values by lookup
    column_of = _positions(x_values)
    row_of = _positions(y_values)
    for row in rows:
        number, verdict, index = row[metric], row["verdict"], row["point"]
        i = row_of[row[y_path]] if y_path else 0
        j = column_of[row[x_path]]
        value = float(number) if number is not None else math.nan
        if math.isfinite(value) and not (value <= grid[i, j]):
            grid[i, j] = value
        if verdict == "fail":
            fails_shown, other = _failing_for(points.get(index), metric)
            verdict = "fail" if fails_shown else "other"
            others_failing.setdefault((i, j), set()).update(other)
        if rank[verdict] > rank[status[i, j]]:
            status[i, j] = verdict
    others = [p for p in paths if p not in chosen]
    title = f"{result.model.name}: {_metric_label(metric)}"
    if (status == "fail").any() or (status == "error").any():
        title += "\n(outlined: this quantity fails its tolerance (red) or errored (black))"
    if (status == "other").any():
        title += "\n(dashed orange: within tolerance here, the point fails another gate)"
    if others:
        title += "\n(largest over " + ", ".join(others) + ")"
    texts, outlines = _cell_marks(grid, status, others_failing, metric)
    return HeatmapFigure(
        grid=grid, texts=texts, outlines=outlines, x_label=x_path, y_label=y_path,
        x_ticks=_ticks(x_values), y_ticks=_ticks(y_values) if y_path else None,
        colour_label=_metric_label(metric), title=title,
        size_in=(max(4.8, min(MAX_WIDTH_IN, 1.0 + 0.9 * len(x_values))),
                 max(3.0, min(MAX_HEIGHT_IN, 1.4 + 0.6 * len(y_values)))))


def _cell_marks(grid: np.ndarray, status: np.ndarray,
                others_failing: dict[tuple[int, int], set[str]], metric: str,
                ) -> tuple[list[list[str]], list[tuple[int, int, str, bool]]]:
    """Each cell's text (numbers only up to 144 cells) and the outlines ``(column, row,
    colour, dashed)`` of failing, errored and otherwise failing cells."""
    annotate = grid.size <= 144
    texts = [["" for _ in range(grid.shape[1])] for _ in range(grid.shape[0])]
    outlines = []
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            text = ""
            failing = status[i, j] == "fail"
            number = cell_number(grid[i, j], metric, failing)
            if status[i, j] == "error":
                text = "ERROR" if not math.isfinite(grid[i, j]) else f"{number}\nERROR"
            elif annotate and math.isfinite(grid[i, j]):
                text = number + ("\nFAIL" if failing else "")
                if status[i, j] == "other":
                    text += "\nfails " + ", ".join(sorted(others_failing.get((i, j), ())))
            elif failing:
                text = "FAIL"
            if status[i, j] in ("fail", "error", "other"):
                outlines.append((j, i, {"fail": "red", "error": "black",
                                        "other": "orange"}[status[i, j]],
                                 status[i, j] == "other"))
            texts[i][j] = text
    return texts, outlines


def plot_sweep_heatmap(result: SweepResult, path: Path, *, metric: str | None = None,
                       axes_params: Sequence[str] | None = None, dpi: int = 110) -> Path:
    """Heatmap of ``metric`` over two swept parameters (see :func:`heatmap_data`), log
    colour scale; with one swept parameter the map has one row.  Saves a PNG at ``path``
    atomically."""
    return save_heatmap_png(heatmap_data(result, metric=metric, axes_params=axes_params),
                            path, dpi=dpi)


def _positions(values: Sequence[Any]) -> dict[Any, int]:
    """Each value's first position in ``values`` (what ``values.index`` finds)."""
    positions: dict[Any, int] = {}
    for position, value in enumerate(values):
        positions.setdefault(value, position)
    return positions


def _ticks(values: Sequence[Any]) -> tuple[list[int], list[str]]:
    """Tick positions and labels of a heatmap axis: every value, or every k-th one (the first
    and then evenly spaced) when there are more than :data:`MAX_TICK_LABELS`."""
    step = max(1, math.ceil(len(values) / MAX_TICK_LABELS))
    positions = list(range(0, len(values), step))
    return positions, [value_text(values[i]) for i in positions]


def _failing_for(point: Any, metric: str) -> tuple[bool, set[str]]:
    """Whether the failing ``point`` fails in the quantity ``metric`` shows, and the gates
    it fails (``backends``, a reference's name) otherwise."""
    if point is None or point.outcome is None:
        return True, set()
    failing = [c for c in point.outcome.comparisons if c.passed is False]
    gates = {c.gate or "references" for c in failing}
    if metric.startswith("worst_") and metric.endswith("_mV"):
        gate = metric.removeprefix("worst_").removesuffix("_mV")
        return gate in gates, gates - {gate}
    if ":" in metric:
        pair, probe = metric.split(":")[:2]
        shown = any(f"{c.a}-{c.b}" == pair and c.probe == probe for c in failing)
        return shown, gates
    return True, set()  # worst_ratio, n_failing: every gated comparison counts


def cell_number(value: float, metric: str, failing: bool) -> str:
    """A heatmap cell's number: 2 significant digits; 3 for a ratio to the tolerance, and
    more when needed so that a failing ratio never reads as 1 (1.018 -> '1.02', not '1')."""
    if not math.isfinite(value):
        return ""
    if metric != "worst_ratio":
        return f"{value:.2g}"
    digits = 3
    text = f"{value:.{digits}g}"
    while failing and float(text) <= 1 < value and digits < 8:
        digits += 1
        text = f"{value:.{digits}g}"
    return text


def _metric_label(metric: str) -> str:
    labels = {
        "worst_backends_mV": "largest |simulator - simulator| (mV)",
        "worst_analytic_mV": "largest |simulator - exact cable| (mV)",
        "worst_lumped_mV": "largest |simulator - lumped| (mV)",
        "worst_references_mV": "largest |exact cable - lumped| (mV)",
        "worst_ratio": "largest deviation / tolerance",
    }
    return labels.get(metric, metric)


def render_text(result: SweepResult, *, max_rows: int = 40) -> str:
    """The summary for a terminal: one line per point (or the worst ones), then counts."""
    table = result.table()[1]
    paths = [d.path for d in result.dimensions]
    lines = [f"crosssim sweep: {result.model.name}, {len(result.points)} points over "
             + " x ".join(f"{d.path} ({len(d.values)})" for d in result.dimensions)
             + f"; sources {', '.join(result.sources)}"]
    head = ["point", *[p.rsplit(".", 1)[-1] if _unique_tail(paths, p) else p for p in paths],
            "verdict", "dev/tol", "worst pair", "max|a-b| sim mV", "max|sim-exact| mV"]
    rows = [head]
    chosen = list(range(len(result.points)))
    if len(chosen) > max_rows:
        ratios = np.nan_to_num([row["worst_ratio"] for row in table], nan=-1.0)
        bad = [i for i, p in enumerate(result.points) if p.verdict != "pass"]
        worst = [int(i) for i in np.argsort(-ratios)]
        chosen = sorted(set(bad[:max_rows]) | set(worst[:max(0, max_rows - len(bad))]))
    for i in chosen:
        point, row = result.points[i], table[i]
        rows.append([str(point.index), *[value_text(point.params[p]) for p in paths],
                     point.verdict.upper() if point.verdict != "pass" else "pass",
                     _g(row["worst_ratio"]), str(row["worst_pair"] or "-"),
                     _g(row["worst_backends_mV"]), _g(row.get("worst_analytic_mV"))])
    lines += text_table(rows)
    if len(chosen) < len(result.points):
        lines.append(f"({len(result.points) - len(chosen)} passing points not shown; "
                     "see sweep.csv)")
    errored = [p for p in result.points if p.verdict == "error"]
    if errored:
        lines.append("")
        for point in errored[:10]:
            lines.append(f"point {point.index}: ERROR: {point.reason}")
        if len(errored) > 10:
            lines.append(f"... and {len(errored) - 10} more errored points (see sweep.csv)")
    counts = result.counts()
    lines.append("")
    worst_point = result.worst_point()
    summary = (f"{counts['pass']} pass, {counts['fail']} fail, {counts['error']} error "
               f"of {len(result.points)} points")
    if worst_point is not None:
        row = table[worst_point.index]
        summary += (f"; worst: point {worst_point.index} ({row['worst_pair']}, "
                    f"{_g(row['worst_ratio'])} x its tolerance)")
    lines.append(summary)
    lines.append(f"{result.computed + result.cached} runs: {result.computed} computed "
                 f"({result.failed_runs} failed), {result.cached} from the cache; "
                 f"{result.executor}; {result.wall_time_s:.1f} s")
    return "\n".join(lines)


def _unique_tail(paths: Sequence[str], path: str) -> bool:
    tail = path.rsplit(".", 1)[-1]
    return sum(1 for p in paths if p.rsplit(".", 1)[-1] == tail) == 1


def _g(value: Any) -> str:
    """A table number: 3 significant digits, ``-`` when missing or not finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(number):
        return "-"
    return f"{number:.3g}"
