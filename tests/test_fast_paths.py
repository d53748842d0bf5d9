"""Fast paths give the very same outputs as the general ones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from crosssim.analytic import lumped_model
from crosssim.builtin import builtin_model
from crosssim.files import write_csv
from crosssim.model import apply_overrides
from crosssim.report.artifacts import grid_times, write_traces
from crosssim.result import RunResult, results_to_frame


def test_direct_trace_csv_is_byte_identical_to_pandas(tmp_path):
    rng = np.random.default_rng(16)
    times = np.arange(401) * 0.025
    values = np.concatenate([rng.normal(-70, 20, (3, 401)), rng.normal(0, 1e-9, (1, 401)),
                             rng.normal(0, 1e17, (1, 401))])
    values[0, :6] = [0.0, -0.0, 1e-5, 1.2345678901234568e17, 1 / 3, -100.0]
    probes = ["a", "b_mid", "c.1", "d-2", "e"]
    results = [RunResult("arbor", probes, times, values),
               RunResult("neuron", probes, times, values * (1 + 1e-7))]
    direct = write_traces(tmp_path / "direct.csv", results)
    frame = results_to_frame(results)  # the general path: pandas, times on the decimal grid
    frame["t_ms"] = grid_times(frame["t_ms"].to_numpy(), [times])
    general = write_csv(tmp_path / "pandas.csv", frame)
    assert direct.read_bytes() == general.read_bytes()
    assert b"\narbor,a,0.15," in direct.read_bytes()  # 6 * 0.025 written as the grid value


def test_trace_csv_with_names_that_need_quoting_goes_through_pandas(tmp_path):
    result = RunResult("my,source", ["p"], np.arange(3.0), np.zeros((1, 3)))
    path = write_traces(tmp_path / "t.csv", [result])
    assert path.read_text().splitlines()[1] == '"my,source",p,0.0,0.0'


def _dense_steady_state(model) -> np.ndarray:
    """``K V = G E`` solved densely, written independently of lumped_model's CG."""
    _, conductance, e_leak, _, matrix = lumped_model.lumped_system(model)
    return np.linalg.solve(matrix.toarray(), conductance * e_leak)


@pytest.mark.parametrize("name, params", [("ring", {"n_cells": 50}), ("grid", {})])
def test_lumped_steady_state_by_cg_matches_a_dense_solve(name, params, monkeypatch):
    model = builtin_model(name, params)
    # every cell its own leak reversal and junctions of very different strength
    changes = {f"cells.{cell.name}.e_leak_mV": -90.0 + 0.37 * k
               for k, cell in enumerate(model.cells)}
    changes.update({f"gap_junctions.{k}.g_uS": 10.0 ** (-3 + (k % 5))
                    for k in range(len(model.gap_junctions))})
    model = apply_overrides(model, changes.items())
    expected = _dense_steady_state(model)
    cg = lumped_model.lumped_steady_state(model)
    assert list(cg) == [cell.name for cell in model.cells]
    assert np.abs(np.array(list(cg.values())) - expected).max() < 1e-9
    # CG that does not settle hands over to the direct sparse solve: same answer
    monkeypatch.setattr(lumped_model, "_CG_ITERATIONS", 0)
    direct = lumped_model.lumped_steady_state(model)
    assert np.abs(np.array(list(direct.values())) - expected).max() < 1e-9


def test_the_references_of_a_small_model_import_no_scipy():
    """scipy.sparse and scipy.linalg cost a command 0.2-0.3 s: the references of a small
    model (dense numpy below DENSE_LIMIT unknowns) do without them; a large one uses them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from crosssim.builtin import builtin_model\n"
        "from crosssim.sources import run_source\n"
        "from crosssim.analytic.discretized import roundoff_floor_mV\n"
        "model = builtin_model('two_cells').replace(stimuli=[{'cell': 'a', 'x': 0.5,"
        " 'delay_ms': 1.0, 'duration_ms': 1.0, 'amplitude_nA': 0.1}])\n"
        "for name in ('analytic', 'lumped', 'semidiscrete', 'discrete'):\n"
        "    run_source(name, model)\n"
        "roundoff_floor_mV(model)\n"
        "print(sorted(m for m in sys.modules if m.startswith('scipy')))\n"
        "run_source('lumped', builtin_model('ring', {'n_cells': 1500}))\n"
        "print('scipy.sparse' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.splitlines() == ["[]", "True"]


def _awkward_table():
    columns = ["point", "g", "n", "verdict", "error", "note", "none", "a-b:p:passed",
               "a-b:p:max_abs_mV", "worst_ratio"]
    rows = [
        {"point": 0, "g": 0.001, "n": 11, "verdict": "pass", "error": None,
         "note": 'comma, "quote"\nnewline', "none": None, "a-b:p:passed": True,
         "a-b:p:max_abs_mV": 1.234567890123456e-13, "worst_ratio": math.nan},
        {"point": 1, "g": 0.05, "n": 101, "verdict": "fail", "error": "x",
         "note": "", "none": None, "a-b:p:passed": None,
         "a-b:p:max_abs_mV": math.nan, "worst_ratio": 2.5},
        {"point": 2, "g": 3, "n": 7, "verdict": "error", "error": "üñí",
         "note": "plain", "none": None, "a-b:p:passed": False,
         "a-b:p:max_abs_mV": 0.5, "worst_ratio": math.inf},
    ]
    types = {"point": "int64", "a-b:p:passed": "bool", "a-b:p:max_abs_mV": "float64",
             "worst_ratio": "float64"}
    return columns, rows, types


def test_rows_written_without_pandas_read_back_as_pandas_wrote_them(tmp_path):
    """The sweep table's CSV is byte-identical to pandas' ``to_csv`` and its Parquet holds
    the same values and types (nullable booleans read back as object: True/False/None)."""
    import pandas as pd

    from crosssim.files import write_rows_csv, write_rows_parquet

    columns, rows, types = _awkward_table()
    frame = pd.DataFrame(rows, columns=columns)
    frame["a-b:p:passed"] = frame["a-b:p:passed"].astype("boolean")
    write_csv(tmp_path / "pandas.csv", frame, float_format="%.12g")
    write_rows_csv(tmp_path / "rows.csv", columns, rows, float_format="%.12g")
    assert (tmp_path / "rows.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()

    write_rows_parquet(tmp_path / "rows.parquet", columns, rows, types=types)
    back = pd.read_parquet(tmp_path / "rows.parquet")
    assert list(back.columns) == columns
    assert back["point"].tolist() == [0, 1, 2] and back["point"].dtype == np.int64
    assert back["n"].tolist() == [11, 101, 7] and back["n"].dtype == np.int64
    assert back["g"].tolist() == [0.001, 0.05, 3.0] and back["g"].dtype == np.float64
    assert back["a-b:p:max_abs_mV"].iloc[0] == 1.234567890123456e-13  # full precision
    assert math.isnan(back["a-b:p:max_abs_mV"].iloc[1])
    assert back["worst_ratio"].iloc[2] == math.inf
    assert back["a-b:p:passed"].tolist() == [True, None, False]
    assert back["error"].tolist()[0] is None or pd.isna(back["error"].tolist()[0])
    assert back["error"].tolist()[1:] == ["x", "üñí"]
    assert back["note"].tolist() == [rows[0]["note"], "", "plain"]
    assert back["none"].isna().all()


def test_writing_the_rows_imports_no_pandas(tmp_path):
    import subprocess
    import sys

    code = ("import math, sys\n"
            "sys.path.insert(0, 'tests')\n"
            "from test_fast_paths import _awkward_table\n"
            "from crosssim.files import write_rows_csv, write_rows_parquet\n"
            "columns, rows, types = _awkward_table()\n"
            f"write_rows_csv({str(tmp_path / 'a.csv')!r}, columns, rows)\n"
            f"write_rows_parquet({str(tmp_path / 'a.parquet')!r}, columns, rows, types=types)\n"
            "print('pandas' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "False", done.stderr
