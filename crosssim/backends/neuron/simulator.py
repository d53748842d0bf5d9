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
* **Trees** (a model where some cell is not one uniform cable) follow
  :mod:`crosssim.cvgraph`: one ``h.Section`` per model section, ``child.connect(parent(x),
  0)``, ``nseg`` = the section's CV count, per-section ``Ra``, ``cm``, ``pas``; cylinders as
  ``L``/``diam``, other profiles as 3-D points along x (``pt3dadd``; NEURON stores them as
  32-bit floats, so a taper's areas and resistances carry ~1e-8 relative rounding).  The
  graph's point nodes are NEURON's zero-area end nodes (``sec(1)``, or ``sec(0)`` of the
  root); sites go on the centre of the graph's site CV; probes read the graph's stencil of
  recorded nodes.
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

import functools
import math
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

#: Plan columns of hh's parameters, in the order :func:`_membrane_row` gives them.
HH_COLUMNS = ("hh_gnabar_S_per_cm2", "hh_gkbar_S_per_cm2", "hh_gl_S_per_cm2", "hh_el_mV",
              "hh_ena_mV", "hh_ek_mV")


@dataclass
class Plan:
    """A model lowered to what NEURON needs, as flat arrays (saved to ``.npz`` for the child).

    Per section (index ``k``; sections of all cells, cell by cell in ``Cell.tree`` order):
    ``length_um``, ``diam_um`` (NaN when the section is given by 3-D points), ``nseg``,
    ``ra_ohm_cm``, ``cm_uF_per_cm2``, ``g_pas_S_per_cm2``, ``e_pas_mV``.  The tree:
    ``section_gid`` (the cell of each section), ``section_parent`` (the parent section, -1 for
    a root), ``section_parent_x`` (0 or 1), and the 3-D points of non-cylindrical sections,
    ``pt3d_start`` (points of section ``k`` are rows ``pt3d_start[k]:pt3d_start[k+1]``),
    ``pt3d_x_um``, ``pt3d_diam_um`` (along a line).  A model of unbranched uniform cables
    leaves the tree arrays empty: section ``k`` is then the one section of cell ``k``.
    Membranes per section: ``g_pas_S_per_cm2`` / ``e_pas_mV`` (NaN: no ``pas``), hh's
    ``hh_gnabar_S_per_cm2``, ``hh_gkbar_S_per_cm2``, ``hh_gl_S_per_cm2``, ``hh_el_mV``,
    ``hh_ena_mV``, ``hh_ek_mV`` (NaN: no ``hh``; empty when no section has hh); user
    channels one row per (section, mechanism, parameter): ``channel_section``,
    ``channel_name`` (the SUFFIX),
    ``channel_parameter`` (empty: insert only) and ``channel_value`` (MOD units).
    Per cell: ``v_init_mV``.
    Transfer sources (index = source id): ``source_section``, ``source_cv``.
    Junction halves: ``half_section``, ``half_cv`` (where the half sits), ``half_source``
    (source id of the peer site), ``half_g_uS``.  Clamps: ``clamp_section``, ``clamp_cv``,
    ``clamp_delay_ms``, ``clamp_dur_ms``, ``clamp_amp_nA`` (already on Arbor's step rule).
    Recorded nodes: ``record_section``, ``record_node`` (a segment index ``0 .. nseg-1`` for
    its centre, ``-1`` for the section's x = 0 end node, ``nseg`` for its x = 1 end node).
    Probes (parent only, not sent): ``stencil_first`` / ``stencil_second`` (rows of the
    recorded nodes) and ``stencil_weight``.
    """

    length_um: np.ndarray
    diam_um: np.ndarray
    nseg: np.ndarray
    ra_ohm_cm: np.ndarray
    cm_uF_per_cm2: np.ndarray
    g_pas_S_per_cm2: np.ndarray
    e_pas_mV: np.ndarray
    hh_gnabar_S_per_cm2: np.ndarray
    hh_gkbar_S_per_cm2: np.ndarray
    hh_gl_S_per_cm2: np.ndarray
    hh_el_mV: np.ndarray
    hh_ena_mV: np.ndarray
    hh_ek_mV: np.ndarray
    channel_section: np.ndarray
    channel_name: np.ndarray
    channel_parameter: np.ndarray
    channel_value: np.ndarray
    section_gid: np.ndarray
    section_parent: np.ndarray
    section_parent_x: np.ndarray
    pt3d_start: np.ndarray
    pt3d_x_um: np.ndarray
    pt3d_diam_um: np.ndarray
    v_init_mV: np.ndarray
    source_section: np.ndarray
    source_cv: np.ndarray
    half_section: np.ndarray
    half_cv: np.ndarray
    half_source: np.ndarray
    half_g_uS: np.ndarray
    clamp_section: np.ndarray
    clamp_cv: np.ndarray
    clamp_delay_ms: np.ndarray
    clamp_dur_ms: np.ndarray
    clamp_amp_nA: np.ndarray
    record_section: np.ndarray
    record_node: np.ndarray
    stencil_first: np.ndarray
    stencil_second: np.ndarray
    stencil_weight: np.ndarray
    dt_ms: float
    t_stop_ms: float
    n_steps: int
    steps_per_sample: int

    #: Arrays the child needs (the stencils stay with the parent).
    CHILD_ARRAYS = ("length_um", "diam_um", "nseg", "ra_ohm_cm", "cm_uF_per_cm2",
                    "g_pas_S_per_cm2", "e_pas_mV", *HH_COLUMNS, "channel_section",
                    "channel_name", "channel_parameter", "channel_value", "section_gid",
                    "section_parent", "section_parent_x", "pt3d_start", "pt3d_x_um", "pt3d_diam_um",
                    "v_init_mV", "source_section", "source_cv", "half_section", "half_cv",
                    "half_source", "half_g_uS", "clamp_section", "clamp_cv", "clamp_delay_ms",
                    "clamp_dur_ms", "clamp_amp_nA", "record_section", "record_node")
    SCALARS = ("dt_ms", "t_stop_ms", "n_steps", "steps_per_sample")

    @property
    def n_cells(self) -> int:
        return int(self.v_init_mV.shape[0])

    @property
    def n_sections(self) -> int:
        return int(self.length_um.shape[0])

    @property
    def is_tree(self) -> bool:
        """False for a model of unbranched uniform cables (empty tree arrays)."""
        return bool(self.section_gid.shape[0])

    def section_cells(self) -> list[int]:
        """The cell (gid) of every section."""
        return self.section_gid.tolist() if self.is_tree else list(range(self.n_sections))

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


def _membrane_row(cell: Any, section: Any) -> dict[str, float]:
    """The ``pas`` and ``hh`` plan columns of one section (NaN where it has neither)."""
    leak = cell.leak_of(section)
    hh = cell.hh_of(section)
    row = {"g_pas_S_per_cm2": math.nan if leak is None else leak[0],
           "e_pas_mV": math.nan if leak is None else leak[1]}
    values = ((math.nan,) * len(HH_COLUMNS) if hh is None else
              (hh.gnabar_S_per_cm2, hh.gkbar_S_per_cm2, hh.gl_S_per_cm2, hh.el_mV, hh.ena_mV,
               hh.ek_mV))
    row.update(zip(HH_COLUMNS, values))
    return row


def _channel_rows(sections: list[tuple[int, Any, Any]]) -> dict[str, np.ndarray]:
    """The user-channel columns of ``(plan section, cell, section)`` triples."""
    where: list[int] = []
    names: list[str] = []
    parameters: list[str] = []
    values: list[float] = []
    for k, cell, section in sections:
        for name, settings in sorted(cell.channels_of(section).items()):
            for parameter, value in [("", math.nan), *sorted(settings.items())]:
                where.append(k)
                names.append(name)
                parameters.append(parameter)
                values.append(float(value))
    return dict(channel_section=_ints(where), channel_name=np.asarray(names, dtype=str),
                channel_parameter=np.asarray(parameters, dtype=str),
                channel_value=_floats(values))


def _ints(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _floats(values) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


class _Sites:
    """Sources, junction halves, clamps and recorded nodes as they are collected; a site is
    ``(section, cv)`` in the plan's numbering."""

    def __init__(self) -> None:
        self.sources: dict[tuple[int, int], int] = {}
        self.halves: list[tuple[int, int, int, float]] = []
        self.clamps: list[tuple[int, int, float, float, float]] = []
        self.records: dict[tuple[int, int], int] = {}
        self.stencils: list[tuple[int, int, float]] = []

    def junction(self, sites: list[tuple[int, int]], g_uS: float) -> None:
        for side in (0, 1):
            peer = self.sources.setdefault(sites[1 - side], len(self.sources))
            self.halves.append((*sites[side], peer, g_uS))

    def probe(self, first: tuple[int, int], second: tuple[int, int], weight: float) -> None:
        if weight == 0.0:  # the probe sits on a node: one node is enough
            second = first
        rows = [self.records.setdefault(node, len(self.records)) for node in (first, second)]
        self.stencils.append((rows[0], rows[1], weight))

    def arrays(self) -> dict[str, np.ndarray]:
        sources, recorded, halves, clamps = (list(self.sources), list(self.records),
                                             self.halves, self.clamps)
        return dict(
            source_section=_ints([s for s, _ in sources]),
            source_cv=_ints([cv for _, cv in sources]),
            half_section=_ints([h[0] for h in halves]), half_cv=_ints([h[1] for h in halves]),
            half_source=_ints([h[2] for h in halves]), half_g_uS=_floats([h[3] for h in halves]),
            clamp_section=_ints([c[0] for c in clamps]), clamp_cv=_ints([c[1] for c in clamps]),
            clamp_delay_ms=_floats([c[2] for c in clamps]),
            clamp_dur_ms=_floats([c[3] for c in clamps]),
            clamp_amp_nA=_floats([c[4] for c in clamps]),
            record_section=_ints([s for s, _ in recorded]),
            record_node=_ints([node for _, node in recorded]),
            stencil_first=_ints([s[0] for s in self.stencils]),
            stencil_second=_ints([s[1] for s in self.stencils]),
            stencil_weight=_floats([s[2] for s in self.stencils]))


def lower(model: Model) -> Plan:
    """The NEURON plan of ``model`` (see :class:`Plan`); O(cells + junctions + probes) for
    cables, O(CVs) of the tree cells otherwise."""
    from crosssim.discretization import clamp_steps

    sim = model.simulation
    dt = sim.dt_ms
    n_steps = sim.n_steps
    layout: _CableLayout | _TreeLayout
    if model.has_trees:
        sections, layout = _tree_sections(model)
    else:
        model = model.cables()
        sections, layout = _cable_sections(model)
    if np.isnan(sections["hh_gnabar_S_per_cm2"]).all():  # no hh: no hh columns to send
        sections.update({name: _floats([]) for name in HH_COLUMNS})
    index = model.cell_index()
    sites = _Sites()
    for junction in model.gap_junctions:
        sites.junction([layout.site(index[name], section, x) for name, section, x
                        in zip(junction.cells, junction.sections, junction.x)],
                       junction.g_uS)
    for stimulus in model.stimuli:
        steps = clamp_steps(stimulus.delay_ms, stimulus.duration_ms, dt, n_steps)
        if steps is None:
            continue
        sites.clamps.append((*layout.site(index[stimulus.cell], stimulus.section, stimulus.x),
                             steps[0] * dt, (steps[1] - steps[0] + 1) * dt,
                             stimulus.amplitude_nA))
    for probe in model.effective_probes():
        sites.probe(*layout.probe(index[probe.cell], probe.section, probe.x))
    return Plan(**sections, v_init_mV=_floats([cell.initial_mV for cell in model.cells]),
                **sites.arrays(), dt_ms=float(dt), t_stop_ms=float(sim.t_stop_ms),
                n_steps=int(n_steps), steps_per_sample=int(sim.steps_per_sample))


class _CableLayout:
    """Sites of a model of unbranched cables: section = gid, the rules of
    :mod:`crosssim.discretization`."""

    def __init__(self, cvs: list[int]) -> None:
        from crosssim.discretization import probe_stencil, site_cv

        self.cvs = cvs
        self._site_cv = site_cv
        self._probe_stencil = probe_stencil

    def site(self, gid: int, section: str | None, x: float) -> tuple[int, int]:
        return gid, self._site_cv(x, self.cvs[gid])

    def probe(self, gid: int, section: str | None,
              x: float) -> tuple[tuple[int, int], tuple[int, int], float]:
        first, second, weight = self._probe_stencil(x, self.cvs[gid])
        return (gid, first), (gid, second), weight


def _cable_sections(model: Model) -> tuple[dict[str, np.ndarray], _CableLayout]:
    cells = model.cells
    cvs = [model.cvs(cell) for cell in cells]
    membranes = [_membrane_row(cell, cell.tree()[0]) for cell in cells]
    empty_int, empty_float = _ints([]), _floats([])
    sections = dict(
        length_um=_floats([cell.length_um for cell in cells]),
        diam_um=_floats([2.0 * cell.radius_um for cell in cells]),  # type: ignore[operator]
        nseg=_ints(cvs),
        ra_ohm_cm=_floats([cell.ra_ohm_cm for cell in cells]),
        cm_uF_per_cm2=_floats([cell.cm_F_per_m2 * 100.0 for cell in cells]),  # F/m^2 -> uF/cm^2
        **{name: _floats([row[name] for row in membranes]) for name in membranes[0]},
        **_channel_rows([(k, cell, cell.tree()[0]) for k, cell in enumerate(cells)]
                        if any(cell.channels for cell in cells) else []),
        section_gid=empty_int, section_parent=empty_int, section_parent_x=empty_float,
        pt3d_start=empty_int, pt3d_x_um=empty_float, pt3d_diam_um=empty_float)
    return sections, _CableLayout(cvs)


class _TreeLayout:
    """Sites of a model with trees: the CV graph of each cell (:mod:`crosssim.cvgraph`),
    its nodes named in the plan's numbering."""

    def __init__(self, model: Model, first_section: list[int]) -> None:
        self.model = model
        self.first_section = first_section
        self._graphs: dict[Any, Any] = {}

    def graph(self, gid: int):
        cell = self.model.cells[gid]
        graph = self._graphs.get(cell)
        if graph is None:
            from crosssim.cvgraph import cv_graph

            single = self.model.model_copy(update={"cells": (cell,), "gap_junctions": (),
                                                   "probes": (), "stimuli": ()})
            graph = self._graphs[cell] = cv_graph(single)
        return graph

    def node(self, gid: int, node: int) -> tuple[int, int]:
        """Graph node ``node`` of cell ``gid`` as ``(section, record_node)``."""
        graph = self.graph(gid)
        section = int(graph.section[node])
        if node < graph.n_cvs:
            where = node - graph.first_cv[0][section]
        else:  # a point node: the end node of the section it belongs to
            where = -1 if graph.x[node] == 0.0 else graph.section_cvs[0][section]
        return self.first_section[gid] + section, where

    def site(self, gid: int, section: str | None, x: float) -> tuple[int, int]:
        s = self.model.cells[gid].section_index(section)
        return self.node(gid, self.graph(gid).site_node(0, s, x))

    def probe(self, gid: int, section: str | None,
              x: float) -> tuple[tuple[int, int], tuple[int, int], float]:
        s = self.model.cells[gid].section_index(section)
        first, second, weight = self.graph(gid).probe_stencil(0, s, x)
        return self.node(gid, first), self.node(gid, second), weight


def _without_end_steps(points: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    """The profile without radius steps at its ends (points sharing the first or the last
    distance): NEURON would count their annulus as membrane, the CV graph gives them none
    (a step inside the section keeps its annulus in both)."""
    kept = list(points)
    while len(kept) > 2 and kept[1][0] == kept[0][0]:
        kept.pop(0)
    while len(kept) > 2 and kept[-2][0] == kept[-1][0]:
        kept.pop()
    return kept


def _tree_sections(model: Model) -> tuple[dict[str, np.ndarray], _TreeLayout]:
    columns: dict[str, list] = {name: [] for name in (
        "length_um", "diam_um", "nseg", "ra_ohm_cm", "cm_uF_per_cm2", "g_pas_S_per_cm2",
        "e_pas_mV", *HH_COLUMNS, "section_gid", "section_parent", "section_parent_x")}
    channel_sections = []
    pt3d_start = [0]
    pt3d_x: list[float] = []
    pt3d_diam: list[float] = []
    first_section = []
    for gid, cell in enumerate(model.cells):
        first = len(columns["nseg"])
        first_section.append(first)
        for section, n, parent in zip(cell.tree(), model.section_cvs(cell), cell.parents()):
            value = functools.partial(cell.value, section)
            columns["length_um"].append(section.length_um)
            columns["nseg"].append(n)
            columns["ra_ohm_cm"].append(value("ra_ohm_cm"))
            columns["cm_uF_per_cm2"].append(value("cm_F_per_m2") * 100.0)
            for name, item in _membrane_row(cell, section).items():
                columns[name].append(item)
            channel_sections.append((len(columns["nseg"]) - 1, cell, section))
            columns["section_gid"].append(gid)
            columns["section_parent"].append(-1 if parent < 0 else first + parent)
            columns["section_parent_x"].append(section.parent_x)
            points = section.points()
            if section.is_uniform:
                columns["diam_um"].append(2.0 * points[0][1])
            else:
                columns["diam_um"].append(math.nan)
                kept = _without_end_steps(points)
                pt3d_x.extend(distance for distance, _ in kept)
                pt3d_diam.extend(2.0 * radius for _, radius in kept)
            pt3d_start.append(len(pt3d_x))
    integer = ("nseg", "section_gid", "section_parent")
    sections = {name: (_ints(values) if name in integer else _floats(values))
                for name, values in columns.items()}
    sections.update(pt3d_start=_ints(pt3d_start), pt3d_x_um=_floats(pt3d_x),
                    pt3d_diam_um=_floats(pt3d_diam), **_channel_rows(channel_sections))
    return sections, _TreeLayout(model, first_section)


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


def _insert_membrane(plan: Plan, k: int, section: Any) -> None:
    """``pas`` (when the section has a leak) and ``hh`` with its parameters and the ``na`` /
    ``k`` reversal potentials on section ``k`` (user channels: :func:`_insert_channels`)."""
    g_pas = float(plan.g_pas_S_per_cm2[k])
    if not math.isnan(g_pas):
        section.insert("pas")
        section.g_pas = g_pas
        section.e_pas = float(plan.e_pas_mV[k])
    gnabar = float(plan.hh_gnabar_S_per_cm2[k]) if plan.hh_gnabar_S_per_cm2.size else math.nan
    if not math.isnan(gnabar):
        section.insert("hh")
        section.gnabar_hh = gnabar
        section.gkbar_hh = float(plan.hh_gkbar_S_per_cm2[k])
        section.gl_hh = float(plan.hh_gl_S_per_cm2[k])
        section.el_hh = float(plan.hh_el_mV[k])
        section.ena = float(plan.hh_ena_mV[k])
        section.ek = float(plan.hh_ek_mV[k])


def _insert_channels(plan: Plan, sections: dict[int, Any]) -> None:
    """Insert the user channels of the plan (one row per section, mechanism, parameter)."""
    for k, name, parameter, value in zip(plan.channel_section.tolist(),
                                         plan.channel_name.tolist(),
                                         plan.channel_parameter.tolist(),
                                         plan.channel_value.tolist()):
        section = sections.get(k)
        if section is None:
            continue
        if not parameter:
            section.insert(name)
        else:
            setattr(section, f"{parameter}_{name}", value)


def _build_sections(h: Any, plan: Plan, cell_of: list[int], mine: Any) -> dict[int, Any]:
    """The ``h.Section`` of every section of this rank's cells, by plan section index:
    geometry (``L``/``diam``, or 3-D points along x for a non-cylinder), ``nseg``,
    properties, ``pas``; children connected by their x = 0 end."""
    sections: dict[int, Any] = {}
    tree = plan.is_tree
    for k, gid in enumerate(cell_of):
        if not mine(gid):
            continue
        section = h.Section(name=f"cell{gid}_{k}" if tree else f"cell{gid}")
        diam = float(plan.diam_um[k])
        if math.isnan(diam):
            rows = range(int(plan.pt3d_start[k]), int(plan.pt3d_start[k + 1]))
            section.pt3dclear()
            for row in rows:
                section.pt3dadd(float(plan.pt3d_x_um[row]), 0.0, 0.0,
                                float(plan.pt3d_diam_um[row]))
        else:
            section.L = float(plan.length_um[k])
            section.diam = diam
        section.nseg = int(plan.nseg[k])
        section.Ra = float(plan.ra_ohm_cm[k])
        section.cm = float(plan.cm_uF_per_cm2[k])
        _insert_membrane(plan, k, section)
        sections[k] = section
    _insert_channels(plan, sections)
    if tree:
        for k, section in sections.items():
            parent = int(plan.section_parent[k])
            if parent >= 0:
                section.connect(sections[parent](float(plan.section_parent_x[k])), 0)
    return sections


def simulate(plan: Plan, *, mechanism: str, secondorder: int, nthread: int,
             celsius: float = 6.3, hh_tables: bool = False) -> SimulationOutput:
    """Build ``plan`` as NEURON sections, run it and return the recorded node traces.

    ``celsius``: NEURON's temperature (hh rates, user mechanisms).  ``hh_tables``: hh's rate
    tables (``usetable_hh``; NEURON's own default is on, crosssim's off: the tables shift
    spikes by tens of microseconds at dt 0.025 ms).

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

    cell_of = plan.section_cells()
    sections = _build_sections(h, plan, cell_of, mine)

    def node(section: int, cv: int):
        """Segment ``cv``'s centre; -1 / nseg: the section's x = 0 / x = 1 end node."""
        n = int(plan.nseg[section])
        return sections[section](0.0 if cv < 0 else 1.0 if cv >= n else (cv + 0.5) / n)

    for sgid, (k, cv) in enumerate(zip(plan.source_section.tolist(),
                                       plan.source_cv.tolist())):
        if mine(cell_of[k]):
            pc.source_var(node(k, cv)._ref_v, sgid, sec=sections[k])

    halves = []
    junction_class = getattr(h, mechanism)
    for k, cv, sgid, g in zip(plan.half_section.tolist(), plan.half_cv.tolist(),
                              plan.half_source.tolist(), plan.half_g_uS.tolist()):
        if mine(cell_of[k]):
            half = junction_class(node(k, cv))
            half.g = g
            pc.target_var(half, half._ref_vgap, sgid)
            halves.append(half)

    clamps = []
    for k, cv, delay, dur, amp in zip(plan.clamp_section.tolist(), plan.clamp_cv.tolist(),
                                      plan.clamp_delay_ms.tolist(),
                                      plan.clamp_dur_ms.tolist(), plan.clamp_amp_nA.tolist()):
        if mine(cell_of[k]):
            clamp = h.IClamp(node(k, cv))
            clamp.delay, clamp.dur, clamp.amp = delay, dur, amp
            clamps.append(clamp)

    # Record only the nodes the probes need, only at the sample times.
    every = plan.steps_per_sample
    interval = every * dt
    rows, vectors = [], []
    for row, (k, cv) in enumerate(zip(plan.record_section.tolist(),
                                      plan.record_node.tolist())):
        if mine(cell_of[k]):
            rows.append(row)
            vectors.append(_record(h.Vector(), node(k, cv)._ref_v, every, interval,
                                   sections[k]))
    # t is per thread: tie its recording to a section (of thread 0 when there is one)
    times = _record(h.Vector(), h._ref_t, every, interval, next(iter(sections.values()), None))

    if nthread > 1:
        pc.nthread(nthread)
    h.secondorder = int(secondorder)
    h.celsius = float(celsius)
    if hasattr(h, "usetable_hh"):
        h.usetable_hh = int(bool(hh_tables))
    h.dt = dt
    if plan.source_section.size:
        pc.setup_transfer()
    pc.set_maxstep(10)
    for k, section in sections.items():
        v_init = float(plan.v_init_mV[cell_of[k]])
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
        "celsius": float(h.celsius),
        "hh_tables": bool(hh_tables),
        "junction_halves": int(plan.half_section.shape[0]),
        "recorded_nodes": int(plan.record_section.shape[0]),
        "sections": plan.n_sections,
    }
    return SimulationOutput(raw_times, np.asarray(rows, dtype=np.int64), nodes, build_s, run_s,
                            info)
