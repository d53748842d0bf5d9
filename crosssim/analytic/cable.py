"""Exact solution of the continuous model: passive sealed cables joined by ohmic junctions.

Physics (units: ms, mV, nA, uS, MOhm, nF, um; see :mod:`crosssim.analytic._common`).
Per unit length a cell has capacitance ``c``, leak conductance ``g_l`` and axial
resistance ``r``; ``tau = c / g_l``, ``lambda = 1 / sqrt(r g_l)``.  With ``u = V - E``::

    c du/dt = (1/r) d2u/dx2 - g_l u + sum of point currents,   du/dx = 0 at both ends,
    u(x, 0) = V0 - E (uniform).

Laplace domain (``s`` in 1/ms), ``k(s) = sqrt(r (g_l + c s)) = sqrt(1 + s tau) / lambda``:

* transfer impedance of one sealed cable of length L between a point injection at ``y``
  and the voltage at ``x`` (MOhm, symmetric in x and y)::

      Z(x, y; s) = r cosh(k min(x,y)) cosh(k (L - max(x,y))) / (k sinh(k L))

  evaluated in the overflow-free form
  ``r/(2k) e^{-k|x-y|} (1 + e^{-2k min}) (1 + e^{-2k (L-max)}) / (1 - e^{-2kL})``.
  ``Z`` is even in ``k``, so the transform is meromorphic in ``s`` (no branch cut);
  ``Z(0, 0; 0) = r lambda coth(L / lambda)`` is the input resistance of a sealed end.
* open-circuit voltage of an isolated cell (uniform initial value, leak reversal, clamps)::

      f(x; s) = E / s + (V0 - E) / (s + 1/tau) + sum_clamps Z(x, y; s) I(s)

* junction j joins side a (cell, x_a) and side b (cell, x_b) and carries
  ``I_j = g_j (V(x_b) - V(x_a))`` into side a and out of side b.  With signs
  ``sigma_a = +1``, ``sigma_b = -1`` the junction currents solve (size = junction count)::

      (diag(1 / g) + M(s)) I = D f,         (D f)_k = f(x_b) - f(x_a),
      M_kj = sum over sides p of k and q of j on the same cell of sigma_p sigma_q Z(x_p, x_q; s)

  and a probe reads ``V(x; s) = f(x; s) + sum_{j, p in j, same cell} sigma_p Z(x, x_p; s) I_j``.
  ``diag(1/g) + M`` is the impedance matrix of a passive network: it is singular only at
  the network's natural frequencies, which are real and negative, and stays well
  conditioned as g grows (junctions with g = 0 carry no current and are dropped).

Time domain: each clamp is a sum of switched steps (on at ``delay`` with ``+amplitude``,
off at ``delay + duration`` with ``-amplitude``).  The system is linear and time
invariant, so the voltage is the response to initial state and leak reversals (no
clamps) plus, for each clamp site and edge, ``delta_nA * R(t - t_edge)`` where ``R`` is the
response to a unit step switched on at time 0 (transform ``Z_network(s) / s``).  Every
inverted transform is therefore smooth for t > 0; no switch is ever inverted directly.
The inversion uses fixed hyperbolic contours shared by all times of a window
(:mod:`crosssim.analytic.laplace`); t = 0 is the initial value, and a sample on a switch
time reads the value before the switch (the voltage is continuous in time).

Size limits: cost per contour node is one solve with the junction count ``n_j`` and
``1 + n_sites`` right-hand sides (clamp sites); a run uses about 70-200 nodes (74 for
the seed, 98 for 50 ms sampled every 0.025 ms).  Up to :data:`DENSE_JUNCTION_MIN`
junctions, or up to :data:`DENSE_JUNCTION_LIMIT` when the junction matrix is more than
25 % full (cells with many junctions each), the solves are batched dense LU (~n_j^3/3
per node).  Otherwise a sparse LU per node (SuperLU, minimum-degree ordering).
Measured (2 shared cores, 50 ms, one clamp, 2 probes): 10,000-cell ring 1.7 s;
100 x 100 grid (19,800 junctions) ~0.15 s per node, 15 s in all (up to 60 s while other
jobs share the cores).  Graphs with many junctions per cell fill the LU and get slower;
beyond :data:`MAX_JUNCTIONS` the call raises ResourceLimitError.  Memory is bounded by
processing contour nodes in batches (~64 MB); the output itself is probes x samples.
``benchmarks/analytic_speed.py --large`` re-measures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from crosssim.analytic._common import (
    CableConstants,
    cable_constants,
    clamp_currents_at,
    clamp_edges,
    invert_with_switches,
)
from crosssim.analytic._matrices import from_triplets, is_small
from crosssim.errors import ResourceLimitError
from crosssim.model import Cell, Model
from crosssim.result import RunResult

__all__ = [
    "DENSE_JUNCTION_LIMIT",
    "MAX_JUNCTIONS",
    "LaplaceResponses",
    "cable_steady_state",
    "exact_cable",
    "laplace_responses",
    "sealed_cable_impedance",
]

#: Up to this many (nonzero) junctions the per-node solves are always dense and batched.
DENSE_JUNCTION_MIN = 48
#: Up to this many junctions a densely filled junction matrix (> 25 %) is solved dense.
DENSE_JUNCTION_LIMIT = 400
#: Largest junction count accepted by the exact cable solution.
MAX_JUNCTIONS = 200_000
#: Complex entries allowed in one batch of dense matrices (bounds memory to ~64 MB).
_DENSE_BATCH = 4_000_000


# Transfer impedance --------------------------------------------------------------------


def _wavenumber(r: np.ndarray, gl: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``k = sqrt(r (g_l + c s))`` in 1/um, principal branch (Re k >= 0)."""
    return np.sqrt(np.asarray(r * (gl + c * s), dtype=complex))


def _impedance(k: np.ndarray, r: np.ndarray, length: np.ndarray, x: np.ndarray,
               y: np.ndarray) -> np.ndarray:
    """Sealed-cable transfer impedance in MOhm (all arguments broadcast; lengths in um)."""
    near = np.minimum(x, y)
    far_gap = length - np.maximum(x, y)
    gap = np.abs(x - y)
    return (r / (2.0 * k) * np.exp(-k * gap) * (1.0 + np.exp(-2.0 * k * near))
            * (1.0 + np.exp(-2.0 * k * far_gap)) / (-np.expm1(-2.0 * k * length)))


def sealed_cable_impedance(cell: Cell, x: float | np.ndarray, y: float | np.ndarray,
                           s: complex | np.ndarray) -> np.ndarray:
    """Transfer impedance ``Z(x, y; s)`` of one isolated sealed cable, in MOhm (= mV/nA).

    ``x`` (voltage) and ``y`` (injection) are positions in [0, 1] along the cell, ``s`` the
    Laplace variable in 1/ms (``s = 0``: DC resistance).  Arguments broadcast.
    """
    constants = cable_constants(cell)
    s = np.asarray(s, dtype=complex)
    k = _wavenumber(np.asarray(constants.r_MOhm_per_um), np.asarray(constants.gl_uS_per_um),
                    np.asarray(constants.c_nF_per_um), s)
    length = np.asarray(constants.length_um)
    return _impedance(k, np.asarray(constants.r_MOhm_per_um), length, np.asarray(x) * length,
                      np.asarray(y) * length)


# The network -----------------------------------------------------------------------------


def _same_cell_pairs(cells_a: np.ndarray, cells_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs ``(i, j)`` with ``cells_a[i] == cells_b[j]``."""
    order = np.argsort(cells_b, kind="stable")
    sorted_b = cells_b[order]
    lo = np.searchsorted(sorted_b, cells_a, side="left")
    hi = np.searchsorted(sorted_b, cells_a, side="right")
    counts = hi - lo
    first = np.repeat(np.arange(cells_a.size), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    second = order[np.repeat(lo, counts) + offsets]
    return first, second


class _Scatter:
    """Sums weighted per-pair values into the entries of a (rows x cols) matrix.

    ``rows[p], cols[p], weights[p]`` describe pair p; duplicates add up.  ``entries``
    maps pair values ``(n_pairs, n_nodes)`` to ``(n_entries, n_nodes)`` for the unique
    entries ``(self.rows, self.cols)``.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray,
                 shape: tuple[int, int]) -> None:
        self.shape = shape
        linear = rows.astype(np.int64) * shape[1] + cols
        unique, inverse = np.unique(linear, return_inverse=True)
        self.rows, self.cols = np.divmod(unique, shape[1])
        summed = (unique.size, rows.size)
        self._sum = from_triplets(inverse.ravel(), np.arange(rows.size), weights.astype(float),
                                  summed, dense=is_small(summed))

    def entries(self, pair_values: np.ndarray) -> np.ndarray:
        """Summed entry values, shape ``(n_entries, n_nodes)``."""
        return np.asarray(self._sum @ pair_values)

    def dense(self, pair_values: np.ndarray) -> np.ndarray:
        """The matrices as a dense batch, shape ``(n_nodes, rows, cols)``."""
        values = self.entries(pair_values)
        out = np.zeros((pair_values.shape[1],) + self.shape, dtype=complex)
        out[:, self.rows, self.cols] = values.T
        return out


@dataclass
class _Pairs:
    """Same-cell point pairs of one kind: cell, the two positions (um) and a scatter."""

    cell: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    scatter: _Scatter


class _Network:
    """The model reduced to what the Laplace solution needs (index arrays, constants)."""

    def __init__(self, model: Model, sites: list[tuple[int, float]]) -> None:
        constants = [cable_constants(cell) for cell in model.cells]
        self.constants: list[CableConstants] = constants
        self.r = np.array([c.r_MOhm_per_um for c in constants])
        self.gl = np.array([c.gl_uS_per_um for c in constants])
        self.c = np.array([c.c_nF_per_um for c in constants])
        self.length = np.array([c.length_um for c in constants])
        self.e_leak = np.array([c.e_leak_mV for c in constants])
        self.v_init = np.array([c.v_init_mV for c in constants])
        self.tau = self.c / self.gl
        index = model.cell_index()

        junctions = [j for j in model.gap_junctions if j.g_uS > 0.0]
        self.n_junctions = len(junctions)
        if self.n_junctions > MAX_JUNCTIONS:
            raise ResourceLimitError(
                f"exact cable solution: {self.n_junctions} junctions, at most {MAX_JUNCTIONS}")
        self.conductance = np.array([j.g_uS for j in junctions], dtype=float)
        side_cell = np.array([index[name] for j in junctions for name in j.cells], dtype=np.int64)
        side_x = np.array([x for j in junctions for x in j.x], dtype=float)
        self.side_cell = side_cell.reshape(-1)
        self.side_x_um = side_x.reshape(-1) * self.length[self.side_cell] if side_x.size else side_x
        self.side_junction = np.repeat(np.arange(self.n_junctions), 2)
        self.side_sign = np.tile([1.0, -1.0], self.n_junctions)

        probes = model.effective_probes()
        self.labels = [probe.label for probe in probes]
        self.probe_cell = np.array([index[p.cell] for p in probes], dtype=np.int64)
        self.probe_x_um = np.array([p.x for p in probes]) * self.length[self.probe_cell]

        self.sites = sites
        self.site_cell = np.array([cell for cell, _ in sites], dtype=np.int64)
        self.site_x_um = (np.array([x for _, x in sites], dtype=float)
                          * self.length[self.site_cell]) if sites else np.zeros(0)

        n_j, n_p, n_k = self.n_junctions, len(self.labels), len(sites)
        # junction x junction: M
        a, b = _same_cell_pairs(self.side_cell, self.side_cell)
        self.m_pairs = self._pairs(self.side_cell[a], self.side_x_um[a], self.side_x_um[b],
                                   self.side_junction[a], self.side_junction[b],
                                   self.side_sign[a] * self.side_sign[b], (n_j, n_j))
        # junction x site: -(D f) columns of the clamp sources (times the site factor)
        a, b = _same_cell_pairs(self.side_cell, self.site_cell)
        self.js_pairs = self._pairs(self.side_cell[a], self.side_x_um[a], self.site_x_um[b],
                                    self.side_junction[a], b, -self.side_sign[a], (n_j, n_k))
        # probe x junction: T
        a, b = _same_cell_pairs(self.probe_cell, self.side_cell)
        self.pj_pairs = self._pairs(self.probe_cell[a], self.probe_x_um[a], self.side_x_um[b],
                                    a, self.side_junction[b], self.side_sign[b], (n_p, n_j))
        # probe x site: open-circuit probe voltage of the clamp sources
        a, b = _same_cell_pairs(self.probe_cell, self.site_cell)
        self.ps_pairs = self._pairs(self.probe_cell[a], self.probe_x_um[a], self.site_x_um[b],
                                    a, b, np.ones(a.size), (n_p, n_k))
        # junction x cell: D applied to a per-cell uniform open-circuit voltage
        shape = (n_j, len(constants))
        self.d_cell = from_triplets(self.side_junction, self.side_cell, -self.side_sign, shape,
                                    dense=is_small(shape))
        fill = self.m_pairs.scatter.rows.size / max(1, n_j * n_j)
        #: dense batched solves for few junctions or a densely coupled junction matrix
        self.dense = n_j <= DENSE_JUNCTION_MIN or (n_j <= DENSE_JUNCTION_LIMIT and fill > 0.25)

    @staticmethod
    def _pairs(cell, x_um, y_um, rows, cols, weights, shape) -> _Pairs:
        return _Pairs(cell, x_um, y_um, _Scatter(rows, cols, weights, shape))

    def wavenumbers(self, s: np.ndarray) -> np.ndarray:
        """k per cell and node, shape ``(n_cells, n_nodes)``."""
        return _wavenumber(self.r[:, None], self.gl[:, None], self.c[:, None], s[None, :])

    def pair_impedance(self, pairs: _Pairs, k: np.ndarray) -> np.ndarray:
        """Z for every pair and node, shape ``(n_pairs, n_nodes)``."""
        cell = pairs.cell
        return _impedance(k[cell], self.r[cell, None], self.length[cell, None],
                          pairs.x_um[:, None], pairs.y_um[:, None])

    def solve(self, s: np.ndarray, cell_voltage: np.ndarray, site_factor: np.ndarray,
              ) -> np.ndarray:
        """Probe voltages in the Laplace domain for 1 + n_sites sources at nodes ``s``.

        Source 0: every cell has the uniform open-circuit voltage ``cell_voltage``
        ``(n_cells, n_nodes)``.  Source 1 + k: a point current ``site_factor[k]``
        ``(n_sites, n_nodes)`` at site k and nothing else.  Returns
        ``(1 + n_sites, n_probes, n_nodes)``.
        """
        n_j, n_p, n_k = self.n_junctions, len(self.labels), len(self.sites)
        n_nodes = s.size
        out = np.empty((1 + n_k, n_p, n_nodes), dtype=complex)
        pairs = sum(p.cell.size for p in (self.m_pairs, self.js_pairs, self.pj_pairs,
                                          self.ps_pairs))
        per_node = pairs + (n_j + n_p) * (1 + n_k) + n_p * n_k
        if self.dense:
            per_node += n_j * n_j + n_p * n_j
        chunk = max(1, min(n_nodes, _DENSE_BATCH // max(1, per_node)))
        for first in range(0, n_nodes, chunk):
            part = slice(first, min(n_nodes, first + chunk))
            out[:, :, part] = self._solve_chunk(s[part], cell_voltage[:, part],
                                                site_factor[:, part])
        return out

    def _solve_chunk(self, s, cell_voltage, site_factor) -> np.ndarray:
        n_j, n_p, n_k = self.n_junctions, len(self.labels), len(self.sites)
        n_nodes = s.size
        k = self.wavenumbers(s)
        out = np.empty((1 + n_k, n_p, n_nodes), dtype=complex)
        # open-circuit probe voltages
        out[0] = cell_voltage[self.probe_cell]
        if n_k:
            ps = self.ps_pairs.scatter
            open_probe = np.zeros((n_k, n_p, n_nodes), dtype=complex)
            open_probe[ps.cols, ps.rows] = ps.entries(self.pair_impedance(self.ps_pairs, k))
            out[1:] = open_probe * site_factor[:, None, :]
        if n_j == 0:
            return out
        # right-hand sides D f: (n_j, 1 + n_k, n_nodes)
        rhs = np.zeros((n_j, 1 + n_k, n_nodes), dtype=complex)
        rhs[:, 0] = self.d_cell @ cell_voltage
        if n_k:
            js = self.js_pairs.scatter
            rhs[js.rows, 1 + js.cols] = (js.entries(self.pair_impedance(self.js_pairs, k))
                                         * site_factor[js.cols])
        m_values = self.pair_impedance(self.m_pairs, k)
        t_values = self.pair_impedance(self.pj_pairs, k)
        if self.dense:
            matrix = self.m_pairs.scatter.dense(m_values)
            diagonal = np.arange(n_j)
            matrix[:, diagonal, diagonal] += 1.0 / self.conductance
            currents = np.linalg.solve(matrix, np.transpose(rhs, (2, 0, 1)))  # (nodes, n_j, src)
            transfer = self.pj_pairs.scatter.dense(t_values)  # (nodes, n_p, n_j)
            out += np.transpose(transfer @ currents, (2, 1, 0))
        else:
            out += self._sparse_solve(m_values, t_values, rhs)
        return out

    def _sparse_solve(self, m_values, t_values, rhs) -> np.ndarray:
        """Per-node sparse LU of ``diag(1/g) + M`` (structure built once, values per node)."""
        from scipy import sparse
        from scipy.sparse.linalg import splu

        n_j, n_p = self.n_junctions, len(self.labels)
        m_scatter, t_scatter = self.m_pairs.scatter, self.pj_pairs.scatter
        m_entries = m_scatter.entries(m_values)
        t_entries = t_scatter.entries(t_values)
        # every (k, k) entry exists in M (a side paired with itself): add 1/g there
        on_diagonal = np.flatnonzero(m_scatter.rows == m_scatter.cols)
        m_entries[on_diagonal] += (1.0 / self.conductance[m_scatter.rows[on_diagonal]])[:, None]
        # CSC layout: sort the unique entries by (column, row) once
        order = np.lexsort((m_scatter.rows, m_scatter.cols))
        indices = m_scatter.rows[order]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(m_scatter.cols, minlength=n_j))])
        # the scatter's entries are in row-major order: a CSR layout as they are
        t_indptr = np.concatenate([[0], np.cumsum(np.bincount(t_scatter.rows, minlength=n_p))])
        n_nodes = rhs.shape[2]
        out = np.empty((rhs.shape[1], n_p, n_nodes), dtype=complex)
        for node in range(n_nodes):
            matrix = sparse.csc_matrix((m_entries[order, node], indices, indptr),
                                       shape=(n_j, n_j))
            # the pattern is structurally symmetric: minimum degree on A^T + A orders it well
            factors = splu(matrix, permc_spec="MMD_AT_PLUS_A")
            currents = factors.solve(np.ascontiguousarray(rhs[:, :, node]))
            transfer = sparse.csr_matrix((t_entries[:, node], t_scatter.cols, t_indptr),
                                         shape=(n_p, n_j))
            out[:, :, node] = (transfer @ currents).T
        return out


# Sources ---------------------------------------------------------------------------------


def _clamp_sites(model: Model) -> list[tuple[int, float]]:
    """Distinct (cell index, x) sites of the clamps that switch before t_stop, in order."""
    sites: dict[tuple[int, float], None] = {}
    for edge in clamp_edges(model):
        sites.setdefault((edge.cell, edge.x), None)
    return list(sites)


def _free_voltage(net: _Network, s: np.ndarray) -> np.ndarray:
    """Open-circuit voltage of every isolated cell, ``E/s + (V0 - E)/(s + 1/tau)``."""
    e_leak, offset = net.e_leak[:, None], (net.v_init - net.e_leak)[:, None]
    return e_leak / s[None, :] + offset / (s[None, :] + 1.0 / net.tau[:, None])


@dataclass
class LaplaceResponses:
    """Laplace transforms of the probe voltages of a model at nodes ``s`` (1/ms).

    ``free[p]``: probe p with no clamps (initial state and leak reversals), mV*ms.
    ``step[i, p]``: probe p's response to a 1 nA step switched on at t = 0 at
    ``sites[i]`` = (cell name, x), in mV*ms/nA (the network transfer impedance / s).
    """

    s: np.ndarray
    probes: list[str]
    sites: list[tuple[str, float]]
    free: np.ndarray
    step: np.ndarray


def laplace_responses(model: Model, s: complex | np.ndarray) -> LaplaceResponses:
    """The transforms the exact cable solution inverts, at the Laplace nodes ``s`` (1/ms).

    ``s`` must avoid the network's poles (real, <= 0).  Clamp sites are those of
    :func:`crosssim.analytic._common.clamp_edges` (clamps acting before t_stop).
    """
    s = np.atleast_1d(np.asarray(s, dtype=complex))
    sites = _clamp_sites(model)
    net = _Network(model, sites)
    values = net.solve(s, _free_voltage(net, s), np.broadcast_to(1.0 / s, (len(sites), s.size)))
    names = [cell.name for cell in model.cells]
    return LaplaceResponses(s=s, probes=net.labels,
                            sites=[(names[cell], x) for cell, x in sites],
                            free=values[0], step=values[1:])


def exact_cable(model: Model) -> RunResult:
    """The exact continuous solution on the model's sample grid (backend ``"analytic"``).

    Voltages in mV of ``model.effective_probes()`` at ``model.simulation.sample_times_ms()``.
    Sealed cables, lateral area only, point junctions and clamps; no discretization.
    Accuracy: about 1e-12 mV on 100 mV scale voltages (contour error ~1e-14 relative),
    checked against an independent mpmath inversion and a converged finite-volume solution
    in ``tests/test_analytic_references.py``.  See the module docstring for the size limits.
    """
    started = time.perf_counter()
    sites = _clamp_sites(model)
    net = _Network(model, sites)
    times = model.simulation.sample_times_ms()
    n_samples = times.size

    site_index = {site: i for i, site in enumerate(sites)}
    values = np.empty((len(net.labels), n_samples))
    values[:, 0] = net.v_init[net.probe_cell]
    info: dict = {
        "method": "Laplace transform, fixed hyperbolic contours (Weideman-Trefethen)",
        "junctions": net.n_junctions,
        "clamp_sites": len(sites),
        "solver": "dense" if net.dense else "sparse",
        "units": "ms, mV, nA, uS, MOhm, nF, um",
    }
    info.update(invert_with_switches(
        model, [(site_index[(edge.cell, edge.x)], edge.time_ms, edge.delta_nA)
                for edge in clamp_edges(model)], len(sites),
        lambda s: net.solve(s, _free_voltage(net, s), np.broadcast_to(1.0 / s, (len(sites),
                                                                                s.size))),
        values))
    return RunResult(backend="analytic", probes=list(net.labels), times_ms=times,
                     values_mV=values, wall_time_s=time.perf_counter() - started, info=info)


def cable_steady_state(model: Model, *, with_clamps: bool = False) -> dict[str, float]:
    """Steady-state voltage (mV) of each probe of ``model.effective_probes()``, by label.

    ``with_clamps=False``: the resting state with no clamps (it does not depend on
    ``v_init``).  ``with_clamps=True``: the state reached if the clamps that are on at
    ``t = t_stop_ms`` (``delay <= t_stop < delay + duration``) stayed on forever, at their
    amplitudes.  A direct DC solve (``s = 0``, ``k = 1 / lambda``), not a limit.
    """
    on = clamp_currents_at(model, model.simulation.t_stop_ms) if with_clamps else []
    amplitude: dict[tuple[int, float], float] = {}
    for cell, x, nA in on:
        amplitude[(cell, x)] = amplitude.get((cell, x), 0.0) + nA
    sites = list(amplitude)
    net = _Network(model, sites)
    s = np.zeros(1, dtype=complex)
    factor = np.array([[amplitude[site]] for site in sites]).reshape(len(sites), 1)
    values = net.solve(s, net.e_leak[:, None].astype(complex), factor)
    total = values.sum(axis=0)[:, 0].real
    return dict(zip(net.labels, (float(v) for v in total)))
