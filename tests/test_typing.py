"""The package type-checks: mypy (configured in pyproject.toml) reports no error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_errors(tmp_path):
    pytest.importorskip("mypy")
    # from the repository root, so mypy reads pyproject.toml and checks this checkout's
    # package; a fresh cache keeps the repository clean and the result independent of it
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy_cache")],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, (
        f"mypy exited with {completed.returncode}:\n{completed.stdout}{completed.stderr}")
