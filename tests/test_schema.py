"""The JSON Schemas: generated from the types, shipped current, and real outputs valid."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

import jsonschema
import pytest
from report_fixtures import synthetic_check

from crosssim.builtin import builtin_model
from crosssim.schema import SCHEMA_NAMES, schema, schema_text


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_shipped_schema_is_the_generated_one(name):
    shipped = files("crosssim") / "schemas" / f"{name}.schema.json"
    assert shipped.read_text() == schema_text(name), (
        f"crosssim/schemas/{name}.schema.json is stale: regenerate it with "
        f"'crosssim schema {name} > crosssim/schemas/{name}.schema.json'")
    jsonschema.Draft202012Validator.check_schema(schema(name))


def test_schema_command_prints_the_schema():
    done = subprocess.run([sys.executable, "-m", "crosssim", "schema", "check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == schema("check")


def test_model_files_validate_and_typos_do_not():
    model = builtin_model("ring", {"n_cells": 3}).to_dict()
    jsonschema.validate(model, schema("model"))
    model["simulaton"] = model.pop("simulation")
    with pytest.raises(jsonschema.ValidationError, match="simulaton"):
        jsonschema.validate(model, schema("model"))
    bad = builtin_model("two_cells").to_dict()
    bad["cells"][0]["radius_um"] = -3.0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("model"))


def test_check_document_and_report_json_validate(tmp_path):
    from crosssim.report import write_report

    model = builtin_model("two_cells")
    outcome = synthetic_check(model, analytic_abs_mV=0.01)
    document = json.loads(json.dumps(outcome.to_document()))
    jsonschema.validate(document, schema("check"))
    folder = write_report(outcome, tmp_path)
    report = json.loads((folder / "report.json").read_text())
    jsonschema.validate(report, schema("report"))
    report.pop("environment")
    with pytest.raises(jsonschema.ValidationError, match="environment"):
        jsonschema.validate(report, schema("report"))
