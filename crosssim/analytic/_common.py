"""Shared pieces of the analytic references: unit conversions, clamp schedules, time shifts.

Unit system of every analytic computation (consistent, no hidden factors):

==============  =========  ==========================================
quantity        unit       note
==============  =========  ==========================================
time            ms
voltage         mV
current         nA
conductance     uS         uS * mV = nA
resistance      MOhm       MOhm * nA = mV
capacitance     nF         nF * mV / ms = nA
length          um
==============  =========  ==========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Cell, Model

#: Relative distance (in sample intervals) below which a time is taken to lie on the grid.
GRID_SNAP = 1e-9


@dataclass(frozen=True)
class CableConstants:
    """Per-unit-length constants of one cell's cable (see the module table for units)."""

    length_um: float
    c_nF_per_um: float  #: membrane capacitance per unit length
    gl_uS_per_um: float  #: leak conductance per unit length
    r_MOhm_per_um: float  #: axial resistance per unit length
    e_leak_mV: float
    v_init_mV: float

    @property
    def tau_ms(self) -> float:
        """Membrane time constant c / g_l in ms."""
        return self.c_nF_per_um / self.gl_uS_per_um

    @property
    def lambda_um(self) -> float:
        """Length constant 1 / sqrt(r g_l) in um."""
        return 1.0 / math.sqrt(self.r_MOhm_per_um * self.gl_uS_per_um)

    @property
    def capacitance_nF(self) -> float:
        """Total (lateral) membrane capacitance in nF."""
        return self.c_nF_per_um * self.length_um

    @property
    def conductance_uS(self) -> float:
        """Total (lateral) leak conductance in uS."""
        return self.gl_uS_per_um * self.length_um


def cable_constants(cell: Cell, section: str | None = None) -> CableConstants:
    """The cable constants of ``section`` (default: the root, the whole cell for an
    unbranched cable) of ``cell`` in the analytic unit system; the section must be uniform.

    cm [F/m^2] = 1e-3 nF/um^2, g [S/cm^2] = 1e-2 uS/um^2, ra [ohm cm] = 1e-2 MOhm um.
    """
    where = cell.section(section)
    if not where.is_uniform:
        raise ValueError(f"section {where.name!r} of cell {cell.name!r} is tapered")
    radius_um = where.points()[0][1]
    circumference_um = 2.0 * math.pi * radius_um
    return CableConstants(
        length_um=where.length_um,
        c_nF_per_um=cell.value(where, "cm_F_per_m2") * 1e-3 * circumference_um,
        gl_uS_per_um=cell.value(where, "g_leak_S_per_cm2") * 1e-2 * circumference_um,
        r_MOhm_per_um=cell.value(where, "ra_ohm_cm") * 1e-2 / (math.pi * radius_um**2),
        e_leak_mV=cell.value(where, "e_leak_mV"),
        v_init_mV=cell.initial_mV,
    )


@dataclass(frozen=True)
class ClampEdge:
    """A switch of a step clamp: at ``time_ms`` the current at the site changes by ``delta_nA``
    (``stimulus``: its index in ``model.stimuli``, for references that place it themselves)."""

    time_ms: float
    cell: int
    x: float
    delta_nA: float
    stimulus: int


def clamp_edges(model: Model) -> list[ClampEdge]:
    """The on/off edges of every clamp that acts before ``t_stop_ms``, sorted by time.

    A clamp is on for ``delay <= t < delay + duration``; clamps with zero amplitude or
    zero duration, and edges at or after ``t_stop_ms``, are left out (they cannot change
    any sample).
    """
    index = model.cell_index()
    t_stop = model.simulation.t_stop_ms
    edges: list[ClampEdge] = []
    for k, stimulus in enumerate(model.stimuli):
        if stimulus.amplitude_nA == 0.0 or stimulus.duration_ms == 0.0:
            continue
        start = stimulus.delay_ms
        stop = stimulus.delay_ms + stimulus.duration_ms
        cell = index[stimulus.cell]
        if start < t_stop:
            edges.append(ClampEdge(start, cell, stimulus.x, stimulus.amplitude_nA, k))
            if stop < t_stop:
                edges.append(ClampEdge(stop, cell, stimulus.x, -stimulus.amplitude_nA, k))
    edges.sort(key=lambda edge: edge.time_ms)
    return edges


def clamp_currents_at(model: Model, time_ms: float) -> list[tuple[int, float, float]]:
    """The clamps on at ``time_ms`` as ``(cell index, x, amplitude_nA)``."""
    index = model.cell_index()
    return [
        (index[s.cell], s.x, s.amplitude_nA)
        for s in model.stimuli
        if s.amplitude_nA != 0.0 and s.delay_ms <= time_ms < s.delay_ms + s.duration_ms
    ]


def elapsed_since(model: Model, time_ms: float) -> np.ndarray:
    """``t_k - time_ms`` for every sample time ``t_k = k * sample_dt``, snapped to the grid.

    When ``time_ms`` is a whole number m of sample intervals (up to 1e-9 of an interval),
    the result is ``(k - m) * sample_dt`` exactly, so a clamp edge that falls on a sample
    gives an elapsed time of exactly 0 there (the voltage is continuous: the sample is
    the value before the switch) instead of a rounding residue of either sign.
    """
    dt = model.simulation.sample_interval_ms
    k = np.arange(model.simulation.n_samples, dtype=float)
    m = round(time_ms / dt)
    if abs(time_ms - m * dt) <= GRID_SNAP * dt:
        return (k - m) * dt
    return k * dt - time_ms


def invert_with_switches(model: Model, edges: list[tuple[int, float, float]], n_sources: int,
                         transforms, values: np.ndarray) -> dict:
    """Fill ``values[:, 1:]`` (probes x samples; column 0, t = 0, is the initial value) with
    the inverse Laplace transform of the response without clamps plus, for every clamp edge
    ``(source, time_ms, delta_nA)``, ``delta * R_source(t - time)``, where ``R`` is the
    response to a unit step switched on at 0 (so no switch is ever inverted directly; a
    sample on a switch time reads the value before it).  ``transforms(s)`` returns the
    transforms at the Laplace nodes ``s``: shape (1 + n_sources, n_probes, len(s)), the free
    response first, then each source's unit-step response.  Returns the contour's info
    (empty when no sample is after t = 0)."""
    from crosssim.analytic.laplace import ContourPlan

    times = model.simulation.sample_times_ms()
    edge_terms: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(n_sources)]
    positive: list[np.ndarray] = [times[times > 0.0]]
    for source, time_ms, delta in edges:
        elapsed = elapsed_since(model, time_ms)
        edge_terms[source].append((elapsed, delta))
        positive.append(elapsed[elapsed > 0.0])
    all_positive = np.concatenate(positive)
    if not all_positive.size:
        return {}
    plan = ContourPlan.covering(float(all_positive.min()), float(all_positive.max()))
    laplace = transforms(plan.nodes)
    values[:, 1:] = plan.invert(laplace[0], times[1:])
    for i, terms in enumerate(edge_terms):
        wanted = np.unique(np.concatenate([e[e > 0.0] for e, _ in terms]))
        if wanted.size == 0:
            continue
        response = plan.invert(laplace[1 + i], wanted)
        for elapsed, delta in terms:
            on = elapsed > 0.0
            values[:, on] += delta * response[:, np.searchsorted(wanted, elapsed[on])]
    return {"contour_nodes": plan.n_nodes, "contour_windows": len(plan.slices),
            "time_range_ms": [float(plan.edges[0]), float(plan.edges[-1])]}
