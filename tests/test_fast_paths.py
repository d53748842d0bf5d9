"""Fast paths give the very same outputs as the general ones."""

from __future__ import annotations

import numpy as np

from crosssim.analytic import lumped_model
from crosssim.builtin import builtin_model
from crosssim.files import write_csv
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


def test_lumped_steady_state_dense_matches_sparse(monkeypatch):
    model = builtin_model("ring", {"n_cells": 50})
    dense = lumped_model.lumped_steady_state(model)
    monkeypatch.setattr(lumped_model, "DENSE_STEADY_LIMIT", 1)
    sparse = lumped_model.lumped_steady_state(model)
    assert dense.keys() == sparse.keys()
    assert max(abs(dense[k] - sparse[k]) for k in dense) < 1e-10
