"""Batched statistics of 1-D vectors of varying length (the paper's `vec_features` block).

Each function takes x [B, M] and lengths m [B] (1 <= m_b <= M; entries at positions
>= m_b are ignored) and returns [B] values, matching numpy / scipy conventions:
variance ddof=1, scipy's biased skewness / Fisher kurtosis with its "constant input"
test, numpy's equal-width histogram rule for entropy, Welch power with one periodic
Hann segment, and scipy `linregress` on t = 0..m-1. NaN appears exactly where those
libraries give NaN (n = 1, constant vectors); the `motifs` set never uses these.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .kernels import run_fused, use_triton

FULL_STATS = (
    "mean", "median", "variance", "skewness", "entropy", "rms", "energy", "kurtosis",
    "L2_norm", "autocorr_lag1", "psd_total_power", "linreg.slope", "linreg.intercept", "linreg.r2",
)
REDUCED_STATS = tuple(s for s in FULL_STATS if s not in ("energy", "kurtosis", "L2_norm"))


def vector_stats(x: torch.Tensor, lengths: torch.Tensor, full: bool) -> torch.Tensor:
    """The paper's statistic block of every row of x.

    Args:
        x: [B, M] values; row b uses x[b, :lengths[b]].
        lengths: [B] int64, >= 1.
        full: 14 statistics (FULL_STATS) if True, else the 11 REDUCED_STATS.

    Returns:
        [B, 14] or [B, 11] in the order of FULL_STATS / REDUCED_STATS.
    """
    if use_triton(x):  # CUDA: the whole block in one fused launch
        from ._triton_kernels import vector_stats as fused_vector_stats

        return run_fused(lambda: fused_vector_stats(x, lengths, full), lambda: vector_stats(x, lengths, full))
    mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    xm = torch.where(mask, x, zero)
    m = lengths.to(x.dtype)
    mean = xm.sum(1) / m
    d = torch.where(mask, x - mean[:, None], zero)
    d2 = d * d
    ss = d2.sum(1)
    m2 = ss / m
    m3 = (d2 * d).sum(1) / m
    m4 = (d2 * d2).sum(1) / m
    # scipy: skewness / kurtosis are NaN when m2 <= (eps * mean)^2
    const = m2 <= (torch.finfo(x.dtype).eps * mean) ** 2
    nan = torch.full_like(mean, math.nan)
    sumsq = (xm * xm).sum(1)
    stats = {
        "mean": mean,
        "median": _median(x, mask, lengths),
        "variance": ss / (m - 1),
        "skewness": torch.where(const, nan, m3 / m2**1.5),
        "entropy": _hist_entropy(x, mask, lengths),
        "rms": torch.sqrt(sumsq / m),
        "energy": sumsq,
        "kurtosis": torch.where(const, nan, m4 / (m2 * m2) - 3.0),
        "L2_norm": torch.sqrt(sumsq) / m,
        "autocorr_lag1": _autocorr_lag1(x, mask, lengths),
        "psd_total_power": _welch_total_power(d, mask, lengths),
    }
    stats.update(_linregress(x, mask, lengths, mean))
    names = FULL_STATS if full else REDUCED_STATS
    return torch.stack([stats[k] for k in names], dim=1)


def sort_rows(x: torch.Tensor) -> torch.Tensor:
    """x sorted ascending along dim 1. On the CPU numpy's sort is used: for many short
    rows torch's CPU sort is about 15x slower; on CUDA torch.sort."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return x.sort(dim=1).values


def _median(x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    inf = torch.full((), math.inf, dtype=x.dtype, device=x.device)
    srt = sort_rows(torch.where(mask, x, inf))
    lo = srt.gather(1, ((lengths - 1) // 2)[:, None])[:, 0]
    hi = srt.gather(1, (lengths // 2)[:, None])[:, 0]
    return (lo + hi) / 2


def _hist_entropy(x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Entropy (bits) of a histogram with min(10, m) equal bins over [min x, max x], with
    numpy's rules: edges k * step + min (as numpy.linspace computes them), a value on an
    edge goes to the upper bin, the last bin is closed."""
    inf = torch.full((), math.inf, dtype=x.dtype, device=x.device)
    lo = torch.where(mask, x, inf).amin(1, keepdim=True)
    hi = torch.where(mask, x, -inf).amax(1, keepdim=True)
    flat = lo == hi  # numpy widens an empty range to [v - 0.5, v + 0.5]
    lo = torch.where(flat, lo - 0.5, lo)
    hi = torch.where(flat, hi + 0.5, hi)
    n_bins = lengths.clamp(max=10)[:, None]
    nb = n_bins.to(x.dtype)
    step = (hi - lo) / nb
    k = ((x - lo) * (nb / (hi - lo))).floor().clamp(0, 9).long()  # numpy's first guess
    k = torch.minimum(k, n_bins - 1)
    k = k - (x < k.to(x.dtype) * step + lo).long()  # then corrected against the true edges
    k = k + ((x >= (k + 1).to(x.dtype) * step + lo) & (k < n_bins - 1)).long()
    k = torch.where(mask, k.clamp(0, 9), 10)
    counts = torch.zeros(x.shape[0], 11, dtype=x.dtype, device=x.device)
    counts.scatter_add_(1, k, torch.ones_like(x))
    p = counts[:, :10] / lengths.to(x.dtype)[:, None]
    plogp = torch.where(p > 0, p * torch.log2(torch.where(p > 0, p, 1.0)), 0.0)
    return -plogp.sum(1)


def _autocorr_lag1(x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of x[:m-1] and x[1:m]; 0 where either has zero spread or m <= 2."""
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    pair = mask[:, 1:]  # positions t with t + 1 < m
    k = (lengths - 1).clamp(min=1).to(x.dtype)
    a = torch.where(pair, x[:, :-1], zero)
    b = torch.where(pair, x[:, 1:], zero)
    da = torch.where(pair, a - (a.sum(1) / k)[:, None], zero)
    db = torch.where(pair, b - (b.sum(1) / k)[:, None], zero)
    saa, sbb = (da * da).sum(1), (db * db).sum(1)
    defined = (saa > 0) & (sbb > 0) & (lengths > 2)
    r = (da * db).sum(1) / torch.sqrt(torch.where(defined, saa, 1.0)) / torch.sqrt(torch.where(defined, sbb, 1.0))
    return torch.where(defined, r.clamp(-1.0, 1.0), zero)


def _welch_total_power(d: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Sum of scipy.signal.welch(x, nperseg=m): one periodic-Hann segment, mean removed,
    density scaling, one-sided. By Parseval the sum is m * sum(y^2) / sum(w^2), y = w * d."""
    m = lengths.to(d.dtype)[:, None]
    t = torch.arange(d.shape[1], device=d.device, dtype=d.dtype)[None, :]
    w = 0.5 - 0.5 * torch.cos(2 * math.pi * t / m)
    w = torch.where(lengths[:, None] == 1, torch.ones_like(w), w)  # scipy's window of length 1 is [1]
    w = torch.where(mask, w, 0.0)
    y = w * d
    return m[:, 0] * (y * y).sum(1) / (w * w).sum(1)


def _linregress(x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, ymean: torch.Tensor) -> dict:
    """scipy.stats.linregress(t, x) for t = 0..m-1: slope, intercept and r^2."""
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    m = lengths.to(x.dtype)
    t = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)[None, :]
    tmean = (m - 1) / 2
    dt = torch.where(mask, t - tmean[:, None], zero)
    dy = torch.where(mask, x - ymean[:, None], zero)
    ssxm = (dt * dt).sum(1) / m
    ssym = (dy * dy).sum(1) / m
    ssxym = (dt * dy).sum(1) / m
    degenerate = (ssxm == 0) | (ssym == 0)
    r_degenerate = torch.where(ssxym == 0, torch.full_like(m, math.nan), zero)
    r = ssxym / torch.sqrt(torch.where(degenerate, 1.0, ssxm * ssym))
    r = torch.where(degenerate, r_degenerate, r.clamp(-1.0, 1.0))
    slope = ssxym / ssxm
    return {"linreg.slope": slope, "linreg.intercept": ymean - slope * tmean, "linreg.r2": r * r}
