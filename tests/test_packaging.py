"""The installed package is complete: the NMODL sources ship inside it."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import crosssim
from crosssim.provenance import mod_source_dir

REPO = Path(__file__).resolve().parent.parent


def test_mod_sources_are_found_and_match_the_repository():
    found = mod_source_dir()
    sources = sorted(p.name for p in found.glob("*.mod"))
    assert "crosssim_gap.mod" in sources
    repo_copy = REPO / "mod" / "crosssim_gap.mod"
    if repo_copy.exists():
        assert (found / "crosssim_gap.mod").read_bytes() == repo_copy.read_bytes()


def test_installed_wheel_carries_mod_inside_the_package():
    package_dir = Path(crosssim.__file__).resolve().parent
    if package_dir.parent == REPO:
        # source checkout / editable install: mod/ lives at the repository root
        assert (REPO / "mod" / "crosssim_gap.mod").exists()
    else:
        # a plain `pip install .`: mod/ must be inside the installed package
        packaged = importlib.resources.files("crosssim") / "mod" / "crosssim_gap.mod"
        assert packaged.is_file()
        assert mod_source_dir().resolve() == (package_dir / "mod").resolve()
