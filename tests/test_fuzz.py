"""Property-based fuzzing (hypothesis) of the model format and of both backends.

1. Hostile field values (NaN, inf, negative, huge, strings, booleans, missing and unknown keys)
   never crash validation: ``model_from_dict`` either returns a model that dumps and loads
   back unchanged, or raises InvalidModelError with one line naming the source and a field.
2. Small valid models (<= 3 cells, <= 5 CVs, t_stop <= 0.5 ms) run on Arbor and NEURON, which
   then agree to 1e-9 mV -- or a backend's failure is recorded with its reason; never a
   traceback.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from conftest import requires_arbor, requires_neuron
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from crosssim.errors import InvalidModelError
from crosssim.model import dumps_model, loads_model, model_from_dict

SOURCE = "fuzz.toml"

BASE: dict[str, Any] = {
    "name": "fuzz",
    "description": "a model for fuzzing",
    "simulation": {"t_stop_ms": 1.0, "dt_ms": 0.025, "sample_dt_ms": 0.05},
    "discretization": {"cvs_per_cell": 3},
    "cells": [
        {"name": "a", "length_um": 100.0, "radius_um": 3.0, "cm_F_per_m2": 0.005,
         "ra_ohm_cm": 90.0, "g_leak_S_per_cm2": 0.001, "e_leak_mV": -100.0, "v_init_mV": -90.0},
        {"name": "b", "length_um": 50.0, "radius_um": 1.0, "cm_F_per_m2": 0.01,
         "ra_ohm_cm": 150.0, "g_leak_S_per_cm2": 0.0003, "e_leak_mV": -60.0},
    ],
    "gap_junctions": [{"cells": ["a", "b"], "x": [0.5, 0.25], "g_uS": 0.01}],
    "probes": [{"cell": "a", "x": 0.5, "name": "pa"}, {"cell": "b", "x": 1.0}],
    "stimuli": [{"cell": "b", "x": 0.5, "delay_ms": 0.2, "duration_ms": 0.5,
                 "amplitude_nA": 0.1}],
    "tolerance": {"backends_abs_mV": 1e-6, "analytic_abs_mV": 0.1, "window_start_ms": 0.0,
                  "probes": {"pa": {"analytic_abs_mV": 0.2}}},
    "backends": {"arbor": {"threads": 1}, "neuron": {"secondorder": 0, "nthread": 1}},
}


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys and indices) into ``node``, tables and lists included."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, prefix + (index,))
    return found


PATHS = _paths(BASE)


def _at(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


TABLES = [()] + [path for path in PATHS if isinstance(_at(BASE, path), dict)]

HOSTILE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, -0.0, -1, -1e-300, 1e308, -1e308,
                     5e-324, 10**400, -(10**400), 2**63, 1e-12, 1.0000000001]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(["", "5", "0.5", "nan", "inf", ".", "..", ".hidden", "a/b", "../x",
                     "<&\"'>", "\x00", "\x1b[31m", "a" * 300, "ö", "a b"]),
    st.text(max_size=6),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.integers(-5, 5), st.floats(), st.text(max_size=2)), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
)


@st.composite
def hostile_models(draw) -> dict:
    """BASE with 1..4 mutations: a value replaced, a key removed, an unknown key added."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        try:
            if kind == "add":
                table = _at(data, draw(st.sampled_from(TABLES)))
                table[draw(st.sampled_from(["colour", "lenght_um", "x", "name", "1"]))] = \
                    draw(HOSTILE)
                continue
            path = draw(st.sampled_from(PATHS))
            parent = _at(data, path[:-1])
            if kind == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(HOSTILE)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the parent
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_models())
def test_hostile_fields_are_refused_in_one_line_or_give_a_sound_model(data):
    try:
        model = model_from_dict(data, source=SOURCE)
    except InvalidModelError as exc:
        text = str(exc)
        note(text)
        assert "\n" not in text and "Traceback" not in text
        assert text.startswith(f"{SOURCE}: ")
        assert exc.field, f"no field named: {text}"
        assert f": {exc.field}: " in text
        return
    # a model that passed validation is sound: every derived number exists, and it dumps
    # to TOML and loads back unchanged
    simulation = model.simulation
    assert 2 <= simulation.n_samples <= simulation.n_steps + 1
    assert all(1 <= model.cvs(cell) <= 1_000_000 for cell in model.cells)
    assert all(not name.startswith(".") for name in
               [model.name, *(c.name for c in model.cells), *model.probe_labels])
    assert loads_model(dumps_model(model), source=SOURCE) == model


# Small valid models on both backends ---------------------------------------------------------


def _unit(draw) -> float:
    """A position in [0, 1], often exactly an end or a CV boundary or centre."""
    return draw(st.one_of(st.floats(0.0, 1.0),
                          st.sampled_from([0.0, 1.0, 0.5, 0.25, 0.2, 0.4, 1 / 3, 2 / 3, 0.1])))


@st.composite
def small_models(draw) -> dict:
    n_cells = draw(st.integers(1, 3))
    dt = draw(st.sampled_from([0.005, 0.01, 0.025, 0.05]))
    n_steps = draw(st.integers(1, round(0.5 / dt)))
    every = draw(st.sampled_from([k for k in range(1, n_steps + 1) if n_steps % k == 0]))
    cells = [{
        "name": f"c{i}",
        "length_um": draw(st.floats(5.0, 500.0)),
        "radius_um": draw(st.floats(0.2, 10.0)),
        "cm_F_per_m2": draw(st.floats(0.001, 0.05)),
        "ra_ohm_cm": draw(st.floats(10.0, 500.0)),
        "g_leak_S_per_cm2": draw(st.floats(1e-5, 1e-2)),
        "e_leak_mV": draw(st.floats(-100.0, 50.0)),
        **({"v_init_mV": draw(st.floats(-100.0, 50.0))} if draw(st.booleans()) else {}),
    } for i in range(n_cells)]
    if draw(st.booleans()):
        discretization = {"cvs_per_cell": draw(st.integers(1, 5))}
    else:  # an extent that gives 1..5 CVs on the longest cell
        longest = max(cell["length_um"] for cell in cells)
        discretization = {"max_extent_um": longest / draw(st.floats(0.5, 4.9))}
    junctions = []
    for _ in range(draw(st.integers(0, 3))):
        first, second = draw(st.integers(0, n_cells - 1)), draw(st.integers(0, n_cells - 1))
        junctions.append({"cells": [f"c{first}", f"c{second}"], "x": [_unit(draw), _unit(draw)],
                          "g_uS": draw(st.floats(0.0, 0.1))})
    probes = [{"cell": f"c{draw(st.integers(0, n_cells - 1))}", "x": _unit(draw), "name": f"p{i}"}
              for i in range(draw(st.integers(0, 3)))]
    stimuli = [{"cell": f"c{draw(st.integers(0, n_cells - 1))}", "x": _unit(draw),
                "delay_ms": draw(st.floats(0.0, 0.5)), "duration_ms": draw(st.floats(0.0, 0.5)),
                "amplitude_nA": draw(st.floats(-1.0, 1.0))}
               for _ in range(draw(st.integers(0, 2)))]
    return {
        "name": "fuzz_small",
        "simulation": {"t_stop_ms": n_steps * dt, "dt_ms": dt, "sample_dt_ms": every * dt},
        "discretization": discretization,
        "cells": cells,
        "gap_junctions": junctions,
        "probes": probes,
        "stimuli": stimuli,
        "tolerance": {"backends_abs_mV": 1e-9},
    }


@pytest.mark.slow
@requires_arbor
@requires_neuron
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(small_models())
def test_small_valid_models_agree_on_both_backends_or_fail_cleanly(data):
    from crosssim.check import check
    from crosssim.report.text import render_table

    try:
        model = model_from_dict(data, source=SOURCE)
    except InvalidModelError:
        assume(False)  # e.g. a junction from a site to itself: refused by design
        raise
    assert model.simulation.t_stop_ms <= 0.5 + 1e-12 and len(model.cells) <= 3
    assert all(model.cvs(cell) <= 5 for cell in model.cells)
    note(dumps_model(model))  # printed with a failing example: enough to reproduce it
    outcome = check(model, backends=["arbor", "neuron"], references=())
    note(render_table(outcome))
    if outcome.failures:  # a failure is recorded with its reason, never a pass
        assert outcome.verdict == "error" and outcome.exit_code == 3
        assert all(reason.strip() and "\n" not in reason for reason in outcome.failures.values())
        return
    assert outcome.verdict == "pass", render_table(outcome)
    assert {(c.a, c.b) for c in outcome.comparisons} == {("arbor", "neuron")}
    assert max(c.max_abs_mV for c in outcome.comparisons) <= 1e-9


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False, allow_subnormal=True),
       st.sampled_from([1.0, 1.5, 2.0]))
def test_suggested_tolerance_covers_any_observed_deviation(observed, headroom):
    """Found by the fuzzing above: a subnormal deviation (5e-324 mV) divided by zero."""
    from crosssim.compare import suggest_tolerance

    suggested = suggest_tolerance(observed, headroom)
    assert suggested >= observed * headroom * (1 - 1e-9)
    assert suggested <= max(observed * headroom * 10, 1e-300) or suggested == math.inf
