"""Shared fixtures and markers.  Simulators are imported inside tests, never at module top."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from crosssim.builtin import builtin_model


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a finder that refuses the name: not installed
        return False


requires_arbor = pytest.mark.skipif(not _installed("arbor"), reason="arbor is not installed")
requires_neuron = pytest.mark.skipif(not _installed("neuron"), reason="neuron is not installed")
#: Jaxley is an optional extra (``pip install 'crosssim[jaxley]'``).
requires_jaxley = pytest.mark.skipif(not _installed("jaxley"),
                                     reason="jaxley is not installed (pip install "
                                     "'crosssim[jaxley]')")

#: Parametrise a test over the simulator backends:
#: ``@pytest.mark.parametrize("backend", BACKENDS)``.
BACKENDS = [
    pytest.param("arbor", id="arbor", marks=requires_arbor),
    pytest.param("neuron", id="neuron", marks=requires_neuron),
]


@pytest.fixture
def cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """CROSSSIM_CACHE_DIR for this test: results emptied, NEURON builds shared per session."""
    base = tmp_path_factory.getbasetemp() / "crosssim-study-cache"
    base.mkdir(exist_ok=True)
    shutil.rmtree(base / "results", ignore_errors=True)
    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(base))
    return base


@pytest.fixture
def seed_model():
    """The built-in seed model (two cells, 1 CV each, 5 ms at dt 0.01 ms)."""
    return builtin_model("two_cells")


def _hypothesis_profiles() -> None:
    """CI replays a fixed set of examples (no flaky gate); elsewhere hypothesis explores."""
    import os

    try:
        from hypothesis import settings
    except ImportError:  # pragma: no cover - hypothesis is in the test extra
        return
    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profiles()


#: Commands that run simulators run the two core ones unless a test names others: a third
#: simulator installed as an extra (Jaxley) would add a fresh JAX process to every run.
CORE = ("--backend", "arbor,neuron")


def pinned(args):
    """``args`` with ``--backend arbor,neuron`` added to a run/check/report/sweep command
    that names no backend."""
    args = list(args)
    if args and args[0] in ("run", "check", "report", "sweep") and "--backend" not in args:
        args += CORE
    return args


@pytest.fixture
def saved_figures(monkeypatch) -> list:
    """Every matplotlib figure crosssim saves as PNG during the test, in order (all drawn
    in this process: a figure process would draw them where this cannot see)."""
    import crosssim.report.figures as figures
    from crosssim.report.figure_process import ENVIRONMENT_SWITCH

    monkeypatch.setenv(ENVIRONMENT_SWITCH, "0")

    seen: list = []
    original = figures._save_png

    def keep(figure, path, dpi):
        seen.append(figure)
        return original(figure, path, dpi)

    monkeypatch.setattr(figures, "_save_png", keep)
    return seen
