"""Exact solutions of ``C dV/dt = -K V + b(t)`` with piecewise constant ``b``, sampled.

Shared by the lumped reference (one compartment per cell) and the semidiscrete reference
(one unknown per control volume): ``C`` is a positive diagonal (nF), ``K`` a symmetric
positive definite sparse matrix (uS), ``b`` a current (nA) that switches at clamp edges.
On each interval between switches ``V(t) = V_ss + exp(-C^-1 K (t - t_i)) (V(t_i) - V_ss)``
with ``K V_ss = b``.

* :class:`DenseExponential`: eigendecomposition of the symmetric ``S = C^-1/2 K C^-1/2``,
  all samples of an interval at once (cost ~ n^3 + rows * n * samples).
* :class:`SparseExponential`: ``scipy.sparse.linalg.expm_multiply`` on the sparse ``S``
  (cost ~ nonzeros * samples * ||S|| * dt: cheap only while ``S`` is not stiff).
* :func:`piecewise_exact`: the sweep over the switch intervals on the sample grid.

Units: ms, mV, nA, uS, nF.
"""

from __future__ import annotations

import numpy as np

from crosssim.analytic._common import elapsed_since
from crosssim.analytic._matrices import to_dense
from crosssim.model import Model

__all__ = ["DenseExponential", "SparseExponential", "piecewise_exact", "switch_intervals"]

#: Floats per block of sampled states in the sparse path (bounds memory to ~160 MB).
_SPARSE_BLOCK = 20_000_000


class DenseExponential:
    """Exact exponentials from the eigendecomposition of the symmetrised system."""

    def __init__(self, capacitance: np.ndarray, matrix) -> None:
        self.root = np.sqrt(capacitance)
        self.matrix = to_dense(matrix)
        symmetric = self.matrix / np.outer(self.root, self.root)
        self.rates, self.vectors = np.linalg.eigh(symmetric)  # rates in 1/ms, all > 0

    def steady(self, source: np.ndarray) -> np.ndarray:
        """``K^-1 source`` (mV)."""
        return np.linalg.solve(self.matrix, source)

    def sample(self, deviation: np.ndarray, elapsed: np.ndarray,
               rows: np.ndarray) -> np.ndarray:
        """``exp(-C^-1 K t) deviation`` at the probe cells, shape (probes, len(elapsed))."""
        modal = self.vectors.T @ (self.root * deviation)
        rows = self.vectors[rows] / self.root[rows, None]
        return (rows * modal) @ np.exp(-np.outer(self.rates, elapsed))

    def advance(self, deviation: np.ndarray, elapsed: float) -> np.ndarray:
        """``exp(-C^-1 K elapsed) deviation`` for every cell."""
        modal = self.vectors.T @ (self.root * deviation)
        return self.vectors @ (np.exp(-self.rates * elapsed) * modal) / self.root


class SparseExponential:
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
               rows: np.ndarray) -> np.ndarray:
        from scipy.sparse.linalg import expm_multiply

        out = np.empty((rows.size, elapsed.size))
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
            out[:, first:first + part.size] = (states[:, rows]
                                                / self.root[rows]).T
            state, at = states[-1], part[-1]
        return out

    def advance(self, deviation: np.ndarray, elapsed: float) -> np.ndarray:
        from scipy.sparse.linalg import expm_multiply

        return expm_multiply(-self.symmetric * elapsed, self.root * deviation) / self.root


def switch_intervals(model: Model, size: int,
                     edges: list[tuple[float, int, float]]) -> list[tuple[float, np.ndarray,
                                                                           np.ndarray]]:
    """Intervals between switches: ``(start_ms, elapsed-since-start per sample, current)``.

    ``edges``: ``(time_ms, index, delta_nA)`` sorted by time (the clamp edges mapped to
    unknowns); ``current`` (nA, length ``size``) is the clamp current during the interval.
    """
    starts = sorted({0.0} | {time for time, _, _ in edges})
    by_time: dict[float, list[tuple[int, float]]] = {}
    for time, index, delta in edges:
        by_time.setdefault(time, []).append((index, delta))
    current = np.zeros(size)
    result = []
    for start in starts:
        for index, delta in by_time.get(start, []):
            current = current.copy()
            current[index] += delta
        result.append((start, elapsed_since(model, start), current))
    return result


def piecewise_exact(model: Model, solver: DenseExponential | SparseExponential,
                    constant_source: np.ndarray, v_init: np.ndarray,
                    edges: list[tuple[float, int, float]], rows: np.ndarray) -> np.ndarray:
    """Voltages (mV) of the unknowns ``rows`` at every sample time, shape (rows, samples).

    ``constant_source`` (nA) is ``b`` without clamps (the leak term ``G E``), ``v_init`` the
    state at t = 0 (mV), ``edges`` as in :func:`switch_intervals`.  A sample on a switch
    time reads the value before the switch (the voltage is continuous).
    """
    intervals = switch_intervals(model, v_init.size, edges)
    n_samples = model.simulation.n_samples
    values = np.empty((rows.size, n_samples))
    assigned = np.zeros(n_samples, dtype=bool)
    state = v_init.astype(float)
    for i, (start, elapsed, current) in enumerate(intervals):
        last = i == len(intervals) - 1
        upto = np.inf if last else intervals[i + 1][0] - start
        in_interval = (elapsed >= 0.0) & ~assigned
        if not last:
            in_interval &= intervals[i + 1][1] <= 0.0
        chosen = np.flatnonzero(in_interval)
        steady = solver.steady(constant_source + current)
        values[:, chosen] = (solver.sample(state - steady, elapsed[chosen], rows)
                             + steady[rows, None])
        assigned[chosen] = True
        if not last:
            state = steady + solver.advance(state - steady, upto)
    return values
