"""The GitHub Actions example of ``docs/github-actions.md`` runs as written: its suite file
and the ``run:`` commands of its workflow, in a temporary repository of models."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import requires_arbor, requires_neuron

from crosssim.builtin import builtin_model
from crosssim.model import dumps_model

DOC = Path(__file__).resolve().parent.parent / "docs" / "github-actions.md"
SKIP = "# ci-test: skip"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_workflow_is_valid_yaml_and_names_every_output():
    (workflow,) = _blocks("yaml")
    steps = yaml.safe_load(workflow)["jobs"]["check"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    assert any("crosssim check" in command for command in commands)
    assert [SKIP in command for command in commands] == [True, False]
    uploaded = [step for step in steps if step.get("uses", "").startswith(
        "actions/upload-artifact")]
    assert uploaded and uploaded[0]["if"] == "always()"


@requires_arbor
@requires_neuron
def test_the_workflow_commands_run_locally(tmp_path):
    (suite,) = _blocks("toml")
    (workflow,) = _blocks("yaml")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "suite.toml").write_text(suite)
    (tmp_path / "models").mkdir()
    seed = dumps_model(builtin_model("two_cells"))
    for name in ("soma", "dendrite"):
        (tmp_path / "models" / f"{name}.toml").write_text(
            seed.replace('name = "two_cells"', f'name = "{name}"'))
    bin_dir = tmp_path / "bin"  # `crosssim` on PATH is this checkout's
    bin_dir.mkdir()
    (bin_dir / "crosssim").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m crosssim "$@"\n')
    (bin_dir / "crosssim").chmod(0o755)
    summary = tmp_path / "step-summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    ran = skipped = 0
    for step in yaml.safe_load(workflow)["jobs"]["check"]["steps"]:
        command = step.get("run")
        if command is None:
            continue
        if SKIP in command:
            skipped += 1
            continue
        assert "pip" not in command, "a step that installs must carry " + SKIP
        result = subprocess.run(["bash", "-e", "-c", command], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        ran += 1
    assert (ran, skipped) == (1, 1)  # the install step is the only one not run here
    document = json.loads((tmp_path / "reports" / "check.json").read_text())
    labels = [member["label"] for member in document["models"]]
    assert labels == ["dendrite", "soma", "ring-5"]
    assert document["verdict"] == "pass"
    for label in labels:
        assert (tmp_path / "reports" / label / "check.json").is_file()
    text = summary.read_text()
    assert "crosssim check: 3 models" in text and "![" not in text
