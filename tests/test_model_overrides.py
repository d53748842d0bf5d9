"""The override path language on its own: where ``resolve_path`` leads, and why not."""

from __future__ import annotations

import copy

import pytest

from crosssim.builtin import builtin_model
from crosssim.errors import InvalidModelError
from crosssim.model import apply_overrides, path_problem, resolve_path


@pytest.fixture
def star():
    """Two cells with the default (unnamed) probes, so their labels ``hub_x0.5`` and
    ``leaf_x0.25`` contain the dot of x, and a per-probe tolerance for one of them."""
    seed = builtin_model("two_cells")
    return apply_overrides(seed, [
        ("cells.a.name", "hub"), ("cells.b.name", "leaf"),
        ("gap_junctions.0.cells", ["hub", "leaf"]),
        ("probes", [{"cell": "hub", "x": 0.5}, {"cell": "leaf", "x": 0.25}]),
        ("tolerance.probes.hub_x0.5.analytic_abs_mV", 0.3),
    ])


def test_a_field_path_leads_to_that_field(seed_model):
    resolved = resolve_path(seed_model, "cells.b.e_leak_mV")
    assert resolved.steps == ("cells", 1, "e_leak_mV")
    assert resolved.value == seed_model.cells[1].e_leak_mV == -60.0
    junction = resolve_path(seed_model, "gap_junctions.0.x.1")
    assert junction.steps == ("gap_junctions", 0, "x", 1) and junction.value == 0.5
    # a table leads to the validated part itself
    assert resolve_path(seed_model, "cells.a").value is seed_model.cells[0]
    # an unset optional field resolves, with nothing there yet
    assert resolve_path(seed_model, "simulation.sample_dt_ms").value is None


def test_a_cell_by_name_and_by_index_is_the_same_entry(seed_model):
    by_name = resolve_path(seed_model, "cells.b.length_um")
    for path in ("cells.1.length_um", "cells.-1.length_um"):
        by_index = resolve_path(seed_model, path)
        assert (by_index.steps, by_index.value) == (by_name.steps, by_name.value)
    assert by_name.steps == ("cells", 1, "length_um")


def test_a_model_and_its_dict_form_resolve_alike(seed_model):
    data = seed_model.to_dict()
    before = copy.deepcopy(data)
    for path in ("cells.b.length_um", "probes.a_gj.x", "gap_junctions.0.g_uS"):
        on_model, on_data = resolve_path(seed_model, path), resolve_path(data, path)
        assert (on_data.steps, on_data.value) == (on_model.steps, on_model.value)
    # a table not in the file yet is a place --set can create; nothing is created here
    assert resolve_path(data, "backends.neuron.nthread").value is None
    assert data == before


def test_a_misspelt_field_is_refused_with_the_nearest_name(seed_model):
    with pytest.raises(InvalidModelError) as info:
        resolve_path(seed_model, "cels.b.length_um")
    assert info.value.field == "cels.b.length_um"
    assert "no field 'cels' in the model (did you mean 'cells'?)" in str(info.value)
    with pytest.raises(InvalidModelError) as info:
        resolve_path(seed_model, "cells.b.lenght_um")
    assert "did you mean 'length_um'?" in str(info.value)
    assert "cm_F_per_m2" in info.value.allowed  # every field of a cell is listed
    # the sweep's wording of the same walk
    assert path_problem(seed_model, "cels.b.length_um").startswith(
        "the model has no field 'cels'; fields: backends, cells,")


def test_an_unknown_entry_or_index_names_what_there_is(seed_model):
    with pytest.raises(InvalidModelError) as info:
        resolve_path(seed_model, "cells.z.length_um")
    assert str(info.value) == ("cells.z.length_um: no entry named 'z'; "
                               "allowed: an index 0..1 or one of: a, b")
    with pytest.raises(InvalidModelError) as info:
        resolve_path(seed_model, "gap_junctions.3.g_uS")
    assert "index 3 out of range; allowed: 0..0" in str(info.value)
    with pytest.raises(InvalidModelError) as info:
        resolve_path(seed_model, "simulation.dt_ms.x")
    assert "'x' is not a table or a list" in str(info.value)
    assert path_problem(seed_model, "cells.z.length_um") == (
        "cells has no entry named 'z'; one of: a, b")
    assert path_problem(seed_model, "simulation.dt_ms.x") == (
        "simulation.dt_ms is a value, not a table or list")


def test_probe_labels_with_dots_resolve(star):
    resolved = resolve_path(star, "probes.leaf_x0.25.x")
    assert resolved.steps == ("probes", 1, "x") and resolved.value == 0.25
    tolerance = resolve_path(star, "tolerance.probes.hub_x0.5.analytic_abs_mV")
    assert tolerance.steps == ("tolerance", "probes", "hub_x0.5", "analytic_abs_mV")
    assert tolerance.value == 0.3
    # a probe without its own tolerance table yet: the place --set would create
    unset = resolve_path(star, "tolerance.probes.leaf_x0.25.lumped_abs_mV")
    assert unset.steps[2] == "leaf_x0.25" and unset.value is None
    assert path_problem(star, "probes.leaf_x0.25.x") is None


@pytest.mark.parametrize("path", [
    "cells.a.length_um", "cells.2.length_um", "cells.z.length_um", "probes.a_gj.x",
    "probes.a_x0.5.x", "gap_junctions.0.x.0", "simulation.dt_ms.x", "cels.a.length_um",
    "tolerance.probes.b_gj.analytic_abs_mV", "tolerance.reference_abs_mV.discrete",
])
def test_the_sweep_check_and_the_resolver_agree(seed_model, path):
    """``sweep --grid`` refuses exactly the paths the resolver refuses."""
    try:
        resolve_path(seed_model, path)
    except InvalidModelError:
        assert path_problem(seed_model, path) is not None
    else:
        assert path_problem(seed_model, path) is None
