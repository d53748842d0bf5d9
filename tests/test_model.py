"""The neutral model: loading, validation, defaults, overrides, round trips."""

from __future__ import annotations

import math
import sys

import pytest

from crosssim.errors import InvalidModelError
from crosssim.model import (
    Discretization,
    apply_overrides,
    dumps_model,
    load_model,
    loads_model,
    model_from_dict,
)

MINIMAL = """
name = "pair"
[simulation]
t_stop_ms = 2.0
dt_ms = 0.025
[[cells]]
name = "a"
length_um = 200.0
radius_um = 1.5
cm_F_per_m2 = 0.01
ra_ohm_cm = 100.0
g_leak_S_per_cm2 = 0.0002
e_leak_mV = -65.0
"""


def test_seed_builtin_has_the_tutorial_parameters(seed_model):
    a, b = seed_model.cells
    assert (a.e_leak_mV, b.e_leak_mV) == (-100.0, -60.0)
    assert a.length_um == 100.0 and a.radius_um == 3.0
    assert a.cm_F_per_m2 == 0.005 and a.ra_ohm_cm == 90.0 and a.g_leak_S_per_cm2 == 0.001
    assert seed_model.gap_junctions[0].g_uS == 0.01
    assert seed_model.gap_junctions[0].x == (0.5, 0.5)
    assert seed_model.simulation.dt_ms == 0.01 and seed_model.simulation.t_stop_ms == 5.0
    assert seed_model.cvs(a) == 1
    # 5 ms every 0.01 ms, both ends included
    assert seed_model.simulation.n_samples == 501
    # by hand: 0.005 F/m^2 = 0.5 uF/cm^2, over 1 mS/cm^2 gives 0.5 ms
    # (shared/NOTES.md says 5 ms; that is a factor-10 slip in the notes)
    assert a.tau_ms == pytest.approx(0.5)


def test_defaults_are_filled():
    model = loads_model(MINIMAL)
    cell = model.cells[0]
    assert cell.initial_mV == -65.0  # v_init defaults to e_leak
    assert model.simulation.sample_interval_ms == 0.025
    assert model.discretization.cvs_per_cell == 1
    assert model.simulation.n_steps == 80
    assert model.effective_probes()[0].label == "a_x0.5"
    assert cell.area_um2 == pytest.approx(2 * math.pi * 1.5 * 200.0)


def test_length_constant_matches_hand_computation():
    cell = loads_model(MINIMAL).cells[0]
    # lambda = sqrt(a / (2 ra g)) with a in cm: sqrt(1.5e-4 / (2 * 100 * 2e-4)) cm
    assert cell.length_constant_um == pytest.approx(math.sqrt(1.5e-4 / 0.04) * 1e4)


@pytest.mark.parametrize("length, extent, expected", [
    (100.0, 7.0, 15),     # ceil(14.28...)
    (100.0, 10.0, 10),    # exact multiple
    (100.0, 0.1, 1000),   # 100 / 0.1 = 1000.0000000000001 in floating point
    (1.0, 1 / 3, 3),
    (5.0, 100.0, 1),
])
def test_max_extent_gives_ceil_of_length_over_extent(length, extent, expected):
    assert Discretization(max_extent_um=extent).cvs_for(length) == expected


def test_toml_round_trip_preserves_the_model(tmp_path, seed_model):
    path = tmp_path / "seed.toml"
    path.write_text(dumps_model(seed_model))
    assert load_model(path) == seed_model
    resolved = loads_model(dumps_model(seed_model, resolved=True))
    assert resolved.cells == seed_model.cells or all(
        r.initial_mV == s.initial_mV for r, s in zip(resolved.cells, seed_model.cells))
    assert resolved.simulation.sample_interval_ms == seed_model.simulation.sample_interval_ms


def test_overrides_by_name_and_index(seed_model):
    model = apply_overrides(seed_model, [
        "cells.a.e_leak_mV=-80", "gap_junctions.0.g_uS=0.02",
        "discretization.cvs_per_cell=11", "simulation.t_stop_ms=10"])
    assert model.cells[0].e_leak_mV == -80.0
    assert model.gap_junctions[0].g_uS == 0.02
    assert model.cvs(model.cells[1]) == 11
    assert model.simulation.n_samples == 1001
    # the original is frozen and unchanged
    assert seed_model.cells[0].e_leak_mV == -100.0


def test_override_of_one_discretization_key_replaces_the_other(seed_model):
    model = apply_overrides(seed_model, ["discretization.max_extent_um=7"])
    assert model.discretization.cvs_per_cell is None
    assert model.cvs(model.cells[0]) == 15


@pytest.mark.parametrize("override, field", [
    ("cells.c.e_leak_mV=1", "cells.c.e_leak_mV"),
    ("cells.a.lenght_um=1", "cells.0(a).lenght_um"),
    ("gap_junctions.5.g_uS=1", "gap_junctions.5.g_uS"),
    ("cells.a.length_um=-5", "cells.0(a).length_um"),
    ("nonsense", "--set"),
])
def test_bad_overrides_name_the_field(seed_model, override, field):
    with pytest.raises(InvalidModelError) as info:
        apply_overrides(seed_model, [override], source="seed.toml --set")
    assert info.value.field == field
    assert "\n" not in str(info.value)


def _with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize("text, field, words", [
    (_with(MINIMAL, "length_um = 200.0", "length_um = 0.0"), "cells.0(a).length_um",
     "greater than 0"),
    (_with(MINIMAL, "dt_ms = 0.025", "dt_ms = 0.03"), "simulation", "whole multiple"),
    (_with(MINIMAL, "dt_ms = 0.025", "dt_ms = 5.0"), "simulation", "larger than t_stop_ms"),
    (_with(MINIMAL, "e_leak_mV = -65.0", "e_leak_mV = nan"), "cells.0(a).e_leak_mV", "finite"),
    (_with(MINIMAL, "e_leak_mV = -65.0", 'e_leak_mV = "-65"'), "cells.0(a).e_leak_mV", "number"),
    (_with(MINIMAL, "radius_um = 1.5\n", ""), "cells.0(a).radius_um", "missing"),
    (MINIMAL + "\n[discretization]\ncvs_per_cell = 3\nmax_extent_um = 2.0\n", "discretization",
     "exactly one"),
    (MINIMAL + '\n[[probes]]\ncell = "z"\nx = 0.5\n', "probes.0.cell", "unknown cell"),
    (MINIMAL + '\n[[gap_junctions]]\ncells = ["a", "a"]\nx = [0.3, 0.3]\ng_uS = 1.0\n',
     "gap_junctions.0", "itself"),
    (MINIMAL + '\n[[probes]]\ncell = "a"\nx = 1.5\n', "probes.0.x", "less than or equal to 1"),
    ("colour = 3\n" + MINIMAL, "colour", "unknown key"),
])
def test_invalid_models_give_one_line_naming_file_and_field(text, field, words):
    with pytest.raises(InvalidModelError) as info:
        loads_model(text, source="my_model.toml")
    message = str(info.value)
    assert message.startswith(f"my_model.toml: {field}: "), message
    assert words in message
    assert "\n" not in message


def test_not_toml_is_rejected_with_the_file_name(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n[[[")
    with pytest.raises(InvalidModelError, match=r"broken.toml: not valid TOML"):
        load_model(path)


def test_junction_to_same_cell_at_other_site_is_allowed():
    model = loads_model(MINIMAL + '\n[[gap_junctions]]\ncells = ["a", "a"]\nx = [0.1, 0.9]\n'
                        'g_uS = 0.5\n')
    assert model.junctions_by_cell() == {0: [(0, 0, 0), (0, 1, 0)]}


def test_import_does_not_load_simulators():
    code = ("import sys, crosssim, crosssim.cli, crosssim.model, crosssim.backends;"
            "crosssim.cli.build_parser();"
            "print('arbor' in sys.modules, 'neuron' in sys.modules)")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_model_from_dict_rejects_non_tables():
    with pytest.raises(InvalidModelError, match="table"):
        model_from_dict([1, 2])  # type: ignore[arg-type]
