"""Pack an Atlas's own results into widget trait values (pure data plumbing, no analysis).

Every function reads what the atlas computes (head table, scores, known classes, clusters,
thumbnails, PCA points, head map, distances) and returns plain dicts of trait values: arrays
for the binary traits, small lists / dicts for the JSON ones. Heads keep the atlas's order
(index h = row h of ``atlas.heads``); pattern points are head-major (index h * P + p).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..atlas import Atlas
from ..detect import known_class_groups
from ..distance import nearest_heads as _nearest_heads
from ._serialization import encode_patterns

#: Neighbours shipped per head (and per head and model): the similar-heads panel shows up to
#: this many without asking the kernel.
DEFAULT_N_NEIGHBORS = 20
#: Pattern points the cloud ships at most (it stays interactive with 200k); larger atlases
#: show every head on an evenly spaced subset of the prompts (see cloud()).
MAX_PATTERN_POINTS = 200_000
HEAD_MAP_METHODS = ("isomap", "umap", "tsne", "pca")


def head_identity(atlas: Atlas) -> dict:
    """head_ids [H], model_names [M], model_layers [M], head_model / head_layer / head_number
    uint16 [H] (model index, layer, head within the layer)."""
    heads = atlas.heads
    names = atlas.model_names
    return {
        "head_ids": atlas.head_ids,
        "model_names": names,
        "model_layers": [int(atlas.data.models[m].n_layers) for m in names],
        "head_model": heads["model"].map({m: k for k, m in enumerate(names)}).to_numpy(np.uint16),
        "head_layer": heads["layer"].to_numpy(np.uint16),
        "head_number": heads["head_index"].to_numpy(np.uint16),
    }


def head_scores(atlas: Atlas) -> dict:
    """score_names [S] and head_scores float32 [H, S] (atlas.head_scores())."""
    table = atlas.head_scores()
    return {"score_names": list(table.columns), "head_scores": table.to_numpy(np.float32)}


def known_classes(atlas: Atlas) -> dict:
    """known_classes {str(head index): [class, ...]} for labelled heads only, and
    known_class_colors {class: "#rrggbb"} of the classes that occur."""
    series = atlas.known_classes()
    groups = known_class_groups()
    labelled = {str(h): list(c) for h, c in enumerate(series) if len(c)}
    present = sorted({c for cs in labelled.values() for c in cs})
    return {
        "known_classes": labelled,
        "known_class_colors": {c: groups.get(c, {}).get("color", "#888888") for c in present},
    }


def clusters(atlas: Atlas, n_clusters: int | None) -> dict:
    """clusters uint16 [H] (labels 1..n, atlas.clusters; n_clusters None = chosen by
    silhouette) and cluster_names [n] (the family name of cluster c at c - 1), or None /
    [] for a one-head atlas."""
    if len(atlas.head_ids) < 2:
        return {"clusters": None, "cluster_names": []}
    labels = atlas.clusters(n_clusters)
    families = atlas.families(n_clusters)
    names = {int(c): f for c, f in zip(labels, families)}
    return {
        "clusters": labels.to_numpy(np.uint16),
        "cluster_names": [names.get(c, f"cluster {c}") for c in range(1, int(labels.max()) + 1)],
    }


#: Bytes of pattern thumbnails a live widget sends to the browser at most (see thumbnail_plan).
MAX_THUMBNAIL_BYTES = 40_000_000
#: Thumbnails are never cut below this many tokens to fit a budget; prompts are dropped instead.
MIN_THUMBNAIL_TOKENS = 16


def thumbnail_plan(n_heads: int, slots: int, k: int, itemsize: int, max_bytes: float | None) -> tuple[int, list[int]]:
    """(tokens kept per thumbnail, thumbnail slots kept) so that n_heads x slots x k x k x
    itemsize bytes fit `max_bytes`: every slot at the largest size <= k that fits (never below
    MIN_THUMBNAIL_TOKENS); past that, fewer slots (spread evenly) at that size."""
    if max_bytes is None or n_heads * slots * k * k * itemsize <= max_bytes:
        return k, list(range(slots))
    fit = int((max_bytes / max(1, n_heads * slots * itemsize)) ** 0.5)
    size = max(min(k, MIN_THUMBNAIL_TOKENS), min(k, fit))
    n = int(max_bytes // max(1, n_heads * size * size * itemsize))
    if n >= slots:
        return size, list(range(slots))
    n = max(1, n)
    return size, sorted({int(round(i * (slots - 1) / max(1, n - 1))) for i in range(n)})


def thumbnails(atlas: Atlas, encoding: str = "float16", max_bytes: float | None = MAX_THUMBNAIL_BYTES) -> dict:
    """thumbnails [H, T, K, K] (encoded patterns: the first K tokens of T prompts),
    thumbnail_prompts [T] ids, thumbnail_tokens [M][T][<=K] token strings,
    thumbnail_lengths uint16 [M, T] (tokens shown: min(prompt length, K)) and prompt_tokens
    [M][P][n] (every prompt's full tokens, per model). The atlas's thumbnails are cut to fit
    `max_bytes` (thumbnail_plan): K below the atlas's size first, then fewer prompts. Only the
    shipped part is read (thumbnails left on disk: those prompts' columns, k x k of each)."""
    data = atlas.data.thumbnails
    itemsize = np.dtype(np.float16 if encoding == "float16" else np.uint8).itemsize
    k, slots = thumbnail_plan(data.shape[0], data.shape[1], data.shape[-1], itemsize, max_bytes)
    prompts = [int(atlas.data.thumbnail_prompts[s]) for s in slots]
    tokens, lengths, full = [], [], []
    for name in atlas.model_names:
        model = atlas.data.models[name]
        shown = [min(k, int(model.lengths[q])) for q in prompts]  # tokens of each thumbnail (k <= K)
        tokens.append([[str(t) for t in model.token_strs[q][:m]] for q, m in zip(prompts, shown)])
        lengths.append(shown)
        full.append([[str(t) for t in strs] for strs in model.token_strs])
    return {
        "thumbnails": encode_patterns(data[:, slots, :k, :k], encoding),
        "thumbnail_prompts": [atlas.prompt_ids[int(atlas.data.thumbnail_prompts[s])] for s in slots],
        "thumbnail_tokens": tokens,
        "thumbnail_lengths": np.asarray(lengths, dtype=np.uint16).reshape(len(tokens), -1),
        "prompt_tokens": full,
    }


def nearest_heads(distances: np.ndarray, k: int, candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """distance.nearest_heads as trait values: index int32 [H, k] (-1 padded) and distance
    float32 [H, k] (NaN padded)."""
    index, dist = _nearest_heads(distances, k, candidates)
    return index.astype(np.int32), dist.astype(np.float32)


def neighbors(atlas: Atlas, n_neighbors: int = DEFAULT_N_NEIGHBORS) -> dict:
    """neighbor_index int32 [H, k] / neighbor_distance float32 [H, k] over all heads and, for
    atlases of several models, model_neighbor_index / model_neighbor_distance [M, H, k]: the
    nearest heads within each model (padded with -1 / NaN)."""
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    index, dist = atlas.neighbors(n_neighbors)  # the atlas's precomputed index
    index, dist = index.astype(np.int32), dist.astype(np.float32)
    out = {"neighbor_index": index, "neighbor_distance": dist, "model_neighbor_index": None, "model_neighbor_distance": None}
    names = atlas.model_names
    if len(names) > 1:
        d = atlas.distances
        model = atlas.heads["model"].to_numpy()
        per_model = [nearest_heads(d, n_neighbors, model == name) for name in names]
        out["model_neighbor_index"] = np.stack([p[0] for p in per_model])
        out["model_neighbor_distance"] = np.stack([p[1] for p in per_model])
    return out


def _first3(x: np.ndarray) -> np.ndarray:
    """[..., k] -> [..., 3] float32 (zero-padded when k < 3)."""
    out = np.zeros(x.shape[:-1] + (3,), np.float32)
    out[..., : min(3, x.shape[-1])] = x[..., :3]
    return out


def shown_prompts(n_heads: int, n_prompts: int, max_points: int = MAX_PATTERN_POINTS) -> np.ndarray:
    """int64 [P'] prompts the cloud shows: all, or evenly spaced ones (first included) so
    that H * P' <= max_points (at least one prompt)."""
    keep = max(1, min(n_prompts, max_points // max(n_heads, 1)))
    return np.unique(np.linspace(0, n_prompts - 1, keep).round().astype(np.int64))


def cloud(atlas: Atlas, head_map_method: str = "isomap", max_points: int = MAX_PATTERN_POINTS) -> dict:
    """pattern_points float32 [H * P', 3] (first 3 PCs of every (head, prompt) pattern),
    pattern_scores float16 [H * P', S] (per-pattern head-type scores, NaN where undefined),
    head_points float32 [H, 3] (atlas.head_map; the heads' mean PCA point for atlases of fewer
    than 5 heads), prompt ids / kinds [P'] and axis labels. P' = P unless H * P exceeds
    max_points: then the P' evenly spaced prompts of shown_prompts."""
    if head_map_method not in HEAD_MAP_METHODS:
        raise ValueError(f"unknown head map {head_map_method!r}; choose one of {HEAD_MAP_METHODS}")
    shown = shown_prompts(len(atlas.head_ids), len(atlas.prompts), max_points)
    all_prompts = len(shown) == len(atlas.prompts)
    points = atlas.points if all_prompts else atlas.points[:, shown]
    h, p, _ = points.shape
    names = list(atlas.head_scores().columns)
    per_pattern = (
        np.stack([atlas.prompt_scores(s).to_numpy()[:, shown] for s in names], -1) if names else np.zeros((h, p, 0))
    )
    ratio = atlas.embedding.explained_variance_ratio_
    pattern_labels = [f"PC{i + 1} ({ratio[i]:.0%})" if i < len(ratio) else "" for i in range(3)]
    if h >= 5:
        head_points = _first3(atlas.head_map(head_map_method, 3).to_numpy())
        head_labels = [f"{head_map_method} {i + 1}" for i in range(3)]
    else:
        head_points = _first3(atlas.points.mean(1))
        head_labels = [f"mean PC{i + 1}" for i in range(3)]
    return {
        "pattern_points": _first3(points).reshape(h * p, 3),
        "pattern_scores": per_pattern.reshape(h * p, -1).astype(np.float16),
        "head_points": head_points,
        "prompt_ids": [atlas.prompt_ids[k] for k in shown],
        "prompt_kinds": [atlas.prompts[k].kind for k in shown],
        "pattern_axis_labels": pattern_labels,
        "head_axis_labels": head_labels,
    }


#: Columns of atlas.data.head_stats that name a partner head (not numbers).
PARTNER_COLUMNS = ("q_comp_partner", "k_comp_partner", "v_comp_partner")
#: Plain-language accounts (Atlas.describe) are shipped for atlases of at most this many heads.
MAX_DESCRIBED_HEADS = 1000
#: Quantiles of all head-pair distances shipped per channel (percentiles in the panel).
N_QUANTILES = 1001


def head_stats(atlas: Atlas) -> dict:
    """What the atlas knows about what heads do (Atlas.add_circuits): stat_names [S'] (numeric
    head_stats columns), head_stats float32 [H, S'] (NaN where unknown) and comp_partners
    int32 [H, 3] (head index of the strongest Q / K / V composition partner, -1 if none);
    None / [] without circuits."""
    stats = atlas.data.head_stats
    if stats is None or not len(stats.columns):
        return {"stat_names": [], "head_stats": None, "comp_partners": None}
    stats = stats.reindex(atlas.head_ids)
    numeric = [
        c for c in stats.columns
        if c not in PARTNER_COLUMNS and pd.api.types.is_numeric_dtype(stats[c]) and not pd.api.types.is_bool_dtype(stats[c])
    ]
    index = {h: i for i, h in enumerate(atlas.head_ids)}
    partners = np.full((len(atlas.head_ids), 3), -1, np.int32)
    for j, col in enumerate(PARTNER_COLUMNS):
        if col in stats.columns:
            partners[:, j] = [index.get(p, -1) if isinstance(p, str) else -1 for p in stats[col]]
    return {
        "stat_names": numeric,
        "head_stats": stats[numeric].to_numpy(np.float32) if numeric else None,
        "comp_partners": partners if any(c in stats.columns for c in PARTNER_COLUMNS) else None,
    }


def descriptions(atlas: Atlas, limit: int = MAX_DESCRIBED_HEADS) -> dict:
    """head_descriptions [H]: Atlas.describe of every head ([] for atlases above `limit` heads,
    where describing every head up front would slow the widget down)."""
    if len(atlas.head_ids) > limit:
        return {"head_descriptions": []}
    return {"head_descriptions": [atlas.describe(h) for h in atlas.head_ids]}


def available_channels(atlas: Atlas) -> list[str]:
    """Evidence channels of similar_heads(by=...) this atlas has: "pattern" and, with circuits,
    "circuits", "effects" and "combined" (those whose columns it holds)."""
    from ..evidence import CHANNELS

    out = []
    for by in CHANNELS:
        try:
            atlas.evidence_distances(by)
        except ValueError:
            continue
        out.append(by)
    return out


def distance_quantiles(d: np.ndarray, n: int = N_QUANTILES) -> np.ndarray:
    """float32 [n]: quantiles 0, 1/(n-1), ..., 1 of the distances of all distinct head pairs
    (gathered row by row: no [H * (H - 1) / 2] index arrays)."""
    h = len(d)
    upper = np.empty(h * (h - 1) // 2, dtype=d.dtype)
    at = 0
    for i in range(h - 1):
        upper[at : at + h - 1 - i] = d[i, i + 1 :]
        at += h - 1 - i
    upper = upper[np.isfinite(upper)]
    if not upper.size:
        return np.zeros(n, np.float32)
    return np.quantile(upper, np.linspace(0.0, 1.0, n)).astype(np.float32)


def channel_neighbors(atlas: Atlas, n_neighbors: int) -> dict:
    """similar_channels [C] (available_channels, "pattern" first), channel_neighbor_index int32
    [C - 1, H, k] / channel_neighbor_distance float32 [C - 1, H, k] for the channels beside
    "pattern" (whose table is neighbor_index) or None, and distance_quantiles float32 [C, n]
    (for percentiles among all head pairs)."""
    channels = available_channels(atlas)
    extra = [nearest_heads(atlas.evidence_distances(by), n_neighbors) for by in channels[1:]]
    return {
        "similar_channels": channels,
        "channel_neighbor_index": np.stack([e[0] for e in extra]) if extra else None,
        "channel_neighbor_distance": np.stack([e[1] for e in extra]) if extra else None,
        "distance_quantiles": np.stack([distance_quantiles(atlas.evidence_distances(by)) for by in channels])
        if len(atlas.head_ids) > 1 else None,
    }
