"""Every bad input: exit code 2, one line on stderr naming the file and the field, no
traceback, nothing written to the output folder -- for ``run`` and for ``check`` (which
must also print no JSON and write no JUnit XML)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crosssim.cli import main

GOOD = """\
name = "pair"
[simulation]
t_stop_ms = 1.0
dt_ms = 0.025
[discretization]
cvs_per_cell = 3
[[cells]]
name = "a"
length_um = 100.0
radius_um = 3.0
cm_F_per_m2 = 0.005
ra_ohm_cm = 90.0
g_leak_S_per_cm2 = 0.001
e_leak_mV = -100.0
[[cells]]
name = "b"
length_um = 100.0
radius_um = 3.0
cm_F_per_m2 = 0.005
ra_ohm_cm = 90.0
g_leak_S_per_cm2 = 0.001
e_leak_mV = -60.0
[[gap_junctions]]
cells = ["a", "b"]
x = [0.5, 0.5]
g_uS = 0.01
[[probes]]
cell = "a"
x = 0.5
name = "pa"
[[stimuli]]
cell = "b"
x = 0.5
delay_ms = 0.2
duration_ms = 0.5
amplitude_nA = 0.1
[tolerance]
backends_abs_mV = 1e-6
"""


def edit(old: str, new: str, *, count: int = 1) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, count)


# (case id, model text, words the field part must contain, words the message must contain)
MODEL_CASES = [
    ("not-toml", "name = [unclosed\n", "", "not valid TOML"),
    ("binary", "\x00\x01\x02", "", "not valid TOML"),
    ("unknown-key-top", "colour = 1\n" + GOOD, "colour", "unknown key"),
    ("unknown-key-cell", edit("e_leak_mV = -100.0", "e_leak_mV = -100.0\nleak = 1"),
     "cells.0(a).leak", "unknown key"),
    ("typo-section", edit("[simulation]", "[simulaton]"), "simulaton", "unknown key"),
    ("wrong-type-string", edit("length_um = 100.0", 'length_um = "100"'),
     "cells.0(a).length_um", "number"),
    ("wrong-type-bool", edit("g_uS = 0.01", "g_uS = true"), "gap_junctions.0.g_uS", "number"),
    ("wrong-type-table", edit("cvs_per_cell = 3", "cvs_per_cell = [3]"),
     "discretization.cvs_per_cell", "integer"),
    ("missing-name", edit('name = "pair"\n', ""), "name", "missing"),
    ("missing-radius", edit("radius_um = 3.0\n", ""), "cells.0(a).radius_um", "missing"),
    ("missing-simulation", edit("[simulation]\nt_stop_ms = 1.0\ndt_ms = 0.025\n", ""),
     "simulation", "missing"),
    ("zero-length", edit("length_um = 100.0", "length_um = 0.0"), "cells.0(a).length_um",
     "greater than 0"),
    ("negative-radius", edit("radius_um = 3.0", "radius_um = -3.0"), "cells.0(a).radius_um",
     "greater than 0"),
    ("zero-cm", edit("cm_F_per_m2 = 0.005", "cm_F_per_m2 = 0"), "cells.0(a).cm_F_per_m2",
     "greater than 0"),
    ("negative-ra", edit("ra_ohm_cm = 90.0", "ra_ohm_cm = -90.0"), "cells.0(a).ra_ohm_cm",
     "greater than 0"),
    ("zero-leak", edit("g_leak_S_per_cm2 = 0.001", "g_leak_S_per_cm2 = 0.0"),
     "cells.0(a).g_leak_S_per_cm2", "greater than 0"),
    ("zero-dt", edit("dt_ms = 0.025", "dt_ms = 0.0"), "simulation.dt_ms", "greater than 0"),
    ("negative-tstop", edit("t_stop_ms = 1.0", "t_stop_ms = -1.0"), "simulation.t_stop_ms",
     "greater than 0"),
    ("dt-above-tstop", edit("dt_ms = 0.025", "dt_ms = 2.0"), "simulation", "larger than"),
    ("tstop-not-multiple", edit("dt_ms = 0.025", "dt_ms = 0.3"), "simulation", "whole multiple"),
    ("sample-not-multiple", edit("dt_ms = 0.025", "dt_ms = 0.025\nsample_dt_ms = 0.03"),
     "simulation", "sample_dt_ms"),
    ("x-above-one", edit("x = [0.5, 0.5]", "x = [0.5, 1.2]"), "gap_junctions.0.x", "[0, 1]"),
    ("probe-x-negative", edit('x = 0.5\nname = "pa"', 'x = -0.1\nname = "pa"'), "probes.0(pa).x",
     "greater than or equal to 0"),
    ("junction-unknown-cell", edit('cells = ["a", "b"]', 'cells = ["a", "q"]'),
     "gap_junctions.0.cells", "unknown cell 'q'"),
    ("junction-to-itself", edit('cells = ["a", "b"]', 'cells = ["a", "a"]'),
     "gap_junctions.0", "itself"),
    ("duplicate-cell", edit('name = "b"', 'name = "a"'), "cells.1.name", "duplicate"),
    ("duplicate-probe", GOOD + '[[probes]]\ncell = "b"\nx = 0.1\nname = "pa"\n', "probes.1.name",
     "duplicate"),
    ("probe-unknown-cell", edit('cell = "a"\nx = 0.5\nname', 'cell = "z"\nx = 0.5\nname'),
     "probes.0.cell", "unknown cell"),
    ("clamp-unknown-cell", edit('cell = "b"\nx = 0.5\ndelay', 'cell = "z"\nx = 0.5\ndelay'),
     "stimuli.0.cell", "unknown cell"),
    ("nan", edit("e_leak_mV = -100.0", "e_leak_mV = nan"), "cells.0(a).e_leak_mV", "finite"),
    ("inf", edit("g_uS = 0.01", "g_uS = inf"), "gap_junctions.0.g_uS", "finite"),
    ("both-discretizations", edit("cvs_per_cell = 3", "cvs_per_cell = 3\nmax_extent_um = 2.0"),
     "discretization", "exactly one"),
    ("neither-discretization", edit("cvs_per_cell = 3", ""), "discretization", "exactly one"),
    ("negative-clamp-duration", edit("duration_ms = 0.5", "duration_ms = -0.5"),
     "stimuli.0.duration_ms", "greater than or equal to 0"),
    ("negative-tolerance", edit("backends_abs_mV = 1e-6", "backends_abs_mV = -1e-6"),
     "tolerance.backends_abs_mV", "greater than or equal to 0"),
    ("tolerance-unknown-probe", GOOD + "[tolerance.probes.zz]\nanalytic_abs_mV = 1.0\n",
     "tolerance.probes.zz", "unknown probe"),
    ("bad-cell-name", edit('name = "a"', 'name = "a/../../x"'), "cells.0.name", "letters, digits"),
    ("bad-model-name", edit('name = "pair"', 'name = "../escape"'), "name", "letters, digits"),
    ("secondorder-3", GOOD + "[backends.neuron]\nsecondorder = 3\n",
     "backends.neuron.secondorder", "0, 1 or 2"),
    # added with the robustness work: encodings, hidden names, sizes, windows, lists
    ("not-utf8", 'description = "\udcff"\n' + GOOD, "", "not UTF-8"),
    ("model-name-dotdot", edit('name = "pair"', 'name = ".."'), "name", "not starting with '.'"),
    ("model-name-hidden", edit('name = "pair"', 'name = ".pair"'), "name",
     "not starting with '.'"),
    ("cell-name-dot", edit('name = "a"', 'name = "."'), "cells.0.name", "not starting with '.'"),
    ("probe-name-hidden", edit('name = "pa"', 'name = ".pa"'), "probes.0.name",
     "not starting with '.'"),
    ("string-in-list", edit("x = [0.5, 0.5]", 'x = [0.5, "0.7"]'), "gap_junctions.0.x.1",
     "expected a number"),
    ("list-too-short", edit("x = [0.5, 0.5]", "x = [0.5]"), "gap_junctions.0.x", "too few items"),
    ("no-cells", 'name = "e"\ncells = []\n[simulation]\nt_stop_ms = 1.0\ndt_ms = 0.025\n',
     "cells", "at least 1 item"),
    ("window-after-stop", edit("backends_abs_mV = 1e-6", "window_start_ms = 2.0"),
     "tolerance.window_start_ms", "after t_stop_ms"),
    ("extent-gives-too-many-cvs", edit("cvs_per_cell = 3", "max_extent_um = 1e-6"),
     "discretization.max_extent_um", "at most 32766 CVs"),
    ("steps-overflow", edit("t_stop_ms = 1.0\ndt_ms = 0.025", "t_stop_ms = 1e308\ndt_ms = 1e-300"),
     "simulation", "at most 1e+10 steps"),
    ("samples-exhaust-memory",  # 9e9 samples: refused from the estimate, never allocated
     edit("t_stop_ms = 1.0\ndt_ms = 0.025", "t_stop_ms = 9.0\ndt_ms = 1e-9"), "", "GiB"),
]


def _run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_clean_refusal(code: int, err: str, out_dir: Path, *words: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out_dir.exists() or not any(out_dir.iterdir()), list(out_dir.iterdir())


COMMANDS = ["run", "check"]


def _command(command: str, model: str, out_dir: Path, *extra: str) -> list[str]:
    """``run``/``check`` MODEL with every output going into ``out_dir``; check also asks for
    JUnit XML there and for JSON on stdout (which must stay empty on exit 2)."""
    args = [command, model, "--out", str(out_dir), "--quiet"]
    if command == "check":
        args += ["--junit", str(out_dir / "check.xml"), "--format", "json"]
    return args + list(extra)


def _refuse(capsys, command: str, model: str, out_dir: Path, *extra: str, words=()) -> str:
    code, out, err = _run_cli(_command(command, model, out_dir, *extra), capsys)
    _assert_clean_refusal(code, err, out_dir, *words)
    assert out == "", out  # run prints its summary only after running; check: no JSON
    return err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case, text, field, words", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_bad_model_file_is_refused_in_one_line(tmp_path, capsys, command, case, text, field,
                                               words):
    path = tmp_path / "bad_model.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    _refuse(capsys, command, str(path), tmp_path / "out", words=(str(path), field, words))


def test_good_model_of_the_table_is_valid(tmp_path):
    from crosssim.model import loads_model

    model = loads_model(GOOD)
    assert [c.name for c in model.cells] == ["a", "b"]


COMMAND_LINE_CASES = [
    (["--set", "cells.z.e_leak_mV=-80"], ["cells.z.e_leak_mV", "no entry named 'z'"]),
    (["--set", "cells.a.e_leak_mV"], ["--set", "PATH=VALUE"]),
    (["--set", "=1"], ["--set", "empty path"]),
    (["--set", "gap_junctions.3.g_uS=1"], ["gap_junctions.3.g_uS", "out of range"]),
    (["--set", "cells.a.length_um=-1"], ["cells.0(a).length_um", "greater than 0"]),
    (["--set", "cells.a.length_um=abc"], ["cells.0(a).length_um", "number"]),
    (["--set", 'simulation.dt_ms="0.1"'], ["simulation.dt_ms", "expected a number"]),
    (["--set", "cells.a.length_um=[1]"], ["cells.0(a).length_um", "valid number"]),
    (["--set", "cells.a.length_um=1e999"], ["cells.0(a).length_um", "finite"]),
    (["--set", "cells.a.e_leak_mV.x=1"], ["cells.a.e_leak_mV.x", "not a table or a list"]),
    (["--set", "cells.a=3"], ["cells.0", "valid dictionary"]),
    (["--set", "name=.."], ["name", "not starting with '.'"]),
    (["--set", "probes.pa.name=.hidden"], ["probes.0.name", "not starting with '.'"]),
    (["--backend", "brian2"], ["--backend", "unknown source", "simulators: arbor, neuron"]),
    (["--backend", "arbor,nest"], ["--backend", "nest", "unknown source"]),
    (["--backend", " , "], ["--backend", "give arbor, neuron, jaxley or all"]),
    (["--param", "n_cells=3"], ["--param"]),
]

CHECK_OPTION_CASES = [
    (["--tolerance-analytic", "-1"], ["--tolerance-analytic", "finite number >= 0"]),
    (["--tolerance-backends", "nan"], ["--tolerance-backends", "finite number >= 0"]),
    (["--tolerance-lumped", "inf"], ["--tolerance-lumped", "finite number >= 0"]),
    (["--tolerance-backends", "1mV"], ["--tolerance-backends", "not a number"]),
    (["--format", "xml"], ["--format", "invalid choice: 'xml'"]),
    (["--window-start", "-1"], ["--window-start", "finite number >= 0"]),
    (["--window-start", "7"], ["--window-start", "after t_stop_ms"]),
    (["--no-such-flag"], ["unrecognized arguments"]),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("args, words", COMMAND_LINE_CASES,
                         ids=[" ".join(args) for args, _ in COMMAND_LINE_CASES])
def test_bad_command_line_is_refused_in_one_line(tmp_path, capsys, command, args, words):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    _refuse(capsys, command, str(path), tmp_path / "out", *args, words=words)


@pytest.mark.parametrize("args, words", CHECK_OPTION_CASES,
                         ids=[" ".join(args) for args, _ in CHECK_OPTION_CASES])
def test_bad_check_option_is_refused_in_one_line(tmp_path, capsys, args, words):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    _refuse(capsys, "check", str(path), tmp_path / "out", *args, words=words)


@pytest.mark.parametrize("command", COMMANDS)
def test_model_path_that_is_a_folder(tmp_path, capsys, command):
    folder = tmp_path / "models.toml"
    folder.mkdir()
    _refuse(capsys, command, str(folder), tmp_path / "out",
            words=(str(folder), "is a folder, not a model file"))


@pytest.mark.parametrize("command", COMMANDS)
def test_unreadable_model_file(tmp_path, capsys, monkeypatch, command):
    path = tmp_path / "secret.toml"
    path.write_text(GOOD)
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make the read fail as it would
        real = Path.read_bytes

        def denied(self):
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
    try:
        _refuse(capsys, command, str(path), tmp_path / "out",
                words=(str(path), "cannot read: Permission denied"))
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_model_file(tmp_path, capsys, command):
    _refuse(capsys, command, str(tmp_path / "nope.toml"), tmp_path / "out",
            words=("nope.toml", "not found"))


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_builtin_lists_the_known_ones(tmp_path, capsys, command):
    _refuse(capsys, command, "three_cells", tmp_path / "out", words=("two_cells", "ring"))


@pytest.mark.parametrize("command", COMMANDS)
def test_out_that_is_a_file_is_refused_before_running(tmp_path, capsys, monkeypatch, command):
    from crosssim import sources

    def must_not_run(*args, **kwargs):
        raise AssertionError("a backend ran although --out is unusable")

    monkeypatch.setattr(sources, "run_source", must_not_run)
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    code, out, err = _run_cli([command, str(path), "--out", str(taken), "--quiet"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"--out {taken}: exists and is not a folder" in err
    assert taken.read_text() == "not a folder"


def test_junit_that_is_a_folder_is_refused_before_running(tmp_path, capsys, monkeypatch):
    from crosssim import sources

    monkeypatch.setattr(sources, "run_source", lambda *a, **k: pytest.fail("a backend ran"))
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    (tmp_path / "out").mkdir()
    _refuse(capsys, "check", str(path), tmp_path / "out", "--junit", str(tmp_path),
            words=(f"--junit {tmp_path}: is a folder",))


@pytest.mark.parametrize("command", COMMANDS)
def test_oversized_network_is_refused_before_allocating(tmp_path, capsys, command):
    import tracemalloc

    tracemalloc.start()
    try:
        _refuse(capsys, command, "ring", tmp_path / "out", "--param", "n_cells=50000000",
                words=("GiB", "fewer cells"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6  # refused from the estimate, not after building 50 M cells


@pytest.mark.parametrize("command", COMMANDS)
def test_oversized_override_is_refused_before_running(tmp_path, capsys, monkeypatch, command):
    """A small built-in network made huge by --set is refused like a huge one."""
    from crosssim import sources

    monkeypatch.setattr(sources, "run_source", lambda *a, **k: pytest.fail("a backend ran"))
    _refuse(capsys, command, "ring", tmp_path / "out", "--param", "n_cells=1000",
            "--set", "discretization.cvs_per_cell=30000",
            words=("<built-in ring> --set", "1000 cells x 30000 CVs", "GiB"))


def test_real_process_prints_no_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(edit("dt_ms = 0.025", "dt_ms = 0.3"))
    done = subprocess.run([sys.executable, "-m", "crosssim", "run", str(path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert str(path) in done.stderr and "whole multiple" in done.stderr
    assert not (tmp_path / "out").exists()
