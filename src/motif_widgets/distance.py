"""Distances between heads, from each head's cloud of per-prompt embedding points.

- paired (the paper's eq. 3): mean over prompts of the distance between the two heads'
  points for the same prompt (Minkowski order 2 = Euclidean, 1 = Manhattan).
- sliced_wasserstein: a distributional metric that compares the two clouds without
  pairing prompts (paper section 4): the 2-Wasserstein distance of the clouds' 1-D
  projections, averaged over seeded random directions. Two heads that produce the same
  spread of patterns on different prompts are close under it, far under eq. 3.
"""

from __future__ import annotations

import numpy as np
import torch

METRICS = ("paired", "sliced_wasserstein")
PROMPT_CHUNK_ELEMENTS = 1 << 24


def _symmetric(d: torch.Tensor) -> np.ndarray:
    d = (d + d.T) / 2
    d.fill_diagonal_(0.0)
    return d.cpu().numpy()


def paired_distances(points: np.ndarray | torch.Tensor, order: float = 2.0) -> np.ndarray:
    """The paper's head distance: D[a, b] = mean_p || z_p(a) - z_p(b) ||_order.

    Args:
        points: [H, P, k] embedding of every head on every prompt (float64 recommended).
        order: Minkowski order.
    Returns:
        [H, H] float64, symmetric, zero diagonal.
    """
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
    (stable sort): the one ranking behind similar_heads, summaries and the widgets.

    Args:
        distances: [H, H] head distances.
        k: neighbours per query (>= 1).
        candidates: optional [H] bool, the heads that may be neighbours.
        rows: optional query head indices [Q] (default all H).
    Returns:
        index int64 [Q, k] (-1 where fewer than k candidates) and distance float64 [Q, k]
        (NaN there).
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square [H, H] matrix, got shape {d.shape}")
    n = d.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    d = d[rows].copy()
    d[np.arange(len(rows)), rows] = np.inf
    if candidates is not None:
        d[:, ~np.asarray(candidates, bool)] = np.inf
    k_eff = min(int(k), n)
    order = np.argsort(d, axis=1, kind="stable")[:, :k_eff]
    near = np.take_along_axis(d, order, axis=1)
    index = np.full((len(rows), k), -1, np.int64)
    dist = np.full((len(rows), k), np.nan)
    ok = np.isfinite(near)
    index[:, :k_eff] = np.where(ok, order, -1)
    dist[:, :k_eff] = np.where(ok, near, np.nan)
    return index, dist
