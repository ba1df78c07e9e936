"""The paper's six derived matrices and their 32-bin log-spaced histograms.

Patterns of one length n are processed in chunks (sized for the CPU's caches, or as large as
memory allows on CUDA): the six products go into one reused buffer and are binned right away. Skewing is a strided
view (no gather), and binning uses a lookup table on the top bits of each float64
(exact: cells that contain a bin edge are resolved by one comparison with the edge),
applied by one-pass numba kernels on the CPU (_cpu_binning), which read one triangle of each
(symmetric) gram and take the cosines on the fly, and on CUDA by one fused Triton launch per
chunk (_triton_kernels.bin_grams) or, without Triton, by torch ops.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .kernels import run_fused, use_triton

#: The reference's 32 histogram bins: edges 0, then logspace(-3, 0, 32) rounded to float32.
LOG_BIN_EDGES = np.concatenate([[0.0], np.logspace(-3, 0, 32)]).astype(np.float32)
N_BINS = len(LOG_BIN_EDGES) - 1
MATRIX_NAMES = ("gram.row", "gram.col", "gram.skew", "log.gram.row", "log.gram.col", "log.gram.skew")

#: A chunk's six products hold about this many float64 cells (~8 MB; measured best on the CPU
#: once binning became one pass: smaller chunks pay more Python overhead per chunk).
CHUNK_CELLS = 1 << 20
#: On CUDA, chunks are as large as memory allows (about 40 bytes of buffers per cell, ~1.3 GB
#: here): launches, not caches, are what costs there.
CUDA_CHUNK_CELLS = 1 << 25

_SHIFT = 46  # cell = top 18 bits of the float64 (sign, exponent, 6 mantissa bits)
_CELLS = 1 << 18


@lru_cache(maxsize=8)
def _bin_codes(device: torch.device) -> torch.Tensor:
    """Lookup table over 2^18 cells of float64 bit patterns, int64 codes T | s.

    Cell c holds the bit patterns (c * 2^46, (c + 1) * 2^46] (cell = (bits - 1) >> 46,
    mod 2^18), so 1.0 closes a cell and everything above 1 starts a new one. The slot of a
    value (slot k + 1 is bin k; slot 0 and slots above 32 are dropped) is
    s + [(bits | 63) >= T | s]. A cell spans 1/64 of an octave, less than a bin, so it
    holds at most one edge; a cell with an edge gets T = the edge's bits (float32 edges
    have their 29 low bits zero, which makes the compare exact) and s = the slot below
    it. Other cells of non-negative numbers get T = 0 and s = their slot - 1; negative
    numbers get T = 0 and s = 0 (their compare is false: slot 0). Values above 1 and NaN
    are dropped. -0.0 is not +0.0 here: callers turn it into +0.0 first (x + 0.0).
    """
    edges = torch.as_tensor(LOG_BIN_EDGES, dtype=torch.float64)
    cell = torch.arange(_CELLS, dtype=torch.int64)
    signed = torch.where(cell >= _CELLS // 2, cell - _CELLS, cell)
    first = ((signed << _SHIFT) + 1).view(torch.float64)
    last = ((signed + 1) << _SHIFT).view(torch.float64)
    lo = torch.bucketize(first, edges, right=True) - 1
    hi = torch.bucketize(last, edges, right=True) - 1
    hi = torch.where(last == 1.0, torch.full_like(hi, N_BINS - 1), hi)  # the closed last bin
    non_negative = signed >= 0
    inside = non_negative & (lo == hi) & (lo < N_BINS)
    straddle = non_negative & (lo != hi) & (lo < N_BINS)
    slot = torch.full((_CELLS,), N_BINS + 1, dtype=torch.int64)  # above 1 or NaN: dropped
    slot = torch.where(inside, lo, slot)  # + 1 from the always-true compare
    slot = torch.where(straddle, lo + 1, slot)
    top = torch.where(straddle, edges[(lo + 1).clamp(max=N_BINS)].view(torch.int64), 0)
    slot = torch.where(signed < 0, torch.zeros_like(slot), slot)
    slot[-1] = 0  # the cell of +0.0 (bits 0, with negative NaNs): +0.0 -> bin 0
    if (top & 63).any() or int(slot.max()) >= 64 or int(((hi - lo) > 1).sum()):
        raise AssertionError("log-bin lookup table is inconsistent")
    return (top | slot).to(device)


class _BinWorkspace:
    """Reused buffers for binning [R, M] values (fresh large allocations cost page faults)."""

    def __init__(self, r: int, m: int, device: torch.device):
        self.shape = (r, m)
        self.cell = torch.empty(r * m, dtype=torch.int64, device=device)
        self.codes = torch.empty((r, m), dtype=torch.int64, device=device)
        self.bits = torch.empty((r, m), dtype=torch.int64, device=device)
        self.above = torch.empty((r, m), dtype=torch.bool, device=device)
        self.counts = torch.empty((r, N_BINS + 3), dtype=torch.int64, device=device)
        self.ones = torch.ones((1, 1), dtype=torch.int64, device=device).expand(r, m)


def log_bin_counts(values: torch.Tensor, workspace: _BinWorkspace | None = None, kernel: str = "auto") -> torch.Tensor:
    """Counts of each row's entries in the 32 log bins (numpy.histogram rules: bin k is
    [e_k, e_k+1), the last bin is closed, entries outside [0, 1] are dropped).

    Args:
        values: [R, M] float64 (-0.0 must already be +0.0; it would be dropped).
        workspace: buffers from a previous call with the same shape (optional).
        kernel: "auto" (numba on the CPU, torch ops elsewhere), "numba" or "torch".
    Returns:
        [R, 32] int64 counts (a view into the workspace when one is given).
    """
    values = values.to(torch.float64).contiguous()
    ws = workspace if workspace is not None and workspace.shape == tuple(values.shape) else _BinWorkspace(
        *values.shape, values.device
    )
    bits = values.view(torch.int64)
    codes = _bin_codes(values.device)
    if kernel == "auto":
        kernel = "numba" if values.device.type == "cpu" else "torch"
    if kernel == "numba":
        if values.device.type != "cpu":
            raise ValueError(f"the numba binning kernel runs on the CPU; values are on {values.device}")
        from ._cpu_binning import bin_rows

        bin_rows(bits.numpy(), codes.numpy(), ws.counts.numpy())
    elif kernel == "torch":
        torch.sub(bits.view(-1), 1, out=ws.cell)
        ws.cell.bitwise_right_shift_(_SHIFT).bitwise_and_(_CELLS - 1)
        torch.index_select(codes, 0, ws.cell, out=ws.codes.view(-1))
        torch.bitwise_or(bits, 63, out=ws.bits)
        torch.ge(ws.bits, ws.codes, out=ws.above)
        ws.codes.bitwise_and_(63).add_(ws.above)
        ws.counts.zero_().scatter_add_(1, ws.codes, ws.ones)
    else:
        raise ValueError(f"kernel must be 'auto', 'numba' or 'torch', got {kernel!r}")
    return ws.counts[:, 1 : N_BINS + 1]


def symmetric_log_bin_counts(grams: torch.Tensor, cosine: bool = False) -> torch.Tensor:
    """log_bin_counts of symmetric gram matrices from their lower triangles (CPU kernel);
    with cosine, of their cosine matrices G_ij / (sqrt(G_ii G_jj) + 1e-10), taken in the
    kernel (no extra passes over memory).

    Args:
        grams: [R, n, n] float64 on the CPU; only the lower triangle is read.
    Returns:
        [R, 32] int64 counts.
    """
    if grams.device.type != "cpu":
        raise ValueError(f"symmetric_log_bin_counts runs on the CPU; grams are on {grams.device}")
    from ._cpu_binning import bin_symmetric

    counts = torch.empty((grams.shape[0], N_BINS + 3), dtype=torch.int64)
    bin_symmetric(grams.contiguous().numpy(), _bin_codes(grams.device).numpy(), counts.numpy(), cosine)
    return counts[:, 1 : N_BINS + 1]


@lru_cache(maxsize=8)
def _bin_widths(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[32] widths of the log bins (edges rounded to float32, then widened to dtype)."""
    edges = torch.as_tensor(LOG_BIN_EDGES).to(dtype)
    return (edges[1:] - edges[:-1]).to(device)


def log_bin_densities(counts: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """numpy's density=True from counts [..., 32]: count / bin width / in-range total
    (NaN when nothing is in range, as in the reference)."""
    c = counts.to(dtype)
    return c / _bin_widths(counts.device, dtype) / c.sum(-1, keepdim=True)


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
    if use_triton(a):  # CUDA: one Triton launch per chunk bins all six matrices, cosines on the fly
        return run_fused(lambda: _matrix_counts(a, fused=True), lambda: _matrix_counts(a, fused=False))
    return _matrix_counts(a, fused=False)


def _matrix_counts(a: torch.Tensor, fused: bool) -> torch.Tensor:
    """paper_matrix_counts with the Triton binning (fused) or the numba / torch-ops binning."""
    b, n, _ = a.shape
    dt, dev = a.dtype, a.device
    on_cpu = dev.type == "cpu" and not fused  # CPU: numba kernels bin one triangle, cosines on the fly
    step = min(b, max(1, (CHUNK_CELLS if dev.type == "cpu" else CUDA_CHUNK_CELLS) // (6 * n * n)))
    pad_a = torch.zeros((step, n, 2 * n), dtype=dt, device=dev)
    pad_l = torch.zeros((step, n, 2 * n), dtype=dt, device=dev)
    grams = torch.empty((6, step, n, n), dtype=dt, device=dev)
    if not (on_cpu or fused):  # buffers of the torch path: cosine scales and binning workspace
        scale = torch.empty((step, n, n), dtype=dt, device=dev)
        eps = torch.full((), 1e-10, dtype=dt, device=dev)
        bins = _BinWorkspace(6 * step, n * n, dev)
    counts = torch.empty((6, b, N_BINS), dtype=torch.int64, device=dev)
    for s in range(0, b, step):
        c = min(step, b - s)
        g, pa, pl = grams[:, :c], pad_a[:c], pad_l[:c]
        x = pa[:, :, n:]
        torch.add(a[s : s + c], 0.0, out=x)  # a copy without -0.0 entries: no gram entry is then -0.0
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
        if fused:
            from ._triton_kernels import bin_grams

            counts[:, s : s + c] = bin_grams(g.reshape(6 * c, n, n), cosine_from=3 * c).view(6, c, N_BINS)
        elif on_cpu:
            counts[:3, s : s + c] = symmetric_log_bin_counts(g[:3].reshape(3 * c, n, n)).view(3, c, N_BINS)
            counts[3:, s : s + c] = symmetric_log_bin_counts(g[3:].reshape(3 * c, n, n), cosine=True).view(3, c, N_BINS)
        else:
            for k in (3, 4, 5):  # cosines: the norms are the square roots of the gram diagonal
                norms = torch.diagonal(g[k], dim1=1, dim2=2).sqrt()
                torch.baddbmm(eps, norms[:, :, None], norms[:, None, :], out=scale[:c])
                g[k].div_(scale[:c]).add_(0.0)  # + 0.0 turns a -0.0 into +0.0 (numpy bins it as 0)
            ws = bins if c == step else None
            counts[:, s : s + c] = log_bin_counts(g.reshape(6 * c, n * n), ws).view(6, c, N_BINS)
    return counts
