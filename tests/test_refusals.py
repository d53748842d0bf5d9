"""Unusable output folders and caches are refused up front with exit 2 and one line, never
an internal error (exit 4) after the work is done."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from crosssim.builtin import builtin_model
from crosssim.model import dump_model


def _unwritable(path: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=path):
            return False
    except OSError:
        return True


@pytest.fixture
def read_only_dir(tmp_path) -> Path:
    """A folder nobody can write in: a chmod 555 folder, or (as root, whom permission bits
    do not stop) the read-only /sys."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if _unwritable(folder):
        yield folder
        folder.chmod(0o755)
        return
    folder.chmod(0o755)
    if Path("/sys").is_dir() and _unwritable(Path("/sys")):
        yield Path("/sys")
        return
    pytest.skip("no folder on this machine refuses writes (root, no read-only /sys)")


def _crosssim(cwd: Path, *args: str, env: dict | None = None):
    full = {**os.environ, **(env or {})}
    full.pop("CROSSSIM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "crosssim", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=120)


def test_report_in_a_read_only_folder_is_refused_before_the_check(read_only_dir, tmp_path):
    model = tmp_path / "radii.toml"
    dump_model(builtin_model("two_cells"), model)
    result = _crosssim(read_only_dir, "report", str(model), "--references", "analytic")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "not writable" in result.stderr
    assert "internal error" not in result.stderr
    assert "running" not in result.stderr  # refused before any source ran


@pytest.mark.parametrize("command", [
    ["sweep", "--grid", "gap_junctions.0.g_uS=0.01,0.02"],
    ["converge", "--dt", "0.02,0.01", "--cvs", "1,3"],
])
def test_a_read_only_cache_folder_is_refused_with_the_way_out(read_only_dir, tmp_path,
                                                               command):
    result = _crosssim(tmp_path, *command, "--quiet",
                       env={"CROSSSIM_CACHE_DIR": str(read_only_dir / "crosssim")})
    assert result.returncode == 2, result.stderr
    assert "CROSSSIM_CACHE_DIR" in result.stderr and "--no-cache" in result.stderr
    assert result.stderr.count("\n") == 1
