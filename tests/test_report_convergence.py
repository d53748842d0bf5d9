"""Reports with a convergence study: ``crosssim report --converge`` and ``write_report(...,
convergence=)``.

One real run of the command (both simulators, a 1 ms model, dt 0.02/0.01 ms and 1/3/9 CVs
per cell; a few seconds) is shared by the tests; the same study run again in this process
comes entirely from the results cache, so it is the same runs and its orders must be the
report's.  ``CROSSSIM_CACHE_DIR`` points at a temporary folder: the user's cache is not
touched.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys

import pytest
from conftest import requires_arbor, requires_neuron
from report_fixtures import png_size, synthetic_check
from test_report import parse

from crosssim.builtin import builtin_model
from crosssim.model import apply_overrides
from crosssim.report.document import SCHEMA_VERSION

pytestmark = [requires_arbor, requires_neuron]

OVERRIDES = [("simulation.t_stop_ms", 1.0)]
DTS = [0.02, 0.01]
CVS = [1, 3, 9]
ARGS = ["--set", "simulation.t_stop_ms=1", "--dt", "0.02,0.01", "--cvs", "1,3,9",
        "--backend", "arbor,neuron"]
#: Keys of the study document that describe one execution, not the results.
RUNTIME_KEYS = ("runs", "wall_time_s", "executor")


def _png(source: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    return base64.b64decode(source[len(prefix):], validate=True)


def _section(html_text: str) -> str:
    match = re.search(r'<section id="convergence">.*?</section>', html_text, re.S)
    assert match, "no convergence section"
    return match.group(0)


def _results_only(document: dict) -> dict:
    """The study document without what differs between two executions of the same runs."""
    document = {k: v for k, v in document.items() if k not in RUNTIME_KEYS}
    document["levels"] = [{k: v for k, v in level.items() if k != "cached"}
                          for level in document["levels"]]
    return document


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def reported(tmp_path_factory, cache_env):
    """The folder of ``crosssim report --converge ...`` and the same study from the cache."""
    from crosssim.study.cache import ResultsCache
    from crosssim.study.convergence import converge

    root = tmp_path_factory.mktemp("reports")
    completed = subprocess.run(
        [sys.executable, "-m", "crosssim", "report", "--converge", *ARGS, "--workers", "2",
         "--out", str(root), "--quiet"],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode in (0, 1), completed.stderr
    [folder] = (root / "two_cells").iterdir()
    model = apply_overrides(builtin_model("two_cells"), OVERRIDES)
    study = converge(model, dts=DTS, cvs=CVS, backends=["arbor", "neuron"],
                     cache=ResultsCache())
    assert study.computed == 0 and study.ok, "the study did not come from the report's runs"
    return folder, study, completed.stdout


def test_report_orders_are_the_studys(reported):
    folder, study, stdout = reported
    document = json.loads((folder / "report.json").read_text())
    block = document["convergence"]
    expected = json.loads(json.dumps(study.to_document()))
    assert _results_only(block) == _results_only(expected)
    assert len(block["orders"]) == 4  # 2 backends x (dt, space)
    # the page shows the same orders: exact in data-value, 2 decimals as text
    section = _section((folder / "index.html").read_text())
    for fit in study.orders:
        row = re.search(rf'<tr data-backend="{fit.backend}" data-study="{fit.study}">'
                        r"(.*?)</tr>", section, re.S)
        assert row, (fit.backend, fit.study)
        values = re.findall(r'data-value="([^"]+)">([^<]+)<', row.group(1))
        assert float(values[0][0]) == fit.order_max and values[0][1] == f"{fit.order_max:.2f}"
        assert float(values[1][0]) == fit.order_rms and values[1][1] == f"{fit.order_rms:.2f}"
        assert ("floor</td>" in row.group(1)) == fit.floor
    assert "observed order" in stdout  # the command prints the study's table too


def test_figure_is_embedded_and_decodes(reported):
    folder, _, _ = reported
    page = parse((folder / "index.html").read_text())
    assert len(page.images) == 4  # traces, deviation, decomposition, convergence
    section = parse(_section((folder / "index.html").read_text()))
    [source] = section.images
    png = _png(source)
    assert png == (folder / "convergence.png").read_bytes()
    width, height = png_size(png)
    assert width > height > 300  # two panels side by side
    assert "Convergence" in section.all_text and "Fitted orders" in section.all_text
    assert "Errors per run" in section.all_text
    assert "details" not in section.tags  # 10 runs: listed open
    # the per-level table: one row per run, errors as in the document
    document = json.loads((folder / "report.json").read_text())["convergence"]
    rows = re.findall(r'<tr data-backend="[^"]+" data-study="[^"]+"><td>(dt|space)</td>',
                      _section((folder / "index.html").read_text()))
    assert len(rows) == len(document["levels"]) == 10


def test_markdown_has_the_orders_table_and_the_figure(reported):
    folder, study, _ = reported
    text = (folder / "report.md").read_text()
    assert "**Convergence**" in text
    lines = text[text.index("**Convergence**"):].splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert table[0].startswith("| backend | study | order (max) | order (RMS) |")
    assert len({len(re.split(r"(?<!\\)\|", line)) for line in table}) == 1
    body = table[2:]
    assert len(body) == len(study.orders)
    for row, fit in zip(body, study.orders):
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert cells[0] == f"`{fit.backend}`"
        assert cells[2] == f"{fit.order_max:.2f}" and cells[3] == f"{fit.order_rms:.2f}"
        assert cells[4].endswith("floor") == fit.floor
    assert "![Error against dt and against control-volume length](convergence.png)" in text
    png_size((folder / "convergence.png").read_bytes())
    assert len(text) < 6000


def test_json_block_and_files(reported):
    folder, study, _ = reported
    document = json.loads((folder / "report.json").read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    assert list(document)[-2:] == ["convergence", "environment"]
    block = document["convergence"]
    assert block["dts_ms"] == DTS and block["space"] == {"parameter": "cvs_per_cell",
                                                         "values": CVS}
    assert set(block["backends"]) == {"arbor", "neuron"}
    import pandas as pd

    frame = pd.read_csv(folder / "convergence.csv")
    assert len(frame) == len(study.to_frame())
    assert {"study", "backend", "dt_ms", "cv_length_um", "probe", "max_abs_mV"} <= set(frame)


def test_write_report_accepts_a_study(reported, tmp_path):
    """The library path: any check outcome plus a ConvergenceResult."""
    from crosssim.report import write_report

    _, study, _ = reported
    folder = write_report(synthetic_check(study.model), tmp_path, convergence=study)
    document = json.loads((folder / "report.json").read_text())
    assert [fit["order_max"] for fit in document["convergence"]["orders"]] == [
        fit.order_max for fit in study.orders]
    assert 'id="convergence"' in (folder / "index.html").read_text()


def test_long_level_tables_fold(reported):
    from crosssim.report.html import INLINE_LEVEL_ROWS, render_html

    folder, study, _ = reported
    document = json.loads((folder / "report.json").read_text())["convergence"]
    document["levels"] = document["levels"] * 2
    assert len(document["levels"]) > INLINE_LEVEL_ROWS
    page = render_html(synthetic_check(study.model), {}, given_toml="", resolved_toml="",
                       convergence=document)
    section = parse(_section(page))
    assert "details" in section.tags
    assert f"Show the {len(document['levels'])} runs of the study" in section.all_text
    assert section.images == []  # no figure given: none shown


def test_report_without_converge_is_unchanged(tmp_path, monkeypatch, capsys):
    from report_fixtures import fake_source

    import crosssim.sources
    from crosssim.cli import main

    monkeypatch.setattr(crosssim.sources, "run_source", fake_source)
    assert main(["report", "--out", str(tmp_path), "--quiet",
                 "--references", "analytic,lumped"]) == 0
    [folder] = (tmp_path / "two_cells").iterdir()
    assert "convergence" not in json.loads((folder / "report.json").read_text())
    text = (folder / "index.html").read_text()
    assert 'id="convergence"' not in text and "Convergence" not in text
    assert "Convergence" not in (folder / "report.md").read_text()
    assert not list(folder.glob("convergence*"))
    capsys.readouterr()
    # the study's options need --converge (and nothing is written)
    assert main(["report", "--out", str(tmp_path / "none"), "--dt", "0.02,0.01"]) == 2
    assert "--dt: only with --converge" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_dom_dump_shows_the_convergence_section(reported, tmp_path):
    from test_report_browser import CHROMIUM, chromium

    if CHROMIUM is None:
        pytest.skip("no chromium binary installed")
    folder, study, _ = reported
    dom = chromium(tmp_path, "--dump-dom", (folder / "index.html").as_uri()).stdout
    assert '<section id="convergence"><h2>Convergence</h2>' in dom
    assert dom.count('<img src="data:image/png;base64,') == 4  # with the decomposition
    assert dom.count('<table class="orders">') == 1
    assert sum(dom.count(f'data-backend="{name}" data-study="dt"')
               for name in study.backends) == 2 + len(DTS) * 2
