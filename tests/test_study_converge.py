"""Convergence studies: observed orders in dt and in CV size against the exact cable solution.

Bands: implicit Euler (Arbor, NEURON ``secondorder = 0``) order in dt within [0.8, 1.2];
Crank-Nicolson (NEURON ``secondorder = 2``) within [1.7, 2.3]; CV size within [1.7, 2.3]
with probes and junctions at CV centres (odd CV counts, x = 0.5).

The models are chosen so the step being studied dominates the error:

* dt: both cells start at -80 mV, between their leak reversals (-100 / -60 mV), so the
  junction current grows smoothly from zero and the time error is that of the smooth
  transient; at 9 CVs the space error (~1e-4 mV) is far below the dt error (~0.02 mV).
* space: a fast membrane (tau = 0.05 ms) and errors measured from t = 0.5 ms, when the
  transient (and with it the time error) has decayed by e^-10, leaving the space error of
  the steady state.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import requires_arbor, requires_neuron

from crosssim.builtin import builtin_model
from crosssim.model import apply_overrides, model_from_dict

FIRST_ORDER = (0.8, 1.2)
SECOND_ORDER = (1.7, 2.3)
DTS = [0.04, 0.02, 0.01, 0.005]




def _smooth_start(**overrides):
    """The seed model for 1 ms, both cells starting at -80 mV."""
    settings = {"simulation.t_stop_ms": 1.0, "cells.a.v_init_mV": -80.0,
                "cells.b.v_init_mV": -80.0, **overrides}
    return apply_overrides(builtin_model("two_cells"), list(settings.items()))


def _within(value: float, band: tuple[float, float]) -> bool:
    return math.isfinite(value) and band[0] <= value <= band[1]


def test_fit_order_and_richardson_on_synthetic_data():
    import numpy as np

    from crosssim.study.convergence import fit_order, local_orders, richardson

    steps = [0.04, 0.02, 0.01, 0.005]
    assert fit_order(steps, [3.0 * h ** 2 for h in steps]) == pytest.approx(2.0)
    assert local_orders(steps, [h for h in steps]) == pytest.approx([1.0, 1.0, 1.0])
    assert math.isnan(fit_order([0.1], [0.2]))
    exact = np.array([1.0, 2.0])
    coarse, fine = exact + 0.04, exact + 0.01  # error ~ h^2, ratio 2
    assert richardson(coarse, fine, 2.0, 2.0) == pytest.approx(exact)


@requires_arbor
@requires_neuron
def test_implicit_euler_is_first_order_in_dt(cache_dir, tmp_path, capsys):
    """Arbor and NEURON (secondorder 0) through the command line, with its outputs."""
    from crosssim.cli import main

    code = main(["converge", "--set", "simulation.t_stop_ms=1", "--set",
                 "cells.a.v_init_mV=-80", "--set", "cells.b.v_init_mV=-80",
                 "--dt", ",".join(map(str, DTS)), "--cvs", "3,9", "--backend", "arbor,neuron",
                 "--out", str(tmp_path), "--format", "json", "--workers", "2", "--quiet"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    orders = {(fit["backend"], fit["study"]): fit for fit in document["orders"]}
    for backend in ("arbor", "neuron"):
        fit = orders[(backend, "dt")]
        assert _within(fit["order_max"], FIRST_ORDER), fit
        assert _within(fit["order_rms"], FIRST_ORDER), fit
        assert fit["fixed"] == {"cvs_per_cell": 9.0}
        # Richardson extrapolation of the two finest dt removes most of the error.
        for probe in fit["richardson"].values():
            assert probe["richardson_error_mV"] < 0.2 * probe["finest_error_mV"]
    assert document["sample_dt_ms"] == 0.04
    assert len(document["levels"]) == 2 * (4 + 2)
    for name in ("converge.json", "converge.csv", "converge.png"):
        assert (tmp_path / name).stat().st_size > 0


@requires_neuron
def test_crank_nicolson_is_second_order_in_dt(cache_dir):
    """NEURON secondorder 2 on uncoupled cells (g = 0; see EXPLICIT_JUNCTION)."""
    from crosssim.study.cache import ResultsCache
    from crosssim.study.convergence import converge
    from crosssim.study.executors import LocalExecutor

    model = _smooth_start(**{"gap_junctions.0.g_uS": 0.0, "backends.neuron.secondorder": 2})
    result = converge(model, dts=DTS, cvs=[3, 9], backends=["neuron"],
                      executor=LocalExecutor(2), cache=ResultsCache())
    assert result.ok, result.failures
    assert _within(result.order("neuron", "dt"), SECOND_ORDER), result.orders
    assert _within(result.order("neuron", "dt", "rms"), SECOND_ORDER)


#: Why NEURON's Crank-Nicolson loses an order when a gap junction carries current.
EXPLICIT_JUNCTION = (
    "NEURON's gap junction reads the peer voltage once per step (ParallelContext "
    "source_var/target_var), an explicit coupling that makes secondorder 2 first order in dt "
    "when a junction carries current")


@requires_neuron
def test_crank_nicolson_with_a_gap_junction_is_first_order(cache_dir):
    """A measured property, not a wish: with a current-carrying junction NEURON's
    Crank-Nicolson converges at order ~1, because the junction is coupled explicitly
    (the peer voltage is read once per step). Arbor couples the same way, which is why
    the two implicit-Euler runs agree to 1e-12 mV. If the adapter ever couples junctions
    implicitly (e.g. LinearMechanism), this test must change to SECOND_ORDER."""
    from crosssim.study.cache import ResultsCache
    from crosssim.study.convergence import converge
    from crosssim.study.executors import LocalExecutor

    model = _smooth_start(**{"backends.neuron.secondorder": 2})
    result = converge(model, dts=DTS, cvs=[3, 9], backends=["neuron"],
                      executor=LocalExecutor(2), cache=ResultsCache())
    assert result.ok, result.failures
    order = result.order("neuron", "dt")
    assert _within(order, FIRST_ORDER), (EXPLICIT_JUNCTION, result.orders)


@requires_arbor
@requires_neuron
def test_second_order_in_cv_size(cache_dir):
    from crosssim.report.convergence import render_text
    from crosssim.study.cache import ResultsCache
    from crosssim.study.convergence import converge
    from crosssim.study.executors import LocalExecutor

    model = apply_overrides(builtin_model("two_cells"), [
        ("simulation.t_stop_ms", 1.0),
        ("cells.a.g_leak_S_per_cm2", 0.01), ("cells.b.g_leak_S_per_cm2", 0.01),
        ("gap_junctions.0.g_uS", 0.1), ("tolerance.window_start_ms", 0.5)])
    result = converge(model, dts=[0.02, 0.01], cvs=[1, 3, 9, 27],
                      backends=["arbor", "neuron"], executor=LocalExecutor(2),
                      cache=ResultsCache())
    assert result.ok, result.failures
    for backend in ("arbor", "neuron"):
        assert _within(result.order(backend, "space"), SECOND_ORDER), render_text(result)
        fit = next(f for f in result.orders if f.backend == backend and f.study == "space")
        assert fit.parameter == "cv_length_um" and fit.fixed == {"dt_ms": 0.01}
        assert fit.steps == pytest.approx([100.0, 100 / 3, 100 / 9, 100 / 27])
        assert not fit.floor
    frame = result.to_frame()
    assert set(frame["study"]) == {"dt", "space"}
    assert frame["max_abs_mV"].notna().all()
    table = result.figure_table()
    assert {row["parameter"] for row in table} == {"dt_ms", "cv_length_um"}


def test_bad_levels_are_usage_errors(capsys):
    from crosssim.cli import main

    assert main(["converge", "--dt", "0.01"]) == 2  # one level cannot give an order
    assert main(["converge", "--dt", "0.04,x"]) == 2
    assert main(["converge", "--cvs", "3,0"]) == 2
    assert main(["converge", "--cvs", "3,9", "--max-extent", "10,5"]) == 2
    # 0.03 is coarsest: t_stop 5 ms is not a whole multiple of the sample interval.
    assert main(["converge", "--dt", "0.03,0.01", "--cvs", "1,3", "--backend", "arbor"]) == 2
    assert "t_stop_ms" in capsys.readouterr().err


@requires_arbor
def test_a_floored_fit_has_no_richardson_estimate(cache_dir):
    """At dt 0.02 ms the time-stepping error (~0.07 mV) hides the space error below 3 CVs:
    the space fit is at a floor (local orders 0.45, 0.06, 0.01), and extrapolating it would
    be meaningless, so no Richardson estimate is made (before, one run showed numbers and
    another n/a, by whether the fitted order happened to cross 0.5)."""
    from crosssim.report.convergence import order_rows
    from crosssim.study import converge

    model = apply_overrides(builtin_model("two_cells"), [("simulation.t_stop_ms", 1.0)])
    result = converge(model, dts=[0.04, 0.02], cvs=[1, 3, 9, 27], backends=["arbor"])
    fits = {fit.study: fit for fit in result.orders}
    assert fits["space"].floor and fits["space"].richardson == {}
    assert not fits["dt"].floor and set(fits["dt"].richardson) == {"a_gj", "b_gj"}
    rows = {row.study: row for row in order_rows(result.to_document())}
    assert rows["space"].floor and rows["space"].richardson_error_mV is None
    assert rows["dt"].richardson_error_mV is not None


@requires_arbor
def test_the_other_error_measured_directly_marks_a_floor(cache_dir):
    """A 1 mm cable clamped at one end: at dt 0.01 ms the time-stepping error (measured as
    discrete - semidiscrete, 0.05 mV) is most of the finest space level's 0.066 mV, so the
    space fit is at a floor although its local orders (1.21, 0.95) look healthy; the dt fit,
    whose floor (the space part, semidiscrete - exact) is 0.015 mV, is not."""
    from crosssim.study import converge

    model = model_from_dict({
        "name": "cable", "simulation": {"t_stop_ms": 2.0, "dt_ms": 0.01},
        "cells": [{"name": "a", "length_um": 1000.0, "radius_um": 1.0, "cm_F_per_m2": 0.01,
                   "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -65.0}],
        "stimuli": [{"cell": "a", "x": 0.0, "delay_ms": 0.0, "duration_ms": 2.0,
                     "amplitude_nA": 0.1}],
        "probes": [{"cell": "a", "x": 0.0, "name": "end"}, {"cell": "a", "x": 0.5,
                                                            "name": "mid"}]})
    result = converge(model, dts=[0.04, 0.02, 0.01], cvs=[11, 33, 101], backends=["arbor"])
    fits = {fit.study: fit for fit in result.orders}
    space, dt = fits["space"], fits["dt"]
    # the old rule alone would not see it: the last local order is not far below the fit
    assert space.local_orders[-1] > 0.5 * space.order_max > 0.25
    assert 0.5 * space.errors_max_mV[-1] <= space.other_error_mV < space.errors_max_mV[-1]
    assert space.floor and space.richardson == {}
    assert dt.other_error_mV < 0.5 * dt.errors_max_mV[-1] and not dt.floor
    assert result.to_document()["orders"][1]["other_error_mV"] == space.other_error_mV
