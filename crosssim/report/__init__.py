"""Reports for people (HTML, Markdown, figures) and machines (JSON, JUnit XML).

``write_report(outcome, out_root)`` writes one run folder ``out_root/<model>/<run id>/``
and refreshes ``out_root/index.html``.  Importing this package imports no plotting library;
matplotlib is loaded only when a report or figure is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.outcome import CheckOutcome

__all__ = ["write_index", "write_report"]


def write_report(outcome: CheckOutcome, out_root: Path | str, **options: Any) -> Path:
    """Write the report folder of ``outcome`` under ``out_root``; return the folder.

    See :func:`crosssim.report.writer.write_report` for the files and options.
    """
    from crosssim.report.writer import write_report as _write_report

    return _write_report(outcome, out_root, **options)


def write_index(root: Path | str) -> Path:
    """Write ``root/index.html`` listing every report run under ``root``; return its path."""
    from crosssim.report.index import write_index as _write_index

    return _write_index(Path(root))
