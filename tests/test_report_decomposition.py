"""The error decomposition and the round-off floor in the reports (HTML, report.md, report.json).

The sources are synthetic with known parts: at every probe, exact = e(t), semidiscrete =
e + s(t), discrete = semidiscrete + d(t), simulator = discrete + i(t).  Every value is a
multiple of 2**-46 mV between -128 and -64 mV, where that is the spacing of doubles, so
every sum and difference is exact and the report must show max|i|, max|d|, max|s| and
max|s + d + i| to the last bit.  No simulator is needed.
"""

from __future__ import annotations

import base64
import datetime
import json
import re

import jsonschema
import numpy as np
import pytest
from report_fixtures import png_size
from test_report import parse

from crosssim.builtin import builtin_model
from crosssim.decomposition import FIXES, Decomposition
from crosssim.report import write_report
from crosssim.report.document import SHORT_FIXES
from crosssim.report.markdown import MAX_DECOMPOSITION_ROWS, render_markdown
from crosssim.report.text import format_mV
from crosssim.result import RunResult
from crosssim.schema import schema

NOW = datetime.datetime(2031, 4, 5, 6, 7, 8, tzinfo=datetime.timezone.utc)
ULP = 2.0 ** -46  # spacing of doubles in [64, 128) mV
SCHEME = "implicit-euler"
SIMULATORS = ("arbor", "neuron")
REFERENCES = ("analytic", "semidiscrete", "discrete")


def _grid(values: np.ndarray, step: float = 2.0 ** -20) -> np.ndarray:
    """``values`` rounded to multiples of ``step`` (a power of two, so of ULP too)."""
    return np.round(values / step) * step


def known_parts(model, probe_index: int, simulator: str = "arbor") -> dict[str, np.ndarray]:
    """e, s, d and i at probe ``probe_index`` on the model's sample grid (mV).

    Probe 0 is dominated by time stepping, every other probe by space; i is a few ULP,
    different for each simulator (so they differ from each other by ~1e-13 mV)."""
    t = model.simulation.sample_times_ms()
    e = _grid(-70.0 - 3.0 * probe_index + 5.0 * np.exp(-t))
    space, stepping = (0.004, 0.03) if probe_index == 0 else (0.05 + 0.01 * probe_index, 0.002)
    s = _grid(space * (1.0 - np.exp(-t)))
    d = _grid(-stepping * t * np.exp(-t))
    scale = 3 if simulator == "arbor" else 5
    i = np.round(scale * np.sin(7.0 * t + probe_index)) * ULP
    return {"e": e, "s": s, "d": d, "i": i}


def synthetic_source(name: str, model) -> RunResult:
    """The RunResult of ``name`` (a simulator or one of REFERENCES) built from known_parts."""
    rows = []
    for index, _ in enumerate(model.effective_probes()):
        parts = known_parts(model, index, name if name in SIMULATORS else "arbor")
        value = parts["e"]
        if name != "analytic":
            value = value + parts["s"]
        if name in ("discrete", *SIMULATORS):
            value = value + parts["d"]
        if name in SIMULATORS:
            value = value + known_parts(model, index, name)["i"]
        rows.append(value)
    probes = [probe.label for probe in model.effective_probes()]
    return RunResult(name, probes, model.simulation.sample_times_ms(), np.array(rows),
                     wall_time_s=0.01, info={"scheme": SCHEME, "method": "synthetic"})


def decomposed_check(model, **tolerances):
    from crosssim.check import check

    return check(model, backends=list(SIMULATORS), references=list(REFERENCES),
                 runner=synthetic_source, **tolerances)


@pytest.fixture(scope="module")
def seed():
    return builtin_model("two_cells")


@pytest.fixture(scope="module")
def decomposed_report(tmp_path_factory, seed):
    """The report of a check whose simulator - analytic gate fails at probe a_gj (time
    stepping) and b_gj (space), with the simulator-pair tolerance below the floor."""
    outcome = decomposed_check(seed, analytic_abs_mV=0.01, backends_abs_mV=1e-16)
    assert outcome.verdict == "fail"
    folder = write_report(outcome, tmp_path_factory.mktemp("reports"), equilibria=None,
                          now=NOW)
    return outcome, folder


def test_the_check_recovers_the_known_parts_exactly(decomposed_report, seed):
    outcome, _ = decomposed_report
    assert len(outcome.decomposition) == len(SIMULATORS) * 2
    for part in outcome.decomposition:
        index = [p.label for p in seed.effective_probes()].index(part.probe)
        known = known_parts(seed, index, part.simulator)
        assert part.discrete == "discrete"
        assert part.implementation_mV == np.max(np.abs(known["i"])) > 0
        assert part.time_stepping_mV == np.max(np.abs(known["d"]))
        assert part.space_mV == np.max(np.abs(known["s"]))
        assert part.total_mV == np.max(np.abs(known["s"] + known["d"] + known["i"]))
        assert part.dominant == ("time_stepping" if index == 0 else "space")


def _decomposition_rows(html_text: str) -> dict[tuple[str, str], list[dict]]:
    """(simulator, probe) -> the cells of its row in the decomposition table."""
    match = re.search(r'<section id="decomposition">.*?</section>', html_text, re.S)
    assert match, "no decomposition section"
    rows = {}
    for row in re.finditer(r'<tr[^>]*data-simulator="([^"]+)" data-probe="([^"]+)"[^>]*>'
                           r"(.*?)</tr>", match.group(0), re.S):
        cells = [{"attrs": dict(re.findall(r'([\w-]+)="([^"]*)"', attrs)), "text": text}
                 for attrs, text in re.findall(r"<td([^>]*)>(.*?)</td>", row.group(3), re.S)]
        rows[row.group(1), row.group(2)] = cells
    return rows


def test_html_section_shows_the_parts_and_the_fix(decomposed_report):
    outcome, folder = decomposed_report
    text = (folder / "index.html").read_text()
    page = parse(text)
    assert "Where the error comes from" in page.all_text
    # after the comparison table, before the deviation matrix
    assert (text.index('<section id="comparisons">') < text.index('id="decomposition"')
            < text.index('<section id="matrix">'))
    rows = _decomposition_rows(text)
    assert set(rows) == {(p.simulator, p.probe) for p in outcome.decomposition}
    failing = {(c.a, c.probe) for c in outcome.failing() if c.b == "analytic"}
    for part in outcome.decomposition:
        cells = rows[part.simulator, part.probe]
        assert [cell["text"] for cell in cells[:2]] == [part.simulator, part.probe]
        values = (part.implementation_mV, part.time_stepping_mV, part.space_mV,
                  part.total_mV)
        for cell, value in zip(cells[2:6], values):
            assert float(cell["attrs"]["data-value"]) == value
            assert cell["text"] == format_mV(value)
        # the dominant part's number is marked, and named with its fix
        marked = [k for k, cell in enumerate(cells[2:5]) if "dominant" in cell["attrs"]["class"]]
        assert marked == [("implementation", "time_stepping", "space").index(part.dominant)]
        assert cells[6]["text"] == part.dominant.replace("_", " ")
        assert cells[7]["text"] == FIXES[part.dominant].replace("&", "&amp;")
    states = re.findall(r'<tr( class="failing")? data-simulator', text)
    assert sum(bool(state) for state in states) == len(failing) > 0
    assert states[:len(failing)] == [' class="failing"'] * len(failing)  # failing first


def test_html_comparison_table_shows_the_floor_and_the_cause(decomposed_report):
    outcome, folder = decomposed_report
    page = parse((folder / "index.html").read_text())
    assert len(page.rows) == len(outcome.comparisons)
    by_key = {(c.a, c.b, c.probe): c for c in outcome.comparisons}
    floors = [c for c in outcome.comparisons if c.floor_mV is not None]
    assert {c.kind for c in floors} == {"backends", "reference"}
    # the simulator-pair gate (1e-16 mV) was raised to the floor, and the page says so
    assert all(c.tolerance_mV == c.floor_mV > 1e-16 for c in floors)
    assert "raised to it" in page.all_text
    for row in page.rows:
        c = by_key[row["attrs"]["data-a"], row["attrs"]["data-b"], row["attrs"]["data-probe"]]
        cells = row["cells"]
        floor = cells[12]  # after result, pair, probe, 8 numbers and mismatched
        if c.floor_mV is None:
            assert floor["text"] == "" and "data-value" not in floor["attrs"]
        else:
            assert float(floor["attrs"]["data-value"]) == c.floor_mV
            assert floor["text"] == f"{format_mV(c.floor_mV)} tolerance raised to it"
        pair = cells[1]["text"]
        if c.passed is False:
            assert c.b == "analytic"
            [part] = [p for p in outcome.decomposition
                      if (p.simulator, p.probe) == (c.a, c.probe)]
            label = part.dominant.replace("_", " ")
            assert pair.endswith(f"cause: {label} \u2192 {SHORT_FIXES[part.dominant]}"), pair
        else:
            assert "cause" not in pair


def test_html_embeds_the_decomposition_figure(decomposed_report):
    _, folder = decomposed_report
    text = (folder / "index.html").read_text()
    section = parse(re.search(r'<section id="decomposition">.*?</section>', text, re.S)
                    .group(0))
    [source] = section.images
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    png = base64.b64decode(source[len(prefix):], validate=True)
    assert png == (folder / "decomposition.png").read_bytes()
    width, height = png_size(png)
    assert width > 800 and height > 500  # two simulators x two probes
    assert "decomposition.png" in parse(text).links


def _tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text``: its rows, each a list of stripped cells."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_has_a_consistent_decomposition_table_and_the_floor(decomposed_report):
    outcome, folder = decomposed_report
    text = (folder / "report.md").read_text()
    comparisons, decomposition = _tables(text)
    for table in (comparisons, decomposition):
        assert len({len(row) for row in table}) == 1, table[0]
        assert set("".join(table[1])) <= set("-:")
    # the comparison table: floor column beside the tolerance, the cause of failing rows
    head = comparisons[0]
    floor, cause = head.index("round-off floor (mV)"), head.index("cause \u2192 fix")
    assert head.index("tolerance (mV)") == floor - 1 and head[-1] == "result"
    for row in comparisons[2:]:
        if row[0] in ("arbor vs neuron", "arbor - discrete", "neuron - discrete"):
            assert row[floor].endswith("(raised)") and row[floor] != "(raised)"
        if row[-1].endswith("fail"):
            assert row[cause] in {"time stepping \u2192 smaller dt", "space \u2192 more CVs"}
        else:
            assert row[cause] == ""
    assert "tolerance asked for was below the floor" in text
    # the decomposition table: every simulator and probe (few of them), exact numbers
    assert len(decomposition) - 2 == len(outcome.decomposition) <= MAX_DECOMPOSITION_ROWS
    shown = {(row[0].strip("`"), row[1].strip("`")): row for row in decomposition[2:]}
    for part in outcome.decomposition:
        row = shown[part.simulator, part.probe]
        assert row[2:6] == [format_mV(v) for v in (part.implementation_mV,
                                                   part.time_stepping_mV, part.space_mV,
                                                   part.total_mV)]
        assert row[6] == f"{part.dominant.replace('_', ' ')} \u2192 {SHORT_FIXES[part.dominant]}"
    assert "simulation.dt\\_ms" in text and "more CVs" in text  # the full fixes
    assert "(decomposition.png)" in text and (folder / "decomposition.png").is_file()
    assert len(text) < 7000


def test_markdown_shows_each_simulators_worst_probe_when_there_are_many(seed):
    outcome = decomposed_check(seed)
    many = []
    for k in range(10):
        for simulator in SIMULATORS:
            total = 0.001 * (k + 1) + (0.5 if (simulator, k) == ("neuron", 3) else 0.0)
            many.append(Decomposition(simulator, f"p{k}", "discrete", 1e-13, total / 2,
                                      total, total, "space"))
    outcome.decomposition = many
    text = render_markdown(outcome, {"date_utc": "x"})
    decomposition = _tables(text)[1]
    assert [row[:2] for row in decomposition[2:]] == [
        ["`arbor`", "`p9` (worst of 10)"], ["`neuron`", "`p3` (worst of 10)"]]
    assert decomposition[3][5] == format_mV(0.504)


def test_report_json_validates_and_holds_the_decomposition(decomposed_report):
    outcome, folder = decomposed_report
    document = json.loads((folder / "report.json").read_text())
    jsonschema.validate(document, schema("report"))
    assert document["decomposition"] == [part.to_dict() for part in outcome.decomposition]
    # the schema describes the block: a wrong part name is rejected
    document["decomposition"][0]["dominant"] = "solver"
    with pytest.raises(jsonschema.ValidationError, match="solver"):
        jsonschema.validate(document, schema("report"))


def test_shipped_schemas_are_current():
    from importlib.resources import files

    from crosssim.schema import SCHEMA_NAMES, schema_text

    for name in SCHEMA_NAMES:
        shipped = (files("crosssim") / "schemas" / f"{name}.schema.json").read_text("utf-8")
        assert shipped == schema_text(name), f"run: crosssim schema {name} > ..."


def test_no_section_without_a_decomposition(tmp_path, seed):
    from report_fixtures import synthetic_check

    outcome = synthetic_check(seed)  # no semidiscrete or discrete reference
    assert outcome.decomposition == []
    folder = write_report(outcome, tmp_path, equilibria=None, now=NOW)
    assert 'id="decomposition"' not in (folder / "index.html").read_text()
    assert "Where the error comes from" not in (folder / "report.md").read_text()
    assert not (folder / "decomposition.png").exists()


def test_figure_shows_at_most_max_panels_probes_worst_first(tmp_path):
    from crosssim.report.figures import MAX_PANELS, decomposition_probes, plot_decomposition

    model = builtin_model("chain", {"n_cells": MAX_PANELS + 2})
    outcome = decomposed_check(model)
    probes = [probe.label for probe in model.effective_probes()]
    assert len(probes) > MAX_PANELS and len(outcome.decomposition) == 2 * len(probes)
    # space grows with the probe index (known_parts): the last probe is the worst
    assert decomposition_probes(outcome) == [probes[-1], *probes[-2:0:-1], probes[0]]
    path = plot_decomposition(outcome, tmp_path / "decomposition.png")
    width, height = png_size(path.read_bytes())
    assert height > width  # MAX_PANELS rows of two panels
    outcome.decomposition = []
    with pytest.raises(ValueError, match="no decomposition"):
        plot_decomposition(outcome, tmp_path / "none.png")
