"""The `motifs` feature set: bounded, NaN-free, length-robust measures of visible motifs.

Row-averaged features are weighted means over query rows i >= 1 (row 0 can only attend
to itself; for n = 1 the single row is used) with row weights proportional to
1 / max(i, 4): every octave of positions (rows 4-7, 8-15, ...) weighs about the same. A
head's attention changes with the position of the query (late rows see many more keys),
and under equal row weights a 256-token prompt puts 75% of its weight on rows a 64-token
prompt does not have (88% against 32 tokens); under these weights 28% (42%). So the
same head on prompts of different lengths lands on (nearly) the same features
(benchmarks/length_robustness.py). Column 0 is the first token ("sink"). The offset
features split the rest of the attention by distance d = i - j and are *shares of the
non-sink attention*, so a head that parks most of its attention on the sink (as
induction heads do on prose) is still described by what it does with the rest: with
m_x the weighted mean mass of offset class x, share_x = m_x / (1 - sink + SINK_SMOOTHING),
and sink + (1 - sink + SINK_SMOOTHING) * (self + prev + offset2 + offset3 + near + mid) = 1
for the (implicit) band mid of offsets > 8. `far` is defined relative to the visible
context: the share on the older half (d > i / 2), so a uniform head has far 0.30 at 16
tokens and 0.41 at 512 (the share beyond offset 8 went from 0.11 to 0.87). All values lie in [0, 1]; none
is NaN for any valid pattern, including n = 1 and one-hot rows. Cost is O(n^2) per
pattern (no n^3 products).

Revision 3 (this file) changed the row weights (1 / max(i, 4) instead of equal), `far` (the older
half instead of offsets > 8), `log_distance` (relative to log(1 + i) instead of in log
tokens) and the row similarities (pairs weighted by their row weights); revision 2 is
kept, frozen, in benchmarks/length_robustness.py.

The set's embedding weights (MOTIF_FEATURE_WEIGHTS) count the eight motif features
(sink, the offset shares, stripe) fully and the eight shape descriptors at 0.3: the
descriptors are partly redundant with each other, and at full weight they drown the
motifs in head search (benchmarks/validity.py: SmolLM2 R-precision 0.47 -> 0.55 and
Gemma-3-270M 0.29 -> 0.60 with shares and these weights).
"""

from __future__ import annotations

import torch

from .batch import PatternBatch
from .stats import sort_rows

MOTIF_FEATURE_DOCS: dict[str, str] = {
    "sink": "attention on the first token (column 0): the attention-sink / BOS motif",
    "self": "share of the non-sink attention a token gives itself (the main diagonal)",
    "prev": "share of the non-sink attention on the previous token (offset 1)",
    "offset2": "share of the non-sink attention on the token two back (offset 2)",
    "offset3": "share of the non-sink attention on the token three back (offset 3)",
    "near": "recent-token band: share of the non-sink attention on offsets 4..8",
    "far": "share of the non-sink attention on the older half of the visible context (offsets d > i/2)",
    "entropy": "row entropy normalised by log(number of visible keys): 0 one-hot, 1 uniform",
    "max_weight": "largest weight of each row: how peaked the attention is",
    "distance": "mean attention distance relative to the query position, sum_j A_ij (i - j) / i",
    "log_distance": "mean attention distance on a log scale relative to the context: log(1 + sum_j A_ij (i - j)) / log(1 + i)",
    "key_spread": "effective number of attended key columns (exp of column-mass entropy, rows weighted equally) / n",
    "bar_mass": "vertical bars: attention landing on the top 10% of key columns, first token excluded (rows weighted equally)",
    "row_similarity": "mean cosine between query rows: high for bars and sinks, low for diagonals",
    "offset_similarity": "mean cosine between rows in relative-offset layout: high for positional heads",
    "stripe": "strongest off-diagonal stripe: max over offsets 2..(n-1)/2 of the mean weight there (induction/duplicate)",
}
MOTIF_FEATURE_NAMES: tuple[str, ...] = tuple(MOTIF_FEATURE_DOCS)

NEAR_OFFSETS = (4, 8)
BAR_FRACTION = 0.1
#: Rows weigh 1 / max(i, ROW_WEIGHT_FLOOR): rows 1..3, which see at most 4 keys (where most
#: motifs look alike), weigh no more than row 4 (validity R-precision 0.508 -> 0.527 on
#: SmolLM2 against 1 / i, at the same length robustness for 64 vs 256 tokens).
ROW_WEIGHT_FLOOR = 4
#: Smooths the non-sink shares so a head with (almost) all attention on the sink stays bounded.
SINK_SMOOTHING = 0.05
#: Embedding weights (multiplying z-scores before PCA): motifs 1, shape descriptors 0.3.
DESCRIPTOR_WEIGHT = 0.3
MOTIF_FEATURE_WEIGHTS: dict[str, float] = {
    name: 1.0 if name in ("sink", "self", "prev", "offset2", "offset3", "near", "far", "stripe") else DESCRIPTOR_WEIGHT
    for name in MOTIF_FEATURE_DOCS
}


def query_rows(batch: PatternBatch) -> torch.Tensor:
    """[B, N] bool: the rows features average over (i >= 1, or row 0 when n = 1)."""
    pos = batch.positions[None, :]
    return batch.row_mask & ((pos >= 1) | (batch.lengths[:, None] == 1))


def row_weights(batch: PatternBatch) -> torch.Tensor:
    """[B, N] weights of the query rows, summing to 1 per pattern: proportional to
    1 / max(i, ROW_WEIGHT_FLOOR) on rows i >= 1 (about equal weight per octave of
    positions), the single row when n = 1, 0 on padding."""
    pos = batch.positions.to(batch.dtype)[None, :]
    w = query_rows(batch).to(batch.dtype) / pos.clamp(min=ROW_WEIGHT_FLOOR)
    return w / w.sum(1, keepdim=True)


def offset_layout(batch: PatternBatch) -> torch.Tensor:
    """[B, N, N]: D[b, i, d] = A[b, i, i - d] for 0 <= d <= i, else 0 (padded rows stay 0).

    A strided view of one [B, N, 2N] buffer Q = [A flipped left-right | 0]: since
    Q[i, k] = A[i, N - 1 - k], D[i, d] = Q[i, N - 1 - i + d], i.e. row stride 2N - 1.
    Offsets beyond the row (d > i) land in the zero half, so no gather and no mask.
    """
    a = batch.patterns
    b, n, _ = a.shape
    q = a.new_zeros((b, n, 2 * n))
    q[:, :, :n] = a.flip(-1)
    return q.as_strided((b, n, n), (2 * n * n, 2 * n - 1, 1), n - 1)


def _row_vector_product(weights: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """[B, K] = sum_i weights[b, i] * rows[b, i, :] for weights [B, N], rows [B, N, K] (one bmm)."""
    return torch.bmm(weights[:, None, :], rows)[:, 0]


def mean_row_cosine(rows: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """Mean cosine over ordered pairs of distinct used rows; 1 when there is a single row.

    Args:
        rows: [B, N, K]; used: [B, N] bool.
    Returns:
        [B] in [0, 1] for non-negative rows. O(N K) via |sum of unit rows|^2.
    """
    norms = torch.linalg.vector_norm(rows, dim=-1).clamp(min=torch.finfo(rows.dtype).tiny)
    unit_sum = _row_vector_product(used.to(rows.dtype) / norms, rows)
    r = used.sum(1).to(rows.dtype)
    total = (unit_sum**2).sum(-1)
    mean = (total - r) / (r * (r - 1)).clamp(min=1)
    return torch.where(r > 1, mean.clamp(0.0, 1.0), torch.ones_like(mean))


def weighted_row_cosine(rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean cosine over ordered pairs (p, q) of distinct rows, pair weight w_p w_q.

    Args:
        rows: [B, N, K]; weights: [B, N] >= 0 summing to 1 (0 on unused rows).
    Returns:
        [B] in [0, 1] for non-negative rows; 1 when one row holds all the weight.
        O(N K): sum_{p != q} w_p w_q cos = |sum_p w_p u_p|^2 - sum_p w_p^2.
    """
    norms = torch.linalg.vector_norm(rows, dim=-1).clamp(min=torch.finfo(rows.dtype).tiny)
    unit_sum = _row_vector_product(weights / norms, rows)
    w2 = (weights * weights).sum(1)
    pairs = 1 - w2  # sum over p != q of w_p w_q
    single = pairs <= 1e3 * torch.finfo(rows.dtype).eps
    mean = ((unit_sum**2).sum(-1) - w2) / torch.where(single, torch.ones_like(pairs), pairs)
    return torch.where(single, torch.ones_like(mean), mean.clamp(0.0, 1.0))


def motif_features(batch: PatternBatch) -> torch.Tensor:
    """The 16 motif features of every pattern.

    A handful of passes over [B, N, N]: the offset layout (a strided copy), row sums
    weighted by the query-row weights as batched matrix products, one xlogy for the
    entropy, one masked sum for `far` and one max; everything else works on [B, N] vectors.

    Args:
        batch: B patterns padded to [B, N, N].
    Returns:
        [B, 16] in the order of MOTIF_FEATURE_NAMES.
    """
    a = batch.patterns
    dt = a.dtype
    zero = torch.zeros((), dtype=dt, device=a.device)
    n = batch.lengths.to(dt)
    rows = query_rows(batch)
    w = row_weights(batch)  # [B, N], 1 / i, sums to 1

    def row_mean(v: torch.Tensor) -> torch.Tensor:  # [B, N] -> [B], weighted mean over query rows
        return (w * v).sum(1)

    pos = batch.positions.to(dt)
    i = pos[None, :]
    sink = a[:, :, 0]  # [B, N]
    sink_mass = row_mean(sink)
    non_sink = (1 - sink_mass + SINK_SMOOTHING)[:, None]
    offs = offset_layout(batch)  # [B, N, d]
    # in the offset layout the sink (key 0) of row i sits at d = i: take it back out
    mass_by_offset = (_row_vector_product(w, offs) - w * sink) / non_sink  # [B, d] shares of the non-sink attention
    near = mass_by_offset[:, NEAR_OFFSETS[0] : NEAR_OFFSETS[1] + 1].sum(1)
    # the older half of row i's context: keys 1 <= j < i / 2, i.e. offsets d > i / 2
    older = (batch.positions[None, :] >= 1) & (2 * batch.positions[None, :] < batch.positions[:, None])  # [N, N]
    far = row_mean((a * older).sum(-1)) / non_sink[:, 0]

    row_entropy = -torch.xlogy(a, a).sum(-1) / torch.log(i + 1).clamp(min=torch.finfo(dt).tiny)
    row_entropy = torch.where(i >= 1, row_entropy, zero)  # one visible key: no spread

    causal = torch.tril(a)  # the offset features see only j <= i; so does the distance
    expected_dist = (i * causal.sum(-1) - causal @ pos).clamp(min=0)  # [B, N] tokens: sum_j A_ij (i - j)
    rel_dist = torch.where(i >= 1, expected_dist / i.clamp(min=1), zero)
    rel_log_dist = torch.where(i >= 1, torch.log1p(expected_dist) / torch.log1p(i), zero)

    # column features weigh rows equally: under equal row weights the column mass of a uniform
    # pattern has the same shape at every n (density log(n / j)), which keeps key_spread robust
    rows_f = rows.to(dt)
    col_mass = _row_vector_product(rows_f, a) / rows_f.sum(1)[:, None]  # [B, N], sums to 1
    col_h = -torch.xlogy(col_mass, col_mass).sum(1)
    key_spread = torch.exp(col_h) / n
    ranked = sort_rows(-torch.where(batch.row_mask, col_mass, zero)[:, 1:]).neg()  # descending
    n_top = torch.ceil(BAR_FRACTION * (batch.lengths - 1).to(dt)).long()
    top_cum = torch.cat([torch.zeros_like(n[:, None]), ranked.cumsum(1)], dim=1)
    bar_mass = top_cum.gather(1, n_top[:, None])[:, 0]

    # strongest stripe: offsets d in [2, (n-1)//2], averaged over the n-1-d rows that reach it
    col_sums = offs.sum(1) - sink  # [B, d], all rows, the sink excluded
    reach = (n[:, None] - 1 - pos[None, :]).clamp(min=1)
    dd = batch.positions[None, :]
    eligible = (dd >= 2) & (dd <= (batch.lengths[:, None] - 1) // 2)
    stripe = torch.where(eligible, col_sums / reach, zero).amax(1)

    feats = {
        "sink": sink_mass,
        "self": mass_by_offset[:, 0],
        "prev": mass_by_offset[:, 1] if batch.n_max > 1 else zero.expand(batch.size),
        "offset2": mass_by_offset[:, 2] if batch.n_max > 2 else zero.expand(batch.size),
        "offset3": mass_by_offset[:, 3] if batch.n_max > 3 else zero.expand(batch.size),
        "near": near,
        "far": far,
        "entropy": row_mean(row_entropy),
        "max_weight": row_mean(a.amax(-1)),
        "distance": row_mean(rel_dist),
        "log_distance": row_mean(rel_log_dist),
        "key_spread": key_spread,
        "bar_mass": bar_mass,
        "row_similarity": weighted_row_cosine(a, w),
        "offset_similarity": weighted_row_cosine(offs, w),
        "stripe": stripe,
    }
    return torch.stack([feats[k] for k in MOTIF_FEATURE_NAMES], dim=1)


__all__ = [
    "MOTIF_FEATURE_DOCS", "MOTIF_FEATURE_NAMES", "MOTIF_FEATURE_WEIGHTS", "motif_features", "offset_layout", "query_rows",
    "row_weights", "ROW_WEIGHT_FLOOR",
]
