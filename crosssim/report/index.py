"""``reports/index.html``: every run under a reports folder (model, date, verdict) with links.

Runs are found by their ``<model>/<run id>/report.json``; folders whose name starts with a
dot (reports being written) are ignored, so the index only lists complete runs.  The page is
the template ``templates/index.html.j2`` with the run page's stylesheet
(:func:`crosssim.report.html.render_page`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crosssim.report.html import VERDICT_TEXT, render_page

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
    deviations = [float(c["max_abs_mV"]) for c in comparisons
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


def _row(run: RunEntry) -> dict[str, Any]:
    """A run as the template shows it: verdict word and colour, counts, largest |dV|."""
    worst = ("n/a" if run.worst_mV is None or not math.isfinite(run.worst_mV)
             else f"{run.worst_mV:.4g}")
    return {"date_utc": run.date_utc, "model": run.model, "verdict": run.verdict,
            "verdict_css": run.verdict if run.verdict in VERDICT_TEXT else "error",
            "verdict_word": VERDICT_TEXT.get(run.verdict, run.verdict.upper()),
            "n_failing": run.n_failing, "n_comparisons": run.n_comparisons,
            "failed_sources": list(run.failed_sources), "worst_mV": worst,
            "folder": run.folder, "run_id": run.run_id}


def render_index(runs: list[RunEntry]) -> str:
    """The index page listing ``runs`` (latest run per model first, then every run)."""
    latest: dict[str, RunEntry] = {}
    for run in runs:
        latest.setdefault(run.model, run)
    return render_page(
        "index.html.j2",
        latest=[_row(run) for run in sorted(latest.values(), key=lambda r: r.model)],
        runs=[_row(run) for run in runs])


def write_index(root: Path) -> Path:
    """Write ``root/index.html`` listing every run under ``root`` (atomically); return its path."""
    from crosssim.files import atomic_write_text

    root = Path(root)
    path = root / INDEX_NAME
    atomic_write_text(path, render_index(collect_runs(root)))
    return path
