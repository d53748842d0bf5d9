"""The built-in network generators (chain, ring, grid) and the backends' options on networks.

Shapes, junction counts and endpoints, names, the probe subset, clamps, parameter checks and
the refusal of oversized networks come from the generators alone (no simulator).  A small
ring with clamps runs on both simulators, which must agree to 1e-9 mV at every sample
(matched discretization, both implicit Euler); threads must not change any result.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import requires_arbor, requires_neuron

from crosssim.builtin import SEED_CELL, builtin_model
from crosssim.errors import BackendError, ResourceLimitError, UsageError

#: Largest allowed |arbor - neuron| in mV at any sample, matched discretization.
MATCHED_ATOL_MV = 1e-9


def _edges(model) -> list[tuple[int, int]]:
    index = model.cell_index()
    return [(index[a], index[b]) for a, b in (junction.cells for junction in model.gap_junctions)]


# Shapes -------------------------------------------------------------------------------------


def test_chain_joins_neighbours_end_to_start():
    model = builtin_model("chain", {"n_cells": 5})
    assert model.name == "chain_5"
    assert [cell.name for cell in model.cells] == ["c0", "c1", "c2", "c3", "c4"]
    assert _edges(model) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert all(junction.x == (1.0, 0.0) and junction.g_uS == 0.01
               for junction in model.gap_junctions)


def test_ring_closes_the_chain():
    model = builtin_model("ring", {"n_cells": 12})
    assert len(model.cells) == 12 and len(model.gap_junctions) == 12
    assert _edges(model) == [(i, (i + 1) % 12) for i in range(12)]
    degree = np.bincount(np.array(_edges(model)).reshape(-1), minlength=12)
    assert np.all(degree == 2)
    assert model.cells[0].name == "c00" and model.cells[11].name == "c11"  # zero-padded


@pytest.mark.parametrize("rows, cols", [(3, 4), (1, 5), (4, 1), (2, 2)])
def test_grid_joins_right_and_lower_neighbours(rows, cols):
    model = builtin_model("grid", {"rows": rows, "cols": cols})
    assert model.name == f"grid_{rows}x{cols}"
    assert len(model.cells) == rows * cols
    edges = set(_edges(model))
    assert len(edges) == len(model.gap_junctions) == rows * (cols - 1) + (rows - 1) * cols
    for a, b in edges:
        (ra, ca), (rb, cb) = divmod(a, cols), divmod(b, cols)
        assert (rb, cb) in ((ra, ca + 1), (ra + 1, ca))


def test_cells_are_seed_cells_with_alternating_leak():
    model = builtin_model("ring", {"n_cells": 6, "e_leak_mV": -90.0, "e_leak_alt_mV": -50.0})
    for i, cell in enumerate(model.cells):
        for key, value in SEED_CELL.items():
            assert getattr(cell, key) == value
        assert cell.e_leak_mV == (-90.0 if i % 2 == 0 else -50.0)
        assert cell.initial_mV == cell.e_leak_mV


def test_parameters_reach_the_model():
    model = builtin_model("chain", {"n_cells": 4, "cvs_per_cell": 3, "g_uS": 0.02,
                                    "x_from": 0.25, "x_to": 0.75, "t_stop_ms": 2.0,
                                    "dt_ms": 0.01, "sample_dt_ms": 0.05})
    assert model.discretization.cvs_per_cell == 3
    assert all(j.x == (0.25, 0.75) and j.g_uS == 0.02 for j in model.gap_junctions)
    assert model.simulation.t_stop_ms == 2.0 and model.simulation.dt_ms == 0.01
    assert model.simulation.n_samples == 41


# Probes and clamps ------------------------------------------------------------------------


def test_default_probes_are_ten_spread_from_first_to_last():
    model = builtin_model("ring", {"n_cells": 10000})
    assert len(model.probes) == 10
    assert [probe.cell for probe in model.probes] == [
        "c0000", "c1111", "c2222", "c3333", "c4444", "c5555", "c6666", "c7777", "c8888",
        "c9999"]
    assert all(probe.x == 0.5 and probe.label == f"{probe.cell}_mid" for probe in model.probes)
    # both leak potentials are probed, so the traces are not all alike
    assert {int(probe.cell[1:]) % 2 for probe in model.probes} == {0, 1}


@pytest.mark.parametrize("n_cells, n_probes", [(3, 1), (7, 3), (10, 4), (50, 50), (5, 99)])
def test_probe_subset_is_distinct_sorted_and_capped(n_cells, n_probes):
    model = builtin_model("ring", {"n_cells": n_cells, "n_probes": n_probes})
    cells = [model.cell_index()[probe.cell] for probe in model.probes]
    assert len(cells) == min(n_cells, n_probes)
    assert cells == sorted(set(cells)) and cells[0] == 0
    if len(cells) > 1:
        assert cells[-1] == n_cells - 1


def test_no_clamps_by_default_and_every_kth_cell_when_asked():
    assert builtin_model("ring", {"n_cells": 9}).stimuli == ()
    model = builtin_model("chain", {"n_cells": 10, "clamp_every": 3, "clamp_nA": -0.1,
                                    "t_stop_ms": 8.0})
    assert [stimulus.cell for stimulus in model.stimuli] == ["c0", "c3", "c6", "c9"]
    for stimulus in model.stimuli:
        assert stimulus.amplitude_nA == -0.1 and stimulus.x == 0.5
        assert stimulus.delay_ms == 1.0 and stimulus.duration_ms == 4.0


# Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, params, words", [
    ("ring", {"n_cells": 2}, "n_cells=2: allowed: a whole number >= 3"),
    ("chain", {"n_cells": 1}, ">= 2"),
    ("chain", {"n_cells": "ten"}, "whole number"),
    ("ring", {"n_cells": 5, "n_probes": 0}, "n_probes=0: allowed: a whole number >= 1"),
    ("ring", {"n_cells": 5, "x_from": 1.5}, "[0, 1]"),
    ("ring", {"n_cells": 5, "dt_ms": -1.0}, "> 0"),
    ("ring", {"n_cells": 5, "cells": 5}, "unknown --param cells; allowed:"),
    ("grid", {"rows": 1, "cols": 1}, "at least 2 cells"),
])
def test_bad_parameters_are_refused(name, params, words):
    with pytest.raises(UsageError) as caught:
        builtin_model(name, params)
    assert words in str(caught.value)


def test_oversized_network_is_refused_with_the_estimate():
    with pytest.raises(ResourceLimitError) as caught:
        builtin_model("ring", {"n_cells": 10**9})
    message = str(caught.value)
    assert "1000000000 cells x 11 CVs" in message and "GiB" in message
    assert "fewer cells, CVs, probes or samples" in message


def test_refusal_uses_the_machine_memory(monkeypatch):
    from crosssim.builtin import networks

    need = networks.estimate_bytes(1000, 11, 10, 201)
    monkeypatch.setattr(networks, "physical_memory_bytes", lambda: int(need / 0.6) - 1)
    with pytest.raises(ResourceLimitError, match="1000 cells x 11 CVs with 10 probes x 201"):
        builtin_model("ring", {"n_cells": 1000})
    monkeypatch.setattr(networks, "physical_memory_bytes", lambda: int(need / 0.6) + 1024)
    assert len(builtin_model("ring", {"n_cells": 1000}).cells) == 1000


def test_the_10k_ring_with_every_cell_probed_is_accepted():
    from crosssim.builtin import networks

    need = networks.estimate_bytes(10_000, 11, 10_000, 2001)
    assert need < 8 * 2**30  # fits a 16 GB machine; measured peak is about 1 GB


# Both simulators on a small ring ------------------------------------------------------------


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("name, params", [
    ("ring", {"n_cells": 50, "cvs_per_cell": 3, "n_probes": 50, "clamp_every": 7,
              "t_stop_ms": 5.0}),
    ("grid", {"rows": 3, "cols": 4, "cvs_per_cell": 5, "n_probes": 12, "clamp_every": 5,
              "x_from": 0.3, "x_to": 0.9, "t_stop_ms": 3.0, "sample_dt_ms": 0.1}),
])
def test_small_network_arbor_and_neuron_agree(name, params):
    from crosssim.backends import run_backend

    model = builtin_model(name, params)
    arbor_result = run_backend("arbor", model)
    neuron_result = run_backend("neuron", model)
    assert arbor_result.probes == neuron_result.probes == model.probe_labels
    np.testing.assert_array_equal(arbor_result.times_ms, neuron_result.times_ms)
    difference = np.abs(arbor_result.values_mV - neuron_result.values_mV)
    worst = float(difference.max())
    assert worst <= MATCHED_ATOL_MV, (
        f"max |arbor - neuron| = {worst:.3g} mV at probe "
        f"{model.probe_labels[int(np.argmax(difference.max(axis=1)))]}")
    # the clamps and the two leak potentials make the probed traces differ from each other
    assert np.ptp(arbor_result.values_mV[:, -1]) > 1.0


# Backend options on a network ---------------------------------------------------------------


@requires_neuron
def test_neuron_threads_share_the_ring_and_change_nothing():
    from crosssim.backends import run_backend

    model = builtin_model("ring", {"n_cells": 40, "cvs_per_cell": 3, "n_probes": 40,
                                   "clamp_every": 9, "t_stop_ms": 3.0})
    one = run_backend("neuron", model, nthread=1)
    two = run_backend("neuron", model, nthread=2)
    assert two.info["nthread"] == 2
    np.testing.assert_allclose(two.values_mV, one.values_mV, rtol=0, atol=1e-12)
    assert one.info["child_imported"] == []  # the child never imports crosssim or pydantic


@requires_arbor
def test_arbor_threads_change_nothing():
    from crosssim.backends import run_backend

    model = builtin_model("ring", {"n_cells": 40, "cvs_per_cell": 3, "n_probes": 7,
                                   "clamp_every": 9, "t_stop_ms": 3.0})
    one = run_backend("arbor", model, threads=1)
    two = run_backend("arbor", model, threads=2)
    assert two.info["threads"] == 2
    np.testing.assert_array_equal(two.values_mV, one.values_mV)


def test_neuron_mpi_without_mpi_names_what_to_install(monkeypatch):
    import importlib.util
    import shutil

    from crosssim.backends import neuron as neuron_backend

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real_find_spec(name, *a))
    model = builtin_model("ring", {"n_cells": 4}).replace(backends={"neuron": {"mpi_ranks": 2}})
    with pytest.raises(BackendError) as caught:
        neuron_backend.run(model)
    message = str(caught.value)
    assert "mpi_ranks = 2 needs" in message and "mpiexec" in message
    assert "pip install mpi4py" in message and "\n" not in message


def _mpi_installed() -> bool:
    import importlib.util
    import shutil

    return bool(shutil.which("mpiexec")) and importlib.util.find_spec("mpi4py") is not None


@requires_neuron
@pytest.mark.skipif(not _mpi_installed(), reason="needs mpiexec and mpi4py (optional extra)")
def test_neuron_under_mpi_gives_the_single_process_result(monkeypatch):
    import os

    from crosssim.backends import run_backend

    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Open MPI refuses root otherwise
        monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT", "1")
        monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    model = builtin_model("ring", {"n_cells": 41, "cvs_per_cell": 3, "n_probes": 41,
                                   "clamp_every": 9, "t_stop_ms": 3.0, "sample_dt_ms": 0.1})
    single = run_backend("neuron", model)
    ranks = run_backend("neuron", model, mpi_ranks=2)
    assert ranks.info["mpi_ranks"] == 2
    np.testing.assert_array_equal(ranks.times_ms, single.times_ms)
    np.testing.assert_allclose(ranks.values_mV, single.values_mV, rtol=0, atol=1e-12)
