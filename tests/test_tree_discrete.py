"""The references on section trees: ``lumped``, ``discrete``, ``discrete_cn`` and
``semidiscrete`` built on the CV graph (:mod:`crosssim.cvgraph`).

Independent truths: closed forms written here (the isopotential ball-and-stick), a dense
numpy implementation of implicit Euler assembled in the test from the geometry (the
zero-area fork node kept as an algebraic row, ``np.linalg.solve`` per step), a dense
``scipy.linalg.expm`` of the same system, an unbranched cable (the cable path) against the
same cable cut into sections, and main's code before trees for cable models.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crosssim.analytic import lumped, lumped_steady_state
from crosssim.model import model_from_dict
from crosssim.sources import run_source, source_spec

MEMBRANE = {"cm_F_per_m2": 0.01, "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4,
            "e_leak_mV": -70.0}


def _model(cells, *, name="tree", t_stop=2.0, dt=0.025, sample_dt=None, cvs=None, **parts):
    simulation = {"t_stop_ms": t_stop, "dt_ms": dt}
    if sample_dt is not None:
        simulation["sample_dt_ms"] = sample_dt
    discretization = {"cvs_per_section": cvs} if cvs is not None else {"max_extent_um": 1e9}
    return model_from_dict({"name": name, "simulation": simulation,
                            "discretization": discretization, "cells": cells, **parts},
                           source=f"<test {name}>")


# lumped: the ball-and-stick in closed form ------------------------------------------------


def _ball_and_stick():
    """Soma 20 x 10 um (own g, e_leak, cm) and a 200 um dendrite tapering 2 -> 1 um."""
    soma = {"name": "soma", "length_um": 20.0, "radius_um": 10.0, "g_leak_S_per_cm2": 3e-4,
            "e_leak_mV": -55.0, "cm_F_per_m2": 0.02}
    dendrite = {"name": "dend", "parent": "soma", "length_um": 200.0, "radius_start_um": 2.0,
                "radius_end_um": 1.0}
    cell = {"name": "n", "sections": [soma, dendrite], **MEMBRANE, "v_init_mV": -80.0}
    return _model([cell], name="ball_and_stick", t_stop=20.0, dt=0.05,
                  probes=[{"cell": "n", "section": "dend", "x": 1.0}])


def test_lumped_ball_and_stick_matches_the_closed_form():
    model = _ball_and_stick()
    soma_um2 = 2 * math.pi * 10.0 * 20.0
    dendrite_um2 = math.pi * (2.0 + 1.0) * math.hypot(200.0, 1.0)  # lateral frustum
    # V_ss = sum g_i A_i E_i / sum g_i A_i;  tau = sum c_i A_i / sum g_i A_i
    leak = np.array([3e-4 * soma_um2, 1e-4 * dendrite_um2])
    steady_mV = (leak[0] * -55.0 + leak[1] * -70.0) / leak.sum()
    tau_ms = (0.02 * soma_um2 + 0.01 * dendrite_um2) * 1e-4 / leak.sum() * 1e3
    times = model.simulation.sample_times_ms()
    expected = steady_mV + (-80.0 - steady_mV) * np.exp(-times / tau_ms)
    result = run_source("lumped", model)
    np.testing.assert_allclose(result.values_mV[0], expected, rtol=0, atol=1e-12)
    assert lumped_steady_state(model) == {"n": pytest.approx(steady_mV, abs=1e-12)}
    assert source_spec("lumped").trees


def test_lumped_of_a_clamped_tree_settles_at_rest_plus_current_over_total_leak():
    model = _ball_and_stick().replace(
        simulation={"t_stop_ms": 200.0, "dt_ms": 0.5},
        stimuli=[{"cell": "n", "section": "dend", "x": 0.3, "delay_ms": 0.0,
                  "duration_ms": 500.0, "amplitude_nA": 0.05}])
    soma_um2 = 2 * math.pi * 10.0 * 20.0
    dendrite_um2 = math.pi * 3.0 * math.hypot(200.0, 1.0)
    leak_uS = (3e-4 * soma_um2 + 1e-4 * dendrite_um2) * 1e-2
    rest = lumped_steady_state(model)["n"]
    assert lumped(model).values_mV[0, -1] == pytest.approx(rest + 0.05 / leak_uS, abs=1e-9)
