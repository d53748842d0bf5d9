"""The report page opened in a real browser: headless Chromium, no network.

Skipped only when no Chromium binary exists (Debian package ``chromium``; ``.ci/run``
installs it).  Chromium renders the run page to a screenshot of real size and content, and
its DOM dump (after parsing and layout) shows the verdict, the tables and the figures.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import lumped_equilibrium, png_size, synthetic_check

from crosssim.builtin import builtin_model
from crosssim.report import write_report

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM = next((found for found in map(shutil.which, CANDIDATES) if found), None)
requires_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary installed")
pytestmark = requires_chromium

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars")
WIDTH, HEIGHT = 1280, 4800  # tall enough to reach the figures below the tables


def chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *arguments],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path,
                          check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A failing report (analytic gate 0.01 mV) and the reports root."""
    model = builtin_model("two_cells")
    outcome = synthetic_check(model, analytic_abs_mV=0.01)
    root = tmp_path_factory.mktemp("reports")
    now = datetime.datetime(2031, 4, 5, 6, 7, 8, tzinfo=datetime.timezone.utc)
    folder = write_report(outcome, root, equilibria=lumped_equilibrium(model), now=now)
    return outcome, root, folder


def test_screenshot_shows_a_rendered_page(report, tmp_path):
    _, _, folder = report
    shot = tmp_path / "page.png"
    completed = chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}",
                         (folder / "index.html").as_uri())
    assert shot.is_file(), completed.stderr[-2000:]
    assert png_size(shot.read_bytes()) == (WIDTH, HEIGHT)
    from matplotlib.image import imread

    pixels = (imread(shot)[:, :, :3] * 255).round().astype(int)
    ink = (pixels.min(axis=2) < 200).mean()
    assert ink > 0.03, f"page looks blank ({ink:.1%} of pixels not white)"
    # the FAIL banner (#cf222e) near the top, as wide as a banner
    banner = (np.abs(pixels[:400] - (0xCF, 0x22, 0x2E)).max(axis=2) <= 3)
    assert banner.sum() > 0.5 * WIDTH * 60, banner.sum()
    # the figures: matplotlib's default blue (C0, #1f77b4) drawn somewhere on the page
    assert (np.abs(pixels - (0x1F, 0x77, 0xB4)).max(axis=2) <= 10).sum() > 200


def test_dom_dump_shows_verdict_table_matrix_and_figures(report, tmp_path):
    outcome, _, folder = report
    completed = chromium(tmp_path, "--dump-dom", (folder / "index.html").as_uri())
    dom = completed.stdout
    assert 'class="verdict verdict-fail"' in dom, completed.stderr[-2000:]
    assert '<span class="word">FAIL</span>' in dom
    assert dom.count('<tr class="fail"') == len(outcome.failing()) > 0
    assert dom.count('<table class="matrix"') == 2
    assert dom.count('<img src="data:image/png;base64,') == 2
    assert "arbor - analytic" in dom and "Environment" in dom


def test_index_page_in_the_browser_lists_the_run(report, tmp_path):
    _, root, folder = report
    completed = chromium(tmp_path, "--dump-dom", (root / "index.html").as_uri())
    dom = completed.stdout
    assert f'href="two_cells/{folder.name}/index.html"' in dom, completed.stderr[-2000:]
    assert 'class="run-verdict fail">FAIL</td>' in dom
