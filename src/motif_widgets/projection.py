"""Maps of heads from their distance matrix (Isomap, UMAP, t-SNE, similarity-PCA) and
hierarchical clusters. Every method is seeded and deterministic.

For large atlases, :func:`landmark_isomap` maps from the k-nearest-neighbour graph (the
atlas's neighbour index) with geodesic distances from a seeded sample of landmark heads
only (de Silva & Tenenbaum's landmark MDS), instead of Isomap's all-pairs geodesics and
dense [H, H] eigenproblem.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

MAP_METHODS = ("isomap", "umap", "tsne", "pca")
LINKAGES = ("average", "complete", "single", "weighted", "ward")


def _check_square(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d)
    if d.dtype not in (np.float32, np.float64):  # float32 matrices of large atlases stay float32
        d = d.astype(np.float64)
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


def landmark_isomap(
    neighbor_index: np.ndarray,
    neighbor_distance: np.ndarray,
    dim: int = 3,
    n_landmarks: int = 1000,
    seed: int = 0,
    distances: np.ndarray | None = None,
) -> np.ndarray:
    """[H, dim] Isomap coordinates from a kNN graph, with landmark MDS.

    The graph joins each head to its neighbours (undirected, edge = distance); geodesic
    distances are computed from `n_landmarks` seeded random heads only ([L, H] Dijkstra);
    classical MDS of the landmarks' geodesics places them, and every head is placed by
    distance-based triangulation from the landmarks (de Silva & Tenenbaum 2004). With
    n_landmarks >= H this is classical MDS of all geodesics, i.e. exact Isomap (up to the
    sign of each axis). Axes are sorted by variance, signs fixed (largest |coordinate|
    positive).

    Args:
        neighbor_index: [H, k] int neighbours of each head (-1 = none).
        neighbor_distance: [H, k] their distances.
        distances: optional [H, H]; when the graph falls apart into several components they
            are joined by their closest pairs (a minimum spanning tree over components), as
            Isomap does; without it a disconnected graph raises ValueError.
    """
    from scipy.linalg import eigh
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, dijkstra
    from threadpoolctl import threadpool_limits

    index = np.asarray(neighbor_index)
    dist = np.asarray(neighbor_distance, dtype=np.float64)
    if index.ndim != 2 or index.shape != dist.shape:
        raise ValueError(f"neighbor_index / neighbor_distance must be two [H, k] arrays, got {index.shape} / {dist.shape}")
    h = index.shape[0]
    if h < dim + 2:
        raise ValueError(f"need at least {dim + 2} heads for a {dim}-D map, got {h}")
    ok = index >= 0
    if not np.isfinite(dist[ok]).all():
        raise ValueError("neighbor_distance contains NaN or infinite values for existing neighbours")
    tiny = 1e-12  # a zero weight would be no edge in a sparse graph
    rows = np.repeat(np.arange(h), index.shape[1])[ok.ravel()]
    graph = coo_matrix((np.maximum(dist[ok], tiny), (rows, index[ok])), shape=(h, h)).tocsr()
    n_comp, labels = connected_components(graph, directed=False)
    if n_comp > 1:
        if distances is None:
            raise ValueError(f"the neighbour graph has {n_comp} components; pass distances= to join them")
        graph = _join_components(graph, labels, n_comp, np.asarray(distances), tiny)
    rng = np.random.default_rng(seed)
    n_l = min(int(n_landmarks), h)
    landmarks = np.sort(rng.choice(h, n_l, replace=False)) if n_l < h else np.arange(h)
    geo = dijkstra(graph, directed=False, indices=landmarks)  # [L, H]
    sq = geo**2
    lsq = sq[:, landmarks]
    lsq = (lsq + lsq.T) / 2
    col_mean = lsq.mean(0)  # [L]
    centred = -0.5 * (lsq - col_mean[None, :] - lsq.mean(1)[:, None] + lsq.mean())
    # only the top `dim` eigenpairs, on one BLAS thread: on a busy machine threaded LAPACK took
    # seconds for L = 1,000 where one thread takes ~0.2 s
    with threadpool_limits(1):
        values, vectors = eigh(centred, subset_by_index=[max(n_l - dim, 0), n_l - 1])
    top = np.argsort(values)[::-1][:dim]
    values, vectors = values[top], vectors[:, top]
    if (values <= 0).any():
        raise ValueError(f"landmark MDS found fewer than {dim} positive eigenvalues; use more landmarks")
    pseudo = vectors / np.sqrt(values)  # [L, dim]
    coords = -0.5 * (sq - col_mean[:, None]).T @ pseudo  # [H, dim]
    coords -= coords.mean(0)
    signs = np.sign(coords[np.argmax(np.abs(coords), axis=0), np.arange(dim)])
    return coords * np.where(signs == 0, 1.0, signs)


def _join_components(graph, labels: np.ndarray, n_comp: int, distances: np.ndarray, tiny: float):
    """The graph plus, for each edge of a minimum spanning tree over the components (weight:
    the smallest distance between them), the closest pair of heads of those components."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    h = len(labels)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_comp))
    closest = np.full((n_comp, n_comp), np.inf)
    step = max(1, (1 << 22) // h)
    for r0 in range(0, h, step):
        block = np.asarray(distances[r0 : r0 + step], dtype=np.float64)[:, order]
        mins = np.minimum.reduceat(block, bounds, axis=1)  # [rows, n_comp]
        np.minimum.at(closest, labels[r0 : r0 + step], mins)
    closest = np.minimum(closest, closest.T) + tiny
    np.fill_diagonal(closest, 0.0)
    tree = minimum_spanning_tree(closest).tocoo()
    add_rows, add_cols, add_w = [], [], []
    for c1, c2 in zip(tree.row, tree.col):
        a, b = np.flatnonzero(labels == c1), np.flatnonzero(labels == c2)
        sub = np.asarray(distances[np.ix_(a, b)], dtype=np.float64)
        i, j = np.unravel_index(np.argmin(sub), sub.shape)
        add_rows.append(a[i]), add_cols.append(b[j]), add_w.append(max(sub[i, j], tiny))
    extra = coo_matrix((add_w, (add_rows, add_cols)), shape=(h, h)).tocsr()
    return graph + extra


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


#: Cluster counts tried by choose_n_clusters.
N_CLUSTER_RANGE = (4, 12)


def choose_n_clusters(
    distances: np.ndarray, method: str = "ward", n_range: tuple[int, int] = N_CLUSTER_RANGE
) -> tuple[int, dict[int, float]]:
    """The number of clusters by a stated criterion: the k in n_range (inclusive, capped at
    H - 1) whose hierarchical clustering has the largest mean silhouette on the distances.

    Returns:
        (k, {k: silhouette}) — for fewer than 3 heads, (H, {}).
    """
    from sklearn.metrics import silhouette_score

    d = _check_square(distances)
    h = d.shape[0]
    lo, hi = int(n_range[0]), min(int(n_range[1]), h - 1)
    if h < 3 or hi < 2:
        return h, {}
    z = linkage(squareform(d, checks=False), method=method)
    scores = {}
    for k in range(max(2, lo), hi + 1):
        labels = fcluster(z, t=k, criterion="maxclust")
        if len(np.unique(labels)) >= 2:
            scores[k] = float(silhouette_score(d, labels, metric="precomputed"))
    if not scores:
        return min(lo, h), {}
    return max(scores, key=lambda k: (scores[k], -k)), scores


#: What names a family: (name, head-type score, minimum cluster mean), most specific first.
FAMILY_TRAITS: tuple[tuple[str, str, float], ...] = (
    ("induction", "induction", 0.3),
    ("duplicate-token", "duplicate_token", 0.3),
    ("previous-token", "previous_token", 0.35),
    ("self", "self", 0.3),
    ("sink", "first_token", 0.5),
    ("recent", "recent", 0.3),
    ("diffuse", "diffuse", 0.5),
)


def name_families(labels: np.ndarray, scores) -> dict[int, str]:
    """A name for each cluster from its heads' mean head-type scores.

    A cluster takes the names of the traits (FAMILY_TRAITS) whose mean score reaches the
    trait's minimum, the more specific first (FAMILY_TRAITS order), at most two
    ("previous-token + recent");
    none: "mixed". Clusters that would share a name are told apart by the trait on which
    each stands out most from all heads (largest z-score of its mean: "sink, induction-leaning"),
    and numbered if that does not separate them.

    Args:
        labels: [H] cluster labels.
        scores: [H, S] DataFrame of head-type scores (Atlas.head_scores()); missing scores
            (e.g. token scores without token ids) are skipped.
    Returns:
        {cluster label: name}.
    """
    labels = np.asarray(labels)
    means = scores.groupby(labels).mean()
    z = (means - scores.mean()) / scores.std(ddof=0).replace(0, 1)
    trait_of = {score: name for name, score, _ in FAMILY_TRAITS}
    names = {}
    for c, row in means.iterrows():
        passed = [
            (row[score] / minimum, name) for name, score, minimum in FAMILY_TRAITS if score in row and row[score] >= minimum
        ]
        names[int(c)] = " + ".join(name for _, name in passed[:2]) or "mixed"  # in FAMILY_TRAITS order
    for name in {n for n in names.values() if list(names.values()).count(n) > 1}:
        for c in [c for c in names if names[c] == name]:
            leaning = [s for s in z.columns if s in trait_of and trait_of[s] not in name.split(" + ")]
            best = max(leaning, key=lambda s: z.loc[c, s], default=None)
            if best is not None:
                names[c] = f"{name}, {trait_of[best]}-leaning"
    sizes = {int(c): int((labels == c).sum()) for c in means.index}
    out, seen = {}, {}
    for c in sorted(names, key=lambda c: (-sizes[c], c)):
        seen[names[c]] = seen.get(names[c], 0) + 1
        out[c] = names[c] if seen[names[c]] == 1 else f"{names[c]} {seen[names[c]]}"
    return out
