"""Every bad input: exit code 2, one line on stderr naming the file and the field, no
traceback, nothing written to the output folder."""

from __future__ import annotations

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


@pytest.mark.parametrize("case, text, field, words", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_bad_model_file_is_refused_in_one_line(tmp_path, capsys, case, text, field, words):
    path = tmp_path / "bad_model.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    out_dir = tmp_path / "out"
    code, out, err = _run_cli(["run", str(path), "--out", str(out_dir), "--quiet"], capsys)
    _assert_clean_refusal(code, err, out_dir, str(path), field, words)


def test_good_model_of_the_table_is_valid(tmp_path):
    from crosssim.model import loads_model

    model = loads_model(GOOD)
    assert [c.name for c in model.cells] == ["a", "b"]


@pytest.mark.parametrize("args, words", [
    (["--set", "cells.z.e_leak_mV=-80"], ["cells.z.e_leak_mV", "no entry named 'z'"]),
    (["--set", "cells.a.e_leak_mV"], ["--set", "PATH=VALUE"]),
    (["--set", "gap_junctions.3.g_uS=1"], ["gap_junctions.3.g_uS", "out of range"]),
    (["--set", "cells.a.length_um=-1"], ["cells.0(a).length_um", "greater than 0"]),
    (["--set", "cells.a.length_um=abc"], ["cells.0(a).length_um", "number"]),
    (["--backend", "brian2"], ["--backend", "unknown backend", "known: arbor, neuron"]),
    (["--param", "n_cells=3"], ["--param"]),
])
def test_bad_command_line_is_refused_in_one_line(tmp_path, capsys, args, words):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    out_dir = tmp_path / "out"
    code, out, err = _run_cli(["run", str(path), "--out", str(out_dir), "--quiet", *args], capsys)
    _assert_clean_refusal(code, err, out_dir, *words)


def test_oversized_network_is_refused_before_allocating(tmp_path, capsys):
    import tracemalloc

    out_dir = tmp_path / "out"
    tracemalloc.start()
    code, out, err = _run_cli(["run", "ring", "--param", "n_cells=50000000", "--out",
                               str(out_dir), "--quiet"], capsys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _assert_clean_refusal(code, err, out_dir, "GiB", "fewer cells")
    assert peak < 50e6  # refused from the estimate, not after building 50 M cells


def test_unknown_builtin_lists_the_known_ones(tmp_path, capsys):
    code, out, err = _run_cli(["run", "three_cells", "--out", str(tmp_path / "o")], capsys)
    _assert_clean_refusal(code, err, tmp_path / "o", "two_cells", "ring")


def test_missing_model_file(tmp_path, capsys):
    code, out, err = _run_cli(["run", str(tmp_path / "nope.toml")], capsys)
    _assert_clean_refusal(code, err, tmp_path / "o", "nope.toml", "not found")


def test_real_process_prints_no_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(edit("dt_ms = 0.025", "dt_ms = 0.3"))
    done = subprocess.run([sys.executable, "-m", "crosssim", "run", str(path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert str(path) in done.stderr and "whole multiple" in done.stderr
    assert not (tmp_path / "out").exists()
