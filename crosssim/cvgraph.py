"""A model cut into control volumes, as one graph: the layout Arbor and NEURON share on trees.

Every section of ``n`` CVs is cut at ``k / n`` (``Model.section_cvs``); the CV ``[i/n,
(i+1)/n]`` of a section has its node at the centre ``(i + 0.5)/n`` and carries the membrane
of that piece (capacitance, leak).  Where two or more section ends meet (a fork, a root end
with children, or a section continued by one child) there is one more node, a **point
node** of zero membrane area, as NEURON's zero-area section-end node and Arbor's zero-length
fork CV of ``cv_policy_fixed_per_branch``.  A free end (a tip) has no node: it is sealed.

Edges carry the axial conductance of the cable between two nodes: neighbouring centres of a
section (one CV length of cable), and a point node with the nearest centre of each section
that touches it (half a CV length).  The resistance of a piece of cable is integrated
exactly over the section's piecewise-linear radius: a frustum of length ``l`` from radius
``r1`` to ``r2`` has ``R = ra l / (pi r1 r2)``; areas are lateral frustum areas (slant
height), a radius step inside a section adding its annulus to the CV holding it (the
proximal one on a CV boundary).  On a cylinder this is NEURON's and Arbor's arithmetic.

Sites and probes (the contract every adapter follows, generalising
:mod:`crosssim.discretization` from cables to trees):

* a point source at ``x`` of section ``s`` acts on the CV of ``s`` that contains ``x``
  (:func:`~crosssim.discretization.site_cv`; x = 0 -> the first CV, x = 1 -> the last),
  never on a point node;
* a probe at ``x`` of ``s`` reads the linear interpolation between the neighbouring
  *sample points* of ``s``: the point node at x = 0 (if any), the CV centres, the point node
  at x = 1 (if any); beyond the outermost pair it extrapolates from that pair; a section
  with one sample point reads it.  Without point nodes (an unbranched cable) this is the
  cable rule of :func:`~crosssim.discretization.probe_stencil`.

Units: um, um^2, uS, F/m^2, S/cm^2, mV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crosssim.discretization import site_cv

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Cell, Model, Section

__all__ = ["CVGraph", "cv_graph", "piece_area_um2", "piece_resistance_MOhm", "point_owner"]


def _frustums(points: tuple[tuple[float, float], ...], start_um: float,
              stop_um: float) -> list[tuple[float, float, float]]:
    """``(length_um, r_start_um, r_end_um)`` of the frustums between two distances: the
    profile's pieces clipped to ``[start, stop]``.  A radius step (two points at one distance
    ``d``) is a zero-length piece whose annulus is membrane, as in NEURON's 3-D geometry and
    Arbor's zero-length segments: it belongs to the piece with ``start < d <= stop`` (the
    proximal CV when ``d`` is a CV boundary); a step at either end of the section belongs to
    no CV (it would face the point node or the sealed end, like an end cap)."""
    end_um = points[-1][0]
    found = []
    for (d0, r0), (d1, r1) in zip(points, points[1:]):
        if d1 == d0:
            if start_um < d0 <= stop_um and 0.0 < d0 < end_um:
                found.append((0.0, r0, r1))
            continue
        a, b = max(d0, start_um), min(d1, stop_um)
        if b > a:
            slope = (r1 - r0) / (d1 - d0)
            found.append((b - a, r0 + slope * (a - d0), r0 + slope * (b - d0)))
    return found


def piece_area_um2(section: Section, start: float, stop: float) -> float:
    """Lateral membrane area in um^2 of ``section`` between fractions ``start`` and ``stop``."""
    length = section.length_um
    return sum(math.pi * (r0 + r1) * math.hypot(piece, r1 - r0)
               for piece, r0, r1 in _frustums(section.points(), start * length, stop * length))


def piece_resistance_MOhm(section: Section, ra_ohm_cm: float, start: float,
                          stop: float) -> float:
    """Axial resistance in MOhm of ``section`` between fractions ``start`` and ``stop``
    (``ra_ohm_cm`` = 1e-2 MOhm um)."""
    length = section.length_um
    return sum(ra_ohm_cm * 1e-2 * piece / (math.pi * r0 * r1)
               for piece, r0, r1 in _frustums(section.points(), start * length, stop * length))


@dataclass(frozen=True)
class CVGraph:
    """The CV graph of a model (see the module docstring).

    Per node (``n_nodes``; the CVs of all cells first, cell by cell and section by section,
    then the point nodes): ``cell`` (gid), ``section`` (index in ``Cell.tree()``), ``x``
    (the centre, or 0 / 1 for a point node: the end of ``section`` it sits on),
    ``area_um2`` (0 for point nodes), ``cm_F_per_m2``, ``g_leak_S_per_cm2``,
    ``e_leak_mV``, ``v_init_mV``.  Edges: ``edge_a``, ``edge_b``, ``edge_g_uS``.
    ``first_cv[gid][s]`` is the node of the first CV of section ``s``;
    ``end_node[gid][s]`` the point nodes at the two ends of ``s`` (-1: a free end).
    """

    cell: np.ndarray
    section: np.ndarray
    x: np.ndarray
    area_um2: np.ndarray
    cm_F_per_m2: np.ndarray
    g_leak_S_per_cm2: np.ndarray
    e_leak_mV: np.ndarray
    v_init_mV: np.ndarray
    edge_a: np.ndarray
    edge_b: np.ndarray
    edge_g_uS: np.ndarray
    first_cv: tuple[tuple[int, ...], ...]
    section_cvs: tuple[tuple[int, ...], ...]
    end_node: tuple[tuple[tuple[int, int], ...], ...]
    n_cvs: int

    @property
    def n_nodes(self) -> int:
        return int(self.cell.shape[0])

    @property
    def capacitance_pF(self) -> np.ndarray:
        """Membrane capacitance of each node in pF (F/m^2 * um^2 = pF)."""
        return self.cm_F_per_m2 * self.area_um2

    @property
    def leak_uS(self) -> np.ndarray:
        """Leak conductance of each node in uS (S/cm^2 * um^2 * 1e-2)."""
        return self.g_leak_S_per_cm2 * self.area_um2 * 1e-2

    def site_node(self, gid: int, section: int, x: float) -> int:
        """The CV node a point source at ``x`` of ``section`` of cell ``gid`` acts on."""
        return self.first_cv[gid][section] + site_cv(x, self.section_cvs[gid][section])

    def probe_stencil(self, gid: int, section: int, x: float) -> tuple[int, int, float]:
        """``(i, j, w)``: the probe at ``x`` of ``section`` reads ``(1-w) V_i + w V_j``."""
        n = self.section_cvs[gid][section]
        first = self.first_cv[gid][section]
        start, stop = self.end_node[gid][section]
        points: list[tuple[float, int]] = []
        if start >= 0:
            points.append((0.0, start))
        points.extend(((i + 0.5) / n, first + i) for i in range(n))
        if stop >= 0:
            points.append((1.0, stop))
        if len(points) == 1:
            return points[0][1], points[0][1], 0.0
        k = 0
        while k + 2 < len(points) and points[k + 1][0] <= x:
            k += 1
        (x0, a), (x1, b) = points[k], points[k + 1]
        weight = (x - x0) / (x1 - x0)
        if weight == 0.0:
            return a, a, 0.0
        if weight == 1.0:
            return b, b, 0.0
        return a, b, weight


def cv_graph(model: Model) -> CVGraph:
    """The CV graph of ``model`` (every cell, cables and trees alike)."""
    cell_of: list[int] = []
    section_of: list[int] = []
    x_of: list[float] = []
    area: list[float] = []
    cm: list[float] = []
    g_leak: list[float] = []
    e_leak: list[float] = []
    v_init: list[float] = []
    edges: list[tuple[int, int, float]] = []
    first_cv: list[tuple[int, ...]] = []
    counts_of: list[tuple[int, ...]] = []
    # point nodes are numbered after all CVs: collect them per cell, renumber at the end
    pending_points: list[tuple[int, int, float, float, float, float]] = []
    point_edges: list[tuple[int, int, float]] = []  # (point number, cv node, g)
    ends_of: list[tuple[tuple[int, int], ...]] = []
    for gid, cell in enumerate(model.cells):
        tree = cell.tree()
        counts = model.section_cvs(cell)
        counts_of.append(counts)
        starts = []
        for s, (section, n) in enumerate(zip(tree, counts)):
            starts.append(len(cell_of))
            _add_section_cvs(cell, gid, s, section, n, cell_of, section_of, x_of, area, cm,
                             g_leak, e_leak, v_init, edges)
        first_cv.append(tuple(starts))
        ends = _point_nodes(cell, gid, tree, counts, starts, pending_points, point_edges)
        ends_of.append(ends)
    n_cvs = len(cell_of)
    for gid, s, x, _, _, _ in pending_points:
        cell = model.cells[gid]
        cell_of.append(gid)
        section_of.append(s)
        x_of.append(x)
        area.append(0.0)
        where = cell.tree()[s]
        cm.append(cell.value(where, "cm_F_per_m2"))
        g_leak.append(cell.value(where, "g_leak_S_per_cm2"))
        e_leak.append(cell.value(where, "e_leak_mV"))
        v_init.append(cell.initial_mV)
    edges.extend((n_cvs + point, node, g) for point, node, g in point_edges)
    ends_numbered = tuple(
        tuple((-1 if a < 0 else n_cvs + a, -1 if b < 0 else n_cvs + b) for a, b in ends)
        for ends in ends_of)
    edge_array = np.array(edges, dtype=float).reshape(-1, 3)
    return CVGraph(
        cell=np.asarray(cell_of, dtype=np.int64), section=np.asarray(section_of, dtype=np.int64),
        x=np.asarray(x_of, dtype=float), area_um2=np.asarray(area, dtype=float),
        cm_F_per_m2=np.asarray(cm, dtype=float), g_leak_S_per_cm2=np.asarray(g_leak, dtype=float),
        e_leak_mV=np.asarray(e_leak, dtype=float), v_init_mV=np.asarray(v_init, dtype=float),
        edge_a=edge_array[:, 0].astype(np.int64), edge_b=edge_array[:, 1].astype(np.int64),
        edge_g_uS=edge_array[:, 2].copy(), first_cv=tuple(first_cv),
        section_cvs=tuple(counts_of), end_node=ends_numbered, n_cvs=n_cvs)


def _add_section_cvs(cell: Cell, gid: int, s: int, section: Section, n: int,
                     cell_of: list[int], section_of: list[int], x_of: list[float],
                     area: list[float], cm: list[float], g_leak: list[float],
                     e_leak: list[float], v_init: list[float],
                     edges: list[tuple[int, int, float]]) -> None:
    """Append the ``n`` CV nodes of one section and the edges between their centres."""
    ra = cell.value(section, "ra_ohm_cm")
    first = len(cell_of)
    for i in range(n):
        cell_of.append(gid)
        section_of.append(s)
        x_of.append((i + 0.5) / n)
        area.append(piece_area_um2(section, i / n, (i + 1) / n))
        cm.append(cell.value(section, "cm_F_per_m2"))
        g_leak.append(cell.value(section, "g_leak_S_per_cm2"))
        e_leak.append(cell.value(section, "e_leak_mV"))
        v_init.append(cell.initial_mV)
        if i:
            resistance = piece_resistance_MOhm(section, ra, (i - 0.5) / n, (i + 0.5) / n)
            edges.append((first + i - 1, first + i, 1.0 / resistance))


def point_owner(tree: tuple[Section, ...], parents: tuple[int, ...], section: int,
                end: int) -> tuple[int, int]:
    """The ``(section, end)`` that names the point where ``end`` of ``section`` sits: a
    child's x = 0 end is the point its parent has at ``parent_x``, followed up the tree (a
    child at x = 0 of a section that itself hangs from x = 1 of its parent sits on that
    grandparent's x = 1 end); the root's x = 0 end and every x = 1 end name themselves."""
    while end == 0 and parents[section] >= 0:
        section, end = parents[section], int(tree[section].parent_x)
    return section, end


def _point_nodes(cell: Cell, gid: int, tree: tuple[Section, ...], counts: tuple[int, ...],
                 starts: list[int], pending: list[tuple[int, int, float, float, float, float]],
                 point_edges: list[tuple[int, int, float]]) -> tuple[tuple[int, int], ...]:
    """Find the points where two or more section ends meet, number them (after the points
    already ``pending``) and join each to the nearest CV centre of every section touching
    it.  Returns, per section, the point numbers at its ends (-1: a free end)."""
    parents = cell.parents()
    touching: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for s in range(len(tree)):
        for end in (0, 1):
            touching.setdefault(point_owner(tree, parents, s, end), []).append((s, end))
    ends = [[-1, -1] for _ in tree]
    for (owner_section, owner_end), members in touching.items():
        if len(members) < 2:
            continue  # a free end: sealed, no node
        number = len(pending)
        pending.append((gid, owner_section, float(owner_end), 0.0, 0.0, 0.0))
        for s, end in members:
            ends[s][end] = number
            n = counts[s]
            section = tree[s]
            ra = cell.value(section, "ra_ohm_cm")
            if end == 0:
                node, resistance = starts[s], piece_resistance_MOhm(section, ra, 0.0, 0.5 / n)
            else:
                node = starts[s] + n - 1
                resistance = piece_resistance_MOhm(section, ra, 1.0 - 0.5 / n, 1.0)
            point_edges.append((number, node, 1.0 / resistance))
    return tuple((a, b) for a, b in ends)
