"""Every code block of the README runs as written.

Blocks run in README order in one temporary folder (so a command can use the files an
earlier one wrote):

* ``toml``: a model (loaded and validated), or, by its first line, a suite file
  (``# ci/suite.toml``) or a trace descriptor (``# bench/published.toml``), written to that
  path and loaded;
* ``sh``: every command line runs with bash; its exit code must be 0, or N when the line's
  comment starts with ``exit N``;
* ``python``: executed; the ``test_*`` functions it defines are called;
* ``text`` and unlabelled blocks are output and layout, not code.

A block that must not run carries an HTML comment right before it, which this test
recognises and counts: ``<!-- readme-test: skip: REASON -->`` (not run) or
``<!-- readme-test: toml-only: REASON -->`` (parsed as TOML only).  Nothing is skipped
silently: an unknown language or marker fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_arbor, requires_neuron

from crosssim.model import loads_model

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
_BLOCK = re.compile(r"(?:<!-- readme-test: (?P<marker>[a-z-]+): (?P<reason>[^>]*?) -->\n)?"
                    r"```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
CODE = {"sh", "toml", "python"}
OUTPUT = {"text", ""}


def blocks() -> list[dict]:
    found = []
    for match in _BLOCK.finditer(README):
        line = README[:match.start("lang")].count("\n") + 1
        found.append({**match.groupdict(), "line": line})
    return found


def test_every_block_is_code_output_or_explicitly_marked():
    languages = {block["lang"] for block in blocks()}
    assert languages <= CODE | OUTPUT, languages
    markers = [(block["line"], block["marker"]) for block in blocks() if block["marker"]]
    assert {marker for _, marker in markers} <= {"skip", "toml-only"}
    assert len(markers) == 2, markers  # the set-up block and the plugin's pyproject
    assert all(block["reason"].strip() for block in blocks() if block["marker"])


def _published_files(folder: Path) -> None:
    """The descriptor's column files: the exact solution of two_cells in s and V, rounded
    to 7 significant digits, as published benchmarks ship them."""
    from crosssim.analytic import exact_cable
    from crosssim.builtin import builtin_model

    model = builtin_model("two_cells")
    exact = exact_cable(model)
    (folder / "ref").mkdir(parents=True, exist_ok=True)
    for probe, values in zip(exact.probes, exact.values_mV):
        rows = np.column_stack([exact.times_ms * 1e-3, values * 1e-3])
        np.savetxt(folder / "ref" / f"{probe}.txt", rows, fmt="%.7g",
                   header="time_s voltage_V")


def _toml(block: dict, workspace: Path) -> str:
    import tomllib

    body = block["body"]
    first = body.splitlines()[0]
    if block["marker"] == "toml-only":
        tomllib.loads(body)
        return "toml-only"
    if first.startswith("# ci/suite.toml"):
        from crosssim.suite import load_suite_file

        path = workspace / "ci" / "suite.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
        load_suite_file(path)
        return "suite"
    if first.startswith("# bench/published.toml"):
        from crosssim.builtin import builtin_model
        from crosssim.tracefiles import load_trace_files

        path = workspace / "bench" / "published.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
        _published_files(path.parent)
        load_trace_files([path], model=builtin_model("two_cells"))
        return "descriptor"
    if "[[mechanisms]]" in body:  # the NMODL example's file, where the model names it
        import shutil

        (workspace / "mechanisms").mkdir(exist_ok=True)
        shutil.copy(ROOT / "tests" / "data" / "mechanisms" / "myleak.mod",
                    workspace / "mechanisms" / "myleak.mod")
    model = loads_model(body, source=f"README.md line {block['line']}", base_dir=workspace)
    (workspace / f"{model.name}.toml").write_text(body)
    if not (workspace / "my_model.toml").exists():  # the first: the model the examples load
        (workspace / "my_model.toml").write_text(body)
    return "model"


def _expected_exit(line: str) -> int:
    comment = line.partition("#")[2].strip()
    found = re.match(r"exit (\d+)", comment)
    return int(found.group(1)) if found else 0


def _sh(block: dict, workspace: Path, env: dict) -> int:
    ran = 0
    for line in block["body"].splitlines():
        command = line.strip()
        if not command or command.startswith("#"):
            continue
        result = subprocess.run(["bash", "-c", command], cwd=workspace, env=env,
                                capture_output=True, text=True, timeout=600)
        expected = _expected_exit(command)
        assert result.returncode == expected, (
            f"README.md line {block['line']}: {command}\nexit {result.returncode}, "
            f"expected {expected}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        ran += 1
    return ran


def _python(block: dict, workspace: Path, monkeypatch) -> None:
    monkeypatch.chdir(workspace)
    namespace: dict = {"__name__": f"readme_line_{block['line']}"}
    exec(compile(block["body"], f"README.md line {block['line']}", "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()


@requires_arbor
@requires_neuron
def test_every_readme_code_block_runs(tmp_path, monkeypatch, cache_dir):
    workspace = tmp_path / "readme"
    workspace.mkdir()
    bin_dir = tmp_path / "bin"  # `crosssim` on PATH is this checkout's
    bin_dir.mkdir()
    (bin_dir / "crosssim").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m crosssim "$@"\n')
    (bin_dir / "crosssim").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("CROSSSIM_DEBUG", None)
    counts = {"skipped": [], "toml": [], "sh lines": 0, "python": 0}
    for block in blocks():
        if block["lang"] in OUTPUT:
            continue
        if block["marker"] == "skip":
            counts["skipped"].append(block["line"])
            continue
        if block["lang"] == "toml":
            counts["toml"].append(_toml(block, workspace))
        elif block["lang"] == "sh":
            counts["sh lines"] += _sh(block, workspace, env)
        elif block["lang"] == "python":
            _python(block, workspace, monkeypatch)
            counts["python"] += 1
        else:  # pragma: no cover - test_every_block_is_code_output_or_explicitly_marked
            pytest.fail(f"README.md line {block['line']}: unknown language {block['lang']!r}")
    assert len(counts["skipped"]) == 1, counts  # the set-up block only
    assert sorted(counts["toml"]) == ["descriptor", *["model"] * 4, "suite", "toml-only"], counts
    assert counts["python"] == 2 and counts["sh lines"] >= 12, counts
