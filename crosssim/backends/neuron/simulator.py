"""Model -> NEURON sections, run, probe values.  Runs inside the worker child process.

Semantics (the contract shared with the Arbor backend, which NEURON is made to reproduce):

* A cell is one ``h.Section`` with ``nseg = model.cvs(cell)``; segment ``i`` is the control
  volume (CV) ``[i/n, (i+1)/n]`` and its node sits at the CV centre ``(i + 0.5)/n``.
* **Point sources act on the CV containing x.**  Every junction half and current clamp is
  placed on the centre of the segment of the CV that Arbor assigns ``x`` to
  (:func:`site_cv`): the CV ``i`` with ``b_i <= x < b_(i+1)``, where Arbor's boundaries are
  ``b_k = k * (1/n)`` in floating point and ``x = 1`` belongs to the last CV.  A site exactly
  on an interior boundary belongs to the *distal* CV (x = 0.5 with 2 CVs -> CV 1), x = 0 to
  the first CV.  NEURON's zero-area end nodes (x = 0, 1) are never used.
* **Probe = linear interpolation between CV centres** (:func:`probe_stencil`): between the two
  neighbouring centres, and extrapolated from the first/last pair of centres out to x = 0 /
  x = 1, exactly as Arbor's ``cable_probe_membrane_voltage``.  With one CV the probe reads
  that CV.  NEURON records only the segment centres that probes need.
* **Step clamps** follow Arbor's timing (:func:`clamp_steps`): the step from ``t_j = j*dt`` to
  ``t_(j+1)`` carries the amplitude when ``delay <= t_j < delay + duration``.  NEURON's
  ``IClamp`` tests the step midpoint instead, so the clamp is given ``del = j0*dt`` and
  ``dur = (j1 - j0 + 1)*dt`` for the first and last such steps: the same steps, with a half
  step margin against rounding.

Everything above the ``simulate`` function is plain Python (no NEURON import), so the
parent process and the tests can use it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from crosssim.backends.neuron.mechanisms import MECHANISM_NAME

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = [
    "MECHANISM_NAME",
    "SimulationOutput",
    "clamp_steps",
    "cv_centre",
    "probe_stencil",
    "simulate",
    "site_cv",
]



# Site and probe semantics (pure Python) ----------------------------------------------------


def site_cv(x: float, n_cvs: int) -> int:
    """Index of the CV (0 .. n_cvs-1) that Arbor assigns position ``x`` to.

    Arbor's CV boundaries for ``n`` CVs per branch are ``k * (1/n)`` (k < n) and 1; a point
    is in CV ``i`` when ``b_i <= x < b_(i+1)`` (boundary sites go distal), x = 1 is in the
    last CV.
    """
    if n_cvs <= 1:
        return 0
    step = 1.0 / n_cvs
    index = min(max(int(x * n_cvs), 0), n_cvs - 1)
    while index + 1 < n_cvs and (index + 1) * step <= x:
        index += 1
    while index > 0 and index * step > x:
        index -= 1
    return index


def cv_centre(index: int, n_cvs: int) -> float:
    """Position (0..1) of the centre of CV ``index``: NEURON's segment node ``(i + 0.5)/n``."""
    return (index + 0.5) / n_cvs


def probe_stencil(x: float, n_cvs: int) -> tuple[int, int, float]:
    """``(i, j, w)`` such that the probe at ``x`` reads ``(1 - w) * V_i + w * V_j``.

    Linear interpolation between neighbouring CV centres, extrapolated from the first or
    last pair beyond the outermost centres (``w`` < 0 or > 1 there).  One CV: ``(0, 0, 0)``.
    """
    if n_cvs <= 1:
        return 0, 0, 0.0
    position = x * n_cvs - 0.5  # in units of CV lengths from the first centre
    first = min(max(math.floor(position), 0), n_cvs - 2)
    return first, first + 1, position - first


def clamp_steps(delay_ms: float, duration_ms: float, dt_ms: float,
                n_steps: int) -> tuple[int, int] | None:
    """First and last integration step (0-based) a step clamp is on, or None if never.

    Arbor's rule: step ``j`` (from ``j*dt`` to ``(j+1)*dt``) carries the amplitude when
    ``delay <= j*dt < delay + duration`` (floating-point products and sum).  Only steps
    ``0 .. n_steps-1`` matter.
    """
    end = delay_ms + duration_ms
    first = max(0, math.ceil(delay_ms / dt_ms))
    while first > 0 and (first - 1) * dt_ms >= delay_ms:
        first -= 1
    while first * dt_ms < delay_ms:
        first += 1
    last = max(-1, math.ceil(end / dt_ms) - 1)
    while (last + 1) * dt_ms < end:
        last += 1
    while last >= 0 and last * dt_ms >= end:
        last -= 1
    last = min(last, n_steps - 1)
    if last < first:
        return None
    return first, last


# Running NEURON (child process only) --------------------------------------------------------


@dataclass
class SimulationOutput:
    """Raw result of :func:`simulate`: NEURON's sample times and the probe values."""

    times_ms: np.ndarray
    values_mV: np.ndarray
    build_s: float
    run_s: float
    info: dict[str, Any] = field(default_factory=dict)


def simulate(model: Model, *, secondorder: int, nthread: int) -> SimulationOutput:
    """Build ``model`` as NEURON sections, run it and return the samples at the probes.

    NEURON must already have the crosssim mechanisms loaded (see ``worker.py``).  Returns
    times in ms (NEURON's floats, one per sample) and values in mV, shape
    ``(n_probes, n_samples)``.
    """
    import neuron
    from neuron import h

    start = time.perf_counter()
    sim = model.simulation
    dt = sim.dt_ms
    n_steps = sim.n_steps
    pc = h.ParallelContext()

    sections = []
    cvs = []
    for gid, cell in enumerate(model.cells):
        n_cvs = model.cvs(cell)
        section = h.Section(name=f"cell{gid}")
        section.L = cell.length_um
        section.diam = 2.0 * cell.radius_um
        section.nseg = n_cvs
        section.Ra = cell.ra_ohm_cm
        section.cm = cell.cm_F_per_m2 * 100.0  # F/m^2 -> uF/cm^2
        section.insert("pas")
        for segment in section:
            segment.pas.g = cell.g_leak_S_per_cm2
            segment.pas.e = cell.e_leak_mV
        sections.append(section)
        cvs.append(n_cvs)

    def node(gid: int, index: int):
        return sections[gid](cv_centre(index, cvs[gid]))

    # Junctions: one source id per (cell, CV) whose voltage some junction half needs.
    index = model.cell_index()
    source_ids: dict[tuple[int, int], int] = {}

    def source_id(gid: int, cv: int) -> int:
        key = (gid, cv)
        if key not in source_ids:
            sgid = len(source_ids)
            source_ids[key] = sgid
            pc.source_var(node(gid, cv)._ref_v, sgid, sec=sections[gid])
        return source_ids[key]

    junction_halves = []
    for junction in model.gap_junctions:
        sites = [(index[name], site_cv(x, cvs[index[name]]))
                 for name, x in zip(junction.cells, junction.x)]
        for side in (0, 1):
            gid, cv = sites[side]
            peer = source_id(*sites[1 - side])
            half = getattr(h, MECHANISM_NAME)(node(gid, cv))
            half.g = junction.g_uS
            pc.target_var(half, half._ref_vgap, peer)
            junction_halves.append(half)

    clamps = []
    for stimulus in model.stimuli:
        steps = clamp_steps(stimulus.delay_ms, stimulus.duration_ms, dt, n_steps)
        if steps is None:
            continue
        gid = index[stimulus.cell]
        clamp = h.IClamp(node(gid, site_cv(stimulus.x, cvs[gid])))
        clamp.delay = steps[0] * dt
        clamp.dur = (steps[1] - steps[0] + 1) * dt
        clamp.amp = stimulus.amplitude_nA
        clamps.append(clamp)

    # Probes: record only the CV centres that the stencils use.
    recordings: dict[tuple[int, int], Any] = {}
    stencils = []
    for probe in model.effective_probes():
        gid = index[probe.cell]
        first, second, weight = probe_stencil(probe.x, cvs[gid])
        for cv in {first, second}:
            if (gid, cv) not in recordings:
                recordings[(gid, cv)] = h.Vector().record(node(gid, cv)._ref_v)
        stencils.append((gid, first, second, weight))
    times = h.Vector().record(h._ref_t, sec=sections[0])

    if nthread > 1:
        pc.nthread(nthread)
    h.secondorder = int(secondorder)
    h.dt = dt
    if source_ids:
        pc.setup_transfer()
    pc.set_maxstep(10)
    for gid, cell in enumerate(model.cells):
        for segment in sections[gid].allseg():
            segment.v = cell.initial_mV
    h.finitialize()
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    pc.psolve(sim.t_stop_ms)
    while len(times) < n_steps + 1 and h.t < sim.t_stop_ms + 0.5 * dt:
        h.fadvance()  # defensive: psolve stopped one step short
    run_s = time.perf_counter() - start

    every = sim.steps_per_sample
    raw_times = np.array(times)[: n_steps + 1][::every]
    traces = {key: np.array(vector)[: n_steps + 1][::every] for key, vector in recordings.items()}
    values = np.empty((len(stencils), raw_times.shape[0]))
    for row, (gid, first, second, weight) in enumerate(stencils):
        if weight == 0.0:
            values[row] = traces[(gid, first)]
        else:
            values[row] = (1.0 - weight) * traces[(gid, first)] + weight * traces[(gid, second)]
    info = {
        "neuron_version": neuron.__version__,
        "method": {0: "implicit Euler", 1: "Crank-Nicolson (secondorder 1)",
                   2: "Crank-Nicolson (secondorder 2)"}[int(secondorder)],
        "secondorder": int(secondorder),
        "nthread": int(pc.nthread()),
        "dt_ms": dt,
        "junction_halves": len(junction_halves),
        "recorded_nodes": len(recordings),
    }
    return SimulationOutput(raw_times, values, build_s, run_s, info)
