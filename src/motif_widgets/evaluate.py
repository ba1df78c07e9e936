"""Does similar-head search find heads of the same kind? Metrics on an Atlas.

The paper shows pictures, not numbers. These functions measure the method on heads whose
kind is known (ground truth, or labels from the head-type scores of :mod:`.detect`):

- :func:`label_heads`: a label per head from head-type scores and thresholds.
- :func:`retrieval_metrics`: precision@k, R-precision and mean average precision of
  same-label heads among each labelled head's nearest neighbours, per label and overall,
  with the expected value of a random ranking. Works on any distance matrix.
- :func:`split_half_stability`: Spearman correlation of the head distances computed on
  two disjoint halves of the prompts (each half gets its own z-score + PCA).
- :func:`cross_model_transfer`: for one model's heads of a label, the share of their
  nearest heads in another model that carry the same label.
- :func:`compare`: all of the above for several feature sets and distance metrics.
- :func:`layer_profile`: per (model, layer) mean attention on the previous / nearby /
  first token and mean normalised row entropy.

Every function returns plain numbers or pandas tables; nothing here plots.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr

from .atlas import Atlas

DEFAULT_THRESHOLDS: dict[str, float] = {"induction": 0.4, "previous_token": 0.4}
LAYER_PROFILE_SCORES = ("previous_token", "recent", "first_token", "diffuse")


# ---------------------------------------------------------------------------- labels
def label_heads(
    atlas: Atlas, thresholds: Mapping[str, float] | None = None, prompts="probes"
) -> pd.Series:
    """A label per head from its head-type scores.

    A head gets the name of every score that reaches its threshold; when it passes several,
    the highest score wins. Heads passing none get None (they stay candidates in neighbour
    lists, as in a real search).

    Args:
        atlas: any atlas.
        thresholds: {score name: minimum score}; default {"induction": 0.4,
            "previous_token": 0.4}.
        prompts: which prompts the scores are averaged over ("probes" = the
            repeated-random-token probes, where induction heads show themselves; or "all",
            "texts", "auto", or a list of prompt ids; see Atlas.head_scores).
    Returns:
        [H] Series of str or None, indexed by head id, named "label".
    """
    thresholds = dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    if not thresholds:
        raise ValueError("thresholds is empty: give at least one {score: threshold}")
    scores = atlas.head_scores(prompts=prompts)
    missing = [s for s in thresholds if s not in scores.columns]
    if missing:
        raise ValueError(
            f"scores {missing} are not available on prompts={prompts!r} (available: {list(scores.columns)}); "
            "token scores like 'induction' need prompts with token ids and repeated tokens (probes)"
        )
    names = list(thresholds)
    values = scores[names].to_numpy()  # [H, L]
    passing = np.where(values >= np.array([thresholds[n] for n in names]), values, -np.inf)
    best = passing.argmax(1)
    has_label = np.isfinite(passing.max(1))
    labels = [names[b] if ok else None for b, ok in zip(best, has_label)]
    return pd.Series(labels, index=scores.index, name="label", dtype=object)


def _label_array(labels, n: int, index: pd.Index | None) -> np.ndarray:
    """Labels as an object array of length n with None for unlabelled heads."""
    if isinstance(labels, pd.Series) and index is not None:
        if not labels.index.equals(index):
            unknown = index.difference(labels.index)
            if len(unknown):
                raise ValueError(f"labels lack heads of the distance matrix, e.g. {list(unknown[:3])}")
            labels = labels.reindex(index)
    arr = np.asarray(list(labels), dtype=object)
    if arr.shape != (n,):
        raise ValueError(f"need one label per head: {n} heads, got labels of shape {arr.shape}")
    return np.array([None if (x is None or (isinstance(x, float) and np.isnan(x)) or x == "") else x for x in arr], dtype=object)


# ---------------------------------------------------------------------------- retrieval
def retrieval_metrics(
    distances, labels, ks: Sequence[int] = (1, 3, 5), ambiguous: Mapping[str, Sequence[bool]] | pd.DataFrame | None = None
) -> pd.DataFrame:
    """How well nearest-neighbour search retrieves heads of the same label.

    Every labelled head whose class has at least 2 members is a query; all other heads
    (unlabelled included) are ranked by distance, nearest first (ties keep head order).
    Per query: precision@k = share of same-label heads among the k nearest;
    R-precision = precision@R with R = class size - 1; average precision = mean of the
    precision at the rank of each same-label head. Per label and overall ("overall":
    every query counts once) these are averaged over queries; ``random`` is the expected
    precision of a random ranking, (class size - 1) / (H - 1), averaged the same way.

    Args:
        distances: [H, H] array or DataFrame (then labels may be a Series indexed by head).
        labels: [H] label per head; None / NaN / "" = unlabelled.
        ks: the k of precision@k, each 1 <= k <= H - 1.
        ambiguous: optional {label: [H] bool} (or a DataFrame with a bool column per label,
            see :func:`ambiguous_heads`): heads whose score for that label lies just under
            its threshold count as neither hit nor miss: they are removed from the ranking
            of that label's queries (and from the random baseline), so R-precision measures
            how well clear members are separated from clear non-members.
    Returns:
        DataFrame indexed by label (sorted, then "overall") with columns n_heads (class
        size), p@k for each k, r_precision, map, random. A class of one head gets a row
        of NaN metrics and is left out of "overall".
    """
    index = distances.index if isinstance(distances, pd.DataFrame) else None
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square [H, H] matrix, got shape {d.shape}")
    n = d.shape[0]
    if n < 2 or not np.isfinite(d).all():
        raise ValueError("distances must be finite and cover at least 2 heads")
    ks = [int(k) for k in ks]
    if not ks or any(not 1 <= k <= n - 1 for k in ks):
        raise ValueError(f"every k must be in 1..{n - 1} (H - 1), got {ks}")
    lab = _label_array(labels, n, index)
    classes = sorted({x for x in lab if x is not None}, key=str)
    if not classes:
        raise ValueError("no head is labelled")
    sizes = {c: int(sum(x == c for x in lab)) for c in classes}
    if max(sizes.values()) < 2:
        raise ValueError(f"every label has a single head ({sizes}); retrieval needs a class of at least 2")
    skip = _ambiguous_masks(ambiguous, classes, n, index, lab)

    per_query = []  # (label, {metric: value})
    for i in np.nonzero([x is not None and sizes[x] >= 2 for x in lab])[0]:
        order = np.argsort(d[i], kind="stable")
        order = order[(order != i) & ~skip[lab[i]][order]]
        relevant = np.array([x == lab[i] for x in lab[order]])  # [candidates]
        hits = np.cumsum(relevant)
        r = sizes[lab[i]] - 1
        ranks = np.nonzero(relevant)[0] + 1
        row = {f"p@{k}": hits[min(k, len(order)) - 1] / k for k in ks}
        row["r_precision"] = hits[r - 1] / r
        row["map"] = float(np.mean(hits[ranks - 1] / ranks))
        row["random"] = r / len(order)
        per_query.append((lab[i], row))

    table = pd.DataFrame([row for _, row in per_query], index=pd.Index([c for c, _ in per_query], name="label"))
    columns = [f"p@{k}" for k in ks] + ["r_precision", "map", "random"]
    out = table.groupby(level=0, sort=False).mean().reindex(classes, columns=columns)
    out.loc["overall"] = table[columns].mean()
    out.insert(0, "n_heads", [sizes[c] for c in classes] + [sum(s for s in sizes.values() if s >= 2)])
    out.index.name = "label"
    return out


def _ambiguous_masks(ambiguous, classes, n: int, index: pd.Index | None, lab: np.ndarray) -> dict[str, np.ndarray]:
    """{label: [H] bool} of heads left out of that label's rankings (never its own members)."""
    masks = {c: np.zeros(n, bool) for c in classes}
    if ambiguous is None:
        return masks
    items = ambiguous.items() if isinstance(ambiguous, (Mapping, pd.DataFrame)) else None
    if items is None:
        raise TypeError(f"ambiguous must be a {{label: [H] bool}} mapping or DataFrame, got {type(ambiguous).__name__}")
    for c, mask in items:
        if c not in masks:
            continue
        if isinstance(mask, pd.Series) and index is not None:
            mask = mask.reindex(index, fill_value=False)
        m = np.asarray(mask, dtype=bool)
        if m.shape != (n,):
            raise ValueError(f"ambiguous[{c!r}] must hold one bool per head ({n}), got shape {m.shape}")
        masks[c] = m & (lab != c)
    return masks


def ambiguous_heads(
    atlas: Atlas, bands: Mapping[str, tuple[float, float]] | None = None, prompts="probes"
) -> pd.DataFrame:
    """Heads whose score lies in an "ambiguous band" just under a label's threshold.

    Args:
        bands: {score: (low, threshold)}; default (0.2, 0.4) for induction and previous_token
            (the DEFAULT_THRESHOLDS with a band down to half of them).
        prompts: as for :func:`label_heads`.
    Returns:
        [H, labels] bool DataFrame indexed by head id: low <= score < threshold.
    """
    bands = dict(bands or {k: (v / 2, v) for k, v in DEFAULT_THRESHOLDS.items()})
    scores = atlas.head_scores(prompts=prompts)
    out = {}
    for name, (low, high) in bands.items():
        if name not in scores.columns:
            raise ValueError(f"bands: score {name!r} is not available (have {list(scores.columns)})")
        if not low <= high:
            raise ValueError(f"bands: {name!r} needs low <= threshold, got ({low}, {high})")
        out[name] = (scores[name] >= low) & (scores[name] < high)
    return pd.DataFrame(out, index=scores.index)


# ---------------------------------------------------------------------------- prompt subsets
def subset_prompts(atlas: Atlas, prompts: Sequence[str]) -> Atlas:
    """The atlas restricted to some prompts, as if it had been built on them alone
    (Atlas.take_prompts, in the atlas's prompt order; duplicates ignored)."""
    wanted = set(prompts)
    unknown = wanted - set(atlas.prompt_ids)
    if unknown:
        raise ValueError(f"unknown prompt ids {sorted(unknown)[:5]}")
    return atlas.take_prompts([p for p in atlas.prompt_ids if p in wanted])


def split_prompts(atlas: Atlas, seed: int = 0) -> tuple[list[str], list[str]]:
    """Two disjoint halves of the atlas's prompt ids, texts and probes each split evenly
    at random (a group of odd size gives its extra prompt to the first half)."""
    rng = np.random.default_rng(seed)
    halves: tuple[list[str], list[str]] = ([], [])
    for is_probe in (False, True):
        group = [p.id for p in atlas.prompts if p.is_probe == is_probe]
        group = [group[k] for k in rng.permutation(len(group))]
        cut = (len(group) + 1) // 2
        halves[0].extend(group[:cut])
        halves[1].extend(group[cut:])
    if not halves[0] or not halves[1]:
        raise ValueError(f"need at least 2 prompts to split the atlas in halves, it has {len(atlas.prompts)}")
    return halves


def _upper(d: np.ndarray) -> np.ndarray:
    return d[np.triu_indices_from(d, k=1)]


def split_half_stability(atlas: Atlas, seed: int = 0) -> float:
    """Spearman correlation of head distances computed on two disjoint prompt halves.

    Each half (see :func:`split_prompts`) gets its own embedding and distances under the
    atlas's config; the correlation is over the H (H - 1) / 2 head pairs.
    """
    if len(atlas.head_ids) < 3:
        raise ValueError("split-half stability needs at least 3 heads")
    first, second = split_prompts(atlas, seed)
    rho = spearmanr(_upper(subset_prompts(atlas, first).distances), _upper(subset_prompts(atlas, second).distances))
    return float(rho.statistic)


# ---------------------------------------------------------------------------- across models
def cross_model_transfer(
    atlas: Atlas,
    source_model: str,
    target_model: str,
    label: str = "induction",
    k: int = 5,
    labels: pd.Series | None = None,
) -> pd.DataFrame:
    """For each `label` head of the source model, how many of its k nearest heads in the
    target model carry the same label.

    Args:
        atlas: a multi-model atlas (Atlas.from_models / merge).
        labels: [H] labels per head id (default: label_heads(atlas)).
    Returns:
        DataFrame indexed by source head: nearest (the k target heads, nearest first,
        comma-separated), hits (how many are `label` heads), share (hits / k), and random
        (share of the target's heads labelled `label`: the expectation for random picks).
    """
    for m in (source_model, target_model):
        if m not in atlas.model_names:
            raise ValueError(f"unknown model {m!r}; atlas has {atlas.model_names}")
    if source_model == target_model:
        raise ValueError("source and target model must differ")
    labels = label_heads(atlas) if labels is None else labels.reindex(atlas.head_ids)
    model = atlas.heads["model"].to_numpy()
    target = np.nonzero(model == target_model)[0]
    if not 1 <= k <= len(target):
        raise ValueError(f"k must be in 1..{len(target)} (heads of {target_model}), got {k}")
    sources = [i for i in np.nonzero(model == source_model)[0] if labels.iloc[i] == label]
    if not sources:
        raise ValueError(f"model {source_model!r} has no head labelled {label!r}")
    target_labels = labels.iloc[target].to_numpy()
    rows = []
    for i in sources:
        nearest = target[np.argsort(atlas.distances[i, target], kind="stable")[:k]]
        hits = int(sum(labels.iloc[j] == label for j in nearest))
        rows.append(
            {
                "nearest": ", ".join(atlas.head_ids[j].split(":", 1)[1] for j in nearest),
                "hits": hits,
                "share": hits / k,
                "random": float(np.mean(target_labels == label)),
            }
        )
    return pd.DataFrame(rows, index=pd.Index([atlas.head_ids[i] for i in sources], name="head"))


def score_space_ceiling(
    atlas: Atlas, thresholds: Mapping[str, float] | None = None, prompts="probes", ks: Sequence[int] = (1, 3, 5),
    ambiguous=None,
) -> pd.DataFrame:
    """Retrieval when heads are compared by the very scores that define their labels.

    Labels from thresholds on a continuous score put near-threshold heads on both sides
    of the line; any similarity that is smooth in those scores then ranks a head just
    below the threshold next to one just above it. The Euclidean distance between the
    heads' label scores (label_heads' thresholds and prompts) is such a similarity with
    full knowledge of the labels' definition: its R-precision is a practical ceiling for
    similar-head search measured this way.

    Returns:
        retrieval_metrics of that distance (same layout; `ambiguous` as there).
    """
    thresholds = dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    labels = label_heads(atlas, thresholds, prompts)
    scores = atlas.head_scores(prompts=prompts)[list(thresholds)].to_numpy()
    d = cdist(scores, scores)
    return retrieval_metrics(pd.DataFrame(d, index=labels.index, columns=labels.index), labels, ks, ambiguous)


# ---------------------------------------------------------------------------- comparison
def _strict_and_band(distances: pd.DataFrame, labels, ks, ambiguous) -> pd.DataFrame:
    """retrieval_metrics with "label" as a column, plus r_precision_band / map_band when
    `ambiguous` is given."""
    table = retrieval_metrics(distances, labels, ks).reset_index()
    if ambiguous is not None:
        band = retrieval_metrics(distances, labels, ks, ambiguous)
        table["r_precision_band"] = band["r_precision"].to_numpy()
        table["map_band"] = band["map"].to_numpy()
    return table


def compare(
    atlas: Atlas,
    feature_sets: Sequence[str] = ("motifs", "paper"),
    metrics: Sequence[str] = ("paired", "sliced_wasserstein"),
    labels: pd.Series | None = None,
    ks: Sequence[int] = (1, 3, 5),
    stability: bool = True,
    seed: int = 0,
    ambiguous=None,
) -> pd.DataFrame:
    """Retrieval metrics (and split-half stability) for each feature set x metric.

    Args:
        atlas: an atlas that collected every set in `feature_sets` (extra_feature_sets=).
        labels: [H] labels (default: label_heads(atlas)); the same for every configuration.
        stability: also compute split_half_stability (column split_half_rho, repeated on
            each label row of a configuration).
        ambiguous: optional near-threshold heads (see :func:`ambiguous_heads`); then the
            band-excluded r_precision_band and map_band are added beside the strict ones.
    Returns:
        DataFrame with columns feature_set, metric, label, then those of retrieval_metrics
        (and split_half_rho), one row per configuration and label.
    """
    labels = label_heads(atlas) if labels is None else labels
    missing = [f for f in feature_sets if f not in atlas.data.features]
    if missing:
        raise ValueError(
            f"feature sets {missing} were not collected (have {sorted(atlas.data.features)}); "
            "build the atlas with extra_feature_sets=[...]"
        )
    tables = []
    for fs in feature_sets:
        for metric in metrics:
            configured = atlas.configure(feature_set=fs, metric=metric)
            table = _strict_and_band(configured.head_distances(), labels, ks, ambiguous)
            if stability:
                table["split_half_rho"] = split_half_stability(configured, seed)
            table.insert(0, "metric", metric)
            table.insert(0, "feature_set", fs)
            tables.append(table)
    return pd.concat(tables, ignore_index=True)


def compare_channels(
    atlas: Atlas,
    labels: pd.Series | None = None,
    channels: Sequence[str] = ("pattern", "circuits", "effects", "combined"),
    ks: Sequence[int] = (1, 3, 5),
    ambiguous=None,
) -> pd.DataFrame:
    """Retrieval of each evidence channel of similar_heads(by=...) on the same labels.

    Channels the atlas lacks (no add_circuits) are skipped. Returns columns channel, label,
    then those of retrieval_metrics (plus r_precision_band / map_band with `ambiguous`).
    """
    labels = label_heads(atlas) if labels is None else labels
    tables = []
    for channel in channels:
        try:
            d = atlas.evidence_distances(channel)
        except ValueError:
            continue
        frame = pd.DataFrame(d, index=atlas.head_ids, columns=atlas.head_ids)
        table = _strict_and_band(frame, labels, ks, ambiguous)
        table.insert(0, "channel", channel)
        tables.append(table)
    if not tables:
        raise ValueError(f"none of the channels {list(channels)} is available")
    return pd.concat(tables, ignore_index=True)


# ---------------------------------------------------------------------------- layers
def layer_profile(atlas: Atlas, prompts="texts") -> pd.DataFrame:
    """Mean head-type scores per (model, layer): where attention goes, layer by layer.

    Columns: model, layer, layer_depth (layer / (n_layers - 1)), then the mean over the
    layer's heads of previous_token (share of attention on the previous token), recent
    (on the 4 tokens before the query, first token excluded), first_token (on the first /
    BOS token) and diffuse (row entropy / log(visible tokens): 1 = uniform).

    Args:
        prompts: prompts the scores are averaged over ("texts", "probes", "all" or ids).
    """
    scores = atlas.head_scores(prompts=prompts)[list(LAYER_PROFILE_SCORES)]
    heads = atlas.heads.set_index("head")[["model", "layer", "layer_depth"]]
    table = heads.join(scores).groupby(["model", "layer"], sort=False).mean()
    return table.reset_index()
