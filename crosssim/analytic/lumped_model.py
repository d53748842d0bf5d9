"""Lumped (isopotential) reference: every cell is one compartment.

Each cell i has capacitance ``C_i = cm * area`` (nF), leak ``G_i = g_leak * area`` (uS)
and reversal ``E_i`` (mV), lateral area ``2 pi a L``.  A junction joins two cells whatever
its positions; a junction of a cell to itself carries no current and is ignored.
Units: ms, mV, nA, uS, nF.  With ``K = diag(G) + L_g`` (``L_g`` the weighted Laplacian of
the junction graph) and clamp currents ``I(t)`` (piecewise constant, nA)::

    C dV/dt = -K V + G E + I(t),   V(0) = V0.

On each interval between clamp switches ``V(t) = V_ss + exp(-C^-1 K (t - t_i)) (V(t_i) - V_ss)``
with ``K V_ss = G E + I``.  Up to :data:`DENSE_CELL_LIMIT` cells the exponential comes from
the eigendecomposition of the symmetric ``S = C^-1/2 K C^-1/2``, all samples of an
interval at once (cost ~ n^3 + probes * n * samples).  Above it the system stays sparse:
``scipy.sparse.linalg.expm_multiply`` over the evenly spaced samples of each interval and a
sparse direct steady-state solve (cost ~ junctions * samples * ||S|| * dt; measured
1.8 s for a 10,000-cell ring and 2.0 s for a 100 x 100 grid, 50 ms in 2001 samples;
memory is bounded by processing samples in blocks of ~160 MB).
"""

from __future__ import annotations

import time

import numpy as np

from crosssim.analytic._common import cable_constants, clamp_edges, elapsed_since
from crosssim.model import Model
from crosssim.result import RunResult

__all__ = ["DENSE_CELL_LIMIT", "lumped", "lumped_steady_state", "lumped_system"]

#: Up to this many cells the lumped solution uses a dense eigendecomposition.
DENSE_CELL_LIMIT = 1000
#: Floats per block of sampled states in the sparse path (bounds memory to ~160 MB).
_SPARSE_BLOCK = 20_000_000


def lumped_system(model: Model):
    """``(C_nF, G_uS, E_mV, V0_mV, K_uS)`` of the lumped model; ``K`` is a sparse CSR matrix.

    ``K = diag(G) + sum_j g_j (e_a - e_b)(e_a - e_b)^T`` over junctions between two
    different cells.
    """
    from scipy import sparse

    constants = [cable_constants(cell) for cell in model.cells]
    capacitance = np.array([c.capacitance_nF for c in constants])
    conductance = np.array([c.conductance_uS for c in constants])
    e_leak = np.array([c.e_leak_mV for c in constants])
    v_init = np.array([c.v_init_mV for c in constants])
    index = model.cell_index()
    pairs = [(index[j.cells[0]], index[j.cells[1]], j.g_uS) for j in model.gap_junctions]
    pairs = [(a, b, g) for a, b, g in pairs if a != b and g > 0.0]
    n = len(constants)
    if pairs:
        a, b, g = (np.array(column) for column in zip(*pairs))
        rows = np.concatenate([a, b, a, b])
        cols = np.concatenate([a, b, b, a])
        data = np.concatenate([g, g, -g, -g])
    else:
        rows = cols = np.zeros(0, dtype=int)
        data = np.zeros(0)
    rows = np.concatenate([rows, np.arange(n)])
    cols = np.concatenate([cols, np.arange(n)])
    data = np.concatenate([data, conductance])
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(n, n))
    return capacitance, conductance, e_leak, v_init, matrix


def _intervals(model: Model, n_cells: int):
    """Clamp intervals: list of (start_ms, elapsed-since-start per sample, currents per cell)."""
    edges = clamp_edges(model)
    starts = sorted({0.0} | {edge.time_ms for edge in edges})
    current = np.zeros(n_cells)
    result = []
    by_time: dict[float, list] = {}
    for edge in edges:
        by_time.setdefault(edge.time_ms, []).append(edge)
    for start in starts:
        for edge in by_time.get(start, []):
            current = current.copy()
            current[edge.cell] += edge.delta_nA
        result.append((start, elapsed_since(model, start), current))
    return result


def lumped(model: Model) -> RunResult:
    """The exact solution of the lumped model on the sample grid (backend ``"lumped"``).

    Each probe reads the voltage (mV) of its cell, whatever its position.
    """
    started = time.perf_counter()
    capacitance, conductance, e_leak, v_init, matrix = lumped_system(model)
    n = capacitance.size
    probes = model.effective_probes()
    labels = [probe.label for probe in probes]
    index = model.cell_index()
    probe_cells = np.array([index[p.cell] for p in probes], dtype=np.int64)
    times = model.simulation.sample_times_ms()
    leak_current = conductance * e_leak
    intervals = _intervals(model, n)
    values = np.empty((len(labels), times.size))
    assigned = np.zeros(times.size, dtype=bool)
    dense = n <= DENSE_CELL_LIMIT
    solver = _DenseSolver(capacitance, matrix) if dense else _SparseSolver(capacitance, matrix)
    state = v_init.astype(float)
    for i, (start, elapsed, current) in enumerate(intervals):
        last = i == len(intervals) - 1
        upto = np.inf if last else intervals[i + 1][0] - start
        in_interval = (elapsed >= 0.0) & ~assigned
        if not last:
            in_interval &= intervals[i + 1][1] <= 0.0
        chosen = np.flatnonzero(in_interval)
        steady = solver.steady(leak_current + current)
        values[:, chosen] = (solver.sample(state - steady, elapsed[chosen], probe_cells)
                             + steady[probe_cells, None])
        assigned[chosen] = True
        if not last:
            state = steady + solver.advance(state - steady, upto)
    info = {
        "method": "eigendecomposition of C^-1/2 K C^-1/2" if dense
        else "scipy.sparse.linalg.expm_multiply",
        "cells": n,
        "units": "ms, mV, nA, uS, nF",
    }
    return RunResult(backend="lumped", probes=labels, times_ms=times, values_mV=values,
                     wall_time_s=time.perf_counter() - started, info=info)


class _DenseSolver:
    """Exact exponentials from the eigendecomposition of the symmetrised system."""

    def __init__(self, capacitance: np.ndarray, matrix) -> None:
        self.root = np.sqrt(capacitance)
        symmetric = matrix.toarray() / np.outer(self.root, self.root)
        self.rates, self.vectors = np.linalg.eigh(symmetric)  # rates in 1/ms, all > 0
        self.matrix = matrix.toarray()

    def steady(self, source: np.ndarray) -> np.ndarray:
        """``K^-1 source`` (mV)."""
        return np.linalg.solve(self.matrix, source)

    def sample(self, deviation: np.ndarray, elapsed: np.ndarray,
               probe_cells: np.ndarray) -> np.ndarray:
        """``exp(-C^-1 K t) deviation`` at the probe cells, shape (probes, len(elapsed))."""
        modal = self.vectors.T @ (self.root * deviation)
        rows = self.vectors[probe_cells] / self.root[probe_cells, None]
        return (rows * modal) @ np.exp(-np.outer(self.rates, elapsed))

    def advance(self, deviation: np.ndarray, elapsed: float) -> np.ndarray:
        """``exp(-C^-1 K elapsed) deviation`` for every cell."""
        modal = self.vectors.T @ (self.root * deviation)
        return self.vectors @ (np.exp(-self.rates * elapsed) * modal) / self.root


class _SparseSolver:
    """``expm_multiply`` on the sparse symmetrised system (large junction graphs)."""

    def __init__(self, capacitance: np.ndarray, matrix) -> None:
        from scipy import sparse

        self.root = np.sqrt(capacitance)
        scale = sparse.diags(1.0 / self.root)
        self.symmetric = (scale @ matrix @ scale).tocsr()
        self.matrix = matrix.tocsc()

    def steady(self, source: np.ndarray) -> np.ndarray:
        from scipy.sparse.linalg import spsolve

        return np.asarray(spsolve(self.matrix, source))

    def sample(self, deviation: np.ndarray, elapsed: np.ndarray,
               probe_cells: np.ndarray) -> np.ndarray:
        from scipy.sparse.linalg import expm_multiply

        out = np.empty((probe_cells.size, elapsed.size))
        if elapsed.size == 0:
            return out
        state, at = self.root * deviation, 0.0
        block = max(2, _SPARSE_BLOCK // max(1, state.size))
        for first in range(0, elapsed.size, block):
            part = elapsed[first:first + block]
            if part.size == 1:
                states = expm_multiply(-self.symmetric * (part[0] - at), state)[None, :]
            else:
                states = expm_multiply(-self.symmetric, state, start=part[0] - at,
                                       stop=part[-1] - at, num=part.size, endpoint=True)
            out[:, first:first + part.size] = (states[:, probe_cells]
                                                / self.root[probe_cells]).T
            state, at = states[-1], part[-1]
        return out

    def advance(self, deviation: np.ndarray, elapsed: float) -> np.ndarray:
        from scipy.sparse.linalg import expm_multiply

        return expm_multiply(-self.symmetric * elapsed, self.root * deviation) / self.root


def lumped_steady_state(model: Model) -> dict[str, float]:
    """Resting voltage (mV) of every cell of the lumped model, no clamps: ``K V = G E``."""
    from scipy.sparse.linalg import spsolve

    _, conductance, e_leak, _, matrix = lumped_system(model)
    if matrix.shape[0] == 1:
        solution = e_leak.astype(float)
    else:
        solution = np.asarray(spsolve(matrix.tocsc(), conductance * e_leak))
    return {cell.name: float(v) for cell, v in zip(model.cells, solution)}
