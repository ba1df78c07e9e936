"""Distances between heads, from each head's cloud of per-prompt embedding points.

- paired (the paper's eq. 3): mean over prompts of the distance between the two heads'
  points for the same prompt (Minkowski order 2 = Euclidean, 1 = Manhattan).
- sliced_wasserstein: a distributional metric that compares the two clouds without
  pairing prompts (paper section 4): the 2-Wasserstein distance of the clouds' 1-D
  projections, averaged over seeded random directions. Two heads that produce the same
  spread of patterns on different prompts are close under it, far under eq. 3.

Eq. 3 has two kernels: float64 torch cdist over prompt chunks (exact; the default), and a
fused float32 numba kernel for large atlases (``dtype="float32"``) that walks tiles of head
pairs x prompts x dims without materialising an [H, H] matrix per prompt. The k nearest
heads come from :func:`nearest_heads`, which works through the rows in chunks.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

METRICS = ("paired", "sliced_wasserstein")
DISTANCE_DTYPES = ("float64", "float32")
PROMPT_CHUNK_ELEMENTS = 1 << 24
#: Heads per side of one tile of the fused float32 kernel (a tile's prompt slice of one
#: side, dims x TILE float32, stays in L1 while the other side's heads pass over it).
TILE = 256
#: Matrix elements per row chunk of nearest_heads (bounds its working memory).
ROW_CHUNK_ELEMENTS = 1 << 22


def _symmetric(d: torch.Tensor) -> np.ndarray:
    d = (d + d.T) / 2
    d.fill_diagonal_(0.0)
    return d.cpu().numpy()


@numba.njit(inline="always")
def _tile_pair(t: int, n_t: int) -> tuple[int, int]:
    """The t-th tile pair (ti, tj), ti <= tj, of n_t tiles (row-major upper triangle)."""
    ti = 0
    while (ti + 1) * (2 * n_t - ti) // 2 <= t:
        ti += 1
    return ti, ti + t - ti * (2 * n_t - ti + 1) // 2


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _paired_tiles(x: np.ndarray, order: float, tile: int) -> np.ndarray:
    """Eq. 3 sums over prompts for every head pair, float32.

    x: [P, k, H] float32 (heads last, so the innermost loops run over contiguous heads).
    Returns [H, H] float32: sum over prompts of ||x[p, :, a] - x[p, :, b]||_order. The
    Euclidean case has its own inner loops (squares and sqrt vectorize; a power does not).
    """
    n_p, n_k, n_h = x.shape
    n_t = (n_h + tile - 1) // tile
    out = np.zeros((n_h, n_h), np.float32)
    euclid = order == 2.0
    o = np.float32(order)
    inv = np.float32(1.0 / order)
    for t in numba.prange(n_t * (n_t + 1) // 2):
        ti, tj = _tile_pair(t, n_t)
        a0, a1 = ti * tile, min(n_h, (ti + 1) * tile)
        b0, b1 = tj * tile, min(n_h, (tj + 1) * tile)
        nb = b1 - b0
        acc = np.zeros((a1 - a0, nb), np.float32)
        s = np.empty(nb, np.float32)
        y = np.empty((n_k, nb), np.float32)  # contiguous copies, so the loops vectorize
        xa = np.empty((a1 - a0, n_k), np.float32)
        for p in range(n_p):
            for k in range(n_k):
                for b in range(nb):
                    y[k, b] = x[p, k, b0 + b]
                for a in range(a1 - a0):
                    xa[a, k] = x[p, k, a0 + a]
            for a in range(a1 - a0):
                for b in range(nb):
                    s[b] = 0.0
                for k in range(n_k):
                    v = xa[a, k]
                    if euclid:
                        for b in range(nb):
                            d = v - y[k, b]
                            s[b] += d * d
                    else:
                        for b in range(nb):
                            s[b] += abs(v - y[k, b]) ** o
                if euclid:
                    for b in range(nb):
                        acc[a, b] += np.sqrt(s[b])
                else:
                    for b in range(nb):
                        acc[a, b] += s[b] ** inv
        for a in range(a1 - a0):
            for b in range(nb):
                out[a0 + a, b0 + b] = acc[a, b]
                out[b0 + b, a0 + a] = acc[a, b]
    return out


def paired_distances(points: np.ndarray | torch.Tensor, order: float = 2.0, dtype: str = "float64") -> np.ndarray:
    """The paper's head distance: D[a, b] = mean_p || z_p(a) - z_p(b) ||_order.

    Args:
        points: [H, P, k] embedding of every head on every prompt (float64 recommended).
        order: Minkowski order (> 0).
        dtype: "float64" (torch cdist over prompt chunks, exact) or "float32" (the fused
            numba kernel over tiles of head pairs, about 4x less memory and much faster on
            CPUs; for large atlases; its error is measured in benchmarks/large_atlas.py).
    Returns:
        [H, H] of `dtype`, symmetric, zero diagonal.
    """
    if dtype not in DISTANCE_DTYPES:
        raise ValueError(f"dtype must be one of {DISTANCE_DTYPES}, got {dtype!r}")
    if not (isinstance(order, (int, float, np.integer, np.floating)) and order > 0 and np.isfinite(order)):
        raise ValueError(f"order must be a finite number > 0, got {order!r}")
    if dtype == "float32":
        if isinstance(points, torch.Tensor):
            points = points.detach().cpu().numpy()
        z = np.asarray(points)
        if z.ndim != 3:
            raise ValueError(f"points must be [heads, prompts, dims], got shape {z.shape}")
        if not np.isfinite(z).all():
            raise ValueError("points contain NaN or infinite values")
        x = np.ascontiguousarray(z.transpose(1, 2, 0), dtype=np.float32)  # [P, k, H]
        total = _paired_tiles(x, float(order), TILE)
        total /= np.float32(z.shape[1])
        np.fill_diagonal(total, 0.0)
        return total
    z = torch.as_tensor(points, dtype=torch.float64)
    if z.ndim != 3:
        raise ValueError(f"points must be [heads, prompts, dims], got shape {tuple(z.shape)}")
    h, p, _ = z.shape
    by_prompt = z.transpose(0, 1).contiguous()  # [P, H, k]
    total = torch.zeros((h, h), dtype=torch.float64, device=z.device)
    step = max(1, PROMPT_CHUNK_ELEMENTS // (h * h))
    for s in range(0, p, step):
        chunk = by_prompt[s : s + step]
        total += torch.cdist(chunk, chunk, p=order, compute_mode="donot_use_mm_for_euclid_dist").sum(0)
    return _symmetric(total / p)


def sliced_wasserstein_distances(points: np.ndarray | torch.Tensor, n_projections: int = 64, seed: int = 0) -> np.ndarray:
    """Sliced 2-Wasserstein distance between the heads' point clouds (prompts unpaired).

    Each cloud is projected on n_projections seeded random unit directions; per direction
    the sorted projections are the cloud's quantile function, and
    SW2(a, b)^2 = mean over directions and quantiles of (q_a - q_b)^2.

    Args:
        points: [H, P, k]; every head has the same number of points P.
    Returns:
        [H, H] float64, symmetric, zero diagonal.
    """
    z = torch.as_tensor(points, dtype=torch.float64)
    if z.ndim != 3:
        raise ValueError(f"points must be [heads, prompts, dims], got shape {tuple(z.shape)}")
    h, p, k = z.shape
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((k, n_projections))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    proj = z @ torch.as_tensor(dirs, device=z.device)  # [H, P, R]
    quantiles = proj.sort(dim=1).values.reshape(h, -1) / np.sqrt(p * n_projections)
    return _symmetric(torch.cdist(quantiles, quantiles, compute_mode="donot_use_mm_for_euclid_dist"))


def head_distances(points, metric: str = "paired", **options) -> np.ndarray:
    """[H, H] distances between heads under `metric` (one of METRICS)."""
    if metric == "paired":
        return paired_distances(points, **options)
    if metric == "sliced_wasserstein":
        return sliced_wasserstein_distances(points, **options)
    raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")


def nearest_heads(
    distances: np.ndarray, k: int, candidates: np.ndarray | None = None, rows=None
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest heads of each query head, itself excluded, ties broken by head order
    (as a stable sort would): the one ranking behind similar_heads, summaries and the
    widgets. Rows are ranked in chunks (argpartition, then a sort of the k kept), so the
    working memory stays small for large float32 matrices.

    Args:
        distances: [H, H] head distances (float64 or float32).
        k: neighbours per query (>= 1).
        candidates: optional [H] bool, the heads that may be neighbours.
        rows: optional query head indices [Q] (default all H).
    Returns:
        index int64 [Q, k] (-1 where fewer than k candidates) and distance float64 [Q, k]
        (NaN there).
    """
    d = np.asarray(distances)
    if d.dtype not in (np.float32, np.float64):
        d = d.astype(np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square [H, H] matrix, got shape {d.shape}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = d.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"rows must index the {n} heads")
    # only candidate columns are ranked (cost H x |candidates|); ascending, so ties stay by head order
    if candidates is not None and np.shape(candidates) != (n,):
        raise ValueError(f"candidates must be [H] = ({n},) booleans, got shape {np.shape(candidates)}")
    cols = np.arange(n) if candidates is None else np.flatnonzero(np.asarray(candidates, bool))
    k_eff = min(k, len(cols))
    index = np.full((len(rows), k), -1, np.int64)
    dist = np.full((len(rows), k), np.nan)
    if k_eff == 0:
        return index, dist
    whole = len(cols) == n
    step = max(1, ROW_CHUNK_ELEMENTS // max(len(cols), 1))
    for s0 in range(0, len(rows), step):
        r = rows[s0 : s0 + step]
        block = d[r].copy() if whole else d[r][:, cols]  # [q, C]
        at = np.minimum(np.searchsorted(cols, r), len(cols) - 1)
        own = cols[at] == r  # a query among the candidates is not its own neighbour
        block[np.flatnonzero(own), at[own]] = np.inf
        order = _smallest(block, k_eff)
        near = np.take_along_axis(block, order, axis=1)
        ok = np.isfinite(near)
        index[s0 : s0 + len(r), :k_eff] = np.where(ok, cols[order], -1)
        dist[s0 : s0 + len(r), :k_eff] = np.where(ok, near, np.nan)
    return index, dist


def _smallest(block: np.ndarray, k: int) -> np.ndarray:
    """[q, k] column indices of the k smallest values of each row of block [q, H], in the
    order of a stable argsort (equal values by column)."""
    q, n = block.shape
    if k >= n:
        return np.argsort(block, axis=1, kind="stable")[:, :k]
    kth = np.partition(block, k - 1, axis=1)[:, k - 1 : k]  # [q, 1] the k-th smallest value
    less = block < kth
    ties = block == kth
    # of the values equal to the k-th, keep the first (by column) that fill the k places
    keep = less | (ties & (np.cumsum(ties, axis=1) <= k - less.sum(1, keepdims=True)))
    cols = np.nonzero(keep)[1].reshape(q, k)  # row-major: columns ascending within a row
    vals = np.take_along_axis(block, cols, axis=1)
    return np.take_along_axis(cols, np.argsort(vals, axis=1, kind="stable"), axis=1)
