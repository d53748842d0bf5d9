"""The source registry: built-ins, third-party sources through entry points, and traces from
files, each joining check with the pairing and gating of its kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_arbor, requires_neuron

from crosssim.builtin import builtin_model
from crosssim.check import check, select_sources
from crosssim.errors import UsageError
from crosssim.sources import known_sources, source_spec, source_table

FAKE_SIMULATOR = '''
"""A third-party simulator for the test: Arbor's traces plus 0.5 mV."""
DESCRIPTION = "Arbor plus 0.5 mV (test plugin)"
REQUIRES = ("arbor",)


def run(model, **options):
    from crosssim.result import RunResult
    from crosssim.sources import run_source

    arbor = run_source("arbor", model)
    return RunResult("fake", arbor.probes, arbor.times_ms, arbor.values_mV + 0.5)
'''

FAKE_REFERENCE = '''
"""A third-party reference for the test: the exact solution shifted by 0.01 mV."""
KIND = "reference"
DESCRIPTION = "exact cable plus 0.01 mV (test plugin)"


def run(model, **options):
    from crosssim.analytic import exact_cable
    from crosssim.result import RunResult

    exact = exact_cable(model)
    return RunResult("shifted", exact.probes, exact.times_ms, exact.values_mV + 0.01)
'''

BROKEN = '''
raise ImportError("this plugin needs a package that is not here")
'''


def _plugin_dir(tmp_path: Path) -> Path:
    """A folder that, on sys.path, is an installed distribution registering three sources
    in the ``crosssim.sources`` entry-point group (nothing inside crosssim is touched)."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "fakesim.py").write_text(FAKE_SIMULATOR)
    (root / "shiftedref.py").write_text(FAKE_REFERENCE)
    (root / "brokensim.py").write_text(BROKEN)
    info = root / "crosssim_test_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crosssim-test-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [crosssim.sources]
        fake = fakesim
        shifted = shiftedref
        broken = brokensim
        """))
    return root


def _crosssim(tmp_path: Path, *args: str, plugins: Path | None = None):
    env = {**os.environ}
    env.pop("CROSSSIM_DEBUG", None)
    if plugins is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(plugins), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "crosssim", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_builtin_sources_have_a_kind_and_a_run_target():
    assert known_sources("simulator")[:2] == ["arbor", "neuron"]
    assert known_sources("reference")[:2] == ["analytic", "lumped"]
    rows = {row["name"]: row for row in source_table()}
    assert rows["arbor"]["kind"] == "simulator" and rows["analytic"]["kind"] == "reference"
    assert all(row["origin"] == "built-in" for name, row in rows.items()
               if name in ("arbor", "neuron", "analytic", "lumped"))
    assert source_spec("lumped").target == "crosssim.analytic.lumped_model:lumped"


def test_unknown_source_names_the_known_ones():
    with pytest.raises(UsageError, match="unknown source 'brian2'.*simulators: arbor, neuron"):
        select_sources(["brian2"], None)


def test_a_default_source_that_is_not_installed_is_left_out_with_a_note(monkeypatch):
    from crosssim import sources

    spec = sources.SourceSpec("ghost", "simulator", "ghost_sim", ("ghost_sim_package",),
                              "not installed anywhere", optional=True)
    monkeypatch.setitem(sources._REGISTRY, "ghost", spec)
    kinds, notes = select_sources(None, [])
    assert "ghost" not in kinds and {"arbor", "neuron"} <= set(kinds)
    [note] = notes
    assert (note.kind, note.subject, note.action) == ("source-left-out", "ghost",
                                                      "pip install ghost_sim_package")
    # named explicitly, it runs and fails with the install hint (verdict error)
    seed = builtin_model("two_cells")
    outcome = check(seed, backends=["ghost"], references=[])
    assert outcome.verdict == "error"
    assert "pip install ghost_sim_package" in outcome.failures["ghost"]


@requires_arbor
def test_entry_point_simulator_joins_check_and_fails_by_half_a_millivolt(tmp_path):
    """The done criterion of the registry: a fake simulator registered only through an
    entry point is paired with Arbor symmetrically and fails by 0.5 mV."""
    plugins = _plugin_dir(tmp_path)
    done = _crosssim(tmp_path, "check", "--backend", "arbor,fake", "--references", "none",
                     "--format", "json", plugins=plugins)
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert {"name": "fake", "kind": "simulator"} in document["sources"]
    pairs = [c for c in document["comparisons"] if (c["a"], c["b"]) == ("arbor", "fake")]
    assert len(pairs) == 2 and all(c["kind"] == "backends" for c in pairs)
    assert all(c["passed"] is False for c in pairs)
    assert all(c["max_abs_mV"] == pytest.approx(0.5, abs=1e-9) for c in pairs)
    text = _crosssim(tmp_path, "check", "--backend", "arbor,fake", "--references", "none",
                     plugins=plugins)
    assert text.returncode == 1
    assert "arbor vs fake" in text.stdout and "FAIL" in text.stdout
    assert "Max absolute difference: 0.5 mV" in text.stdout


@requires_arbor
def test_entry_point_reference_is_one_sided_and_gated_by_its_own_tolerance(tmp_path):
    plugins = _plugin_dir(tmp_path)
    args = ("check", "--backend", "arbor", "--references", "analytic,shifted", "--set",
            "discretization.cvs_per_cell=101", "--set", "simulation.dt_ms=0.001",
            "--format", "json")
    reported = _crosssim(tmp_path, *args, plugins=plugins)
    assert reported.returncode == 0, reported.stderr
    document = json.loads(reported.stdout)
    shifted = [c for c in document["comparisons"] if c["b"] == "shifted" and c["a"] == "arbor"]
    assert shifted and all(c["kind"] == "reference" and c["passed"] is None for c in shifted)
    # reference vs reference: reported, never gated, and 0.01 mV apart
    refs = [c for c in document["comparisons"] if {c["a"], c["b"]} == {"analytic", "shifted"}]
    assert all(c["kind"] == "references" and c["passed"] is None for c in refs)
    assert all(c["max_abs_mV"] == pytest.approx(0.01, rel=1e-6) for c in refs)
    gated = _crosssim(tmp_path, *args, "--tolerance", "shifted=0.005", plugins=plugins)
    assert gated.returncode == 1
    failing = [c for c in json.loads(gated.stdout)["comparisons"] if c["passed"] is False]
    assert {c["b"] for c in failing} == {"shifted"}
    assert all(c["tolerance_mV"] == 0.005 for c in failing)


def test_sources_command_lists_plugins_and_broken_ones(tmp_path):
    plugins = _plugin_dir(tmp_path)
    done = _crosssim(tmp_path, "sources", "--format", "json", plugins=plugins)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["fake"]["kind"] == "simulator"
    assert rows["fake"]["origin"] == "entry point of crosssim-test-plugins"
    assert rows["shifted"]["kind"] == "reference"
    assert "failed to import" in rows["broken"]["description"]
    assert rows["broken"]["default"] is False  # never run unless named
    text = _crosssim(tmp_path, "sources", plugins=plugins)
    assert "fake" in text.stdout and "reference" in text.stdout


def test_a_broken_plugin_named_explicitly_is_an_error_outcome(tmp_path):
    plugins = _plugin_dir(tmp_path)
    done = _crosssim(tmp_path, "check", "--backend", "broken", "--references", "none",
                     "--format", "json", plugins=plugins)
    assert done.returncode == 3
    [error] = json.loads(done.stdout)["errors"]
    assert error["source"] == "broken" and "not here" in error["reason"]


@requires_arbor
@requires_neuron
def test_traces_from_a_file_are_a_source(tmp_path):
    """NEURON's traces written by 'crosssim run' and read back agree with a live Arbor run
    exactly as live NEURON does; a reference in seconds and volts is one-sided."""
    done = _crosssim(tmp_path, "run", "--backend", "neuron", "--out", "ext", "--no-plot",
                     "--no-analytic", "--quiet")
    assert done.returncode == 0, done.stderr
    checked = _crosssim(tmp_path, "check", "--backend", "arbor", "--references", "none",
                        "--traces", "ext/traces.csv", "--format", "json")
    assert checked.returncode == 0, checked.stderr
    document = json.loads(checked.stdout)
    assert {"name": "neuron", "kind": "simulator"} in document["sources"]
    [a_gj, b_gj] = [c for c in document["comparisons"] if (c["a"], c["b"]) == ("arbor",
                                                                                "neuron")]
    assert a_gj["max_abs_mV"] < 1e-11 and b_gj["max_abs_mV"] < 1e-11

    # a published-style reference: one file per probe, seconds and volts, 7 digits
    from crosssim.analytic import exact_cable

    exact = exact_cable(builtin_model("two_cells"))
    ref = tmp_path / "bench" / "ref"
    ref.mkdir(parents=True)
    for probe, values in zip(exact.probes, exact.values_mV):
        lines = ["# exact cable solution, probe " + probe, "time(s) voltage(V)"]
        lines += [f"{t * 1e-3:.7g} {v * 1e-3:.7g}" for t, v in zip(exact.times_ms, values)]
        (ref / f"{probe}.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "bench" / "published.toml").write_text(textwrap.dedent("""\
        name = "published"
        kind = "reference"
        time_unit = "s"
        voltage_unit = "V"
        [files]
        a_gj = "ref/a_gj.txt"
        b_gj = "ref/b_gj.txt"
        """))
    checked = _crosssim(tmp_path, "check", "--backend", "arbor", "--references", "analytic",
                        "--traces", "bench/published.toml", "--tolerance",
                        "published=0.2", "--format", "json")
    assert checked.returncode == 0, checked.stderr
    comparisons = json.loads(checked.stdout)["comparisons"]
    versus_exact = [c for c in comparisons if {c["a"], c["b"]} == {"analytic", "published"}]
    assert all(c["kind"] == "references" for c in versus_exact)
    assert max(c["max_abs_mV"] for c in versus_exact) < 1e-5  # 7 significant digits of V
    gated = [c for c in comparisons if (c["a"], c["b"]) == ("arbor", "published")]
    assert all(c["tolerance_mV"] == 0.2 and c["passed"] for c in gated)
    arbor_exact = {c["probe"]: c["max_abs_mV"] for c in comparisons
                   if (c["a"], c["b"]) == ("arbor", "analytic")}
    for c in gated:
        assert c["max_abs_mV"] == pytest.approx(arbor_exact[c["probe"]], abs=1e-5)


def test_a_bad_trace_file_is_refused_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("probe,t_ms,v_mV\na_gj,0,-100\na_gj,0.01,abc\n")
    done = _crosssim(tmp_path, "check", "--traces", "bad.csv", "--out", "out")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "bad.csv: line 3" in done.stderr
    assert "non-numeric" in done.stderr
    assert not (tmp_path / "out").exists()


def test_file_source_missing_a_probe_is_reported_not_dropped(tmp_path):
    """The file lacks b_gj: a_gj is compared, b_gj is named in a note."""
    seed = builtin_model("two_cells")
    t = seed.simulation.sample_times_ms()
    rows = ["probe,t_ms,v_mV"] + [f"a_gj,{x:.17g},-100" for x in t]
    path = tmp_path / "half.csv"
    path.write_text("\n".join(rows) + "\n")

    def runner(name, model):
        from crosssim.result import RunResult

        return RunResult(name, ["a_gj", "b_gj"], t, np.full((2, t.size), -100.0))

    outcome = check(seed, backends=["arbor"], references=[], traces=[path], runner=runner)
    compared = {(c.a, c.b, c.probe) for c in outcome.comparisons}
    assert compared == {("arbor", "half", "a_gj")}
    assert any(note.kind == "probe-not-compared" and "b_gj" in note.text()
               for note in outcome.notes)
    assert outcome.to_document()["notes"]


def test_runresult_is_public_and_the_registry_imports_no_simulator():
    code = ("import sys, crosssim\n"
            "from crosssim import RunResult\n"
            "from crosssim.sources import source_table, available_sources\n"
            "rows = source_table(); available_sources()\n"
            "assert RunResult.__module__ == 'crosssim.result'\n"
            "print(sorted(m for m in ('arbor', 'neuron', 'jax', 'jaxley') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_run_says_which_default_simulator_was_left_out(tmp_path, monkeypatch, capsys):
    """A default simulator that is not installed (an optional extra) is left out of 'run'
    with one line saying how to add it; the installed ones run."""
    from crosssim import sources
    from crosssim.cli import main

    spec = sources.SourceSpec("ghost", "simulator", "ghost_sim", ("ghost_sim_package",),
                              "not installed anywhere", optional=True,
                              install="crosssim[ghost]")
    monkeypatch.setitem(sources._REGISTRY, "ghost", spec)
    ran = []
    monkeypatch.setattr(sources, "run_source",
                        lambda name, model: ran.append(name) or _fake(name, model))
    assert main(["run", "--out", str(tmp_path), "--no-plot", "--no-analytic", "--quiet",
                 "--set", "simulation.t_stop_ms=0.1"]) == 0
    err = capsys.readouterr().err
    assert ("note: ghost: simulator not installed, left out of this run "
            "(fix: pip install 'crosssim[ghost]')") in err
    assert "ghost" not in ran and "arbor" in ran


def _fake(name, model):
    from crosssim.result import RunResult

    t = model.simulation.sample_times_ms()
    labels = [probe.label for probe in model.effective_probes()]
    return RunResult(name, labels, t, np.full((len(labels), t.size), -65.0))
