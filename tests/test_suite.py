"""Several models as one check (``crosssim.suite``): members from files, globs, built-in
names and suite files; one verdict; one JUnit file with a testsuite per model; the CI step
summary; the suite document against its schema; per-model output folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from conftest import requires_arbor, requires_neuron
from report_fixtures import fake_source

from crosssim.builtin import builtin_model
from crosssim.errors import InvalidModelError, UsageError
from crosssim.model import dumps_model
from crosssim.schema import schema
from crosssim.suite import SuiteOutcome, check_suite, load_members


def _write_models(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    seed = dumps_model(builtin_model("two_cells"))
    (folder / "a.toml").write_text(seed.replace('name = "two_cells"', 'name = "alpha"'))
    (folder / "b.toml").write_text(seed.replace('name = "two_cells"', 'name = "beta"'))


def _synthetic(members, **options) -> SuiteOutcome:
    return check_suite(members, backends=["arbor", "neuron"],
                       references=["analytic", "lumped"],
                       runner=lambda name, model: fake_source(name, model), **options)


def test_members_from_files_globs_builtins_and_a_suite_file(tmp_path, monkeypatch):
    _write_models(tmp_path / "models")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "suite.toml").write_text(
        '[[models]]\nmodel = "../models/*.toml"\n'
        '[[models]]\nmodel = "ring"\nname = "ring-5"\nparams = { n_cells = 5 }\n'
        'set = ["simulation.t_stop_ms=2"]\ntolerance = { analytic = 0.5, lumped = "none" }\n'
        'window_start_ms = 0.02\n')
    monkeypatch.chdir(tmp_path)
    members, suites = load_members(["ci/suite.toml", "models/a.toml", "two_cells"])
    assert suites == ["ci/suite.toml"]
    assert [m.label for m in members] == ["alpha", "beta", "ring-5", "alpha-2", "two_cells"]
    ring = members[2]
    assert len(ring.model.cells) == 5 and ring.model.simulation.t_stop_ms == 2
    assert ring.tolerances == {"analytic": 0.5, "lumped": None}
    assert ring.window_start_ms == 0.02
    assert members[0].source == str(Path("ci") / "../models/a.toml")
    globbed, _ = load_members(["models/*.toml"], overrides=["simulation.t_stop_ms=1"])
    assert [m.model.simulation.t_stop_ms for m in globbed] == [1, 1]


@pytest.mark.parametrize("text, message", [
    ('[[models]]\nmodel = "ring"\ncolour = 1\n', "models.0.colour"),
    ('[[models]]\nmodel = "nope.toml"\n', "file not found"),
    ('[[models]]\nmodel = "*.nothing"\n', "matches no file"),
    ('[[models]]\nmodel = "two_cells"\nname = "../x"\n', "models.0.name"),
])
def test_a_bad_suite_file_is_refused_before_anything_runs(tmp_path, text, message):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    with pytest.raises((InvalidModelError, UsageError), match=message.replace(".", r"\.")):
        load_members([str(path)])


def test_one_verdict_the_worst_and_a_junit_testsuite_per_model(tmp_path, monkeypatch):
    _write_models(tmp_path)
    monkeypatch.chdir(tmp_path)
    members, _ = load_members(["a.toml", "b.toml"])
    members[1].tolerances = {"analytic": 1e-4}  # as a suite file's tolerance would
    suite = _synthetic(members)
    assert [r.outcome.verdict for r in suite.results] == ["pass", "fail"]
    assert (suite.verdict, suite.exit_code, suite.counts()) == (
        "fail", 1, {"pass": 1, "fail": 1, "error": 0})
    document = json.loads(json.dumps(suite.to_document()))
    jsonschema.validate(document, schema("suite"))
    assert [m["label"] for m in document["models"]] == ["alpha", "beta"]
    from crosssim.report.junit import junit_bytes

    root = ET.fromstring(junit_bytes(suite))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["crosssim check alpha", "crosssim check beta"]
    assert int(root.get("failures")) == sum(int(s.get("failures")) for s in suites) > 0
    assert suites[0].get("failures") == "0"
    cases = {case.get("classname") for case in root.iter("testcase")}
    assert cases == {"alpha", "beta"}
    broken = check_suite(members[:1], backends=["arbor", "neuron"], references=["analytic"],
                         runner=lambda name, model: fake_source(name, model, broken="neuron"))
    assert (broken.verdict, broken.exit_code) == ("error", 3)


def test_the_step_summary_shows_no_image_and_every_model_worst_first(tmp_path, monkeypatch):
    from crosssim.report.summary import render_summary

    _write_models(tmp_path)
    monkeypatch.chdir(tmp_path)
    members, _ = load_members(["a.toml", "b.toml"])
    members[1].tolerances = {"analytic": 1e-4}
    text = render_summary(_synthetic(members))
    assert text.startswith("### \u274c FAIL \u00b7 crosssim check: 2 models")
    assert "1 of 2 models exceed a tolerance" in text
    assert "![" not in text and "](" not in text and "<img" not in text
    assert text.index("`beta`") < text.index("`alpha`")  # failing first
    assert "<details open><summary>\u274c FAIL <code>beta</code>" in text
    assert "```text" in text and "arbor - analytic" in text


def _crosssim(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("CROSSSIM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "crosssim", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@requires_arbor
@requires_neuron
def test_check_several_models_one_exit_code_document_junit_summary_folders(tmp_path):
    _write_models(tmp_path / "models")
    result = _crosssim(tmp_path, "check", "models/a.toml", "models/b.toml", "--quiet",
                       "--references", "analytic", "--out", "reports", "--report",
                       "--junit", "reports/junit.xml", "--summary", "summary.md",
                       "--format", "json", "--set", "cells.b.e_leak_mV=-61")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("suite"))
    assert document["verdict"] == "pass" and document["counts"]["pass"] == 2
    for member in document["models"]:
        outputs = member["outputs"]
        folder = tmp_path / "reports" / member["label"]
        assert outputs["check_json"] == str(Path("reports") / member["label"] / "check.json")
        saved = json.loads((folder / "check.json").read_text())
        assert saved == {**member["check"], "outputs": outputs}
        assert (tmp_path / outputs["report_md"]).is_file()
        assert Path(outputs["report_html"]).parent.parent == Path("reports") / member["label"]
    assert len(ET.parse(tmp_path / "reports" / "junit.xml").getroot().findall("testsuite")) == 2
    assert "`alpha`" in (tmp_path / "summary.md").read_text()
    failing = _crosssim(tmp_path, "check", "models/a.toml", "two_cells", "--quiet",
                        "--references", "analytic", "--tolerance-analytic", "0.01")
    assert failing.returncode == 1, failing.stderr
    assert failing.stdout.rstrip().splitlines()[-1] == "FAIL: 2 of 2 models exceed a tolerance"


@requires_arbor
@requires_neuron
def test_one_model_keeps_its_document_and_writes_into_its_own_folder(tmp_path):
    result = _crosssim(tmp_path, "check", "--quiet", "--references", "analytic",
                       "--out", "out", "--format", "json", "--report")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("check"))
    assert document["model"] == "two_cells"
    assert document["outputs"]["check_json"] == str(Path("out/two_cells/check.json"))
    assert document["outputs"]["report_md"].endswith("report.md")
    assert (tmp_path / document["outputs"]["report_md"]).is_file()
    assert json.loads((tmp_path / "out/two_cells/check.json").read_text()) == document
    plain = _crosssim(tmp_path, "check", "--quiet", "--references", "analytic",
                      "--format", "json")
    assert "outputs" not in json.loads(plain.stdout)  # nothing written: the document as ever


def test_shipped_schemas_are_current():
    from crosssim.schema import SCHEMA_NAMES, schema_text

    folder = Path(__file__).resolve().parent.parent / "crosssim" / "schemas"
    for name in SCHEMA_NAMES:
        shipped = (folder / f"{name}.schema.json").read_text()
        assert shipped == schema_text(name), (
            f"crosssim/schemas/{name}.schema.json is stale: crosssim schema {name} > it")
