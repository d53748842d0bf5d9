"""``reports/index.html``: every run under a reports folder (model, date, verdict) with links.

Runs are found by their ``<model>/<run id>/report.json``; folders whose name starts with a
dot (reports being written) are ignored, so the index only lists complete runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crosssim.report.html import CSS, VERDICT_TEXT, escape

INDEX_NAME = "index.html"


@dataclass(frozen=True)
class RunEntry:
    """One report folder: where it is and what its report.json says."""

    model: str
    run_id: str
    folder: str  # relative to the reports root, POSIX separators
    date_utc: str
    verdict: str
    n_comparisons: int
    n_failing: int
    worst_mV: float | None
    failed_sources: tuple[str, ...]


def _entry(root: Path, document_path: Path) -> RunEntry | None:
    try:
        document: dict[str, Any] = json.loads(document_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or "verdict" not in document:
        return None
    comparisons = [c for c in document.get("comparisons") or [] if isinstance(c, dict)]
    deviations = [c.get("max_abs_mV") for c in comparisons
                  if isinstance(c.get("max_abs_mV"), (int, float))]
    folder = document_path.parent
    return RunEntry(
        model=str(document.get("model", folder.parent.name)),
        run_id=folder.name,
        folder=folder.relative_to(root).as_posix(),
        date_utc=str((document.get("environment") or {}).get("date_utc", "")),
        verdict=str(document["verdict"]),
        n_comparisons=len(comparisons),
        n_failing=sum(c.get("passed") is False for c in comparisons),
        worst_mV=max(deviations) if deviations else None,
        failed_sources=tuple(str(e.get("source")) for e in document.get("errors") or []
                             if isinstance(e, dict)),
    )


def collect_runs(root: Path) -> list[RunEntry]:
    """Every complete run under ``root``, newest first (run ids sort by time)."""
    root = Path(root)
    runs = []
    for document_path in root.glob("*/*/report.json"):
        if any(part.startswith(".") for part in document_path.relative_to(root).parts):
            continue
        entry = _entry(root, document_path)
        if entry is not None:
            runs.append(entry)
    return sorted(runs, key=lambda run: (run.date_utc, run.run_id), reverse=True)


def _verdict_cell(verdict: str) -> str:
    css = verdict if verdict in VERDICT_TEXT else "error"
    return (f'<td class="run-verdict {css}">'
            f"{escape(VERDICT_TEXT.get(verdict, verdict.upper()))}</td>")


def _row(run: RunEntry) -> str:
    link = escape(run.folder)
    worst = ("n/a" if run.worst_mV is None or not math.isfinite(run.worst_mV)
             else f"{run.worst_mV:.4g}")
    failed = (f" (failed: {escape(', '.join(run.failed_sources))})"
              if run.failed_sources else "")
    return (f'<tr class="run" data-verdict="{escape(run.verdict)}">'
            f"<td>{escape(run.date_utc)}</td><td>{escape(run.model)}</td>"
            + _verdict_cell(run.verdict)
            + f'<td class="num">{run.n_failing}/{run.n_comparisons}{failed}</td>'
            f'<td class="num">{escape(worst)}</td>'
            f'<td><a href="{link}/index.html">page</a> &middot; '
            f'<a href="{link}/report.md">markdown</a> &middot; '
            f'<a href="{link}/report.json">json</a> &middot; '
            f'<a href="{link}/traces.csv">traces</a></td>'
            f"<td><code>{escape(run.run_id)}</code></td></tr>")


_HEAD = ("<tr><th>date (UTC)</th><th>model</th><th>verdict</th><th>failing / compared</th>"
         "<th>largest |dV| (mV)</th><th>report</th><th>run</th></tr>")
_INDEX_CSS = """
td.run-verdict { font-weight: 700; color: #fff; text-align: center; }
td.run-verdict.pass { background: var(--pass); }
td.run-verdict.fail { background: var(--fail); }
td.run-verdict.error { background: var(--error); }
"""


def render_index(runs: list[RunEntry]) -> str:
    """The index page listing ``runs`` (latest run per model first, then every run)."""
    latest: dict[str, RunEntry] = {}
    for run in runs:
        latest.setdefault(run.model, run)
    if runs:
        body = (f"<p class=meta>{len(runs)} run(s) of {len(latest)} model(s), newest first.</p>"
                "<h2>Latest run per model</h2>"
                f'<table class="latest"><thead>{_HEAD}</thead><tbody>'
                + "".join(_row(run) for run in sorted(latest.values(), key=lambda r: r.model))
                + "</tbody></table><h2>All runs</h2>"
                f'<table class="runs"><thead>{_HEAD}</thead><tbody>'
                + "".join(_row(run) for run in runs) + "</tbody></table>")
    else:
        body = "<p class=note>No reports yet: run <code>crosssim report</code>.</p>"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>crosssim reports</title><style>{CSS}{_INDEX_CSS}</style></head>"
            f"<body><header><h1>crosssim reports</h1></header>{body}</body></html>\n")


def write_index(root: Path) -> Path:
    """Write ``root/index.html`` listing every run under ``root`` (atomically); return its path."""
    from crosssim.io import atomic_write_text

    root = Path(root)
    path = root / INDEX_NAME
    atomic_write_text(path, render_index(collect_runs(root)))
    return path
