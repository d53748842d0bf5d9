"""References of the *discretized* model: exact in time, and the simulators' own recurrence.

They split a simulator's deviation from the exact cable solution into its parts, per probe::

    simulator - exact = (simulator - discrete)        implementation: not the scheme it claims
                      + (discrete - semidiscrete)     time stepping: shrinks with dt
                      + (semidiscrete - exact)        space: shrinks with the CV size

Both use the very discretization the simulators use (one assembly, :func:`cv_system`, built
on :func:`~crosssim.discretization.site_cv`, :func:`~crosssim.discretization.probe_stencil`
and :func:`~crosssim.discretization.clamp_steps` for cables and on the CV graph of
:mod:`crosssim.cvgraph` for trees: the contract every adapter shares):

* ``n`` equal control volumes (CVs) per cell, one unknown per CV at its centre; CV ``i`` has
  capacitance ``C_i = c L/n`` (nF), leak ``G_i = g_l L/n`` (uS); neighbouring centres are
  joined by the axial conductance ``n / (r L)`` (uS); sealed ends.
* A junction half acts on the CV containing its ``x`` with conductance ``g`` towards the CV
  of its peer site; a clamp injects its current into the CV containing its ``x``.
* A probe reads ``(1 - w) V_i + w V_j``: linear interpolation between neighbouring CV
  centres, extrapolated beyond the outermost centres.

With ``K = A + diag(G + J_self) - J`` (``A`` the axial Laplacian, ``J_self`` the summed
junction conductances at each CV, ``J`` the coupling ``J[p, q] += g`` of a half at CV p
whose peer sits at CV q; ``K`` is symmetric positive definite)::

    semidiscrete:  C dV/dt = -K V + G E + I(t)          clamps switch at their exact times
    discrete:      (C/dt + A + diag(G + J_self)) V[n+1] = (C/dt) V[n] + J V[n] + G E + I[n]

The discrete recurrence is implicit Euler in each cell's own voltages with the junction's
peer voltage from the previous step, and ``I[n]`` is on in step ``n`` (from ``n dt`` to
``(n+1) dt``) when ``delay <= n dt < delay + duration``: what Arbor and NEURON
(``secondorder = 0``) step.  NEURON's ``secondorder = 1, 2`` step Crank-Nicolson in the same
form: ``(2C/dt + A + diag(G + J_self)) V_h = (2C/dt) V[n] + J V[n] + G E + I[n]``,
``V[n+1] = 2 V_h - V[n]`` (:func:`discrete` with ``scheme="crank-nicolson"``, registered as
``discrete_cn``).  The junction couples nothing inside the step matrix, so on cables it is
tridiagonal (cells are unbranched cables, numbered one after another) and constant: one
LAPACK ``gttrf`` factorization, then one ``gttrs`` solve per step.

**Trees** (a model with a cell that has sections, :attr:`~crosssim.model.Model.has_trees`):
the CV graph of :func:`crosssim.cvgraph.cv_graph` (CVs numbered cell by cell, section by
section; frustum areas and resistances; per-section properties).  Where section ends meet
it has a *point node* of zero membrane (NEURON's zero-area node, Arbor's zero-length fork
CV): no capacitance, no leak, no site, so at every time level and in every scheme its row is
algebraic, ``sum_k g_k (V_p - V_k) = 0``: it holds the conductance-weighted mean of its
neighbours, ``V_p = sum_k g_k V_k / sum_k g_k``.  The references eliminate it exactly (a
star-mesh transform, the Schur complement of its row): its neighbours ``i, j`` are joined by
``g_i g_j / sum_k g_k``, and a probe that reads it reads that mean.  The simulators keep the
row in their implicit solve, which is the same system in exact arithmetic.  A point joining
two sections (an unbranched chain of sections) becomes one series conductance between
consecutive CVs, so the step matrix stays tridiagonal; at a fork the elimination joins CVs
that no band holds and the step matrix is factorized once by sparse LU (SuperLU,
``scipy.sparse.linalg.splu``), one sparse solve per step.  Sites act on
:meth:`~crosssim.cvgraph.CVGraph.site_node`, probes read
:meth:`~crosssim.cvgraph.CVGraph.probe_stencil`.

The semidiscrete solution is exact up to round-off: up to :data:`DENSE_CV_LIMIT` CVs by the
eigendecomposition of ``C^-1/2 K C^-1/2`` (:mod:`crosssim.analytic._exponential`), above it
by Laplace transform, ``V(s) = (sC + K)^-1 (C V0 + (G E + I) / s)``, inverted on the shared
hyperbolic contours of :mod:`crosssim.analytic.laplace` (one sparse complex LU per contour
node, about 100 nodes).  A Krylov action (``expm_multiply``) would cost ``||C^-1 K|| t``
matrix products: the axial coupling of small CVs makes that norm ~1e4 per ms (11 CVs of the
seed cell), hopeless at scale.

Units: ms, mV, nA, uS, nF, um.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from crosssim.analytic._common import cable_constants, clamp_edges, elapsed_since
from crosssim.analytic._exponential import DenseExponential, piecewise_exact
from crosssim.analytic._matrices import DENSE_LIMIT, from_triplets, solve
from crosssim.analytic.laplace import ContourPlan
from crosssim.discretization import clamp_steps, probe_stencil, site_cv
from crosssim.errors import SourceNotApplicableError
from crosssim.model import Model
from crosssim.result import RunResult

__all__ = [
    "DENSE_CV_LIMIT",
    "FLOOR_FACTOR",
    "CVSystem",
    "cv_system",
    "discrete",
    "discrete_crank_nicolson",
    "discrete_source_for",
    "roundoff_floor_mV",
    "semidiscrete",
    "step_matrix_condition",
]

#: Up to this many CVs in all the semidiscrete solution uses a dense eigendecomposition.
DENSE_CV_LIMIT = 1000
#: Multiple of ``eps * condition * voltage scale * sqrt(steps)`` that
#: :func:`roundoff_floor_mV` returns (calibrated on Arbor vs NEURON, see its docstring).
FLOOR_FACTOR = 4.0

IMPLICIT_EULER = "implicit-euler"
CRANK_NICOLSON = "crank-nicolson"
_SCHEMES = (IMPLICIT_EULER, CRANK_NICOLSON)


# The one assembly of the CV system ------------------------------------------------------


@dataclass(frozen=True)
class CVSystem:
    """The model discretized into control volumes, as flat arrays (units nF, uS, mV, nA).

    CVs are numbered cell after cell: cell ``k`` owns ``cell_offset[k] .. cell_offset[k+1]-1``.
    ``link_uS[i]`` joins CV ``i`` and ``i + 1`` (0 between cells).  Junction halves:
    ``half_cv`` (where the half acts), ``half_peer_cv``, ``half_g_uS``.  Clamps (every
    stimulus of the model): ``clamp_cv``, ``clamp_amplitude_nA``, ``clamp_steps`` (first and
    last step it is on, ``(0, -1)`` if never).  Probes: ``probe_first``, ``probe_second``,
    ``probe_weight`` (the probe reads ``(1-w) V_first + w V_second``).

    On trees (see the module notes) the point nodes are eliminated: ``fork_a``, ``fork_b``,
    ``fork_uS`` are the axial conductances the elimination adds between CVs that are not
    consecutive (empty on cables: the step matrix is tridiagonal), and a probe may read a
    point node, numbered ``size + p`` (the CV graph's own number): its voltage is
    ``sum point_weight[t] V[point_cv[t]]`` over the entries ``t`` with ``point_index == p``.
    """

    cell_offset: np.ndarray
    capacitance_nF: np.ndarray
    leak_uS: np.ndarray
    e_leak_mV: np.ndarray
    v_init_mV: np.ndarray
    link_uS: np.ndarray
    half_cv: np.ndarray
    half_peer_cv: np.ndarray
    half_g_uS: np.ndarray
    clamp_cv: np.ndarray
    clamp_amplitude_nA: np.ndarray
    clamp_steps: np.ndarray
    probe_labels: tuple[str, ...]
    probe_first: np.ndarray
    probe_second: np.ndarray
    probe_weight: np.ndarray
    fork_a: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fork_b: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fork_uS: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    point_cv: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    point_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def size(self) -> int:
        """Number of CVs (unknowns) in all."""
        return int(self.capacitance_nF.size)

    @property
    def is_tridiagonal(self) -> bool:
        """True when every axial conductance joins consecutive CVs (no fork edges)."""
        return self.fork_a.size == 0

    def junction_self_uS(self) -> np.ndarray:
        """Summed junction conductance acting on each CV (uS), the implicit part."""
        return np.bincount(self.half_cv, weights=self.half_g_uS, minlength=self.size)

    def stiffness(self, *, dense: bool = False):
        """``K = A + diag(G + J_self) - J`` (uS): the semidiscrete operator; a CSC matrix,
        or a numpy array with ``dense``.  ``J[p, q]`` sums the junction halves at CV p
        whose peer sits at CV q."""
        rows, cols, values = self._axial_triplets(
            self.leak_uS + self.junction_self_uS() + self.axial_diagonal())
        matrix = from_triplets(np.concatenate([rows, self.half_cv]),
                               np.concatenate([cols, self.half_peer_cv]),
                               np.concatenate([values, -self.half_g_uS]),
                               (self.size, self.size), dense=dense)
        return matrix if dense else matrix.tocsc()

    def _axial_triplets(self, diagonal: np.ndarray,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, values)`` of ``diag(diagonal)`` plus the axial coupling off the
        diagonal: ``-link_uS`` between consecutive CVs, ``-fork_uS`` at the fork edges
        (their diagonal part is in :meth:`axial_diagonal`)."""
        cvs = np.arange(self.size)
        upper = cvs[:-1]
        a, b = self.fork_a, self.fork_b
        return (np.concatenate([cvs, upper, upper + 1, a, b]),
                np.concatenate([cvs, upper + 1, upper, b, a]),
                np.concatenate([diagonal, -self.link_uS, -self.link_uS, -self.fork_uS,
                                -self.fork_uS]))

    def axial_diagonal(self) -> np.ndarray:
        """Sum of the axial conductances at each CV (uS)."""
        diagonal = np.zeros(self.size)
        diagonal[:-1] += self.link_uS
        diagonal[1:] += self.link_uS
        if not self.is_tridiagonal:
            diagonal += np.bincount(self.fork_a, weights=self.fork_uS, minlength=self.size)
            diagonal += np.bincount(self.fork_b, weights=self.fork_uS, minlength=self.size)
        return diagonal

    def step_bands(self, capacitance_over_dt: np.ndarray):
        """Bands ``(lower, diagonal, upper)`` of ``diag(c/dt + G + J_self) + A``."""
        diagonal = (capacitance_over_dt + self.leak_uS + self.junction_self_uS()
                    + self.axial_diagonal())
        return -self.link_uS, diagonal, -self.link_uS.copy()

    def step_matrix(self, capacitance_over_dt: np.ndarray):
        """``diag(c/dt + G + J_self) + A`` as a sparse matrix (CSC, uS), forks included."""
        diagonal = self.step_bands(capacitance_over_dt)[1]
        rows, cols, values = self._axial_triplets(diagonal)
        return from_triplets(rows, cols, values, (self.size, self.size), dense=False).tocsc()

    def leak_source_nA(self) -> np.ndarray:
        """``G E`` per CV (nA)."""
        return self.leak_uS * self.e_leak_mV

    def probe_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, first, second)``: the nodes the probes read (CVs, and point nodes as
        ``size + p`` on trees) and each probe's two positions in ``rows``."""
        rows, inverse = np.unique(np.concatenate([self.probe_first, self.probe_second]),
                                  return_inverse=True)
        n = self.probe_first.size
        return rows, inverse[:n], inverse[n:]

    def cvs_for_rows(self, rows: np.ndarray):
        """``(cvs, mix)``: the CVs whose traces give the nodes ``rows`` of :meth:`probe_rows`
        and the sparse ``(rows, cvs)`` matrix that mixes them (a point node is the weighted
        mean of its neighbours); ``mix`` is None when every row is a CV (``cvs = rows``)."""
        if rows.size == 0 or int(rows.max()) < self.size:
            return rows, None
        from scipy import sparse

        row_of, cv_of, weight_of = [], [], []
        for position, node in enumerate(rows.tolist()):
            if node < self.size:
                row_of.append(position)
                cv_of.append(node)
                weight_of.append(1.0)
                continue
            entries = np.flatnonzero(self.point_index == node - self.size)
            row_of += [position] * entries.size
            cv_of += self.point_cv[entries].tolist()
            weight_of += self.point_weight[entries].tolist()
        cvs, column = np.unique(np.asarray(cv_of, dtype=np.int64), return_inverse=True)
        mix = sparse.csr_matrix((weight_of, (row_of, column)), shape=(rows.size, cvs.size))
        return cvs, mix

    def read_probes(self, row_values: np.ndarray, first: np.ndarray,
                    second: np.ndarray) -> np.ndarray:
        """Probe traces (probes, samples) from the traces of :meth:`probe_rows` (mV)."""
        weight = self.probe_weight[:, None]
        near = row_values[first]
        blend = (1.0 - weight) * near + weight * row_values[second]
        return np.where(weight == 0.0, near, blend)


def cv_system(model: Model) -> CVSystem:
    """The CV system of ``model``: the discretization, site and probe rules of the adapters.

    Models of uniform unbranched cables are assembled from the cable constants (the fast
    path, unchanged); a model with a tree from the CV graph, its point nodes eliminated
    (:func:`_tree_system`)."""
    if model.has_trees:
        return _tree_system(model)
    cells = model.cells
    index = model.cell_index()
    counts = np.array([model.cvs(cell) for cell in cells], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    constants = [cable_constants(cell) for cell in cells]
    cv_length = np.array([c.length_um for c in constants]) / counts
    per_cell = {
        "capacitance": np.array([c.c_nF_per_um for c in constants]) * cv_length,
        "leak": np.array([c.gl_uS_per_um for c in constants]) * cv_length,
        "link": 1.0 / (np.array([c.r_MOhm_per_um for c in constants]) * cv_length),
        "e_leak": np.array([c.e_leak_mV for c in constants]),
        "v_init": np.array([c.v_init_mV for c in constants]),
    }
    spread = {name: np.repeat(values, counts) for name, values in per_cell.items()}
    link = spread["link"][:-1].copy()
    link[offset[1:-1] - 1] = 0.0  # no axial link from a cell's last CV to the next cell

    def cv_of(cell_name: str, section: str | None, x: float) -> int:
        cell = index[cell_name]
        return int(offset[cell]) + site_cv(x, int(counts[cell]))

    def stencil_of(probe) -> tuple[int, int, float]:
        cell = index[probe.cell]
        first, second, weight = probe_stencil(probe.x, int(counts[cell]))
        return int(offset[cell]) + first, int(offset[cell]) + second, weight

    return CVSystem(
        cell_offset=offset, capacitance_nF=spread["capacitance"], leak_uS=spread["leak"],
        e_leak_mV=spread["e_leak"], v_init_mV=spread["v_init"], link_uS=link,
        **_site_fields(model, cv_of, stencil_of),
    )


def _ints(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _floats(values) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


def _site_fields(model: Model, node_of, stencil_of) -> dict[str, Any]:
    """The :class:`CVSystem` fields of the model's point sources and probes, the one rule
    for cables and trees: junction halves (a junction of 0 uS carries nothing), clamps on
    the step grid, probe stencils (a weight of 0 reads ``first`` alone).  ``node_of(cell,
    section, x)`` is the unknown a site acts on; ``stencil_of(probe)`` its ``(first,
    second, weight)``."""
    half_cv, half_peer, half_g = [], [], []
    for junction in model.gap_junctions:
        if junction.g_uS == 0.0:
            continue
        sites = [node_of(name, section, x)
                 for name, section, x in zip(junction.cells, junction.sections, junction.x)]
        half_cv += sites
        half_peer += sites[::-1]
        half_g += [junction.g_uS, junction.g_uS]
    sim = model.simulation
    clamp_cv, clamp_amplitude, steps = [], [], []
    for stimulus in model.stimuli:
        clamp_cv.append(node_of(stimulus.cell, stimulus.section, stimulus.x))
        clamp_amplitude.append(stimulus.amplitude_nA)
        on = clamp_steps(stimulus.delay_ms, stimulus.duration_ms, sim.dt_ms, sim.n_steps)
        steps.append(on if on is not None else (0, -1))
    probes = model.effective_probes()
    stencils = []
    for probe in probes:
        first, second, weight = stencil_of(probe)
        stencils.append((first, second if weight != 0.0 else first, weight))
    return {
        "half_cv": _ints(half_cv), "half_peer_cv": _ints(half_peer),
        "half_g_uS": _floats(half_g), "clamp_cv": _ints(clamp_cv),
        "clamp_amplitude_nA": _floats(clamp_amplitude),
        "clamp_steps": _ints(steps).reshape(-1, 2),
        "probe_labels": tuple(probe.label for probe in probes),
        "probe_first": _ints([s[0] for s in stencils]),
        "probe_second": _ints([s[1] for s in stencils]),
        "probe_weight": _floats([s[2] for s in stencils]),
    }


def _tree_system(model: Model) -> CVSystem:
    """The CV system of a model with trees: the CV graph with its point nodes eliminated."""
    from crosssim.cvgraph import cv_graph

    graph = cv_graph(model)
    size = graph.n_cvs
    counts = np.bincount(graph.cell[:size], minlength=len(model.cells))
    offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    a, b, g = graph.edge_a, graph.edge_b, graph.edge_g_uS
    between_cvs = (a < size) & (b < size)
    edges = list(zip(a[between_cvs].tolist(), b[between_cvs].tolist(),
                     g[between_cvs].tolist()))
    point_index, point_cv, point_weight = _eliminate_points(
        a[~between_cvs], b[~between_cvs], g[~between_cvs], size, edges)
    link = np.zeros(max(size - 1, 0))
    fork_a, fork_b, fork_g = [], [], []
    for first, second, conductance in edges:
        low, high = min(first, second), max(first, second)
        if high == low + 1:
            link[low] += conductance
        else:
            fork_a.append(low)
            fork_b.append(high)
            fork_g.append(conductance)

    cells = model.cells
    index = model.cell_index()

    def node_of(cell_name: str, section: str | None, x: float) -> int:
        gid = index[cell_name]
        return graph.site_node(gid, cells[gid].section_index(section), x)

    def stencil_of(probe) -> tuple[int, int, float]:
        gid = index[probe.cell]
        return graph.probe_stencil(gid, cells[gid].section_index(probe.section), probe.x)

    return CVSystem(
        cell_offset=offset, capacitance_nF=graph.capacitance_pF[:size] * 1e-3,
        leak_uS=graph.leak_uS[:size], e_leak_mV=graph.e_leak_mV[:size].copy(),
        v_init_mV=graph.v_init_mV[:size].copy(), link_uS=link,
        **_site_fields(model, node_of, stencil_of),
        fork_a=_ints(fork_a), fork_b=_ints(fork_b), fork_uS=_floats(fork_g),
        point_index=point_index, point_cv=point_cv, point_weight=point_weight,
    )


def _eliminate_points(a: np.ndarray, b: np.ndarray, g: np.ndarray, size: int,
                      edges: list[tuple[int, int, float]],
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eliminate the point nodes (numbered from ``size``) joined to CVs by the edges
    ``(a, b, g)``: append to ``edges`` the star-mesh conductances ``g_i g_j / sum_k g_k``
    between every two neighbours of a point, and return the point readout
    ``(point_index, point_cv, point_weight)``, ``weight = g_i / sum_k g_k``.

    Point nodes are joined only to CVs (a point never touches another point); a point with
    one neighbour (the CV graph makes none) adds no edge and reads that neighbour."""
    point = np.where(a >= size, a, b) - size
    cv = np.where(a >= size, b, a)
    if np.any(cv >= size):  # pragma: no cover - the CV graph joins points to CVs only
        raise ValueError("a point node is joined to another point node")
    order = np.argsort(point, kind="stable")
    point, cv, g = point[order], cv[order], g[order]
    total = np.bincount(point, weights=g)
    weight = g / total[point]
    starts = np.flatnonzero(np.diff(point, prepend=-1))
    for first, stop in zip(starts.tolist(), [*starts[1:].tolist(), point.size]):
        members = list(zip(cv[first:stop].tolist(), g[first:stop].tolist()))
        whole = float(total[point[first]])
        edges.extend((i, j, g_i * g_j / whole)
                     for (i, g_i), (j, g_j) in combinations(members, 2))
    return point.astype(np.int64), cv.astype(np.int64), weight


# discrete: the recurrence the simulators step ----------------------------------------------


def _clamp_events(system: CVSystem) -> dict[int, list[int]]:
    """Step -> clamps that switch on or off at the start of that step."""
    events: dict[int, list[int]] = {}
    for clamp, (first, last) in enumerate(system.clamp_steps.tolist()):
        if last < first or system.clamp_amplitude_nA[clamp] == 0.0:
            continue
        events.setdefault(first, []).append(clamp)
        events.setdefault(last + 1, []).append(clamp)
    return events


def _source_at(system: CVSystem, step: int, base: np.ndarray) -> np.ndarray:
    """``G E + I[step]`` (nA): the leak term and the clamps on during ``step``."""
    source = base.copy()
    first, last = system.clamp_steps[:, 0], system.clamp_steps[:, 1]
    on = (first <= step) & (step <= last)
    np.add.at(source, system.clamp_cv[on], system.clamp_amplitude_nA[on])
    return source


class _Tridiagonal:
    """One LU factorization of the tridiagonal step matrix (LAPACK ``gttrf``), flat layout.

    The state is a vector of the CVs in their global order (``position`` = identity).  Below
    3 unknowns (where scipy's ``gttrf`` wrapper rejects its arrays) a dense inverse.  (A
    dense inverse for larger systems drifts from the LU by ~1e-11 mV over 2,000 steps: more
    than the round-off floor the simulators are held to.)
    """

    def __init__(self, lower: np.ndarray, diagonal: np.ndarray, upper: np.ndarray) -> None:
        self.shape: tuple[int, ...] = (diagonal.size,)
        self.position = np.arange(diagonal.size)
        self._inverse = None
        if diagonal.size < 3:
            matrix = np.diag(diagonal) + np.diag(lower, -1) + np.diag(upper, 1)
            self._inverse = np.linalg.inv(matrix)
            return
        from scipy.linalg import lapack

        *self._factors, info = lapack.dgttrf(lower, diagonal, upper)
        if info != 0:  # pragma: no cover - the step matrix is diagonally dominant
            raise ValueError(f"singular tridiagonal matrix (gttrf info {info})")
        self._gttrs = lapack.dgttrs

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``matrix^-1 rhs`` (``rhs`` may be overwritten)."""
        if self._inverse is not None:
            return self._inverse @ rhs
        solution, _ = self._gttrs(*self._factors, rhs, overwrite_b=True)
        return solution


class _CellsSideBySide:
    """The same factorization with the cells side by side: many cells, one sweep each.

    State layout ``(max CVs per cell, cells)``: row ``k`` holds the k-th CV of every cell
    (shorter cells padded with identity rows), so the Thomas sweeps run over the CV
    positions with every cell at once (the matrix is block diagonal over cells; no pivoting
    is needed: it is diagonally dominant).  ``position`` maps global CV -> flat index.
    """

    def __init__(self, system: CVSystem, lower: np.ndarray, diagonal: np.ndarray,
                 upper: np.ndarray) -> None:
        counts = np.diff(system.cell_offset)
        n_cells = counts.size
        depth = int(counts.max())
        cell = np.repeat(np.arange(n_cells), counts)
        within = np.arange(system.size) - system.cell_offset[cell]
        self.shape = (depth, n_cells)
        self.position = within * n_cells + cell
        main = np.ones(self.shape)
        below = np.zeros(self.shape)  # below[k]: coupling of CV k to CV k-1 of its cell
        above = np.zeros(self.shape)  # above[k]: coupling of CV k to CV k+1 of its cell
        main.flat[self.position] = diagonal
        below.flat[self.position[1:]] = lower
        above.flat[self.position[:-1]] = upper
        below[0] = 0.0
        self._multiplier = np.zeros(self.shape)
        pivot = main.copy()
        for k in range(1, depth):
            self._multiplier[k] = below[k] / pivot[k - 1]
            pivot[k] -= self._multiplier[k] * above[k - 1]
        self._inverse_pivot = 1.0 / pivot
        self._above = above

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``matrix^-1 rhs`` for ``rhs`` of shape :attr:`shape` (overwritten and returned)."""
        multiplier, above, inverse = self._multiplier, self._above, self._inverse_pivot
        for k in range(1, rhs.shape[0]):
            rhs[k] -= multiplier[k] * rhs[k - 1]
        rhs[-1] *= inverse[-1]
        for k in range(rhs.shape[0] - 2, -1, -1):
            rhs[k] -= above[k] * rhs[k + 1]
            rhs[k] *= inverse[k]
        return rhs


class _SparseLU:
    """One sparse LU factorization (SuperLU) of the step matrix of a tree, whose fork edges
    no band holds; flat layout, one sparse solve per step."""

    def __init__(self, matrix) -> None:
        from scipy.sparse.linalg import splu

        self.shape: tuple[int, ...] = (matrix.shape[0],)
        self.position = np.arange(matrix.shape[0])
        # symmetric mode keeps the diagonal pivots of the symmetric ordering: the matrix is
        # diagonally dominant, and a solve costs half of what partial pivoting's does
        self._factors = splu(matrix, permc_spec="MMD_AT_PLUS_A",
                             options={"SymmetricMode": True})

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``matrix^-1 rhs`` (a new array)."""
        return self._factors.solve(rhs)


#: Cells from which the side-by-side sweeps beat LAPACK's sequential gttrs (one numpy
#: operation per CV position costs ~ microseconds; gttrs ~ 20 ns per CV).
_SIDE_BY_SIDE_MIN_CELLS = 256


def _step_solver(system: CVSystem, capacitance_over_dt: np.ndarray,
                 ) -> _Tridiagonal | _CellsSideBySide | _SparseLU:
    """Sparse LU for trees with forks; else side by side for many cells of similar CV
    counts (padding <= 50 %), else LAPACK."""
    if not system.is_tridiagonal:
        return _SparseLU(system.step_matrix(capacitance_over_dt))
    lower, diagonal, upper = system.step_bands(capacitance_over_dt)
    counts = np.diff(system.cell_offset)
    if counts.size >= _SIDE_BY_SIDE_MIN_CELLS and counts.max() * counts.size <= 1.5 * system.size:
        return _CellsSideBySide(system, lower, diagonal, upper)
    return _Tridiagonal(lower, diagonal, upper)


_SOLVER_NAMES: dict[type, str] = {
    _CellsSideBySide: "one tridiagonal LU, cells side by side",
    _Tridiagonal: "one tridiagonal LU (LAPACK gttrf)",
    _SparseLU: "one sparse LU (SuperLU)",
}


def discrete(model: Model, *, scheme: str = IMPLICIT_EULER) -> RunResult:
    """The exact result of the recurrence the simulators step (backend ``"discrete"``).

    ``scheme="implicit-euler"`` is what Arbor and NEURON ``secondorder = 0`` step;
    ``"crank-nicolson"`` what NEURON ``secondorder = 1, 2`` steps (see the module notes).
    Voltages in mV of ``model.effective_probes()`` on the sample grid; one tridiagonal
    factorization (a sparse LU on trees with forks), one solve per step (cost ~ CVs x steps,
    memory ~ CVs + probes x samples).
    """
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme {scheme!r}; allowed: {', '.join(_SCHEMES)}")
    started = time.perf_counter()
    system = cv_system(model)
    sim = model.simulation
    dt = sim.dt_ms
    half_step = scheme == CRANK_NICOLSON
    capacitance_over_dt = system.capacitance_nF * ((2.0 if half_step else 1.0) / dt)
    solver = _step_solver(system, capacitance_over_dt)
    position = solver.position
    padded = int(np.prod(solver.shape))

    def laid_out(values: np.ndarray) -> np.ndarray:
        out = np.zeros(padded)
        out[position] = values
        return out.reshape(solver.shape)

    # the explicit junction term J V[n], only on the CVs that carry a junction half
    coupled = np.unique(position[system.half_cv])
    half_row = np.searchsorted(coupled, position[system.half_cv])
    half_peer = position[system.half_peer_cv]
    charge_rate = laid_out(capacitance_over_dt)

    rows, first, second = system.probe_rows()
    cvs, mix = system.cvs_for_rows(rows)
    recorded = position[cvs]
    every = sim.steps_per_sample
    out = np.empty((cvs.size, sim.n_samples))
    voltage = laid_out(system.v_init_mV)
    out[:, 0] = voltage.reshape(-1)[recorded]
    base = system.leak_source_nA()
    events = _clamp_events(system)
    source = laid_out(_source_at(system, 0, base))
    spare = np.empty(solver.shape)  # the right-hand side never shares the state's buffer
    for step in range(sim.n_steps):
        if step in events:
            source = laid_out(_source_at(system, step, base))
        rhs = np.multiply(charge_rate, voltage, out=spare)
        rhs += source
        if coupled.size:
            rhs.reshape(-1)[coupled] += np.bincount(
                half_row, weights=system.half_g_uS * voltage.reshape(-1)[half_peer],
                minlength=coupled.size)
        solution = solver.solve(rhs)
        if half_step:
            solution *= 2.0
            solution -= voltage
        spare, voltage = voltage, solution
        if (step + 1) % every == 0:
            out[:, (step + 1) // every] = voltage.reshape(-1)[recorded]
    if mix is not None:
        out = mix @ out
    values = system.read_probes(out, first, second)
    name = "discrete_cn" if half_step else "discrete"
    info = {
        "method": ("Crank-Nicolson as NEURON secondorder 2 steps it" if half_step
                   else "implicit Euler as Arbor and NEURON secondorder 0 step it")
        + "; junction peer voltage from the previous step; clamps on the step grid; "
        + ("point nodes eliminated, " if system.point_index.size else "")
        + _SOLVER_NAMES[type(solver)] + ", one solve per step",
        "scheme": scheme,
        "dt_ms": dt,
        "cvs": system.size,
        "units": "ms, mV, nA, uS, nF",
    }
    return RunResult(backend=name, probes=list(system.probe_labels),
                     times_ms=sim.sample_times_ms(), values_mV=values,
                     wall_time_s=time.perf_counter() - started, info=info)


def discrete_crank_nicolson(model: Model) -> RunResult:
    """The Crank-Nicolson recurrence NEURON steps at ``secondorder = 1, 2`` (``"discrete_cn"``).

    Raises :class:`~crosssim.errors.SourceNotApplicableError` when the model runs NEURON with
    ``secondorder = 0``: then no simulator steps this scheme (``discrete`` is the reference).
    """
    if model.backends.neuron.secondorder == 0:
        raise SourceNotApplicableError(
            "discrete_cn", "the model runs NEURON with secondorder = 0 (implicit Euler, like "
            "Arbor): no simulator steps Crank-Nicolson here; the recurrence is 'discrete'")
    return discrete(model, scheme=CRANK_NICOLSON)


def discrete_source_for(backend: str, model: Model) -> str:
    """The discrete reference whose recurrence ``backend`` steps on ``model``.

    ``"discrete_cn"`` for NEURON with ``secondorder`` 1 or 2, else ``"discrete"`` (Arbor,
    NEURON ``secondorder = 0``; a third simulator is assumed to step implicit Euler).
    """
    if backend == "neuron" and model.backends.neuron.secondorder != 0:
        return "discrete_cn"
    return "discrete"


# semidiscrete: exact in time ------------------------------------------------------------


def _cv_edges(model: Model, system: CVSystem) -> list[tuple[float, int, float]]:
    """The clamp edges at their exact times (:func:`~crosssim.analytic._common.clamp_edges`)
    as ``(time_ms, CV, delta_nA)``, on the CV of each stimulus in ``system`` (which knows
    sections)."""
    cvs = system.clamp_cv.tolist()
    return [(edge.time_ms, cvs[edge.stimulus], edge.delta_nA) for edge in clamp_edges(model)]


def semidiscrete(model: Model, *, method: str | None = None) -> RunResult:
    """The exact-in-time solution of the CV system (backend ``"semidiscrete"``).

    ``method``: ``"eigen"`` (dense eigendecomposition, default up to :data:`DENSE_CV_LIMIT`
    CVs) or ``"laplace"`` (sparse LU per contour node, default above).  Voltages in mV of
    ``model.effective_probes()`` on the sample grid; clamps switch at their exact times; a
    sample on a switch reads the value before it.  Accuracy ~1e-10 mV on 100 mV voltages
    (the two methods and a dense ``scipy.linalg.expm`` agree to that on the test models).
    """
    started = time.perf_counter()
    system = cv_system(model)
    if method is None:
        method = "eigen" if system.size <= DENSE_CV_LIMIT else "laplace"
    rows, first, second = system.probe_rows()
    cvs, mix = system.cvs_for_rows(rows)
    edges = _cv_edges(model, system)
    info: dict = {"cvs": system.size, "units": "ms, mV, nA, uS, nF"}
    if method == "eigen":
        solver = DenseExponential(system.capacitance_nF, system.stiffness(dense=True))
        out = piecewise_exact(model, solver, system.leak_source_nA(), system.v_init_mV, edges,
                              cvs)
        info["method"] = "eigendecomposition of C^-1/2 K C^-1/2 (dense)"
    elif method == "laplace":
        out, nodes = _laplace_solution(model, system, cvs, edges)
        info["method"] = ("Laplace transform (sC + K)^-1, sparse LU per node, fixed "
                          "hyperbolic contours (Weideman-Trefethen)")
        info["contour_nodes"] = nodes
    else:
        raise ValueError(f"method {method!r}; allowed: eigen, laplace")
    if system.point_index.size:
        info["method"] += "; point nodes eliminated"
    if mix is not None:
        out = mix @ out
    values = system.read_probes(out, first, second)
    return RunResult(backend="semidiscrete", probes=list(system.probe_labels),
                     times_ms=model.simulation.sample_times_ms(), values_mV=values,
                     wall_time_s=time.perf_counter() - started, info=info)


def _laplace_solution(model: Model, system: CVSystem, rows: np.ndarray,
                      edges: list[tuple[float, int, float]]) -> tuple[np.ndarray, int]:
    """Traces (rows, samples) of the CVs ``rows`` by contour inversion; and the node count.

    Per node one sparse complex LU of ``sC + K``; the right-hand sides are either the sources
    (free response + one unit step per clamp site) or, when fewer, the probe rows (``sC + K``
    is complex symmetric, so row p of its inverse solves with the unit vector at p).
    """
    from scipy.sparse.linalg import splu

    times = model.simulation.sample_times_ms()
    sites = sorted({cv for _, cv, _ in edges})
    site_index = {cv: i for i, cv in enumerate(sites)}
    terms: list[list[tuple[np.ndarray, float]]] = [[] for _ in sites]
    positive = [times[times > 0.0]]
    for time_ms, cv, delta in edges:
        elapsed = elapsed_since(model, time_ms)
        terms[site_index[cv]].append((elapsed, delta))
        positive.append(elapsed[elapsed > 0.0])
    every = np.concatenate(positive)
    out = np.empty((rows.size, times.size))
    out[:, 0] = system.v_init_mV[rows]
    if every.size == 0:
        return out, 0
    plan = ContourPlan.covering(float(every.min()), float(every.max()))
    from scipy import sparse

    stiffness = system.stiffness().astype(complex)
    capacitance = system.capacitance_nF
    charge = capacitance * system.v_init_mV
    leak = system.leak_source_nA()
    adjoint = rows.size < 1 + len(sites)
    free = np.empty((rows.size, plan.n_nodes), dtype=complex)
    step = np.empty((len(sites), rows.size, plan.n_nodes), dtype=complex)
    site_array = np.asarray(sites, dtype=np.int64)
    for node, s in enumerate(plan.nodes):
        matrix = (stiffness + sparse.diags(s * capacitance)).tocsc()
        factors = splu(matrix, permc_spec="MMD_AT_PLUS_A")
        if adjoint:
            unit = np.zeros((system.size, rows.size), dtype=complex)
            unit[rows, np.arange(rows.size)] = 1.0
            inverse_rows = factors.solve(unit)  # columns: row p of (sC + K)^-1
            free[:, node] = inverse_rows.T @ (charge + leak / s)
            step[:, :, node] = inverse_rows[site_array] / s
        else:
            rhs = np.zeros((system.size, 1 + len(sites)), dtype=complex)
            rhs[:, 0] = charge + leak / s
            rhs[site_array, 1 + np.arange(len(sites))] = 1.0 / s
            solution = factors.solve(rhs)[rows]
            free[:, node] = solution[:, 0]
            step[:, :, node] = solution[:, 1:].T
    out[:, 1:] = plan.invert(free, times[1:])
    for i, site_terms in enumerate(terms):
        wanted = np.unique(np.concatenate([e[e > 0.0] for e, _ in site_terms]))
        if wanted.size == 0:
            continue
        response = plan.invert(step[i], wanted)
        for elapsed, delta in site_terms:
            on = elapsed > 0.0
            out[:, on] += delta * response[:, np.searchsorted(wanted, elapsed[on])]
    return out, plan.n_nodes


# The round-off floor of simulator-vs-simulator comparisons ---------------------------------


def step_matrix_condition(model: Model) -> float:
    """An upper bound of the 2-norm condition of the implicit-Euler step matrix.

    ``B = diag(C/dt + G + J_self) + A`` is symmetric positive definite.  With ``D = diag(B)``
    and ``d0 = C/dt + G + J_self``: ``lambda_max(D^-1/2 B D^-1/2) <= 1 + max_i r_i`` (Gershgorin,
    ``r_i`` the off-diagonal row sum over ``B_ii``) and ``lambda_min >= min_i d0_i / B_ii``
    (``A`` is positive semidefinite), so ``cond <= (1 + max r) * max(B_ii / d0_i)``: about
    ``2 + 4 g_axial dt / C`` for a uniform cable.

    On trees the bound is of the step matrix with the point nodes eliminated (their rows
    have no ``C/dt``, so the bound of the full matrix would be infinite): an estimate from
    the CV graph of what a simulator's implicit solve, which keeps those algebraic rows,
    loses to round-off.
    """
    system = cv_system(model)
    d0 = (system.capacitance_nF / model.simulation.dt_ms + system.leak_uS
          + system.junction_self_uS())
    axial = system.axial_diagonal()
    diagonal = d0 + axial
    return float(np.max(1.0 + axial / diagonal) * np.max(diagonal / d0))


def _voltage_scale_mV(model: Model, system: CVSystem) -> float:
    """Largest |V| the model can reach (mV): rest/initial values plus the clamp deflection.

    ``max(|E|, |V0|)`` over CVs, plus the largest steady deflection with every clamp on at
    ``|amplitude|`` (``K`` is an M-matrix: its inverse is non-negative, so this bounds the
    deflection of any subset of clamps, and a passive step response never overshoots it).
    """
    scale = float(np.max(np.maximum(np.abs(system.e_leak_mV), np.abs(system.v_init_mV))))
    if system.clamp_cv.size and np.any(system.clamp_amplitude_nA):
        current = np.bincount(system.clamp_cv, weights=np.abs(system.clamp_amplitude_nA),
                              minlength=system.size)
        deflection = solve(system.stiffness(dense=system.size <= DENSE_LIMIT), current)
        scale += float(np.max(deflection))
    return scale


def roundoff_floor_mV(model: Model) -> float:
    """A-priori round-off floor of a simulator-vs-simulator comparison on ``model``, in mV.

    ``FLOOR_FACTOR * eps * cond(B) * scale * sqrt(n_eff)``:

    * ``eps``: float64 machine epsilon;
    * ``cond(B)``: the bound :func:`step_matrix_condition` of the implicit-Euler step matrix
      (axial coupling over ``C/dt``: it grows with the square of the CV count);
    * ``scale``: the largest |V| the model reaches (leak reversals, initial values and the
      steady deflection of every clamp on at once);
    * ``n_eff = min(steps, 10 tau / dt)``: independent per-step errors add up like a random
      walk until the membrane forgets them, generously after 10 of its slowest time
      constants ``tau = max C / G`` of a CV (no leak: every step counts).

    Two correct simulators solve the same linear system each step in a different order of
    operations; each solve loses ``~ eps * cond * |V|``.  :data:`FLOOR_FACTOR` is calibrated
    on the largest pairwise difference of Arbor, NEURON and :func:`discrete` (measured
    2026-11-30 on a 1 mm x 1 um cable, clamp at x = 0, dt 0.05 ms, 5 and 50 ms, 1,000 /
    4,000 / 16,000 / 32,766 CVs, two sets of cell constants, clamps 0.1 and 1 nA; and the
    matched test models): the floor lies 2.3-48x above the differences of correct
    simulators (e.g. 8.0e-9 mV vs 2.3e-9 at 1,000 CVs, 2.0e-6 vs 2.8e-7 at 16,000, 8.6e-6
    vs 1.5e-6 at 32,766; 2.0e-12 vs 8.5e-13 on the 1-CV seed), about 3e-10 mV on the
    11-CV seed, so a real 1e-6 mV discrepancy on a small model still fails.
    """
    system = cv_system(model)
    sim = model.simulation
    eps = float(np.finfo(float).eps)
    with np.errstate(divide="ignore"):
        memory_steps = 10.0 * float(np.max(system.capacitance_nF / system.leak_uS)) / sim.dt_ms
    effective_steps = max(1.0, min(float(sim.n_steps), memory_steps))
    return (FLOOR_FACTOR * eps * step_matrix_condition(model)
            * _voltage_scale_mV(model, system) * math.sqrt(effective_steps))
