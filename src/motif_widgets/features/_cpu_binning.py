"""The CPU kernels of the log-bin histograms: one pass per value, compiled by numba (a
dependency of umap-learn, so always present). Same lookup table and compare as the torch
path in matrices.py, so the counts are identical; about 7x faster on the CPU than the torch
ops (index_select + scatter_add), which stay in use on CUDA. The six paper matrices are
grams, hence symmetric: bin_symmetric reads one triangle (numpy's A @ A.T is computed by a
symmetric rank-k update and is exactly symmetric too).
"""

from __future__ import annotations

import numba
import numpy as np

_SHIFT = 46
_CELL_MASK = (1 << 18) - 1


@numba.njit(inline="always")
def _slot(b: int, codes: np.ndarray) -> int:  # pragma: no cover (compiled)
    """Slot of the float64 with bit pattern b (matrices._bin_codes: slot k + 1 is bin k)."""
    code = codes[((b - 1) >> _SHIFT) & _CELL_MASK]
    return (code & 63) + ((b | 63) >= code)


@numba.njit(parallel=True, nogil=True, cache=True)
def bin_rows(bits: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> None:  # pragma: no cover (compiled)
    """counts[r, s] = number of values of row r in slot s (see matrices._bin_codes).

    Args:
        bits: [R, M] int64, the float64 values' bit patterns.
        codes: [2^18] int64 lookup table (edge bits | slot below).
        counts: [R, S] int64 output, S <= 64 slots.
    """
    rows, m = bits.shape
    for r in numba.prange(rows):
        local = np.zeros(64, np.int64)
        for j in range(m):
            local[_slot(bits[r, j], codes)] += 1
        for s in range(counts.shape[1]):
            counts[r, s] = local[s]


@numba.njit(parallel=True, nogil=True, cache=True)
def bin_symmetric(grams: np.ndarray, codes: np.ndarray, counts: np.ndarray, cosine: bool) -> None:  # pragma: no cover
    """bin_rows for symmetric gram matrices, reading only the lower triangle: an entry below the
    diagonal counts twice (as G_ij and G_ji), one on it once. With cosine, the binned values are
    G_ij / (sqrt(G_ii) sqrt(G_jj) + 1e-10) + 0.0 (the + 0.0 turns -0.0 into +0.0).

    Args:
        grams: [R, n, n] float64; codes, counts as in bin_rows.
    """
    rows, n, _ = grams.shape
    for r in numba.prange(rows):
        local = np.zeros(64, np.int64)
        norms = np.empty(n, np.float64)
        for i in range(n):
            norms[i] = np.sqrt(grams[r, i, i])
        values = np.empty(n, np.float64)
        bits = values.view(np.int64)
        for i in range(n):
            for j in range(i + 1):
                if cosine:
                    values[j] = grams[r, i, j] / (norms[i] * norms[j] + 1e-10) + 0.0
                else:
                    values[j] = grams[r, i, j]
            for j in range(i + 1):
                local[_slot(bits[j], codes)] += 1 if j == i else 2
        for s in range(counts.shape[1]):
            counts[r, s] = local[s]
