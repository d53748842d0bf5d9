"""Cheap checks that the adapters scale: memory per cell of the Arbor recipe and of the NEURON
plan stays constant as networks grow, alike cells share one description, junction labels
pair up, and Arbor's chunked run gives the unchunked result.  (Timings live in
``benchmarks/``; nothing here measures time.)
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from conftest import requires_arbor

from crosssim.builtin import builtin_model


def _ring(n_cells: int, **params):
    return builtin_model("ring", {"n_cells": n_cells, **params})


def _recipe_bytes(n_cells: int) -> int:
    """Python memory held by an Arbor recipe after Arbor-style calls for every cell."""
    from crosssim.backends.arbor.recipe import CrossSimRecipe

    model = _ring(n_cells)
    tracemalloc.start()
    try:
        recipe = CrossSimRecipe(model)
        for gid in range(n_cells):  # what arbor.simulation asks of a recipe
            recipe.cell_description(gid)
            recipe.gap_junctions_on(gid)
            recipe.probes(gid)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert recipe.num_cells() == n_cells
    return held


@requires_arbor
def test_arbor_recipe_memory_per_cell_is_constant():
    small, large = _recipe_bytes(1000), _recipe_bytes(4000)
    per_cell_small, per_cell_large = small / 1000, large / 4000
    print(f"recipe: {per_cell_small:.0f} B/cell at 1000 cells, {per_cell_large:.0f} at 4000")
    assert per_cell_large <= 1.25 * per_cell_small + 16
    assert per_cell_large < 200  # flat arrays, no Python object per cell


@requires_arbor
def test_alike_cells_share_one_description_and_labels_pair_up():
    from crosssim.backends.arbor import _compat
    from crosssim.backends.arbor.recipe import CrossSimRecipe

    model = _ring(300, cvs_per_cell=3, clamp_every=100)
    recipe = CrossSimRecipe(model)
    for gid in range(300):
        recipe.cell_description(gid)
    # two leak potentials, and the clamped even cells 0, 100, 200: 3 distinct cells
    assert recipe.distinct_cells() == 3
    assert _compat.count_cvs(recipe.cell_description(7)) == 3
    halves = {}
    for gid in range(300):
        for connection in recipe.gap_junctions_on(gid):
            text = repr(connection)
            halves[gid, text.split("local (\"")[1].split('"')[0]] = text
    # every half names a peer half that exists and names it back
    assert len(halves) == 2 * len(model.gap_junctions)
    for (gid, label), text in halves.items():
        peer = int(text.split("peer (")[1].split(",")[0])
        peer_label = text.split("peer (")[1].split('"')[1]
        assert f'peer ({gid}, "{label}"' in halves[peer, peer_label]


@requires_arbor
def test_arbor_chunked_run_equals_one_run(monkeypatch):
    from crosssim.backends import arbor as arbor_backend

    model = _ring(30, cvs_per_cell=3, n_probes=30, clamp_every=4, t_stop_ms=2.0,
                  sample_dt_ms=0.05)
    whole = arbor_backend.run(model)
    assert arbor_backend._chunk_ends(81, 2, 30) == [81]
    monkeypatch.setattr(arbor_backend, "MAX_STAGED_SAMPLES", 100)  # 3 samples per chunk
    assert arbor_backend._chunk_ends(81, 2, 30) == list(range(6, 81, 6)) + [81]
    chunked = arbor_backend.run(model)
    np.testing.assert_array_equal(chunked.times_ms, whole.times_ms)
    np.testing.assert_allclose(chunked.values_mV, whole.values_mV, rtol=0, atol=1e-12)


def test_neuron_plan_is_flat_arrays_linear_in_cells():
    from crosssim.backends.neuron.simulator import lower

    def plan_bytes(n_cells: int) -> int:
        plan = lower(_ring(n_cells, n_probes=n_cells // 10))
        return sum(value.nbytes for value in vars(plan).values()
                   if isinstance(value, np.ndarray))

    per_cell = [plan_bytes(n) / n for n in (1000, 4000)]
    assert per_cell[1] == pytest.approx(per_cell[0], rel=0.05)
    assert per_cell[1] < 200  # 8 numbers per cell, 4 per junction half, a few per probe
