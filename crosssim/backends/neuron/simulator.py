"""Model -> NEURON: the site and probe semantics, the lowering to a plan, and the child-side run.

Two halves, one file, so that every NEURON semantic lives in one place:

* **Parent side** (pure Python + numpy): :func:`lower`, which turns a
  :class:`~crosssim.model.Model` into a :class:`Plan` of flat numpy arrays (sections,
  junction halves, clamps, recorded nodes), using the shared rules of
  :mod:`crosssim.discretization` (``site_cv``, ``probe_stencil``, ``clamp_steps``).
* **Child side** (:func:`simulate`): builds the plan as NEURON sections and runs it.  The
  child never imports the ``crosssim`` package (whose model layer pulls in pydantic, about
  0.2 s per process): ``worker.py`` runs by path and imports this file as a sibling, so
  this module imports nothing from ``crosssim`` at module level (:func:`lower`, parent side
  only, imports :mod:`crosssim.discretization` when it runs).

Semantics (the contract shared with the Arbor backend, which NEURON is made to reproduce):

* A cell is one ``h.Section`` with ``nseg = model.cvs(cell)``; segment ``i`` is the control
  volume (CV) ``[i/n, (i+1)/n]`` and its node sits at the CV centre ``(i + 0.5)/n``.
* **Point sources act on the CV containing x.**  Every junction half and current clamp is
  placed on the centre of the segment of the CV that Arbor assigns ``x`` to
  (``site_cv``): the CV ``i`` with ``b_i <= x < b_(i+1)``, where Arbor's boundaries are
  ``b_k = k * (1/n)`` in floating point and ``x = 1`` belongs to the last CV.  A site exactly
  on an interior boundary belongs to the *distal* CV (x = 0.5 with 2 CVs -> CV 1), x = 0 to
  the first CV.  NEURON's zero-area end nodes (x = 0, 1) are never used.
* **Probe = linear interpolation between CV centres** (:func:`probe_stencil`): between the two
  neighbouring centres, and extrapolated from the first/last pair of centres out to x = 0 /
  x = 1, exactly as Arbor's ``cable_probe_membrane_voltage``.  With one CV the probe reads
  that CV.  NEURON records only the CV centres that probes need, and only at the sample
  times (``Vector.record(ref, sample_dt)``), so memory is (recorded nodes x samples).
* **Step clamps** follow Arbor's timing (:func:`clamp_steps`): the step from ``t_j = j*dt`` to
  ``t_(j+1)`` carries the amplitude when ``delay <= t_j < delay + duration``.  NEURON's
  ``IClamp`` tests the step midpoint instead, so the clamp is given ``del = j0*dt`` and
  ``dur = (j1 - j0 + 1)*dt`` for the first and last such steps: the same steps, with a half
  step margin against rounding.
* **Gap junctions** are pairs of ``CrosssimGap`` halves whose peer voltage arrives through
  ``ParallelContext.source_var`` / ``target_var``; this transfer works across NEURON threads
  (``nthread``) and MPI ranks, so neither changes the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = [
    "Plan",
    "SimulationOutput",
    "lower",
    "simulate",
]

#: Names that moved to :mod:`crosssim.discretization` (still importable from here).
_MOVED = ("clamp_steps", "cv_centre", "probe_stencil", "site_cv")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from crosssim import discretization

        return getattr(discretization, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The plan: a model lowered to flat arrays (parent side) ------------------------------------


@dataclass
class Plan:
    """A model lowered to what NEURON needs, as flat arrays (saved to ``.npz`` for the child).

    Per cell (index = gid): ``length_um``, ``diam_um``, ``nseg``, ``ra_ohm_cm``,
    ``cm_uF_per_cm2``, ``g_pas_S_per_cm2``, ``e_pas_mV``, ``v_init_mV``.
    Transfer sources (index = source id): ``source_gid``, ``source_cv``.
    Junction halves: ``half_gid``, ``half_cv`` (where the half sits), ``half_source`` (source
    id of the peer site), ``half_g_uS``.  Clamps: ``clamp_gid``, ``clamp_cv``,
    ``clamp_delay_ms``, ``clamp_dur_ms``, ``clamp_amp_nA`` (already on Arbor's step rule).
    Recorded nodes: ``record_gid``, ``record_cv``.  Probes (parent only, not sent):
    ``stencil_first`` / ``stencil_second`` (rows of the recorded nodes) and ``stencil_weight``.
    """

    length_um: np.ndarray
    diam_um: np.ndarray
    nseg: np.ndarray
    ra_ohm_cm: np.ndarray
    cm_uF_per_cm2: np.ndarray
    g_pas_S_per_cm2: np.ndarray
    e_pas_mV: np.ndarray
    v_init_mV: np.ndarray
    source_gid: np.ndarray
    source_cv: np.ndarray
    half_gid: np.ndarray
    half_cv: np.ndarray
    half_source: np.ndarray
    half_g_uS: np.ndarray
    clamp_gid: np.ndarray
    clamp_cv: np.ndarray
    clamp_delay_ms: np.ndarray
    clamp_dur_ms: np.ndarray
    clamp_amp_nA: np.ndarray
    record_gid: np.ndarray
    record_cv: np.ndarray
    stencil_first: np.ndarray
    stencil_second: np.ndarray
    stencil_weight: np.ndarray
    dt_ms: float
    t_stop_ms: float
    n_steps: int
    steps_per_sample: int

    #: Arrays the child needs (the stencils stay with the parent).
    CHILD_ARRAYS = ("length_um", "diam_um", "nseg", "ra_ohm_cm", "cm_uF_per_cm2",
                    "g_pas_S_per_cm2", "e_pas_mV", "v_init_mV", "source_gid", "source_cv",
                    "half_gid", "half_cv", "half_source", "half_g_uS", "clamp_gid",
                    "clamp_cv", "clamp_delay_ms", "clamp_dur_ms", "clamp_amp_nA",
                    "record_gid", "record_cv")
    SCALARS = ("dt_ms", "t_stop_ms", "n_steps", "steps_per_sample")

    @property
    def n_cells(self) -> int:
        return int(self.length_um.shape[0])

    @property
    def n_samples(self) -> int:
        return self.n_steps // self.steps_per_sample + 1

    def child_arrays(self) -> dict[str, np.ndarray]:
        """The arrays and scalars the child needs, ready for ``np.savez``."""
        data = {name: getattr(self, name) for name in self.CHILD_ARRAYS}
        data.update({name: np.asarray(getattr(self, name)) for name in self.SCALARS})
        return data

    @classmethod
    def from_child_arrays(cls, data: Any) -> Plan:
        """The plan as the child sees it (no stencils) from a loaded ``.npz``."""
        empty = np.empty(0)
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name in cls.CHILD_ARRAYS:
                values[item.name] = np.asarray(data[item.name])
            elif item.name in cls.SCALARS:
                scalar = data[item.name][()]
                values[item.name] = float(scalar) if item.name.endswith("_ms") else int(scalar)
            else:
                values[item.name] = empty
        return cls(**values)

    def probe_values(self, nodes_mV: np.ndarray) -> np.ndarray:
        """Probe traces (n_probes, n_samples) in mV from the recorded node traces."""
        first = nodes_mV[self.stencil_first]
        weight = self.stencil_weight[:, None]
        if not np.any(self.stencil_weight):
            return first
        second = nodes_mV[self.stencil_second]
        return np.where(weight == 0.0, first, (1.0 - weight) * first + weight * second)


def lower(model: Model) -> Plan:
    """The NEURON plan of ``model`` (see :class:`Plan`); O(cells + junctions + probes)."""
    from crosssim.discretization import clamp_steps, probe_stencil, site_cv

    sim = model.simulation
    dt = sim.dt_ms
    n_steps = sim.n_steps
    cells = model.cells
    cvs = [model.cvs(cell) for cell in cells]
    index = model.cell_index()

    source_ids: dict[tuple[int, int], int] = {}

    def source_id(gid: int, cv: int) -> int:
        return source_ids.setdefault((gid, cv), len(source_ids))

    half_gid, half_cv, half_source, half_g = [], [], [], []
    for junction in model.gap_junctions:
        sites = []
        for name, x in zip(junction.cells, junction.x):
            gid = index[name]
            sites.append((gid, site_cv(x, cvs[gid])))
        for side in (0, 1):
            gid, cv = sites[side]
            half_gid.append(gid)
            half_cv.append(cv)
            half_source.append(source_id(*sites[1 - side]))
            half_g.append(junction.g_uS)

    clamps = []
    for stimulus in model.stimuli:
        steps = clamp_steps(stimulus.delay_ms, stimulus.duration_ms, dt, n_steps)
        if steps is None:
            continue
        gid = index[stimulus.cell]
        clamps.append((gid, site_cv(stimulus.x, cvs[gid]), steps[0] * dt,
                       (steps[1] - steps[0] + 1) * dt, stimulus.amplitude_nA))

    records: dict[tuple[int, int], int] = {}
    stencils = []
    for probe in model.effective_probes():
        gid = index[probe.cell]
        first, second, weight = probe_stencil(probe.x, cvs[gid])
        if weight == 0.0:  # the probe sits on a CV centre: one node is enough
            second = first
        rows = [records.setdefault((gid, cv), len(records)) for cv in (first, second)]
        stencils.append((rows[0], rows[1], weight))

    def ints(values) -> np.ndarray:
        return np.asarray(values, dtype=np.int64).reshape(-1)

    def floats(values) -> np.ndarray:
        return np.asarray(values, dtype=float).reshape(-1)

    sources = list(source_ids)
    recorded = list(records)
    return Plan(
        length_um=floats([cell.tree()[0].length_um for cell in cells]),
        diam_um=floats([2.0 * cell.tree()[0].points()[0][1] for cell in cells]),
        nseg=ints(cvs),
        ra_ohm_cm=floats([cell.ra_ohm_cm for cell in cells]),
        cm_uF_per_cm2=floats([cell.cm_F_per_m2 * 100.0 for cell in cells]),  # F/m^2 -> uF/cm^2
        g_pas_S_per_cm2=floats([cell.g_leak_S_per_cm2 for cell in cells]),
        e_pas_mV=floats([cell.e_leak_mV for cell in cells]),
        v_init_mV=floats([cell.initial_mV for cell in cells]),
        source_gid=ints([gid for gid, _ in sources]),
        source_cv=ints([cv for _, cv in sources]),
        half_gid=ints(half_gid), half_cv=ints(half_cv), half_source=ints(half_source),
        half_g_uS=floats(half_g),
        clamp_gid=ints([c[0] for c in clamps]), clamp_cv=ints([c[1] for c in clamps]),
        clamp_delay_ms=floats([c[2] for c in clamps]), clamp_dur_ms=floats([c[3] for c in clamps]),
        clamp_amp_nA=floats([c[4] for c in clamps]),
        record_gid=ints([gid for gid, _ in recorded]),
        record_cv=ints([cv for _, cv in recorded]),
        stencil_first=ints([s[0] for s in stencils]),
        stencil_second=ints([s[1] for s in stencils]),
        stencil_weight=floats([s[2] for s in stencils]),
        dt_ms=float(dt), t_stop_ms=float(sim.t_stop_ms), n_steps=int(n_steps),
        steps_per_sample=int(sim.steps_per_sample),
    )


# Running NEURON (child process only) --------------------------------------------------------


@dataclass
class SimulationOutput:
    """Raw result of :func:`simulate` on one rank.

    ``times_ms``: NEURON's sample times (n_samples,); ``record_rows``: which rows of the
    plan's recorded nodes this rank holds; ``nodes_mV``: their traces, shape
    (len(record_rows), n_samples).
    """

    times_ms: np.ndarray
    record_rows: np.ndarray
    nodes_mV: np.ndarray
    build_s: float
    run_s: float
    info: dict[str, Any] = field(default_factory=dict)


def _record(vector: Any, reference: Any, every: int, interval_ms: float, section: Any) -> Any:
    """``vector.record(reference)`` every step, or every ``interval_ms`` when ``every > 1``."""
    keywords = {"sec": section} if section is not None else {}
    if every == 1:
        vector.record(reference, **keywords)
    else:
        vector.record(reference, interval_ms, **keywords)
    return vector


_METHODS = {0: "implicit Euler", 1: "Crank-Nicolson (secondorder 1)",
            2: "Crank-Nicolson (secondorder 2)"}


def simulate(plan: Plan, *, mechanism: str, secondorder: int, nthread: int) -> SimulationOutput:
    """Build ``plan`` as NEURON sections, run it and return the recorded node traces.

    NEURON must already have the junction mechanism ``mechanism`` loaded (see ``worker.py``)
    and, under MPI, ``h.nrnmpi_init()`` must have run.  With ``nhost`` ranks, rank ``r``
    builds the cells ``gid % nhost == r``.  Times in ms, voltages in mV.
    """
    import neuron
    from neuron import h

    start = time.perf_counter()
    pc = h.ParallelContext()
    rank, nhost = int(pc.id()), int(pc.nhost())
    dt = plan.dt_ms

    def mine(gid: int) -> bool:
        return gid % nhost == rank

    sections: dict[int, Any] = {}
    for gid in range(rank, plan.n_cells, nhost):
        section = h.Section(name=f"cell{gid}")
        section.L = float(plan.length_um[gid])
        section.diam = float(plan.diam_um[gid])
        section.nseg = int(plan.nseg[gid])
        section.Ra = float(plan.ra_ohm_cm[gid])
        section.cm = float(plan.cm_uF_per_cm2[gid])
        section.insert("pas")
        section.g_pas = float(plan.g_pas_S_per_cm2[gid])
        section.e_pas = float(plan.e_pas_mV[gid])
        sections[gid] = section

    def node(gid: int, cv: int):
        return sections[gid]((cv + 0.5) / int(plan.nseg[gid]))

    for sgid, (gid, cv) in enumerate(zip(plan.source_gid.tolist(), plan.source_cv.tolist())):
        if mine(gid):
            pc.source_var(node(gid, cv)._ref_v, sgid, sec=sections[gid])

    halves = []
    junction_class = getattr(h, mechanism)
    for gid, cv, sgid, g in zip(plan.half_gid.tolist(), plan.half_cv.tolist(),
                                plan.half_source.tolist(), plan.half_g_uS.tolist()):
        if mine(gid):
            half = junction_class(node(gid, cv))
            half.g = g
            pc.target_var(half, half._ref_vgap, sgid)
            halves.append(half)

    clamps = []
    for gid, cv, delay, dur, amp in zip(plan.clamp_gid.tolist(), plan.clamp_cv.tolist(),
                                        plan.clamp_delay_ms.tolist(),
                                        plan.clamp_dur_ms.tolist(), plan.clamp_amp_nA.tolist()):
        if mine(gid):
            clamp = h.IClamp(node(gid, cv))
            clamp.delay, clamp.dur, clamp.amp = delay, dur, amp
            clamps.append(clamp)

    # Record only the nodes the probes need, only at the sample times.
    every = plan.steps_per_sample
    interval = every * dt
    rows, vectors = [], []
    for row, (gid, cv) in enumerate(zip(plan.record_gid.tolist(), plan.record_cv.tolist())):
        if mine(gid):
            rows.append(row)
            vectors.append(_record(h.Vector(), node(gid, cv)._ref_v, every, interval,
                                   sections[gid]))
    # t is per thread: tie its recording to a section (of thread 0 when there is one)
    times = _record(h.Vector(), h._ref_t, every, interval, next(iter(sections.values()), None))

    if nthread > 1:
        pc.nthread(nthread)
    h.secondorder = int(secondorder)
    h.dt = dt
    if plan.source_gid.size:
        pc.setup_transfer()
    pc.set_maxstep(10)
    for gid, section in sections.items():
        v_init = float(plan.v_init_mV[gid])
        for segment in section.allseg():
            segment.v = v_init
    h.finitialize()
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    pc.psolve(plan.t_stop_ms)
    n_samples = plan.n_samples
    for _ in range(2):
        # A sample recorded every sample_dt (> dt) at t_stop is delivered at the start of
        # the step after t_stop when rounding puts t_stop just past the last step; psolve
        # may also stop one step short.  Every rank sees the same t, so MPI stays in step.
        if len(times) >= n_samples:
            break
        h.fadvance()
    run_s = time.perf_counter() - start

    raw_times = np.array(times)[:n_samples]
    nodes = np.empty((len(vectors), raw_times.shape[0]))
    for i, vector in enumerate(vectors):
        nodes[i] = np.array(vector)[:n_samples]
    info = {
        "neuron_version": neuron.__version__,
        "method": _METHODS[int(secondorder)],
        "scheme": "implicit-euler" if int(secondorder) == 0 else "crank-nicolson",
        "secondorder": int(secondorder),
        "nthread": int(pc.nthread()),
        "mpi_ranks": nhost,
        "dt_ms": dt,
        "junction_halves": int(plan.half_gid.shape[0]),
        "recorded_nodes": int(plan.record_gid.shape[0]),
    }
    return SimulationOutput(raw_times, np.asarray(rows, dtype=np.int64), nodes, build_s, run_s,
                            info)
