"""Lumped (isopotential) reference: every cell is one compartment.

Each cell i has capacitance ``C_i = cm * area`` (nF), leak ``G_i = g_leak * area`` (uS)
and reversal ``E_i`` (mV), lateral area ``2 pi a L``.  A tree (a cell with sections) sums
over its sections with their own properties: ``C_i = sum cm_s A_s``, ``G_i = sum g_s A_s``
and the leak-weighted reversal ``E_i = sum g_s A_s E_s / G_i``, ``A_s`` the section's
lateral (frustum) area :attr:`~crosssim.model.Section.area_um2`.  A junction joins two cells
whatever its positions; a junction of a cell to itself carries no current and is ignored.
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

from crosssim.analytic._common import cable_constants, clamp_edges
from crosssim.analytic._exponential import DenseExponential, SparseExponential, piecewise_exact
from crosssim.analytic._matrices import from_triplets
from crosssim.errors import SourceNotApplicableError
from crosssim.model import Cell, Model
from crosssim.result import RunResult

__all__ = ["DENSE_CELL_LIMIT", "isopotential_cell", "lumped", "lumped_steady_state",
           "lumped_system"]

#: Up to this many cells the lumped solution uses a dense eigendecomposition.
DENSE_CELL_LIMIT = 1000


def isopotential_cell(cell: Cell) -> tuple[float, float, float, float]:
    """``(C_nF, G_uS, E_mV, V0_mV)`` of ``cell`` made isopotential.

    A uniform unbranched cable from its cable constants; a tree summed over its sections
    (each with its own ``cm``, ``g_leak``, ``e_leak`` and frustum area): ``E`` is the leak
    reversal weighted by each section's leak conductance.
    """
    if cell.is_cable:
        constants = cable_constants(cell)
        return (constants.capacitance_nF, constants.conductance_uS, constants.e_leak_mV,
                constants.v_init_mV)
    capacitance = conductance = leak_current = 0.0
    for section in cell.tree():
        area_um2 = section.area_um2
        leak_uS = cell.value(section, "g_leak_S_per_cm2") * 1e-2 * area_um2
        capacitance += cell.value(section, "cm_F_per_m2") * 1e-3 * area_um2
        conductance += leak_uS
        leak_current += leak_uS * cell.value(section, "e_leak_mV")
    return capacitance, conductance, leak_current / conductance, cell.initial_mV


def _lumped_parts(model: Model):
    """``(C_nF, G_uS, E_mV, V0_mV, (a, b, g_uS))``: per-cell arrays and the junctions
    between two different cells as index and conductance arrays.  Raises
    SourceNotApplicableError for a cell with an active membrane (the lumped model is
    passive)."""
    active = model.first_active()
    if active is not None:
        raise SourceNotApplicableError(
            "lumped", f"active membrane (cell {active.name!r}: "
            f"{', '.join(active.active_parts())}); the lumped model is passive")
    parts = np.array([isopotential_cell(cell) for cell in model.cells], dtype=float)
    capacitance, conductance, e_leak, v_init = (parts[:, k].copy() for k in range(4))
    index = model.cell_index()
    pairs = [(index[j.cells[0]], index[j.cells[1]], j.g_uS) for j in model.gap_junctions]
    pairs = [(a, b, g) for a, b, g in pairs if a != b and g > 0.0]
    a, b = (np.array([pair[k] for pair in pairs], dtype=np.int64) for k in (0, 1))
    g = np.array([pair[2] for pair in pairs], dtype=float)
    return capacitance, conductance, e_leak, v_init, (a, b, g)


def lumped_system(model: Model, *, dense: bool = False):
    """``(C_nF, G_uS, E_mV, V0_mV, K_uS)`` of the lumped model; ``K`` is a sparse CSR
    matrix, or a numpy array with ``dense``.

    ``K = diag(G) + sum_j g_j (e_a - e_b)(e_a - e_b)^T`` over junctions between two
    different cells.
    """
    capacitance, conductance, e_leak, v_init, (a, b, g) = _lumped_parts(model)
    n = capacitance.size
    cells = np.arange(n)
    matrix = from_triplets(np.concatenate([a, b, a, b, cells]),
                           np.concatenate([a, b, b, a, cells]),
                           np.concatenate([g, g, -g, -g, conductance]), (n, n), dense=dense)
    return capacitance, conductance, e_leak, v_init, matrix


def lumped(model: Model) -> RunResult:
    """The exact solution of the lumped model on the sample grid (backend ``"lumped"``).

    Each probe reads the voltage (mV) of its cell, whatever its position.
    """
    started = time.perf_counter()
    dense = len(model.cells) <= DENSE_CELL_LIMIT
    capacitance, conductance, e_leak, v_init, matrix = lumped_system(model, dense=dense)
    n = capacitance.size
    probes = model.effective_probes()
    labels = [probe.label for probe in probes]
    index = model.cell_index()
    probe_cells = np.array([index[p.cell] for p in probes], dtype=np.int64)
    times = model.simulation.sample_times_ms()
    solver = (DenseExponential(capacitance, matrix) if dense
              else SparseExponential(capacitance, matrix))
    edges = [(edge.time_ms, edge.cell, edge.delta_nA) for edge in clamp_edges(model)]
    values = piecewise_exact(model, solver, conductance * e_leak, v_init, edges, probe_cells)
    info = {
        "method": "eigendecomposition of C^-1/2 K C^-1/2" if dense
        else "scipy.sparse.linalg.expm_multiply",
        "cells": n,
        "units": "ms, mV, nA, uS, nF",
    }
    return RunResult(backend="lumped", probes=labels, times_ms=times, values_mV=values,
                     wall_time_s=time.perf_counter() - started, info=info)


def lumped_steady_state(model: Model) -> dict[str, float]:
    """Resting voltage (mV) of every cell of the lumped model, no clamps: ``K V = G E``.

    ``K`` is symmetric positive definite (leak on the diagonal, a junction Laplacian), so
    conjugate gradients with a Jacobi preconditioner solve it from the junction list alone:
    ~ junctions x iterations operations and no dense matrix, which matters to ``run``'s
    plot (a first dense LAPACK solve of n = 1,000 costs 0.15-0.35 s of start-up).  A system
    CG does not settle within :data:`_CG_ITERATIONS` (cells that hang on a tiny leak
    behind strong junctions) is solved directly.
    """
    _, conductance, e_leak, _, junctions = _lumped_parts(model)
    source = conductance * e_leak
    solution = _steady_cg(conductance, junctions, source)
    if solution is None:
        from scipy.sparse.linalg import spsolve

        matrix = lumped_system(model)[4]
        solution = np.asarray(spsolve(matrix.tocsc(), source))
    return {cell.name: float(v) for cell, v in zip(model.cells, solution)}


#: Iterations after which :func:`_steady_cg` gives up (a direct solve takes over).
_CG_ITERATIONS = 2000
#: Relative residual at which :func:`_steady_cg` stops (a few ulps of the voltages).
_CG_TOLERANCE = 1e-15


def _steady_cg(conductance: np.ndarray, junctions: tuple[np.ndarray, np.ndarray, np.ndarray],
               source: np.ndarray) -> np.ndarray | None:
    """``K^-1 source`` by Jacobi-preconditioned conjugate gradients, or None if it does not
    converge; ``K = diag(conductance) + sum g (e_a - e_b)(e_a - e_b)^T`` over the
    ``junctions`` ``(a, b, g)``."""
    n = conductance.size
    a, b, g = junctions
    diagonal = conductance + np.bincount(a, g, n) + np.bincount(b, g, n)

    def apply(x: np.ndarray) -> np.ndarray:
        flow = g * (x[a] - x[b])
        return conductance * x + np.bincount(a, flow, n) - np.bincount(b, flow, n)

    x = source / diagonal
    residual = source - apply(x)
    scale = float(np.linalg.norm(source)) or 1.0
    z = residual / diagonal
    direction = z.copy()
    rz = float(residual @ z)
    for _ in range(_CG_ITERATIONS):
        if float(np.linalg.norm(residual)) <= _CG_TOLERANCE * scale:
            return x
        kd = apply(direction)
        step = rz / float(direction @ kd)
        x += step * direction
        residual -= step * kd
        z = residual / diagonal
        rz, previous = float(residual @ z), rz
        direction = z + (rz / previous) * direction
    return None
