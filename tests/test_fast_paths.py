"""Fast paths give the very same outputs as the general ones."""

from __future__ import annotations

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
