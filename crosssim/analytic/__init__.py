"""Analytic references: the exact cable solution and the lumped (isopotential) solution.

Both return a :class:`crosssim.backends.base.RunResult` on the model's sample grid, like a
simulator backend, so the comparison layer treats them as sources:

* :func:`exact` (backend ``"analytic"``): the continuous model, sealed cells, point
  junctions and clamps, by Laplace transform and contour inversion.  Unbranched cables go
  to :func:`exact_cable` (:func:`cable_steady_state` its DC solution;
  :func:`sealed_cable_impedance` and :func:`laplace_responses` the transfer functions it
  inverts), trees of uniform sections to :func:`exact_tree` (nodal two-port system;
  :func:`tree_steady_state`); tapered sections have no exact solution.
* :func:`lumped` (backend ``"lumped"``): one compartment per cell, the exact solution of
  the linear ODE system; :func:`lumped_steady_state` its resting state.
* :func:`semidiscrete` and :func:`discrete` (backends ``"semidiscrete"``, ``"discrete"``,
  ``"discrete_cn"``): the simulators' CV discretization solved exactly in time, and the very
  recurrence the simulators step; :func:`roundoff_floor_mV` the round-off floor of a
  simulator-vs-simulator comparison (see :mod:`crosssim.analytic.discretized`).

Units everywhere: ms, mV, nA, uS, MOhm, nF, um.
"""

from crosssim.analytic.cable import (
    LaplaceResponses,
    cable_steady_state,
    exact_cable,
    laplace_responses,
    sealed_cable_impedance,
)
from crosssim.analytic.discretized import discrete, roundoff_floor_mV, semidiscrete
from crosssim.analytic.laplace import ContourPlan, invert_laplace
from crosssim.analytic.lumped_model import lumped, lumped_steady_state, lumped_system
from crosssim.analytic.tree import exact, exact_tree, tree_steady_state

__all__ = [
    "ContourPlan",
    "LaplaceResponses",
    "cable_steady_state",
    "discrete",
    "exact",
    "exact_cable",
    "exact_tree",
    "invert_laplace",
    "laplace_responses",
    "lumped",
    "lumped_steady_state",
    "lumped_system",
    "roundoff_floor_mV",
    "sealed_cable_impedance",
    "semidiscrete",
    "tree_steady_state",
]
