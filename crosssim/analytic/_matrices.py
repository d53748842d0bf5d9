"""Matrices of the references: dense numpy arrays for small systems, scipy sparse above.

Importing ``scipy.sparse`` and ``scipy.linalg`` costs a command 0.2-0.3 s, more than the
references take on a small model; below :data:`DENSE_LIMIT` unknowns a reference assembles
and solves with numpy alone.  Every matrix is assembled from one list of triplets
(:func:`from_triplets`), so the dense and the sparse form are the same matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DENSE_LIMIT", "from_triplets", "is_small", "solve", "to_dense"]

#: Up to this many unknowns a system is assembled and solved dense (numpy only).
DENSE_LIMIT = 256


def is_small(shape: tuple[int, int]) -> bool:
    """Whether a matrix of ``shape`` is kept dense: at most ``DENSE_LIMIT**2`` entries."""
    return shape[0] * shape[1] <= DENSE_LIMIT ** 2


def from_triplets(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                  shape: tuple[int, int], *, dense: bool) -> Any:
    """The matrix with ``values`` at ``(rows, cols)``, duplicates summed: a numpy array
    (``dense``) or a CSR matrix."""
    if dense:
        out = np.zeros(shape, dtype=np.result_type(values, float))
        np.add.at(out, (rows, cols), values)
        return out
    from scipy import sparse

    return sparse.csr_matrix((values, (rows, cols)), shape=shape)


def to_dense(matrix: Any) -> np.ndarray:
    """``matrix`` as a numpy array (a sparse matrix is expanded)."""
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def solve(matrix: Any, rhs: np.ndarray) -> np.ndarray:
    """``matrix^-1 rhs``: LAPACK for a numpy array, SuperLU for a sparse matrix."""
    if isinstance(matrix, np.ndarray):
        return np.linalg.solve(matrix, rhs)
    from scipy.sparse.linalg import spsolve

    return np.asarray(spsolve(matrix.tocsc(), rhs))
