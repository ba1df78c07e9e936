"""The paper's six derived matrices and their 32-bin log-spaced histograms.

Patterns of one length n are processed in chunks small enough to stay in cache: the
six products go into one reused buffer and are binned right away. Skewing is a strided
view (no gather), and binning uses a lookup table on the top bits of each float64
(exact: cells that contain a bin edge are resolved by one comparison with the edge).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

#: The reference's 32 histogram bins: edges 0, then logspace(-3, 0, 32) rounded to float32.
LOG_BIN_EDGES = np.concatenate([[0.0], np.logspace(-3, 0, 32)]).astype(np.float32)
N_BINS = len(LOG_BIN_EDGES) - 1
MATRIX_NAMES = ("gram.row", "gram.col", "gram.skew", "log.gram.row", "log.gram.col", "log.gram.skew")

#: A chunk's six products hold about this many float64 cells (~2 MB, an L2 cache).
CHUNK_CELLS = 1 << 18

_SHIFT = 46  # cell = top 18 bits of the float64 (sign, exponent, 6 mantissa bits)
_CELLS = 1 << 18


@lru_cache(maxsize=8)
def _bin_tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Lookup tables over the 2^18 cells of float64 bit patterns (cell = bits >> 46, taken
    mod 2^18 so negative numbers land in the upper half).

    slot = base[cell] + (value >= threshold[cell]); slot k + 1 is bin k, slot 0 and
    slots above 32 are dropped. A cell spans 1/64 of an octave, less than a bin, so it
    holds at most one edge: a cell with an edge gets it as threshold; the others get
    -inf and base = their slot - 1. Negative values, values above 1 and NaN are dropped;
    -0.0 counts as 0 (bin 0) and 1.0, the closed last edge, goes to bin 31.
    """
    edges = torch.as_tensor(LOG_BIN_EDGES, dtype=torch.float64)
    cell = torch.arange(_CELLS, dtype=torch.int64)
    signed = torch.where(cell >= _CELLS // 2, cell - _CELLS, cell)
    first = (signed << _SHIFT).view(torch.float64)  # smallest magnitude in the cell
    last = (((signed + 1) << _SHIFT) - 1).view(torch.float64)
    lo = torch.bucketize(first, edges, right=True) - 1
    hi = torch.bucketize(last, edges, right=True) - 1
    inf = torch.tensor(np.inf, dtype=torch.float64)
    base = torch.full((_CELLS,), N_BINS + 1, dtype=torch.int64)  # above 1 (or NaN): dropped
    thr = torch.full((_CELLS,), -np.inf, dtype=torch.float64)
    inside = (signed >= 0) & (lo == hi) & (lo < N_BINS)
    straddle = (signed >= 0) & (lo != hi) & (lo < N_BINS)
    base = torch.where(inside, lo, base)  # + 1 from the -inf threshold
    base = torch.where(straddle, lo + 1, base)
    thr = torch.where(straddle, edges[(lo + 1).clamp(max=N_BINS)], thr)
    one = first == 1.0  # the cell starting at 1.0: exactly 1 -> bin 31, above -> dropped
    base = torch.where(one, torch.full_like(base, N_BINS), base)
    thr = torch.where(one, torch.full_like(thr, np.nextafter(1.0, 2.0)), thr)
    negative = signed < 0
    base = torch.where(negative, torch.zeros_like(base), base)
    thr = torch.where(negative, inf, thr)
    thr[_CELLS // 2] = 0.0  # the cell of -0.0 (and tiny negatives): -0.0 >= 0.0 -> bin 0
    return base.to(device=device, dtype=torch.int32), thr.to(device)


class _BinWorkspace:
    """Reused buffers for binning [R, M] values (fresh large allocations cost page faults)."""

    def __init__(self, r: int, m: int, device: torch.device):
        self.shape = (r, m)
        self.cell = torch.empty(r * m, dtype=torch.int64, device=device)
        self.slots = torch.empty((r, m), dtype=torch.int32, device=device)
        self.thresholds = torch.empty((r, m), dtype=torch.float64, device=device)
        self.above = torch.empty((r, m), dtype=torch.bool, device=device)
        self.counts = torch.empty((r, N_BINS + 3), dtype=torch.int64, device=device)
        self.ones = torch.ones((1, 1), dtype=torch.int64, device=device).expand(r, m)


def log_bin_counts(values: torch.Tensor, workspace: _BinWorkspace | None = None) -> torch.Tensor:
    """Counts of each row's entries in the 32 log bins (numpy.histogram rules: bin k is
    [e_k, e_k+1), the last bin is closed, entries outside [0, 1] are dropped; -0.0 and
    negative subnormals above -3.5e-310 count as 0).

    Args:
        values: [R, M] float64.
        workspace: buffers from a previous call with the same shape (optional).
    Returns:
        [R, 32] int64 counts (a view into the workspace when one is given).
    """
    values = values.to(torch.float64).contiguous()
    ws = workspace if workspace is not None and workspace.shape == tuple(values.shape) else _BinWorkspace(
        *values.shape, values.device
    )
    base, thr = _bin_tables(values.device)
    torch.bitwise_right_shift(values.view(torch.int64).view(-1), _SHIFT, out=ws.cell)
    ws.cell.bitwise_and_(_CELLS - 1)
    torch.index_select(base, 0, ws.cell, out=ws.slots.view(-1))
    torch.index_select(thr, 0, ws.cell, out=ws.thresholds.view(-1))
    torch.ge(values, ws.thresholds, out=ws.above)
    ws.slots += ws.above
    ws.counts.zero_().scatter_add_(1, ws.slots, ws.ones)
    return ws.counts[:, 1 : N_BINS + 1]


def log_bin_densities(counts: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """numpy's density=True from counts [..., 32]: count / bin width / in-range total
    (NaN when nothing is in range, as in the reference)."""
    edges = torch.as_tensor(LOG_BIN_EDGES, device=counts.device).to(dtype)
    c = counts.to(dtype)
    return c / (edges[1:] - edges[:-1]) / c.sum(-1, keepdim=True)


def _skewed(padded: torch.Tensor, n: int) -> torch.Tensor:
    """View of a [c, n, 2n] buffer (left half 0, right half M) as the skew of M: row i
    right-aligned so that M[i, j <= i] sits in column j + n - 1 - i; other cells 0."""
    c = padded.shape[0]
    return padded.as_strided((c, n, n), (2 * n * n, 2 * n + 1, 1), padded.storage_offset() + 1)


def paper_matrix_counts(a: torch.Tensor) -> torch.Tensor:
    """Histogram counts of the six derived matrices of same-length patterns.

    gram.row = A A^T, gram.col = A^T A, gram.skew = S(A)^T S(A); log.gram.row / .col =
    cosines (x.y / (|x| |y| + 1e-10)) of the rows / columns of L = log(A + 1e-9);
    log.gram.skew = cosines of the rows of S(L).

    Args:
        a: [B, n, n] causal patterns, all of length n.
    Returns:
        [6, B, 32] int64 counts, matrices in MATRIX_NAMES order.
    """
    b, n, _ = a.shape
    dt, dev = a.dtype, a.device
    step = min(b, max(1, CHUNK_CELLS // (6 * n * n)))
    pad_a = torch.zeros((step, n, 2 * n), dtype=dt, device=dev)
    pad_l = torch.zeros((step, n, 2 * n), dtype=dt, device=dev)
    grams = torch.empty((6, step, n, n), dtype=dt, device=dev)
    scale = torch.empty((step, n, n), dtype=dt, device=dev)
    eps = torch.full((), 1e-10, dtype=dt, device=dev)
    bins = _BinWorkspace(6 * step, n * n, dev)
    counts = torch.empty((6, b, N_BINS), dtype=torch.int64, device=dev)
    for s in range(0, b, step):
        c = min(step, b - s)
        g, pa, pl, sc = grams[:, :c], pad_a[:c], pad_l[:c], scale[:c]
        x = a[s : s + c]
        pa[:, :, n:] = x
        lg = pl[:, :, n:]
        torch.add(x, 1e-9, out=lg)
        lg.log_()
        sa, sl = _skewed(pa, n), _skewed(pl, n)
        torch.bmm(x, x.mT, out=g[0])
        torch.bmm(x.mT, x, out=g[1])
        torch.bmm(sa.mT, sa, out=g[2])
        torch.bmm(lg, lg.mT, out=g[3])
        torch.bmm(lg.mT, lg, out=g[4])
        torch.bmm(sl, sl.mT, out=g[5])
        for k, rows, dim in ((3, lg, 2), (4, lg, 1), (5, sl, 2)):
            norms = torch.linalg.vector_norm(rows, dim=dim)
            torch.baddbmm(eps, norms[:, :, None], norms[:, None, :], out=sc)
            g[k].div_(sc)
        ws = bins if c == step else None
        counts[:, s : s + c] = log_bin_counts(g.reshape(6 * c, n * n), ws).view(6, c, N_BINS)
    return counts
