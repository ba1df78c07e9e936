"""The paper's 94 pattern features (reference names and order), as batched torch kernels.

diag and first_tok: the full 14-statistic block of A_ii and A_i0 (28 features).
Six derived matrices (gram.row, gram.col, gram.skew, log.gram.row, log.gram.col,
log.gram.skew): all n^2 entries histogrammed into the reference's 32 log-spaced bins,
then the reduced 11-statistic block of the 32 densities (66 features).
In float64 these equal the reference code to ~1e-15; NaN exactly where it gives NaN.
"""

from __future__ import annotations

import torch

from .batch import PatternBatch
from .matrices import MATRIX_NAMES as MATRIX_PREFIXES
from .matrices import N_BINS, log_bin_densities, paper_matrix_counts
from .stats import FULL_STATS, REDUCED_STATS, vector_stats

VECTOR_PREFIXES = ("diag", "first_tok")

PAPER_FEATURE_NAMES: tuple[str, ...] = tuple(
    [f"{p}.{s}" for p in VECTOR_PREFIXES for s in FULL_STATS]
    + [f"{p}.hist.{s}" for p in MATRIX_PREFIXES for s in REDUCED_STATS]
)

#: The two columns the paper drops (zero variance on its data) to reach its 92 features.
PAPER_DROPPED_92 = ("log.gram.row.hist.median", "log.gram.col.hist.median")


def paper_features(batch: PatternBatch) -> torch.Tensor:
    """The 94 paper features of every pattern in the batch.

    The diag / first_tok statistics run masked over the padded batch; the matrix
    histograms run per group of equal length on the trimmed [n, n] patterns (exact, and
    no products over padding).

    Args:
        batch: B patterns padded to [B, N, N] (float64 for reference exactness).
    Returns:
        [B, 94] in the order of PAPER_FEATURE_NAMES.
    """
    a = batch.patterns
    b = batch.size
    diag = torch.diagonal(a, dim1=1, dim2=2)
    vectors = vector_stats(torch.cat([diag, a[:, :, 0]]), batch.lengths.repeat(2), full=True)
    sizes = torch.unique(batch.lengths).tolist()
    if sizes == [batch.n_max]:  # one length, no padding (e.g. every head on one prompt): no gathers
        counts = paper_matrix_counts(a)
    else:
        counts = torch.empty((6, b, N_BINS), dtype=torch.int64, device=a.device)
        for n in sizes:
            idx = torch.nonzero(batch.lengths == n).flatten()
            counts[:, idx] = paper_matrix_counts(a[idx, :n, :n])
    densities = log_bin_densities(counts, a.dtype).reshape(6 * b, N_BINS)
    hist_lengths = torch.full((6 * b,), N_BINS, dtype=torch.int64, device=a.device)
    hists = vector_stats(densities, hist_lengths, full=False)
    return torch.cat(
        [vectors[:b], vectors[b:], hists.view(6, b, -1).permute(1, 0, 2).reshape(b, -1)], dim=1
    )
