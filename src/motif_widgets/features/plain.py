"""Plain per-pattern numpy/scipy implementation of the paper's 94 features (the ``paper`` set).

This module is the readable reference for the handcrafted attention-pattern features of the
attention-motifs paper: one pattern at a time, float64 throughout, with the numpy/scipy functions
that define each statistic called directly (``np.median``, ``np.var(ddof=1)``,
``scipy.stats.skew`` / ``kurtosis``, ``scipy.stats.linregress``, ``scipy.signal.welch``,
``np.histogram``). It has two jobs:

* an independent oracle that the fast batched kernels are tested against, and
* the "plain per-pattern numpy" baseline of the speed benchmark.

Feature layout (94 values, names in :data:`PAPER_FEATURE_NAMES`):

* ``diag.*`` and ``first_tok.*``: the full 14-statistic block on ``A[i, i]`` and ``A[:, 0]``.
* ``<matrix>.hist.*`` for the six matrices ``gram.row`` (A A^T), ``gram.col`` (A^T A),
  ``gram.skew`` (S(A)^T S(A)), ``log.gram.row`` / ``log.gram.col`` (cosine similarity of the
  rows / columns of L = log(A + 1e-9)) and ``log.gram.skew`` (cosine similarity of the rows of
  S(L)): all n^2 entries are histogrammed into 32 log-spaced bins (:data:`LOG_BIN_EDGES`,
  ``density=True``; entries outside [0, 1] are dropped) and the reduced 11-statistic block is
  applied to the 32 densities.

NaN results of numpy/scipy on degenerate inputs (n = 1, constant vectors) are kept as NaN and
their warnings are silenced.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import signal, stats

__all__ = [
    "FULL_STAT_NAMES",
    "LOG_BIN_EDGES",
    "MATRIX_PREFIXES",
    "PAPER_FEATURE_NAMES",
    "REDUCED_STAT_NAMES",
    "VECTOR_PREFIXES",
    "histogram_densities_plain",
    "paper_features_plain",
    "vector_stats_plain",
]

FULL_STAT_NAMES: tuple[str, ...] = (
    "mean",
    "median",
    "variance",
    "skewness",
    "entropy",
    "rms",
    "energy",
    "kurtosis",
    "L2_norm",
    "autocorr_lag1",
    "psd_total_power",
    "linreg.slope",
    "linreg.intercept",
    "linreg.r2",
)
"""The 14 statistics of the full per-vector block, in output order."""

REDUCED_STAT_NAMES: tuple[str, ...] = tuple(
    s for s in FULL_STAT_NAMES if s not in ("energy", "kurtosis", "L2_norm")
)
"""The 11 statistics of the reduced block (full block minus energy, kurtosis, L2_norm)."""

VECTOR_PREFIXES: tuple[str, ...] = ("diag", "first_tok")
MATRIX_PREFIXES: tuple[str, ...] = (
    "gram.row",
    "gram.col",
    "gram.skew",
    "log.gram.row",
    "log.gram.col",
    "log.gram.skew",
)

PAPER_FEATURE_NAMES: tuple[str, ...] = tuple(
    [f"{p}.{s}" for p in VECTOR_PREFIXES for s in FULL_STAT_NAMES]
    + [f"{p}.hist.{s}" for p in MATRIX_PREFIXES for s in REDUCED_STAT_NAMES]
)
"""The 94 feature names in the reference order (no ``feat.`` prefix)."""

# Edges 0, then 32 log-spaced values 1e-3 ... 1, rounded to float32. The reference builds them
# with torch.logspace(-3, 0, 32) in float32; rounding numpy's float64 logspace to float32 gives
# bit-identical values (checked in the tests). The edges stay float32; np.histogram compares the
# float64 values against them exactly and takes bin widths from np.diff of the float32 edges.
LOG_BIN_EDGES: np.ndarray = np.concatenate(
    [np.zeros(1, dtype=np.float32), np.logspace(-3.0, 0.0, 32).astype(np.float32)]
)
LOG_BIN_EDGES.setflags(write=False)

_LOG_EPS = 1e-9  # L = log(A + 1e-9)
_LOG_NAN_FILL = -10.0  # NaN entries of L are replaced by this
_COS_EPS = 1e-10  # cosine denominator: ||x_i|| ||x_j|| + 1e-10


def vector_stats_plain(x, full: bool) -> dict[str, float]:
    """Per-vector statistic block of a 1-D vector ``x`` of length m >= 1.

    Returns an ordered dict name -> float: the 14 :data:`FULL_STAT_NAMES` when ``full`` is true,
    else the 11 :data:`REDUCED_STAT_NAMES`. Degenerate inputs give NaN exactly where numpy/scipy
    do: m = 1 -> variance, skewness, kurtosis, linreg.*; skewness and kurtosis whenever the biased
    m2 <= (eps * mean)^2 (scipy's constant test); linreg.r2 when x - mean(x) is exactly 0.
    ``np.histogram`` (entropy) raises ``ValueError``, as in the reference, when x has a non-finite
    entry or when max x - min x is only a few ulps (e.g. [1.0, 1.0, 1.0 - 2**-53]: the
    min(10, m) + 1 linspace edges are not strictly increasing).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    m = x.size
    if m == 0:
        raise ValueError("vector_stats_plain needs a non-empty vector")
    t = np.arange(m, dtype=np.float64)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")

        mean = np.mean(x)
        median = np.median(x)
        variance = np.var(x, ddof=1)
        skewness = stats.skew(x)

        # Entropy (bits) of min(10, m) equal-width bins spanning [min x, max x].
        counts, _ = np.histogram(x, bins=min(10, m))
        p = counts[counts > 0] / counts.sum()
        entropy = -np.sum(p * np.log2(p)) + 0.0  # "+ 0.0": a single full bin gives 0.0, not -0.0

        rms = np.sqrt(np.mean(x**2))

        # Lag-1 autocorrelation: Pearson r of x[:-1] and x[1:], 0 when undefined.
        if m <= 2:
            autocorr = 0.0
        else:
            a, b = x[:-1], x[1:]
            if np.std(a) == 0 or np.std(b) == 0:
                autocorr = 0.0
            else:
                autocorr = np.corrcoef(a, b)[0, 1]

        # One Welch segment of length m (periodic Hann, constant detrend, one-sided, density).
        _, psd = signal.welch(x, nperseg=m)
        psd_total_power = np.sum(psd)

        lr = stats.linregress(t, x)

        out = {"mean": mean, "median": median, "variance": variance, "skewness": skewness,
               "entropy": entropy, "rms": rms}
        if full:
            out["energy"] = np.sum(x**2)
            out["kurtosis"] = stats.kurtosis(x)
            out["L2_norm"] = np.linalg.norm(x) / m
        out["autocorr_lag1"] = autocorr
        out["psd_total_power"] = psd_total_power
        out["linreg.slope"] = lr.slope
        out["linreg.intercept"] = lr.intercept
        out["linreg.r2"] = lr.rvalue**2
    return {k: float(v) for k, v in out.items()}


def histogram_densities_plain(values) -> np.ndarray:
    """Histogram densities (float64 [32]) of all entries of ``values`` over :data:`LOG_BIN_EDGES`.

    ``np.histogram(..., density=True)``: bin k is [e_k, e_k+1), the last bin is closed, entries
    outside [0, 1] (and NaN) are dropped, density = count / bin width / in-range count
    (all NaN if nothing is in range).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        dens, _ = np.histogram(v, bins=LOG_BIN_EDGES, density=True)
    return dens.astype(np.float64, copy=False)


def _skew_rows(m: np.ndarray) -> np.ndarray:
    """S(M): right-align each row's lower triangle ([n, n] -> [n, n]).

    Entry (i, j) with j <= i moves to column j + (n - 1 - i); every other cell is 0 (the upper
    triangle of M is discarded). Column n-1 then holds the diagonal, column n-2 the sub-diagonal.
    """
    n = m.shape[0]
    i, j = np.tril_indices(n)
    out = np.zeros_like(m)
    out[i, j + (n - 1 - i)] = m[i, j]
    return out


def _cosine_rows(x: np.ndarray) -> np.ndarray:
    """Cosine-similarity matrix of the rows of ``x`` ([n, k] -> [n, n]).

    (X X^T)_ij / (||x_i|| ||x_j|| + 1e-10).
    """
    norms = np.linalg.norm(x, axis=1)
    return (x @ x.T) / (np.outer(norms, norms) + _COS_EPS)


def paper_features_plain(pattern) -> np.ndarray:
    """The 94 paper features of one attention pattern.

    ``pattern``: [n, n] causal attention pattern (rows sum to 1, upper triangle 0), any float
    dtype; it is cast to float64. Returns float64 [94] in :data:`PAPER_FEATURE_NAMES` order.

    Reproducibility limit: the self-cosines of the ``log.gram.*`` matrices are
    1 - 1e-10 / ||l_i||^2, within a few ulps of 1 once n is a few hundred; whether one rounds
    above 1 (and so leaves the histogram) then depends on the matmul's summation order.
    """
    a = np.asarray(pattern, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"expected a non-empty square [n, n] pattern, got shape {a.shape}")

    feats: list[float] = []
    feats.extend(vector_stats_plain(np.diagonal(a), full=True).values())
    feats.extend(vector_stats_plain(a[:, 0], full=True).values())

    with np.errstate(all="ignore"):
        log_a = np.log(a + _LOG_EPS)
    log_a[np.isnan(log_a)] = _LOG_NAN_FILL
    skew_a = _skew_rows(a)

    matrices = (
        a @ a.T,  # gram.row
        a.T @ a,  # gram.col
        skew_a.T @ skew_a,  # gram.skew
        _cosine_rows(log_a),  # log.gram.row
        _cosine_rows(log_a.T),  # log.gram.col
        _cosine_rows(_skew_rows(log_a)),  # log.gram.skew
    )
    for mat in matrices:
        feats.extend(vector_stats_plain(histogram_densities_plain(mat), full=False).values())

    return np.asarray(feats, dtype=np.float64)
