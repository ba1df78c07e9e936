"""Maps of heads from their distance matrix (Isomap, UMAP, t-SNE, similarity-PCA) and
hierarchical clusters. Every method is seeded and deterministic."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

MAP_METHODS = ("isomap", "umap", "tsne", "pca")
LINKAGES = ("average", "complete", "single", "weighted", "ward")


def _check_square(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square matrix, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("distances contain NaN or infinite values")
    return d


def head_map(distances: np.ndarray, method: str = "isomap", dim: int = 3, n_neighbors: int = 16, seed: int = 0) -> np.ndarray:
    """[H, dim] coordinates of heads.

    Args:
        distances: [H, H] head distances.
        method: "isomap" (the paper's choice, n_neighbors=16), "umap", "tsne"
            (perplexity min(30, (H - 1) / 3)), or "pca" (the reference's PCA of the
            similarity matrix 1 / (0.001 + D), min-max scaled, unit diagonal).
        n_neighbors: neighbourhood size of isomap / umap (capped at H - 1).
        seed: random state (umap, tsne).
    """
    d = _check_square(distances)
    h = d.shape[0]
    if h < dim + 2:
        raise ValueError(f"need at least {dim + 2} heads for a {dim}-D map, got {h}")
    k = min(n_neighbors, h - 1)
    if method == "isomap":
        from sklearn.manifold import Isomap

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*connected components.*")
            return Isomap(n_neighbors=k, n_components=dim, metric="precomputed").fit_transform(d)
    if method == "umap":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap

            return umap.UMAP(
                n_neighbors=max(k, 2), n_components=dim, metric="precomputed", random_state=seed, n_jobs=1
            ).fit_transform(d)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(
            n_components=dim, metric="precomputed", init="random", random_state=seed,
            perplexity=min(30.0, (h - 1) / 3), method="exact" if dim > 3 else "barnes_hut",
        ).fit_transform(d)
    if method == "pca":
        from sklearn.decomposition import PCA

        s = 1.0 / (0.001 + d)
        s = (s - s.min()) / max(s.max() - s.min(), 1e-300)
        np.fill_diagonal(s, 1.0)
        return PCA(n_components=dim, random_state=seed).fit_transform(s)
    raise ValueError(f"unknown map method {method!r}; choose one of {MAP_METHODS}")


def cluster_heads(distances: np.ndarray, n_clusters: int = 8, method: str = "average") -> np.ndarray:
    """[H] hierarchical cluster labels 1..n_clusters (scipy linkage on the condensed
    distances, cut into at most n_clusters clusters)."""
    d = _check_square(distances)
    if method not in LINKAGES:
        raise ValueError(f"unknown linkage {method!r}; choose one of {LINKAGES}")
    if not 1 <= n_clusters <= d.shape[0]:
        raise ValueError(f"n_clusters must be in 1..{d.shape[0]}, got {n_clusters}")
    z = linkage(squareform(d, checks=False), method=method)
    return fcluster(z, t=n_clusters, criterion="maxclust")
