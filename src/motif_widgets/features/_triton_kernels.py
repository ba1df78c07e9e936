"""Fused Triton kernels of the `paper` features for CUDA (imported only when Triton is used).

On CUDA the torch ops of the paper features cost ~10 ms of Python and kernel launches per batch
for ~1.6 ms of GPU time (benchmarks/cuda_profile.py). Two kernels replace most of those launches:

- ``bin_grams``: the 32 log-bin counts of each derived matrix, cosines taken on the fly from the
  gram's diagonal, in one launch over all six matrices of a chunk (the torch path needs a dozen
  launches and a scatter_add over every entry).
- ``vector_stats``: the paper's statistic block of every row (diag / first_tok vectors and the
  histogram densities) in one launch, one program per row: two passes over the row (sums, then
  central moments, entropy bins, lag-1 products, Welch and regression sums); the median from a
  bitonic sort in the kernel when the row fits one block, else from torch's sort.

Both follow the torch / numba kernels operation by operation (the same lookup table and compare
for the bins; the same formulas for the statistics) and are launched with ``enable_fp_fusion=False``
so that no multiply-add is contracted: the counts are identical and the statistics agree to
rounding (~1e-15; the sums are reduced in another order). Under ``TRITON_INTERPRET=1`` they run
on CPU tensors, which is how the tests check them on a machine without a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .matrices import _CELLS, _SHIFT, N_BINS, _bin_codes

#: Rows up to this long take their median from a sort inside the stats kernel; longer rows
#: from torch.sort (a bitonic sort of a longer row would spill registers).
SORT_IN_KERNEL_MAX = 2048
#: Block of the row loop in the stats kernel and of the entries one binning program reads per step.
STATS_BLOCK_MAX = 1024
BIN_BLOCK = 1024
#: Entries one binning program covers (several blocks), then one atomic add of its 64 counts.
BIN_TILE = 16 * BIN_BLOCK


@triton.jit
def _bin_grams_kernel(
    grams_ptr, codes_ptr, counts_ptr, n, cosine_from,
    SHIFT: tl.constexpr, CELL_MASK: tl.constexpr, BLOCK: tl.constexpr, TILE: tl.constexpr,
):
    """counts[r, s] += entries of matrix r in slot s (matrices._bin_codes), over one tile.

    grams: [R, n, n] float64; rows r >= cosine_from are binned as cosines
    G_ij / (sqrt(G_ii) sqrt(G_jj) + 1e-10) + 0.0. counts: [R, 64] int64, zeroed by the caller.
    """
    r = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1).to(tl.int64)
    nn = n.to(tl.int64) * n
    base = grams_ptr + r * nn
    cosine = r >= cosine_from
    hist = tl.zeros((64,), dtype=tl.int32)
    for step in tl.range(0, tl.minimum(TILE, nn - tile * TILE), BLOCK):
        k = tile * TILE + step + tl.arange(0, BLOCK)
        inside = k < nn
        v = tl.load(base + k, mask=inside, other=0.0)
        if cosine:
            i = k // n
            j = k - i * n
            gi = tl.load(base + i * (n + 1), mask=inside, other=1.0)
            gj = tl.load(base + j * (n + 1), mask=inside, other=1.0)
            v = v / (tl.sqrt(gi) * tl.sqrt(gj) + 1e-10) + 0.0
        bits = v.to(tl.int64, bitcast=True)
        code = tl.load(codes_ptr + (((bits - 1) >> SHIFT) & CELL_MASK))
        slot = (code & 63) + ((bits | 63) >= code).to(tl.int64)
        hist += tl.histogram(tl.where(inside, slot, 0).to(tl.int32), 64)
    tl.atomic_add(counts_ptr + r * 64 + tl.arange(0, 64), hist.to(tl.int64))


def bin_grams(grams: torch.Tensor, cosine_from: int) -> torch.Tensor:
    """32 log-bin counts of each matrix (numpy.histogram rules, as matrices.log_bin_counts).

    Args:
        grams: [R, n, n] float64 (entries -0.0 only in rows that are binned as cosines).
        cosine_from: rows from this index on are binned as the cosines of their gram.
    Returns:
        [R, 32] int64 counts.
    """
    grams = grams.contiguous()
    r, n, _ = grams.shape
    counts = torch.zeros((r, 64), dtype=torch.int64, device=grams.device)
    if r:
        grid = (r, triton.cdiv(n * n, BIN_TILE))
        _bin_grams_kernel[grid](
            grams, _bin_codes(grams.device), counts, n, cosine_from,
            SHIFT=_SHIFT, CELL_MASK=_CELLS - 1, BLOCK=BIN_BLOCK, TILE=BIN_TILE, enable_fp_fusion=False,
        )
    return counts[:, 1 : N_BINS + 1]


@triton.jit
def _vector_stats_kernel(
    x_ptr, lengths_ptr, median_ptr, out_ptr, row_stride, eps,
    BLOCK: tl.constexpr, SORT: tl.constexpr, FULL: tl.constexpr,
):
    """The statistic block of row r of x (stats.vector_stats, formula by formula).

    x: [R, M] float64 (row stride row_stride); lengths: [R] int64, 1 <= m <= M; median: [R]
    float64, read when SORT is False; out: [R, 14] (FULL_STATS) or [R, 11] (REDUCED_STATS)
    float64. With SORT, BLOCK >= M.
    """
    r = tl.program_id(0).to(tl.int64)
    row = x_ptr + r * row_stride
    m_int = tl.load(lengths_ptr + r)
    m = m_int.to(tl.float64)
    offs = tl.arange(0, BLOCK)
    zero = tl.zeros((BLOCK,), dtype=tl.float64)

    # pass 1: sums, extremes, sums of the two lag-1 slices x[:m-1] and x[1:m]
    total = tl.sum(zero, 0)
    sumsq = tl.sum(zero, 0)
    lo = tl.sum(zero, 0) + float("inf")
    hi = tl.sum(zero, 0) - float("inf")
    sum_a = tl.sum(zero, 0)
    sum_b = tl.sum(zero, 0)
    for start in tl.range(0, m_int, BLOCK):
        t = start + offs
        inside = t < m_int
        x = tl.load(row + t, mask=inside, other=0.0)
        total += tl.sum(x, 0)
        sumsq += tl.sum(x * x, 0)
        lo = tl.minimum(lo, tl.min(tl.where(inside, x, float("inf")), 0))
        hi = tl.maximum(hi, tl.max(tl.where(inside, x, -float("inf")), 0))
        sum_a += tl.sum(tl.where(t + 1 < m_int, x, 0.0), 0)
        sum_b += tl.sum(tl.where((t >= 1) & inside, x, 0.0), 0)
    mean = total / m
    # a NaN anywhere: the extremes are NaN, as torch's amin / amax give them
    nan_seen = total != total
    lo = tl.where(nan_seen, total, lo)
    hi = tl.where(nan_seen, total, hi)

    # entropy bins (numpy's rules, as stats._hist_entropy)
    flat = lo == hi
    lo = tl.where(flat, lo - 0.5, lo)
    hi = tl.where(flat, hi + 0.5, hi)
    n_bins = tl.minimum(m_int, 10)
    nb = n_bins.to(tl.float64)
    width = (hi - lo) / nb
    scale = nb / (hi - lo)
    k_pairs = tl.maximum(m_int - 1, 1).to(tl.float64)
    mean_a = sum_a / k_pairs
    mean_b = sum_b / k_pairs
    t_mean = (m - 1.0) / 2.0

    # pass 2: central moments, bin counts, lag-1 products, Welch and regression sums
    s2 = tl.sum(zero, 0)
    s3 = tl.sum(zero, 0)
    s4 = tl.sum(zero, 0)
    saa = tl.sum(zero, 0)
    sbb = tl.sum(zero, 0)
    sab = tl.sum(zero, 0)
    syy = tl.sum(zero, 0)
    sww = tl.sum(zero, 0)
    stt = tl.sum(zero, 0)
    sty = tl.sum(zero, 0)
    bins = tl.zeros((16,), dtype=tl.int32)
    for start in tl.range(0, m_int, BLOCK):
        t = start + offs
        inside = t < m_int
        x = tl.load(row + t, mask=inside, other=0.0)
        d = tl.where(inside, x - mean, 0.0)
        d2 = d * d
        s2 += tl.sum(d2, 0)
        s3 += tl.sum(d2 * d, 0)
        s4 += tl.sum(d2 * d2, 0)
        # entropy: numpy's first guess, then corrected against the true edges
        k = tl.minimum(tl.maximum(tl.floor((x - lo) * scale), 0.0), 9.0).to(tl.int64)
        k = tl.minimum(k, n_bins - 1)
        k = k - (x < k.to(tl.float64) * width + lo).to(tl.int64)
        k = k + ((x >= (k + 1).to(tl.float64) * width + lo) & (k < n_bins - 1)).to(tl.int64)
        k = tl.where(inside, tl.minimum(tl.maximum(k, 0), 9), 10)
        bins += tl.histogram(k.to(tl.int32), 16)
        # lag-1 autocorrelation
        pair = t + 1 < m_int
        nxt = tl.load(row + t + 1, mask=pair, other=0.0)
        da = tl.where(pair, x - mean_a, 0.0)
        db = tl.where(pair, nxt - mean_b, 0.0)
        saa += tl.sum(da * da, 0)
        sbb += tl.sum(db * db, 0)
        sab += tl.sum(da * db, 0)
        # Welch: one periodic Hann segment (scipy's window of length 1 is [1])
        tf = t.to(tl.float64)
        w = 0.5 - 0.5 * tl.cos(6.283185307179586 * tf / m)  # 2 * math.pi * t / m, as torch evaluates it
        w = tl.where(m_int == 1, 1.0, w)
        w = tl.where(inside, w, 0.0)
        y = w * d
        syy += tl.sum(y * y, 0)
        sww += tl.sum(w * w, 0)
        # linregress on t = 0..m-1
        dt = tl.where(inside, tf - t_mean, 0.0)
        stt += tl.sum(dt * dt, 0)
        sty += tl.sum(dt * d, 0)

    nan = float("nan")
    m2 = s2 / m
    m3 = s3 / m
    m4 = s4 / m
    const = m2 <= (eps * mean) * (eps * mean)
    p = bins.to(tl.float64) / m
    plogp = tl.where(p > 0, p * tl.log2(tl.where(p > 0, p, 1.0)), 0.0)
    entropy = -tl.sum(tl.where(tl.arange(0, 16) < 10, plogp, 0.0), 0)
    defined = (saa > 0) & (sbb > 0) & (m_int > 2)
    ratio = sab / tl.sqrt(tl.where(defined, saa, 1.0)) / tl.sqrt(tl.where(defined, sbb, 1.0))
    autocorr = tl.where(defined, tl.minimum(tl.maximum(ratio, -1.0), 1.0), 0.0)
    ssxm = stt / m
    ssym = s2 / m
    ssxym = sty / m
    degenerate = (ssxm == 0) | (ssym == 0)
    r_value = ssxym / tl.sqrt(tl.where(degenerate, 1.0, ssxm * ssym))
    clamped = tl.minimum(tl.maximum(r_value, -1.0), 1.0)
    clamped = tl.where(r_value != r_value, r_value, clamped)  # torch's clamp keeps a NaN (a NaN row)
    r_value = tl.where(degenerate, tl.where(ssxym == 0, nan, 0.0), clamped)
    slope = ssxym / ssxm
    if SORT:
        x = tl.load(row + offs, mask=offs < m_int, other=float("inf"))
        srt = tl.sort(x, 0)
        lower = tl.sum(tl.where(offs == (m_int - 1) // 2, srt, 0.0), 0)
        upper = tl.sum(tl.where(offs == m_int // 2, srt, 0.0), 0)
        median = (lower + upper) / 2
    else:
        median = tl.load(median_ptr + r)

    out = out_ptr + r * (14 if FULL else 11)
    tl.store(out + 0, mean)
    tl.store(out + 1, median)
    tl.store(out + 2, s2 / (m - 1.0))
    tl.store(out + 3, tl.where(const, nan, m3 / (m2 * tl.sqrt(m2))))
    tl.store(out + 4, entropy)
    tl.store(out + 5, tl.sqrt(sumsq / m))
    if FULL:
        tl.store(out + 6, sumsq)
        tl.store(out + 7, tl.where(const, nan, m4 / (m2 * m2) - 3.0))
        tl.store(out + 8, tl.sqrt(sumsq) / m)
    rest = out + (9 if FULL else 6)
    tl.store(rest + 0, autocorr)
    tl.store(rest + 1, m * syy / sww)
    tl.store(rest + 2, slope)
    tl.store(rest + 3, mean - slope * t_mean)
    tl.store(rest + 4, r_value * r_value)


def vector_stats(
    x: torch.Tensor, lengths: torch.Tensor, full: bool = True, sort_in_kernel_max: int | None = None,
    loop_block: int = STATS_BLOCK_MAX,
) -> torch.Tensor:
    """stats.vector_stats(x, lengths, full) in one kernel launch.

    Args:
        x: [B, M] float64; row b uses x[b, :lengths[b]].
        lengths: [B] int64, 1 <= lengths <= M.
        full: the 14 FULL_STATS, else the 11 REDUCED_STATS.
        sort_in_kernel_max: rows up to this long (M) are sorted in the kernel for the median
            (default SORT_IN_KERNEL_MAX); longer ones take it from torch's sort and are read in
            blocks of loop_block (a power of two >= 16).
    Returns:
        [B, 14] or [B, 11] float64 in the order of FULL_STATS / REDUCED_STATS.
    """
    b, width = x.shape
    if x.stride(1) != 1:
        x = x.contiguous()
    out = torch.empty((b, 14 if full else 11), dtype=torch.float64, device=x.device)
    if b == 0:
        return out
    sort = width <= (SORT_IN_KERNEL_MAX if sort_in_kernel_max is None else sort_in_kernel_max)
    block = max(16, triton.next_power_of_2(width)) if sort else loop_block
    if sort:
        median = out  # not read
    else:
        from .stats import _median

        mask = torch.arange(width, device=x.device)[None, :] < lengths[:, None]
        median = _median(x, mask, lengths).contiguous()
    _vector_stats_kernel[(b,)](
        x, lengths.contiguous(), median, out, x.stride(0), torch.finfo(torch.float64).eps,
        BLOCK=block, SORT=sort, FULL=full, enable_fp_fusion=False,
    )
    return out

