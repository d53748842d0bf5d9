"""Reports: report.json, the HTML page, report.md, traces.csv, figures, the index, the command.

Most tests use synthetic sources (tests/report_fixtures.py) so they need no simulator; one
test runs the real ``crosssim report`` on the built-in model when both backends exist.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from conftest import requires_arbor, requires_neuron
from report_fixtures import (
    handmade_outcome,
    lumped_equilibrium,
    png_size,
    synthetic_check,
)

from crosssim.builtin import builtin_model
from crosssim.model import apply_overrides, dumps_model
from crosssim.notes import Note
from crosssim.outcome import Comparison
from crosssim.report import write_index, write_report
from crosssim.report.document import (
    SCHEMA_VERSION,
    ordered_comparisons,
    pair_label,
)
from crosssim.report.html import render_html
from crosssim.report.markdown import render_markdown
from crosssim.report.text import format_mV

NOW = datetime.datetime(2031, 4, 5, 6, 7, 8, tzinfo=datetime.timezone.utc)


class Page(HTMLParser):
    """Collects what the tests look at: tags, images, comparison rows, matrix cells, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.rows: list[dict] = []  # comparison rows: attributes and cells
        self.matrix_cells: list[dict] = []
        self.text: list[str] = []
        self._table: str | None = None
        self._matrix_probe: str | None = None
        self._row: dict | None = None
        self._cell: dict | None = None
        self._stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self._stack.append(tag)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "a":
            self.links.append(attrs.get("href", ""))
        if tag == "table":
            self._table = attrs.get("class")
            self._matrix_probe = attrs.get("data-probe")
        if tag == "tr" and self._table == "comparisons" and "data-a" in attrs:
            self._row = {"attrs": attrs, "cells": []}
        if tag == "td":
            self._cell = {"attrs": attrs, "text": ""}

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()
        if tag == "td" and self._cell is not None:
            if self._row is not None:
                self._row["cells"].append(self._cell)
            elif self._table == "matrix":
                self.matrix_cells.append({**self._cell, "probe": self._matrix_probe})
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if "style" not in self._stack and "title" not in self._stack:
            self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(html_text: str) -> Page:
    page = Page()
    page.feed(html_text)
    page.close()
    return page


@pytest.fixture(scope="module")
def seed():
    return builtin_model("two_cells")


@pytest.fixture(scope="module")
def failing_report(tmp_path_factory, seed):
    """A report whose analytic gate fails (tolerance 0.01 mV), built once for several tests."""
    outcome = synthetic_check(seed, analytic_abs_mV=0.01)
    assert outcome.verdict == "fail"
    root = tmp_path_factory.mktemp("reports")
    folder = write_report(outcome, root, equilibria=lumped_equilibrium(seed), now=NOW)
    return outcome, root, folder


def test_folder_layout_and_run_id(failing_report, seed):
    _, root, folder = failing_report
    assert folder.parent == root / "two_cells"
    assert re.fullmatch(r"20310405T060708Z-[0-9a-f]{8}", folder.name)
    names = {path.name for path in folder.iterdir()}
    assert {"index.html", "report.md", "report.json", "traces.csv", "model.toml",
            "model.resolved.toml", "traces.png", "deviation.png"} <= names
    assert not [name for name in names if name.startswith(".")], "temporary files left"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    assert (root / "index.html").is_file()
    assert (folder / "model.resolved.toml").read_text() == dumps_model(seed, resolved=True)


def test_report_json_is_the_check_document_plus_environment(failing_report):
    outcome, _, folder = failing_report
    document = json.loads((folder / "report.json").read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    environment = document.pop("environment")
    document.pop("schema_version")
    assert document == json.loads(json.dumps(outcome.to_document()))
    for key in ("crosssim", "neuron", "arbor", "python", "numpy", "platform", "mod_sha256",
                "model_sha256", "date_utc", "wall_time_s"):
        assert key in environment
    assert environment["date_utc"] == "2031-04-05T06:07:08Z"
    assert environment["python"] == ".".join(map(str, sys.version_info[:3]))
    resolved = (folder / "model.resolved.toml").read_bytes()
    assert environment["model_sha256"] == hashlib.sha256(resolved).hexdigest()
    assert folder.name.endswith(environment["model_sha256"][:8])
    assert set(environment["wall_time_s"]) == set(outcome.results) | set(outcome.failures)


def test_environment_hashes_mod_sources_and_imports_no_simulator(tmp_path):
    mod = tmp_path / "mod"
    mod.mkdir()
    (mod / "b.mod").write_text("NEURON { POINT_PROCESS b }\n")
    (mod / "a.mod").write_text("NEURON { POINT_PROCESS a }\n")
    (mod / "x86_64").mkdir()
    (mod / "x86_64" / "a.o").write_bytes(b"build product, not a source")
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from crosssim.builtin import builtin_model\n"
        "from crosssim.outcome import CheckOutcome\n"
        "from crosssim.report.environment import collect_environment, mod_source_hash\n"
        "env = collect_environment(CheckOutcome(builtin_model('two_cells'), {}, {}, []))\n"
        f"tmp = mod_source_hash(Path({str(mod)!r}))\n"
        "import crosssim.report.writer, crosssim.report.html, crosssim.report.index\n"
        "loaded = [m for m in ('arbor', 'neuron', 'matplotlib') if m in sys.modules]\n"
        "assert crosssim.report.html.template_environment.cache_info().currsize == 0\n"
        "print(json.dumps([env, tmp, loaded]))\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True, timeout=60)
    environment, custom, loaded = json.loads(completed.stdout)
    assert loaded == [], "collecting the environment imported a simulator or matplotlib"
    digest = hashlib.sha256()
    for name in ("a.mod", "b.mod"):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256((mod / name).read_bytes()).digest())
    assert custom == {"sha256": digest.hexdigest(), "files": ["a.mod", "b.mod"]}
    assert environment["mod_files"], "crosssim's own MOD sources were not found"
    assert re.fullmatch(r"[0-9a-f]{64}", environment["mod_sha256"])


def test_html_numbers_equal_the_document(failing_report):
    _, _, folder = failing_report
    page = parse((folder / "index.html").read_text())
    document = json.loads((folder / "report.json").read_text())
    expected = {(c["a"], c["b"], c["probe"]): c for c in document["comparisons"]}
    assert len(page.rows) == len(expected)
    columns = ["max_abs_mV", "tolerance_mV", "t_max_abs_ms", "a_at_max_mV", "b_at_max_mV",
               "rms_mV", "max_rel_range", "final_abs_mV"]
    for row in page.rows:
        key = (row["attrs"]["data-a"], row["attrs"]["data-b"], row["attrs"]["data-probe"])
        comparison = expected.pop(key)
        cells = row["cells"]
        assert cells[0]["text"].endswith("fail" if comparison["passed"] is False
                                         else "pass" if comparison["passed"] else "reported")
        for cell, column in zip(cells[3:11], columns):
            value = comparison[column]
            assert cell["text"] == format_mV(value), column
            if value is not None:
                assert float(cell["attrs"]["data-value"]) == value, column
    assert not expected
    # failing rows come first, in the document's set of failing comparisons
    states = [row["attrs"].get("class") for row in page.rows]
    n_failing = sum(c["passed"] is False for c in document["comparisons"])
    assert n_failing > 0 and states[:n_failing] == ["fail"] * n_failing
    assert "fail" not in states[n_failing:]


def test_deviation_matrix_is_symmetric_and_matches(failing_report):
    outcome, _, folder = failing_report
    page = parse((folder / "index.html").read_text())
    cells = [cell for cell in page.matrix_cells if "data-row" in cell["attrs"]]
    by_pair = {(frozenset((c.a, c.b)), c.probe): c for c in outcome.comparisons}
    seen = set()
    for cell in cells:
        row, column = cell["attrs"]["data-row"], cell["attrs"]["data-column"]
        comparison = by_pair[(frozenset((row, column)), cell["probe"])]
        seen.add((row, column, cell["probe"]))
        assert float(cell["attrs"]["data-value"]) == comparison.max_abs_mV
        assert cell["text"].split()[0] == format_mV(comparison.max_abs_mV)
        expected = {False: {"fail"}, True: {"pass", "warn"}, None: {"info"}}[comparison.passed]
        assert cell["attrs"]["class"] in expected
    # every comparison twice: (a, b) and (b, a)
    assert len(seen) == len(cells) == 2 * len(outcome.comparisons)


def test_html_is_self_contained_and_every_image_decodes(failing_report):
    _, _, folder = failing_report
    text = (folder / "index.html").read_text()
    page = parse(text)
    assert page.tags[0] == "html" and "body" in page.tags and "style" in page.tags
    assert "script" not in page.tags and "link" not in page.tags
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "external resource"
    assert len(page.images) == 2
    for source in page.images:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        width, height = png_size(base64.b64decode(source[len(prefix):], validate=True))
        assert width >= 600 and height >= 400
    for name in ("traces.png", "deviation.png"):
        png_size((folder / name).read_bytes())
    # relative links point at files of the run
    for link in page.links:
        if not link.startswith("../"):
            assert (folder / link).is_file(), link


def test_html_shows_verdict_tolerances_environment_and_both_models(failing_report, seed):
    outcome, _, folder = failing_report
    page = parse((folder / "index.html").read_text())
    text = page.all_text
    assert text.index("FAIL") < text.index("Comparisons")
    gated = [c for c in outcome.comparisons if c.passed is not None]
    assert f"{len(outcome.failing())} of {len(gated)} gated comparisons exceed" in text
    for fragment in ("Deviation matrix", "Tolerances", "analytic_abs_mV", "Environment",
                     "MOD sources sha256", "As given", "As resolved", "sample_dt_ms = 0.01",
                     seed.description):
        assert fragment in text, fragment


def test_markdown_table_is_consistent_and_failing_first(failing_report):
    outcome, _, folder = failing_report
    text = (folder / "report.md").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("### ") and "FAIL" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    widths = {len(re.split(r"(?<!\\)\|", line)) for line in table}
    assert len(widths) == 1, widths
    assert set(table[1]) <= set("|-: ")
    body = table[2:]
    assert len(body) == len(outcome.comparisons)
    results = [row.rsplit("|", 2)[-2].strip() for row in body]
    n_failing = len(outcome.failing())
    assert all(r.endswith("fail") for r in results[:n_failing])
    assert not any(r.endswith("fail") for r in results[n_failing:])
    for row, comparison in zip(body, ordered_comparisons(outcome.comparisons)):
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert cells[2] == format_mV(comparison.max_abs_mV)
        assert cells[3] == format_mV(comparison.tolerance_mV)
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (folder / name).is_file()
    assert len(text) < 5000


def test_markdown_is_short_for_many_comparisons(seed):
    outcome = handmade_outcome(seed)
    outcome.comparisons = outcome.comparisons * 40
    text = render_markdown(outcome, {"date_utc": "x"})
    assert len([line for line in text.splitlines() if line.startswith("|")]) == 2 + 25
    assert "135 more comparisons" in text


def test_html_folds_long_comparison_tables(seed):
    from crosssim.report import html

    outcome = handmade_outcome(seed)
    outcome.comparisons = outcome.comparisons * 120  # 480: 1 failing pair x 120
    page = parse(render_html(outcome, {"date_utc": "x"}, given_toml="", resolved_toml=""))
    assert len(page.rows) == html.MAX_TABLE_ROWS
    assert [row["attrs"]["class"] for row in page.rows[:120]] == ["fail"] * 120
    assert "details" in page.tags and "Show 280 more comparisons" in page.all_text
    assert "80 more comparisons (within tolerance or only reported)" in page.all_text


def test_traces_csv_is_long_form_with_full_precision(failing_report):
    import pandas as pd

    outcome, _, folder = failing_report
    frame = pd.read_csv(folder / "traces.csv")
    assert list(frame.columns) == ["backend", "probe", "t_ms", "v_mV"]
    assert set(frame["backend"]) == set(outcome.results)
    n_samples = outcome.model.simulation.n_samples
    assert len(frame) == len(outcome.results) * 2 * n_samples
    arbor = frame[(frame.backend == "arbor") & (frame.probe == "a_gj")]["v_mV"].to_numpy()
    assert (arbor == outcome.results["arbor"].trace("a_gj")).all()  # no rounding on the way


def test_user_strings_are_escaped(tmp_path, seed):
    hostile = "<script>alert(1)</script>"
    model = seed.model_copy(update={"description": f"{hostile} & <b>bold</b> | `tick`"})
    outcome = handmade_outcome(model, probe="<img src=x onerror=alert(2)>",
                               failures={"neuron": "crashed: <iframe src=evil> & more"})
    environment = {"date_utc": "<i>now</i>", "wall_time_s": {}}
    text = render_html(outcome, environment, given_toml='x = "<script>"',
                       resolved_toml="y = '</pre><script>'", run_id="<run>")
    page = parse(text)
    for tag in ("script", "iframe", "b", "i"):
        assert tag not in page.tags, tag
    assert page.images == []  # the probe name did not become an <img>
    visible = page.all_text
    assert hostile in visible
    assert "<img src=x onerror=alert(2)>" in visible
    assert "crashed: <iframe src=evil> & more" in visible
    markdown = render_markdown(outcome, environment)
    assert "<script>" not in markdown and "<iframe" not in markdown and "<img" not in markdown
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len({len(re.split(r"(?<!\\)\|", line)) for line in table}) == 1


def test_passing_page_names_the_comparison_closest_to_its_limit(seed):
    outcome = synthetic_check(seed)
    assert outcome.verdict == "pass"
    closest = max((c for c in outcome.comparisons if c.tolerance_mV is not None),
                  key=lambda c: c.max_abs_mV / c.tolerance_mV)
    assert closest.gate == "analytic"  # 0.08 of 0.2 mV, the backends 1e-13 of 1e-6 mV
    text = parse(render_html(outcome, {}, given_toml="", resolved_toml="")).all_text
    assert (f"closest to its limit: {pair_label(closest)} at probe {closest.probe}: "
            f"{format_mV(closest.max_abs_mV)} mV of {format_mV(closest.tolerance_mV)} mV"
            in text)


def test_notes_follow_the_verdict_escaped_with_their_fix(seed):
    outcome = synthetic_check(seed)
    outcome.notes = [
        Note("stiff-junction", "gap_junctions.0", "coupling <b>too strong</b> for dt",
             "simulation.dt_ms < 0.001"),
        Note("source-left-out", "neuron", "not installed")]
    text = render_html(outcome, {}, given_toml="", resolved_toml="")
    page = parse(text)
    assert "b" not in page.tags  # the message's markup is shown, not applied
    assert "&lt;b&gt;too strong&lt;/b&gt;" in text
    visible = page.all_text
    notes = parse(re.search(r'<section id="notes">.*?</section>', text, re.S)[0]).all_text
    assert "gap_junctions.0 : coupling <b>too strong</b> for dt" in notes
    assert "Fix: simulation.dt_ms < 0.001" in notes
    assert "neuron : not installed" in notes and notes.count("Fix:") == 1
    assert "2 notes below explain this result." in visible  # the banner counts them
    assert visible.index("PASS") < visible.index("Notes") < visible.index("Comparisons")
    outcome.notes = []
    text = render_html(outcome, {}, given_toml="", resolved_toml="")
    assert 'id="notes"' not in text and "note below" not in text


def test_tolerances_list_every_reference_that_ran_by_its_key(seed):
    """A reference crosssim does not name in its model fields (``discrete``) is listed with
    its ``reference_abs_mV`` key, model-wide and per probe; its kind shows in the sources."""
    from crosssim.model import ProbeTolerance

    tolerance = seed.tolerance.model_copy(update={
        "reference_abs_mV": {"discrete": 2.5e-9},
        "probes": {"a_gj": ProbeTolerance(reference_abs_mV={"discrete": 7e-9})}})
    model = seed.model_copy(update={"tolerance": tolerance})
    outcome = handmade_outcome(model)
    outcome.kinds = {"arbor": "simulator", "neuron": "simulator", "discrete": "reference"}
    outcome.results = {"arbor": outcome.results["arbor"],
                       "neuron": outcome.results["neuron"],
                       "discrete": outcome.results["analytic"]}
    outcome.comparisons = [Comparison(
        a="arbor", b="discrete", probe="a_gj", kind="reference", max_abs_mV=1e-9,
        t_max_abs_ms=0.5, a_at_max_mV=-70.0, b_at_max_mV=-70.0, rms_mV=1e-10,
        max_rel_range=1e-11, rms_rel_range=1e-12, final_abs_mV=0.0, n_samples=501,
        n_mismatched=0, tolerance_mV=2.5e-9, passed=True)]
    text = render_html(outcome, {}, given_toml="", resolved_toml="")
    section = parse(re.search(r'<section id="tolerances">.*?</section>', text, re.S)[0])
    assert "simulator - discrete (reference_abs_mV.discrete) 2.5e-09 mV" in section.all_text
    assert "analytic" not in section.all_text and "lumped" not in section.all_text
    assert "Per-probe overrides probe backends (mV) discrete (mV) a_gj n/a 7e-09" in (
        section.all_text)
    sources = parse(re.search(r'<section id="sources">.*?</section>', text, re.S)[0])
    assert "discrete reference ran" in sources.all_text
    assert "arbor - discrete" in parse(text).all_text


def test_templates_load_through_importlib_resources_from_a_zip(tmp_path):
    """The templates and the CSS are package data: with crosssim imported from a zip
    archive (files with no path on disk) the pages still render, CSS inlined."""
    import zipfile
    from pathlib import Path

    import crosssim

    package = Path(crosssim.__file__).resolve().parent
    archive = tmp_path / "crosssim.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in package.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                bundle.write(path, Path("crosssim") / path.relative_to(package))
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(archive)!r})\n"
        "import crosssim\n"
        "from crosssim.builtin import builtin_model\n"
        "from crosssim.outcome import CheckOutcome\n"
        "from crosssim.report.html import render_html\n"
        "from crosssim.report.index import render_index\n"
        "page = render_html(CheckOutcome(builtin_model('two_cells'), {}, {}, []), {},\n"
        "                   given_toml='', resolved_toml='')\n"
        "print(json.dumps([crosssim.__file__, page, render_index([])]))\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=False, timeout=60, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    origin, page, index = json.loads(completed.stdout)
    assert origin.startswith(str(archive))
    css = (package / "report" / "templates" / "report.css").read_text()
    for text in (page, index):
        assert css.strip() in text  # inlined verbatim: no entities inside <style>
    assert "No comparison could be made." in page
    assert "No reports yet" in index


def test_error_verdict_report_shows_the_reason(tmp_path, seed):
    outcome = synthetic_check(seed, broken="neuron")
    assert outcome.verdict == "error" and outcome.exit_code == 3
    folder = write_report(outcome, tmp_path, now=NOW)
    page = parse((folder / "index.html").read_text())
    assert "ERROR" in page.all_text
    assert "simulated crash: <segfault> & core dumped" in page.all_text
    assert json.loads((folder / "report.json").read_text())["errors"] == [
        {"source": "neuron", "reason": "simulated crash: <segfault> & core dumped"}]
    assert "neuron" in (folder / "report.md").read_text()


def test_index_lists_every_run_newest_first(tmp_path, seed):
    passing = synthetic_check(seed)
    other = apply_overrides(seed, ["name=other_model", "cells.a.e_leak_mV=-90"])
    later = NOW + datetime.timedelta(minutes=5)
    first = write_report(passing, tmp_path, now=NOW)
    second = write_report(passing, tmp_path, now=NOW)  # same second: a distinct folder
    third = write_report(synthetic_check(other, analytic_abs_mV=0.001), tmp_path, now=later)
    assert second.name == first.name + "-2"
    (tmp_path / "two_cells" / ".half-written.tmp").mkdir()
    broken = tmp_path / "two_cells" / "20000101T000000Z-deadbeef"
    broken.mkdir()
    (broken / "report.json").write_text("{not json")
    index = write_index(tmp_path)
    page = parse(index.read_text())
    runs = [link for link in page.links if link.endswith("/index.html")]
    # the latest-per-model table, then every run (newest first)
    every = runs[2:]
    assert every[0] == f"other_model/{third.name}/index.html"
    assert set(every[1:]) == {f"two_cells/{first.name}/index.html",
                              f"two_cells/{second.name}/index.html"}
    for link in page.links:
        assert (tmp_path / link).is_file(), link
    assert "FAIL" in page.all_text and "PASS" in page.all_text
    assert "half-written" not in index.read_text() and "deadbeef" not in index.read_text()


def test_interrupted_report_leaves_nothing(tmp_path, seed, monkeypatch):
    from crosssim.report import markdown

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(markdown, "render_markdown", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(synthetic_check(seed), tmp_path, now=NOW)
    assert list((tmp_path / "two_cells").iterdir()) == []
    assert not (tmp_path / "index.html").exists()


def test_figures_convergence_orders_and_legacy_plot(tmp_path, seed):
    from report_fixtures import fake_source

    from crosssim.report.figures import plot_convergence, plot_traces
    from crosssim.study.convergence import fit_order

    rows = []
    for dt in (0.1, 0.05, 0.025, 0.0125):
        rows.append({"parameter": "dt_ms", "value": dt, "error_mV": 3.0 * dt, "source": "arbor"})
        rows.append({"parameter": "dt_ms", "value": dt, "error_mV": 0.5 * dt ** 2,
                     "source": "neuron"})
    for cvs in (3, 9, 27, 81):
        rows.append({"parameter": "cvs_per_cell", "value": cvs, "error_mV": 2.0 / cvs ** 2,
                     "source": "arbor"})
    assert math.isclose(fit_order([0.1, 0.05, 0.025], [0.3, 0.15, 0.075]), 1.0)
    assert math.isclose(fit_order([3, 9, 27], [2 / 9, 2 / 81, 2 / 729], count=True), 2.0)
    assert math.isnan(fit_order([0.1], [0.2]))
    path = plot_convergence(rows, tmp_path / "convergence.png", title="seed")
    width, height = png_size(path.read_bytes())
    assert width > height > 300
    with pytest.raises(ValueError, match="error_mV"):
        plot_convergence([{"parameter": "dt_ms", "value": 1.0}], tmp_path / "x.png")
    results = [fake_source(name, seed) for name in ("arbor", "neuron", "analytic")]
    path = plot_traces(seed, results, tmp_path / "traces.png",
                       equilibria=lumped_equilibrium(seed))
    png_size(path.read_bytes())


def test_report_command_exit_codes_and_output(tmp_path, monkeypatch, capsys):
    from report_fixtures import fake_source

    import crosssim.sources
    from crosssim.cli import main

    monkeypatch.setattr(crosssim.sources, "run_source", fake_source)
    classic = ["--references", "analytic,lumped"]
    assert main(["report", "--out", str(tmp_path), "--quiet", *classic]) == 0
    out = capsys.readouterr().out
    assert "wrote " in out and (tmp_path / "index.html").is_file()
    # (backends_abs_mV = 0 would be raised to the round-off floor, which these pass)
    assert main(["report", "--out", str(tmp_path), "--quiet", *classic,
                 "--set", "tolerance.analytic_abs_mV=0"]) == 1
    monkeypatch.setattr(crosssim.sources, "run_source",
                        lambda name, model: fake_source(name, model, broken="arbor"))
    assert main(["report", "--out", str(tmp_path), "--quiet", "--backend", "arbor",
                 *classic]) == 3
    verdicts = sorted(json.loads(path.read_text())["verdict"]
                      for path in tmp_path.glob("two_cells/*/report.json"))
    assert verdicts == ["error", "fail", "pass"]
    assert main(["report", "--out", str(tmp_path / "none"), "--set", "cells.a.length_um=-1"]) == 2
    assert not (tmp_path / "none").exists()


@requires_arbor
@requires_neuron
def test_report_command_on_the_builtin_model(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "crosssim", "report", "--out", str(tmp_path), "--quiet"],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode in (0, 1, 3), completed.stderr
    [document_path] = tmp_path.glob("two_cells/*/report.json")
    document = json.loads(document_path.read_text())
    assert {"pass": 0, "fail": 1, "error": 3}[document["verdict"]] == completed.returncode
    page = parse((document_path.parent / "index.html").read_text())
    assert document["verdict"].upper() in page.all_text
    assert len(page.rows) == len(document["comparisons"]) > 0
