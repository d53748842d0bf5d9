"""A parameter sweep for people: the terminal summary and the heatmap.

Both are drawn from :meth:`crosssim.study.sweeps.SweepResult.to_frame`, the table written
as ``sweep.csv``, so what is shown is what is stored.  matplotlib is imported only when the
heatmap is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crosssim.errors import UsageError
from crosssim.report.text import text_table
from crosssim.study.sweeps import param_cell, value_text

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.study.sweeps import SweepResult

__all__ = ["default_heatmap_metric", "plot_sweep_heatmap", "render_text"]


def default_heatmap_metric(result: SweepResult) -> str:
    """``worst_backends_mV`` when two simulators ran, else ``worst_analytic_mV``, else
    ``worst_ratio``."""
    frame = result.to_frame()
    for column in ("worst_backends_mV", "worst_analytic_mV", "worst_ratio"):
        if column in frame and frame[column].notna().any():
            return column
    return "worst_ratio"


def plot_sweep_heatmap(result: SweepResult, path: Path, *, metric: str | None = None,
                       axes_params: Sequence[str] | None = None, dpi: int = 110) -> Path:
    """Heatmap of ``metric`` (default :func:`default_heatmap_metric`) over two swept
    parameters (default the first two; the largest value over any others), log colour scale.

    Cells of failing points are outlined and marked FAIL; errored points are marked ERROR.
    With one swept parameter the map has one row.  Saves a PNG at ``path`` atomically.
    """
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure

    from crosssim.report.figures import _save_png

    frame = result.to_frame()
    metric = metric or default_heatmap_metric(result)
    if metric not in frame:
        raise UsageError(f"heatmap metric {metric!r} is not a column; numeric columns: "
                         + ", ".join(c for c in frame.columns if c.startswith("worst_")))
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
    rank = {"": 0, "pass": 1, "fail": 2, "error": 3}
    for _, row in frame.iterrows():
        i = y_values.index(row[y_path]) if y_path else 0
        j = x_values.index(row[x_path])
        value = float(row[metric]) if row[metric] is not None else math.nan
        if math.isfinite(value) and not (value <= grid[i, j]):
            grid[i, j] = value
        if rank[row["verdict"]] > rank[status[i, j]]:
            status[i, j] = row["verdict"]
    finite = grid[np.isfinite(grid)]
    positive = finite[finite > 0]
    if positive.size and positive.min() < positive.max():
        norm = LogNorm(vmin=positive.min(), vmax=positive.max())
        shown = np.where(grid > 0, grid, np.nan)
    else:
        norm = Normalize(vmin=finite.min() if finite.size else 0.0,
                         vmax=finite.max() if finite.size else 1.0)
        shown = grid
    figure = Figure(figsize=(max(4.8, 1.0 + 0.9 * len(x_values)),
                             max(3.0, 1.4 + 0.6 * len(y_values))), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(shown), origin="lower", aspect="auto",
                        cmap="viridis", norm=norm)
    figure.colorbar(image, ax=axes, label=_metric_label(metric))
    axes.set_xticks(range(len(x_values)), [value_text(v) for v in x_values])
    axes.set_xlabel(x_path)
    if y_path:
        axes.set_yticks(range(len(y_values)), [value_text(v) for v in y_values])
        axes.set_ylabel(y_path)
    else:
        axes.set_yticks([])
    annotate = grid.size <= 144
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            text = ""
            if status[i, j] == "error":
                text = "ERROR" if not math.isfinite(grid[i, j]) else f"{grid[i, j]:.2g}\nERROR"
            elif annotate and math.isfinite(grid[i, j]):
                text = f"{grid[i, j]:.2g}" + ("\nFAIL" if status[i, j] == "fail" else "")
            elif status[i, j] == "fail":
                text = "FAIL"
            if status[i, j] in ("fail", "error"):
                axes.add_patch(_cell_outline(j, i, "red" if status[i, j] == "fail" else "black"))
            if text:
                axes.text(j, i, text, ha="center", va="center", fontsize=7, color="white",
                          bbox={"facecolor": "black", "alpha": 0.35, "pad": 1,
                                "edgecolor": "none"})
    others = [p for p in paths if p not in chosen]
    title = f"{result.model.name}: {_metric_label(metric)}"
    if (status == "fail").any() or (status == "error").any():
        title += "\n(outlined: the point fails a tolerance (red) or errored (black))"
    if others:
        title += "\n(largest over " + ", ".join(others) + ")"
    axes.set_title(title, fontsize=10)
    return _save_png(figure, path, dpi)


def _cell_outline(x: float, y: float, colour: str):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor=colour, linewidth=2)


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
    frame = result.to_frame()
    paths = [d.path for d in result.dimensions]
    lines = [f"crosssim sweep: {result.model.name}, {len(result.points)} points over "
             + " x ".join(f"{d.path} ({len(d.values)})" for d in result.dimensions)
             + f"; sources {', '.join(result.sources)}"]
    head = ["point", *[p.rsplit(".", 1)[-1] if _unique_tail(paths, p) else p for p in paths],
            "verdict", "dev/tol", "worst pair", "max|a-b| sim mV", "max|sim-exact| mV"]
    rows = [head]
    chosen = list(range(len(result.points)))
    if len(chosen) > max_rows:
        ratios = frame["worst_ratio"].fillna(-1.0).to_numpy()
        bad = [i for i, p in enumerate(result.points) if p.verdict != "pass"]
        worst = [int(i) for i in np.argsort(-ratios)]
        chosen = sorted(set(bad[:max_rows]) | set(worst[:max(0, max_rows - len(bad))]))
    for i in chosen:
        point, row = result.points[i], frame.iloc[i]
        rows.append([str(point.index), *[value_text(point.params[p]) for p in paths],
                     point.verdict.upper() if point.verdict != "pass" else "pass",
                     _g(row["worst_ratio"]), str(row["worst_pair"] or "-"),
                     _g(row["worst_backends_mV"]), _g(row["worst_analytic_mV"])])
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
    worst = result.worst_point()
    summary = (f"{counts['pass']} pass, {counts['fail']} fail, {counts['error']} error "
               f"of {len(result.points)} points")
    if worst is not None:
        row = frame.iloc[worst.index]
        summary += (f"; worst: point {worst.index} ({row['worst_pair']}, "
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
