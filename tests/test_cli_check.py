"""``crosssim check`` end to end, in a subprocess: exit codes 0/1/2/3 each from a real case,
the JSON document against its schema, the JUnit XML, ``--out`` and ``--report``."""

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

from crosssim.schema import schema


def _validate(instance, name="check"):
    """Validate ``instance`` against crosssim's published schema ``name`` (jsonschema)."""
    jsonschema.validate(instance, schema(name))


def crosssim(tmp_path: Path, *args: str, env: dict | None = None, timeout: float = 120):
    """Run ``python -m crosssim check ARGS`` in ``tmp_path``; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CROSSSIM_DEBUG", None)
    if "--backend" not in args:  # the core two: an installed Jaxley would add a JAX process
        args = (*args, "--backend", "arbor,neuron")
    return subprocess.run([sys.executable, "-m", "crosssim", "check", *args], cwd=tmp_path,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def test_schema_rejects_a_broken_document():
    document = {"model": "m", "verdict": "maybe", "sources": [], "comparisons": [],
                "errors": [], "notes": [], "wall_time_s": {}}
    with pytest.raises(jsonschema.ValidationError, match="maybe"):
        _validate(document)
    document["verdict"] = "pass"
    _validate(document)
    document["notes"] = [{"kind": "stiff-junction", "subject": "gap_junctions.0"}]
    with pytest.raises(jsonschema.ValidationError, match="message"):
        _validate(document)
    del document["verdict"]
    document["notes"] = []
    with pytest.raises(jsonschema.ValidationError, match="verdict"):
        _validate(document)


@requires_arbor
@requires_neuron
def test_builtin_example_prints_the_table_and_passes(tmp_path):
    """The done criterion: ``crosssim check`` on the built-in example exits 0."""
    result = crosssim(tmp_path, "--quiet")
    assert result.stdout.startswith("crosssim check: two_cells")
    assert "arbor vs neuron" in result.stdout and "neuron vs analytic" in result.stdout
    assert result.returncode == 0, (
        "the built-in's own tolerances must pass on its own model; 1 CV/cell vs the exact "
        "cable differs by 0.105 mV at t = 0.01 ms (measured), see the suggested tolerance:\n"
        + result.stdout + result.stderr)
    assert result.stdout.rstrip().splitlines()[-1].startswith("PASS")


@requires_arbor
@requires_neuron
def test_exit_0_json_document_junit_out_and_report(tmp_path):
    junit = tmp_path / "check.xml"
    out = tmp_path / "out"
    result = crosssim(tmp_path, "--references", "analytic,lumped", "--format", "json",
                      "--junit", str(junit), "--out", str(out),
                      "--tolerance-analytic", "0.2", "--report")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # stdout is exactly one JSON document
    _validate(document)
    assert document["verdict"] == "pass" and document["errors"] == []
    assert len(document["comparisons"]) == 6 * 2
    pair = next(c for c in document["comparisons"] if (c["a"], c["b"]) == ("arbor", "neuron"))
    assert pair["passed"] is True and pair["max_abs_mV"] <= 1e-9
    assert "[1/4] arbor: running" in result.stderr  # progress on stderr
    # one folder per model under --out; the document lists what was written
    assert json.loads((out / "two_cells" / "check.json").read_text()) == document
    assert document["outputs"]["report_md"].startswith(str(out / "two_cells"))
    header = (out / "two_cells" / "traces.csv").read_text().splitlines()[0]
    assert header == "backend,probe,t_ms,v_mV"
    sources = {line.split(",")[0]
               for line in (out / "two_cells" / "traces.csv").read_text().splitlines()[1:]}
    assert sources == {"arbor", "neuron", "analytic", "lumped"}
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("12", "0", "0")
    reports = [path for path in (out / "two_cells").iterdir() if path.is_dir()]
    assert len(reports) == 1 and (reports[0] / "index.html").is_file()


@requires_arbor
@requires_neuron
def test_exit_1_when_a_tolerance_is_below_the_observed_deviation(tmp_path):
    junit = tmp_path / "check.xml"
    out = tmp_path / "out"
    result = crosssim(tmp_path, "--references", "analytic,lumped", "--tolerance-analytic",
                      "0.01", "--junit", str(junit),
                      "--out", str(out), "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    text = result.stdout
    assert "Mismatched samples:" in text
    assert "Worst sample: t = 0.01 ms: arbor = " in text and "analytic = " in text
    assert "Suggested tolerance: analytic_abs_mV = 0.16 mV" in text
    assert "--tolerance-analytic 0.16" in text
    assert "FAIL: 4 of 6 gated comparisons exceed tolerance" in text
    document = json.loads((out / "two_cells" / "check.json").read_text())
    _validate(document)
    assert document["verdict"] == "fail"
    failing = [c for c in document["comparisons"] if c["passed"] is False]
    assert len(failing) == 4 and all(c["suggested_tolerance_mV"] == 0.16 for c in failing)
    cases = ET.parse(junit).getroot().iter("testcase")
    failures = [case for case in cases if case.find("failure") is not None]
    assert len(failures) == 4
    assert failures[0].get("name").endswith("vs analytic @ a_gj")
    assert "Suggested tolerance" in failures[0].find("failure").text


@pytest.mark.parametrize("args, stderr", [
    (["--set", "cells.a.length_um=-1"], "cells.0(a).length_um"),
    (["no_such_model.toml"], "file not found"),
    (["no_such_builtin"], "unknown built-in model"),
    (["--tolerance-analytic", "abc"], "not a number"),
    (["--backend", "nest"], "unknown source"),
    (["--window-start", "7"], "after t_stop_ms"),
])
def test_exit_2_usage_or_invalid_model_prints_no_json(tmp_path, args, stderr):
    result = crosssim(tmp_path, "--format", "json", *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""  # json mode: one document or nothing
    assert stderr in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback


@requires_neuron
def test_exit_3_when_the_neuron_process_crashes(tmp_path):
    result = crosssim(tmp_path, "--backend", "neuron", "--format", "json", "--quiet",
                      env={"CROSSSIM_TEST_CRASH": "segv"})
    assert result.returncode == 3, result.stderr
    document = json.loads(result.stdout)
    _validate(document)
    assert document["verdict"] == "error"
    assert [error["source"] for error in document["errors"]] == ["neuron"]
    assert "SIGSEGV" in document["errors"][0]["reason"]
    assert all("neuron" not in (c["a"], c["b"]) for c in document["comparisons"])


def test_exit_3_when_a_backend_cannot_be_imported(tmp_path):
    hidden = tmp_path / "hide" / "arbor"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("arbor hidden by a test")\n')
    result = crosssim(tmp_path, "--backend", "arbor", "--quiet",
                      env={"PYTHONPATH": str(tmp_path / "hide")})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "arbor: FAILED:" in result.stdout and "arbor hidden by a test" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("ERROR: 1 source(s) failed")
