"""Exact solution of the continuous model on trees of uniform sections (nodal, Laplace).

Physics and units as in :mod:`crosssim.analytic.cable` (ms, mV, nA, uS, MOhm, nF, um):
per unit length a section has capacitance ``c``, leak conductance ``g_l`` (reversal ``E``)
and axial resistance ``r``, its own values when it overrides the cell's; the initial
voltage ``V0`` is the cell's, uniform.  Sealed tips, point junctions and point clamps.

The graph.  Every section is cut at every site on it (probes, clamps, junction halves) and
keeps its two ends; each cut point is a *node*.  Coincident points are one node: a
child's x = 0 end is its parent's end at ``parent_x``, and a site at a section end is that
end node (positions closer than 1e-12 of a section length count as one).  Between two
neighbouring nodes lies a uniform *piece* of length ``L``.

The Laplace domain (``s`` in 1/ms), ``k = sqrt(r (g_l + c s))`` per um.  On a piece the
constant ``V_p(s) = (c V0 + g_l E / s) / (g_l + c s)`` solves the equation with its
initial value and leak, and ``u = V - V_p`` obeys the homogeneous cable equation, whose
two-port is a series admittance ``y_s = (k/r) csch(kL)`` between the piece's nodes and a
shunt ``y_p = (k/r) tanh(kL/2)`` from each node to ground.  Kirchhoff's law at every node
(currents into the pieces, the junctions and out of the clamps) gives the nodal system::

    Y(s) V = sum over pieces at the node of y_p V_p  +  injected clamp currents,

each junction a resistor ``1/g`` between its two nodes.  ``y_s`` and ``y_p`` are
evaluated in overflow- and cancellation-free forms, with ``e = exp(-kL)``
(``Re k > 0``): ``csch(kL) = 2e / (-expm1(-2kL))``, ``tanh(kL/2) = -expm1(-kL) / (1 + e)``.
``Y(s)`` is the admittance matrix of a passive network (complex symmetric, singular only at
real negative natural frequencies).  A probe reads its node's voltage.  Junctions and
pieces shorter than 0.1 length constant are stamped by their impedance and current instead
(modified nodal analysis, see :class:`_NodalSystem`): a large admittance (a piece between
sites 1e-9 apart, a short section between long ones, a strong junction) would cancel the
digits of the rest during elimination; an impedance stays exact however small.

Time domain: exactly as :func:`crosssim.analytic.cable.exact_cable`: clamps are sums of
switched steps, each step response (transform ``V(s)`` for a ``1/s`` injection) and the
clamp-free response are inverted on the fixed hyperbolic contours of
:class:`~crosssim.analytic.laplace.ContourPlan` (no discontinuity is ever inverted); t = 0
is the initial value and a sample on a switch time reads the value before the switch.

Cost: one solve per contour node (70-200 nodes) with ``1 + n_clamp_sites`` right-hand sides,
of size nodes + short pieces + junctions: batched dense LU up to :data:`DENSE_NODE_LIMIT`
unknowns, a sparse LU (SuperLU, minimum-degree ordering of the symmetric pattern) above.
Measured on 2 cores shared with other jobs (load average 8-10): 1,000 cells of 20 sections
with 1,000 junctions (24,000 nodes, 10,600 impedance stamps), 50 ms sampled every 0.1 ms
(74 contour nodes): 11-18 s, nearly all of it in SuperLU (the fill is small, 1.5x the
matrix); the same network with admittance stamps only took 9-11 s under that load (3.5 s
on idle cores) and was off by 8e-10 mV.  ``pytest tests/test_tree_reference.py -k thousand
-s`` re-measures.

Tapered sections have no exact solution here: :class:`SourceNotApplicableError`.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from crosssim.analytic._common import clamp_edges, invert_with_switches
from crosssim.analytic.cable import exact_cable
from crosssim.errors import ResourceLimitError, SourceNotApplicableError
from crosssim.model import Cell, Model, Section
from crosssim.result import RunResult

__all__ = [
    "DENSE_NODE_LIMIT",
    "MAX_TREE_NODES",
    "SHORT_PIECE",
    "exact",
    "exact_tree",
    "tree_steady_state",
]

#: Up to this many unknowns (node voltages and element currents) the per-contour-node
#: solves are batched dense LU.
DENSE_NODE_LIMIT = 160
#: Pieces shorter than this many length constants are stamped by impedance (see
#: :class:`_NodalSystem`).
SHORT_PIECE = 0.1
#: Largest graph (nodes) accepted by the exact tree solution.
MAX_TREE_NODES = 2_000_000
#: Complex entries allowed in one batch of per-contour-node arrays (~64 MB).
_BATCH = 4_000_000
#: Positions on a section closer than this (fraction of its length) are one node.
_SAME_POSITION = 1e-12

#: A site: (cell index, section index in :meth:`Cell.tree`, x in [0, 1]).
_Site = tuple[int, int, float]


def exact(model: Model) -> RunResult:
    """The exact continuous solution (backend ``"analytic"``) of any model: the cable
    solution (:func:`crosssim.analytic.cable.exact_cable`) when every cell is one uniform
    unbranched cable, the tree solution (:func:`exact_tree`) otherwise.

    Raises SourceNotApplicableError when a section is tapered.
    """
    if not model.has_trees:
        return exact_cable(model.cables())
    return exact_tree(model)


# The graph -------------------------------------------------------------------------------


def _topological(parents: tuple[int, ...]) -> list[int]:
    """Section indices with every parent before its children (root first)."""
    children: dict[int, list[int]] = {}
    for child, parent in enumerate(parents):
        children.setdefault(parent, []).append(child)
    order, queue = [], deque(children.get(-1, []))
    while queue:
        at = queue.popleft()
        order.append(at)
        queue.extend(children.get(at, []))
    return order


class _Graph:
    """Nodes, pieces and junctions of a model, and the sites mapped onto nodes."""

    def __init__(self, model: Model, sites: list[_Site]) -> None:
        wanted: dict[tuple[int, int], set[float]] = {}
        for cell_index, section_index, x in sites:
            wanted.setdefault((cell_index, section_index), set()).add(float(x))
        #: (cell, section) -> (sorted positions, their nodes)
        self._positions: dict[tuple[int, int], tuple[list[float], list[int]]] = {}
        piece_a: list[int] = []
        piece_b: list[int] = []
        piece_length: list[float] = []
        constants: list[tuple[float, float, float, float, float]] = []
        node_cell: list[int] = []
        for ci, cell in enumerate(model.cells):
            tree = cell.tree()
            parents = cell.parents()
            for si in _topological(parents):
                section = tree[si]
                properties = (*_section_constants(model.cells[ci], section), cell.initial_mV)
                xs = _merged_positions(wanted.get((ci, si), set()))
                first = len(node_cell)
                if parents[si] < 0:
                    node_cell.append(ci)
                else:
                    first = self.node(ci, parents[si], section.parent_x)
                nodes = [first, *range(len(node_cell), len(node_cell) + len(xs) - 1)]
                node_cell.extend([ci] * (len(xs) - 1))
                self._positions[(ci, si)] = (xs, nodes)
                piece_a.extend(nodes[:-1])
                piece_b.extend(nodes[1:])
                piece_length.extend((b - a) * section.length_um for a, b in zip(xs, xs[1:]))
                constants.extend([properties] * (len(xs) - 1))
            if len(node_cell) > MAX_TREE_NODES:
                raise ResourceLimitError(
                    f"exact tree solution: {len(node_cell)} nodes or more, at most "
                    f"{MAX_TREE_NODES}")
        self.n_nodes = len(node_cell)
        self.node_cell = np.array(node_cell, dtype=np.int64)
        self.piece_a = np.array(piece_a, dtype=np.int64)
        self.piece_b = np.array(piece_b, dtype=np.int64)
        self.length = np.array(piece_length)
        table = np.array(constants, dtype=float).reshape(-1, 5)
        self.r, self.gl, self.c, self.e_leak, self.v_init = table.T
        self.v_init_cell = np.array([cell.initial_mV for cell in model.cells])

    def node(self, cell: int, section: int, x: float) -> int:
        """The node of a site (its section must have been cut there)."""
        xs, nodes = self._positions[(cell, section)]
        i = bisect.bisect_left(xs, x - _SAME_POSITION)
        if i == len(xs) or abs(xs[i] - x) > _SAME_POSITION:  # pragma: no cover - every
            raise KeyError((cell, section, x))  # site was cut
        return nodes[i]


def _section_constants(cell: Cell, section: Section) -> tuple[float, float, float, float]:
    """``(r MOhm/um, g_l uS/um, c nF/um, E mV)`` of a uniform section: the conversions of
    :func:`crosssim.analytic._common.cable_constants`, without its search by name (which
    would make a cell of n sections cost n^2).  A tapered section is not applicable."""
    points = section.points()
    radius_um = points[0][1]
    if any(radius != radius_um for _, radius in points):
        raise SourceNotApplicableError(
            "analytic", f"section {section.name!r} of cell {cell.name!r} is tapered: "
            "no exact solution")
    circumference_um = 2.0 * math.pi * radius_um
    return (cell.value(section, "ra_ohm_cm") * 1e-2 / (math.pi * radius_um**2),
            cell.value(section, "g_leak_S_per_cm2") * 1e-2 * circumference_um,
            cell.value(section, "cm_F_per_m2") * 1e-3 * circumference_um,
            cell.value(section, "e_leak_mV"))


def _merged_positions(sites: set[float]) -> list[float]:
    """0, 1 and the site positions, sorted, positions within 1e-12 merged (ends win)."""
    inner = sorted(x for x in sites if _SAME_POSITION < x < 1.0 - _SAME_POSITION)
    kept = [0.0]
    for x in inner:
        if x - kept[-1] > _SAME_POSITION:
            kept.append(x)
    kept.append(1.0)
    return kept


def _model_sites(model: Model) -> list[_Site]:
    """Every probe, clamp and junction site of ``model`` as (cell, section, x)."""
    index = model.cell_index()
    sites: list[_Site] = []
    for probe in model.effective_probes():
        cell = model.cells[index[probe.cell]]
        sites.append((index[probe.cell], cell.section_index(probe.section), probe.x))
    for stimulus in model.stimuli:
        cell = model.cells[index[stimulus.cell]]
        sites.append((index[stimulus.cell], cell.section_index(stimulus.section), stimulus.x))
    for junction in model.gap_junctions:
        for name, section, x in zip(junction.cells, junction.sections, junction.x):
            sites.append((index[name], model.cells[index[name]].section_index(section), x))
    return sites


@dataclass(frozen=True)
class _Edge:
    """A switch of a step clamp: at ``time_ms`` the current into ``node`` changes by
    ``delta_nA``."""

    time_ms: float
    node: int
    delta_nA: float


def _clamp_edges(model: Model, graph: _Graph) -> list[_Edge]:
    """The on/off edges of every clamp (:func:`crosssim.analytic._common.clamp_edges`), by
    node."""
    stimuli, cells = model.stimuli, model.cells
    index = model.cell_index()
    edges = []
    for edge in clamp_edges(model):
        stimulus = stimuli[edge.stimulus]
        ci = index[stimulus.cell]
        node = graph.node(ci, cells[ci].section_index(stimulus.section), stimulus.x)
        edges.append(_Edge(edge.time_ms, node, edge.delta_nA))
    return edges


# The nodal system ------------------------------------------------------------------------


class _NodalSystem:
    """The nodal system in a fixed sparse layout (values per Laplace node) and its
    right-hand sides.

    Unknowns: the node voltages, then the currents of the series elements stamped by
    impedance.  Eliminating a node adds its series admittances into its neighbours' and
    takes them out again; an admittance far above what remains (a piece between sites
    1e-9 apart, a short section between long ones, a short tip, a strong junction) takes
    the digits of the rest with it (0.02 mV lost on a 1e-11 gap).  So every junction and
    every piece shorter than :data:`SHORT_PIECE` length constants (at s = 0) is stamped by
    its impedance ``z`` and current ``I`` (modified nodal analysis: ``I`` leaves node a
    and enters node b, ``V_a - V_b - z I = 0``), exact however small ``z``.  A longer piece
    keeps its admittance stamp: its ``y_s`` is at most ~1/X^2 of its own shunt
    (``X = L / lambda``), so at most 2 digits are at stake, and the ratio only falls as
    ``|s|`` grows.  The matrix stays complex symmetric; LU pivots partially.
    """

    def __init__(self, model: Model, graph: _Graph, probe_nodes: np.ndarray,
                 source_nodes: np.ndarray) -> None:
        from scipy import sparse

        self.graph = graph
        self.probe_nodes = probe_nodes
        self.source_nodes = source_nodes
        n, n_pieces = graph.n_nodes, graph.piece_a.size
        index = model.cell_index()

        def site_node(cell: str, section: str | None, x: float) -> int:
            ci = index[cell]
            return graph.node(ci, model.cells[ci].section_index(section), x)

        junctions = [(site_node(j.cells[0], j.sections[0], j.x[0]),
                      site_node(j.cells[1], j.sections[1], j.x[1]), j.g_uS)
                     for j in model.gap_junctions if j.g_uS > 0.0]
        junctions = [(a, b, g) for a, b, g in junctions if a != b]  # one node: no current
        ka = np.array([a for a, _, _ in junctions], dtype=np.int64)
        kb = np.array([b for _, b, _ in junctions], dtype=np.int64)
        kg = np.array([g for _, _, g in junctions], dtype=float)
        self.n_junctions = n_sj = len(junctions)
        a, b = graph.piece_a, graph.piece_b
        short = graph.length * np.sqrt(graph.r * graph.gl) < SHORT_PIECE
        self.short_pieces = np.flatnonzero(short)
        soft = np.flatnonzero(~short)
        n_sp = self.short_pieces.size
        self.size = n + n_sp + n_sj
        piece_current = n + np.arange(n_sp)
        junction_current = n + n_sp + np.arange(n_sj)
        sa, sb = a[self.short_pieces], b[self.short_pieces]

        # every contribution (row, col), in groups: series of the other pieces, shunts,
        # impedances of short pieces, the constants (incidences of element currents,
        # junctions' 1/g), an explicit diagonal
        groups = [
            (np.concatenate([a[soft], b[soft], a[soft], b[soft]]),
             np.concatenate([a[soft], b[soft], b[soft], a[soft]])),
            (np.concatenate([a, b]), np.concatenate([a, b])),
            (piece_current, piece_current),
            (np.concatenate([sa, piece_current, sb, piece_current,
                             ka, junction_current, kb, junction_current, junction_current]),
             np.concatenate([piece_current, sa, piece_current, sb,
                             junction_current, ka, junction_current, kb, junction_current])),
            (np.arange(self.size), np.arange(self.size)),
        ]
        rows = np.concatenate([r for r, _ in groups])
        cols = np.concatenate([c for _, c in groups])
        unique, inverse = np.unique(rows * self.size + cols, return_inverse=True)
        inverse = inverse.ravel()
        #: row-major entries: with a symmetric pattern and values, the CSR layout of these
        #: entries is the CSC layout of the transpose, which is the matrix itself
        self.rows, self.cols = np.divmod(unique, self.size)
        self.n_entries = unique.size
        bounds = np.cumsum([0] + [r.size for r, _ in groups])
        ones = np.ones(n_sp)
        n_soft = soft.size
        self._series = sparse.csr_matrix(
            (np.concatenate([np.ones(2 * n_soft), -np.ones(2 * n_soft)]),
             (inverse[bounds[0]:bounds[1]], np.tile(soft, 4))),
            shape=(self.n_entries, n_pieces))
        self._shunt = sparse.csr_matrix(
            (np.ones(2 * n_pieces), (inverse[bounds[1]:bounds[2]],
                                     np.tile(np.arange(n_pieces), 2))),
            shape=(self.n_entries, n_pieces))
        self._impedance = sparse.csr_matrix(
            (-ones, (inverse[bounds[2]:bounds[3]], np.arange(n_sp))),
            shape=(self.n_entries, n_sp))
        constant_values = np.concatenate([
            ones, ones, -ones, -ones,
            np.ones(n_sj), np.ones(n_sj), -np.ones(n_sj), -np.ones(n_sj), -1.0 / kg])
        self._constant = np.bincount(inverse[bounds[3]:bounds[4]], weights=constant_values,
                                     minlength=self.n_entries).astype(complex)
        self._incidence = sparse.csr_matrix(
            (np.ones(2 * n_pieces), (np.concatenate([a, b]), np.tile(np.arange(n_pieces), 2))),
            shape=(self.size, n_pieces))
        self.indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(self.rows, minlength=self.size))]).astype(np.int32)
        self.indices = self.cols.astype(np.int32)
        self.dense = self.size <= DENSE_NODE_LIMIT

    def two_port(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Series and shunt admittances (uS) of every piece, shape ``(n_pieces, n_s)``."""
        graph = self.graph
        r, length = graph.r[:, None], graph.length[:, None]
        k = np.sqrt((r * (graph.gl[:, None] + graph.c[:, None] * s[None, :])).astype(complex))
        kl = k * length
        decay = np.exp(-kl)
        scale = k / r
        series = scale * 2.0 * decay / (-np.expm1(-2.0 * kl))
        shunt = scale * (-np.expm1(-kl)) / (1.0 + decay)
        return series, shunt

    def short_impedance(self, s: np.ndarray) -> np.ndarray:
        """``z = 1 / y_s = (r/k) sinh(kL)`` (MOhm) of the pieces stamped by impedance,
        ``(n_short, n_s)``."""
        graph, short = self.graph, self.short_pieces
        r, length = graph.r[short, None], graph.length[short, None]
        k = np.sqrt((r * (graph.gl[short, None] + graph.c[short, None] * s[None, :]))
                    .astype(complex))
        kl = k * length
        # beyond Re(kL) = 300 the piece is open to 1e-130 relative: cap the growth there so
        # that extreme Laplace nodes (|s| ~ 35 / t_min) give a huge z, never inf
        capped = np.minimum(kl.real, 300.0) + 1j * kl.imag
        return r / k * (-np.expm1(-2.0 * kl)) / (2.0 * np.exp(-capped))

    def solve(self, s: np.ndarray, particular: np.ndarray | None,
              source_factor: np.ndarray) -> np.ndarray:
        """Probe voltages at Laplace nodes ``s`` for 1 + n_sources right-hand sides.

        Source 0: every piece has the particular solution ``particular(s)``
        ``(n_pieces, n_s)`` (None: the clamp-free transient's ``V_p`` of the model).
        Source 1 + i: the current ``source_factor[i]`` ``(n_sources, n_s)`` into
        ``source_nodes[i]`` and nothing else.  Returns ``(1 + n_sources, n_probes, n_s)``.
        """
        n, n_pieces = self.size, self.graph.piece_a.size
        n_k, n_p = self.source_nodes.size, self.probe_nodes.size
        per_node = 8 * n_pieces + self.n_entries + 2 * n * (1 + n_k)
        if self.dense:
            per_node += n * n
        chunk = max(1, min(s.size, _BATCH // max(1, per_node)))
        out = np.empty((1 + n_k, n_p, s.size), dtype=complex)
        for first in range(0, s.size, chunk):
            part = slice(first, min(s.size, first + chunk))
            out[:, :, part] = self._solve_chunk(
                s[part], None if particular is None else particular[:, part],
                source_factor[:, part])
        return out

    def _particular(self, s: np.ndarray) -> np.ndarray:
        """``V_p = (c V0 + g_l E / s) / (g_l + c s)`` per piece, ``(n_pieces, n_s)``."""
        graph = self.graph
        c, gl = graph.c[:, None], graph.gl[:, None]
        return ((c * graph.v_init[:, None] + gl * graph.e_leak[:, None] / s[None, :])
                / (gl + c * s[None, :]))

    def _solve_chunk(self, s: np.ndarray, particular: np.ndarray | None,
                     source_factor: np.ndarray) -> np.ndarray:
        n, n_k = self.size, self.source_nodes.size
        series, shunt = self.two_port(s)
        if particular is None:
            particular = self._particular(s)
        entries = (self._series @ series + self._shunt @ shunt
                   + self._impedance @ self.short_impedance(s)
                   + self._constant[:, None])  # (n_entries, n_s)
        rhs = np.zeros((s.size, n, 1 + n_k), dtype=complex)
        rhs[:, :, 0] = (self._incidence @ (shunt * particular)).T
        if n_k:
            rhs[:, self.source_nodes, 1 + np.arange(n_k)] = source_factor.T
        if self.dense:
            matrix = np.zeros((s.size, n, n), dtype=complex)
            matrix[:, self.rows, self.cols] = entries.T
            voltages = np.linalg.solve(matrix, rhs)  # (n_s, n, 1 + n_k)
            return np.transpose(voltages[:, self.probe_nodes, :], (2, 1, 0))
        return self._sparse_solve(entries, rhs)

    def _sparse_solve(self, entries: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        from scipy import sparse
        from scipy.sparse.linalg import splu

        n = self.size
        out = np.empty((rhs.shape[2], self.probe_nodes.size, rhs.shape[0]), dtype=complex)
        for node in range(rhs.shape[0]):
            matrix = sparse.csc_matrix(
                (np.ascontiguousarray(entries[:, node]), self.indices, self.indptr),
                shape=(n, n))
            factors = splu(matrix, permc_spec="MMD_AT_PLUS_A")
            voltages = factors.solve(np.ascontiguousarray(rhs[node]))
            out[:, :, node] = voltages[self.probe_nodes].T
        return out


# The solutions ---------------------------------------------------------------------------


def _probe_nodes(model: Model, graph: _Graph) -> tuple[list[str], np.ndarray]:
    index = model.cell_index()
    labels, nodes = [], []
    for probe in model.effective_probes():
        ci = index[probe.cell]
        labels.append(probe.label)
        nodes.append(graph.node(ci, model.cells[ci].section_index(probe.section), probe.x))
    return labels, np.array(nodes, dtype=np.int64)


def exact_tree(model: Model) -> RunResult:
    """The exact continuous solution of a model whose cells are trees of uniform sections
    (unbranched cables included), on the model's sample grid (backend ``"analytic"``).

    Voltages in mV of ``model.effective_probes()`` at ``model.simulation.sample_times_ms()``.
    Raises SourceNotApplicableError when a section is tapered, ResourceLimitError above
    :data:`MAX_TREE_NODES` nodes.  See the module docstring for the method.
    """
    started = time.perf_counter()
    graph = _Graph(model, _model_sites(model))
    labels, probe_nodes = _probe_nodes(model, graph)
    edges = _clamp_edges(model, graph)
    source_nodes = np.array(sorted({edge.node for edge in edges}), dtype=np.int64)
    system = _NodalSystem(model, graph, probe_nodes, source_nodes)
    times = model.simulation.sample_times_ms()
    source_of = {int(node): i for i, node in enumerate(source_nodes)}
    values = np.empty((len(labels), times.size))
    values[:, 0] = graph.v_init_cell[graph.node_cell[probe_nodes]]
    info: dict = {
        "method": "Laplace transform, nodal two-port system on the section tree, fixed "
                  "hyperbolic contours (Weideman-Trefethen)",
        "nodes": graph.n_nodes,
        "pieces": int(graph.piece_a.size),
        "junctions": system.n_junctions,
        "impedance_stamps": system.size - graph.n_nodes,
        "clamp_sites": int(source_nodes.size),
        "solver": "dense" if system.dense else "sparse",
        "units": "ms, mV, nA, uS, MOhm, nF, um",
    }
    info.update(invert_with_switches(
        model, [(source_of[edge.node], edge.time_ms, edge.delta_nA) for edge in edges],
        int(source_nodes.size),
        lambda s: system.solve(s, None, np.broadcast_to(1.0 / s, (source_nodes.size, s.size))),
        values))
    return RunResult(backend="analytic", probes=labels, times_ms=times, values_mV=values,
                     wall_time_s=time.perf_counter() - started, info=info)


def tree_steady_state(model: Model, *, with_clamps: bool = False) -> dict[str, float]:
    """Steady-state voltage (mV) of each probe of ``model.effective_probes()``, by label,
    for cells that are trees of uniform sections (or cables).

    As :func:`crosssim.analytic.cable.cable_steady_state`: ``with_clamps=False`` the resting
    state with no clamps (independent of ``v_init``); ``with_clamps=True`` the state
    reached if the clamps on at ``t = t_stop_ms`` (``delay <= t_stop < delay + duration``)
    stayed on forever.  A direct DC solve (``s = 0``, ``V_p = E`` per piece).
    """
    graph = _Graph(model, _model_sites(model))
    labels, probe_nodes = _probe_nodes(model, graph)
    amplitude: dict[int, float] = {}
    if with_clamps:
        index = model.cell_index()
        t_stop = model.simulation.t_stop_ms
        for stimulus in model.stimuli:
            if (stimulus.amplitude_nA != 0.0
                    and stimulus.delay_ms <= t_stop < stimulus.delay_ms + stimulus.duration_ms):
                ci = index[stimulus.cell]
                node = graph.node(ci, model.cells[ci].section_index(stimulus.section),
                                  stimulus.x)
                amplitude[node] = amplitude.get(node, 0.0) + stimulus.amplitude_nA
    source_nodes = np.array(sorted(amplitude), dtype=np.int64)
    system = _NodalSystem(model, graph, probe_nodes, source_nodes)
    s = np.zeros(1, dtype=complex)
    factor = np.array([[amplitude[int(node)]] for node in source_nodes],
                      dtype=complex).reshape(source_nodes.size, 1)
    values = system.solve(s, graph.e_leak[:, None].astype(complex), factor)
    total = values.sum(axis=0)[:, 0].real
    return dict(zip(labels, (float(v) for v in total)))
