"""The Atlas: the one result object of an analysis.

It holds what was collected from the patterns (per-(head, prompt) features of one or
more feature sets, head-type score sums, thumbnails, tokens) and derives, lazily and
cached, the PCA embedding of patterns, head distances, head maps and clusters under its
:class:`AtlasConfig`. Widgets are views over an Atlas; nothing here depends on them.
Heads are named ``model:L{layer}H{head}``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ._checks import check_choice, check_int, checked_weights
from .atlas_data import LARGE_ATLAS_HEADS, AtlasData, ModelInfo, feature_blocks, heads_frame  # noqa: F401  (re-exported)
from .collect import DEFAULT_THUMBNAIL_TOKENS, DEFAULT_THUMBNAILS, collect_from_model, collect_from_patterns, pattern_arrays
from .detect import SCORE_NAMES, TOKEN_SCORES, known_classes
from .distance import METRICS, nearest_heads, paired_distances
from .evidence import CHANNELS, CIRCUIT_COLUMNS, EFFECT_COLUMNS, combined_distances, stat_distances
from .distance import head_distances as _head_distances
from .embed import PatternEmbedding
from .features.registry import get_feature_set
from .projection import choose_n_clusters, cluster_heads, head_map, landmark_isomap, name_families
from .prompts import Prompt, as_prompts
from .sources import source_for


@dataclass(frozen=True)
class AtlasConfig:
    """How an atlas turns features into embeddings and distances.

    Attributes:
        feature_set: which collected feature set to embed ("motifs" by default).
        n_components: PCA components (16, as in the paper).
        metric: head distance, "paired" (paper eq. 3) or "sliced_wasserstein".
        nan_columns / zero_variance / variance_tol: PatternEmbedding column policy; None
            picks the set's default ("error" / 1e-9 for NaN-free sets like motifs; "drop" /
            0, the reference's filter, for the paper sets).
        seed: seed of every random step (PCA, sliced directions, UMAP, t-SNE).
        feature_weights: embedding weight per feature ({name: w}; unnamed features weigh 1);
            None uses the feature set's own weights (motifs: descriptors 0.3; paper: all 1).
        large: derive with the out-of-core paths (True), the exact in-memory ones (False),
            or decide by size (None, the default: large above LARGE_ATLAS_HEADS = 2000
            heads). Large means: PCA fitted in one pass over chunks of heads
            (PatternEmbedding.fit_chunks), eq. 3 by the fused float32 kernel
            (distance.paired_distances(dtype="float32"), an [H, H] float32 matrix), a
            precomputed neighbour index (Atlas.neighbors) behind similar_heads and the
            widgets, and landmark Isomap from the neighbour graph for head_map("isomap").
    """

    feature_set: str = "motifs"
    n_components: int = 16
    metric: str = "paired"
    nan_columns: str | None = None
    zero_variance: str = "drop"
    variance_tol: float | None = None
    seed: int = 0
    feature_weights: dict[str, float] | None = None
    large: bool | None = None

    def __post_init__(self):
        if not isinstance(self.feature_set, str):
            raise TypeError(f"feature_set must be a feature set name, got {type(self.feature_set).__name__}")
        check_int("n_components", self.n_components, minimum=1)
        check_choice("metric", self.metric, METRICS)
        if self.nan_columns is not None:
            check_choice("nan_columns", self.nan_columns, ("error", "drop"))
        check_choice("zero_variance", self.zero_variance, ("drop", "keep", "error"))
        check_int("seed", self.seed, minimum=0)
        if self.feature_weights is not None:
            if not isinstance(self.feature_weights, Mapping):
                raise TypeError(f"feature_weights must be a {{feature: weight}} dict, got {type(self.feature_weights).__name__}")
            # all-zero weights over the kept features are refused when the embedding is fitted
            object.__setattr__(self, "feature_weights", checked_weights(self.feature_weights))
        if self.large is not None and not isinstance(self.large, (bool, np.bool_)):
            raise TypeError(f"large must be True, False or None (by size), got {self.large!r}")


class Atlas:
    """Attention-pattern atlas of one or more models over one prompt set."""

    def __init__(self, data: AtlasData, config: AtlasConfig | None = None):
        if not isinstance(data, AtlasData):
            raise TypeError(f"data must be AtlasData, got {type(data).__name__}; build atlases with Atlas.from_model / from_patterns")
        self.data = data
        self.config = config or AtlasConfig()
        if not isinstance(self.config, AtlasConfig):
            raise TypeError(f"config must be an AtlasConfig, got {type(self.config).__name__}")
        if self.config.feature_set not in data.features:
            raise ValueError(
                f"feature set {self.config.feature_set!r} was not collected (this atlas has {sorted(data.features)}); "
                f"build the atlas with extra_feature_sets=[{self.config.feature_set!r}] to switch to it"
            )
        self._cache: dict = {}  # derived tables: scores, maps, clusters, families (keyed by their settings)
        self._distances: dict[str, np.ndarray] = {}  # metric -> [H, H], over the one embedding
        self._channels: dict[str, np.ndarray] = {}  # evidence channel -> [H, H] (see evidence.py)
        self._neighbors: tuple[np.ndarray, np.ndarray] | None = None  # pattern kNN index, see neighbors()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model(
        cls,
        model,
        prompts=None,
        *,
        tokenizer=None,
        model_name: str | None = None,
        bos_token_id: int | None = None,
        feature_set: str = "motifs",
        extra_feature_sets: Sequence[str] = (),
        batch_size: int = 8,
        max_tokens: int | None = 128,
        prepend_bos: bool = True,
        thumbnails: int | str | Sequence[str] = DEFAULT_THUMBNAILS,
        thumbnail_tokens: int = DEFAULT_THUMBNAIL_TOKENS,
        dtype: torch.dtype = torch.float64,
        validate: bool = True,
        progress: bool = True,
        circuits: bool = False,
        **config,
    ) -> "Atlas":
        """Run a model over prompts and build its atlas.

        Args:
            model: TransformerLens HookedTransformer / TransformerBridge, or a Hugging Face
                causal LM (then pass tokenizer= unless every prompt is token ids).
            prompts: strings, token-id sequences or Prompt objects; None = the default
                set (48 varied texts + 12 repeated-random-token probes).
            model_name: prefix of head ids (default: the model's own name).
            bos_token_id: BOS id for models without a tokenizer (overrides the tokenizer's).
            feature_set / extra_feature_sets: feature sets to compute (the first is embedded;
                the others can be switched to with :meth:`configure`).
            batch_size: prompts per forward pass (right-padded, longest first).
            max_tokens: longer prompts are truncated, with a warning.
            prepend_bos: put the BOS token first (recorded per prompt).
            thumbnails: which prompts to keep pattern thumbnails of: "all" (default), a count,
                or prompt ids.
            thumbnail_tokens: a thumbnail is the pattern of the prompt's first
                thumbnail_tokens tokens (default 32).
            dtype: feature precision (float64 exact; float32 fast).
            circuits: also add the heads' circuit statistics and effect estimates
                (:meth:`add_circuits`).
            **config: AtlasConfig fields (n_components, metric, seed, ...).
        """
        source = source_for(model, tokenizer=tokenizer, name=model_name, bos_token_id=bos_token_id)
        prompts = as_prompts(prompts)
        sets = _feature_set_list(feature_set, extra_feature_sets)
        config = AtlasConfig(feature_set=sets[0], **config)  # checked before any work
        data = collect_from_model(
            source, prompts, sets, batch_size=batch_size, max_tokens=max_tokens, prepend_bos=prepend_bos,
            thumbnails=thumbnails, thumbnail_tokens=thumbnail_tokens, dtype=dtype, validate=validate, progress=progress,
        )
        atlas = cls(data, config)
        if circuits:
            atlas.add_circuits(model, tokenizer=tokenizer, model_name=source.name)
        return atlas

    @classmethod
    def from_models(cls, models: Mapping[str, object] | Sequence, prompts=None, **options) -> "Atlas":
        """Atlases of several models on the same prompts, merged into one embedding.

        Args:
            models: {name: model} (names become head-id prefixes) or a list of models.
            **options: as for :meth:`from_model` (tokenizer= may be a {name: tokenizer} dict).
        """
        items = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in models]
        tokenizers = options.pop("tokenizer", None)
        prompts = as_prompts(prompts)
        atlases = []
        for name, model in items:
            tok = tokenizers.get(name) if isinstance(tokenizers, Mapping) else tokenizers
            atlases.append(cls.from_model(model, prompts, model_name=name, tokenizer=tok, **options))
        return cls.merge(atlases)

    @classmethod
    def from_patterns(
        cls,
        per_prompt: Sequence,
        model_name: str = "patterns",
        prompts: Sequence | None = None,
        *,
        token_ids: Sequence[Sequence[int]] | None = None,
        token_strs: Sequence[Sequence[str]] | None = None,
        has_bos: bool = False,
        feature_set: str = "motifs",
        extra_feature_sets: Sequence[str] = (),
        thumbnails: int | str | Sequence[str] = DEFAULT_THUMBNAILS,
        thumbnail_tokens: int = DEFAULT_THUMBNAIL_TOKENS,
        dtype: torch.dtype = torch.float64,
        validate: bool = True,
        **config,
    ) -> "Atlas":
        """An atlas of patterns the user already has.

        Args:
            per_prompt: one array/tensor [layers, heads, n, n] per prompt (n may vary).
            prompts: prompt ids / texts / Prompt objects, one per array (default "p000"...).
                Give the same prompts for patterns of different models to merge them.
            token_ids: optional ids per prompt (enables duplicate-token / induction scores).
            token_strs: optional token strings per prompt (for display).
        """
        per_prompt = pattern_arrays(per_prompt)  # checked first, so errors name it
        if prompts is None:
            prompts = [Prompt(f"p{k:03d}") for k in range(len(per_prompt))]
        else:
            prompts = [p if isinstance(p, Prompt) else Prompt(str(p)) for p in prompts]
        sets = _feature_set_list(feature_set, extra_feature_sets)
        config = AtlasConfig(feature_set=sets[0], **config)
        data = collect_from_patterns(
            per_prompt, model_name, prompts, sets, token_ids=token_ids, token_strs=token_strs, has_bos=has_bos,
            thumbnails=thumbnails, thumbnail_tokens=thumbnail_tokens, dtype=dtype, validate=validate,
        )
        return cls(data, config)

    @classmethod
    def merge(cls, atlases: Sequence["Atlas"]) -> "Atlas":
        """One atlas of several models (same prompt ids, distinct model names); one PCA is
        then fitted over all of them. Uses the first atlas's config and the feature sets
        every atlas has (see AtlasData.concat)."""
        atlases = list(atlases)
        if not atlases:
            raise ValueError("atlases is empty: nothing to merge")
        bad = [type(a).__name__ for a in atlases if not isinstance(a, Atlas)]
        if bad:
            raise TypeError(f"atlases must be Atlas objects, got {bad[:3]}")
        data = AtlasData.concat([a.data for a in atlases])
        if atlases[0].config.feature_set not in data.features:
            raise ValueError(f"feature set {atlases[0].config.feature_set!r} is missing from some atlases")
        return cls(data, atlases[0].config)

    def take_prompts(self, prompts: Sequence[str]) -> "Atlas":
        """The atlas restricted to some prompt ids, as if built on them alone (same config;
        embedding and distances are fitted afresh)."""
        return Atlas(self.data.take_prompts(prompts), self.config)

    def rename_model(self, old: str, new: str) -> "Atlas":
        """A copy with model `old` called `new` (head ids follow); same config."""
        return Atlas(self.data.rename_model(old, new), self.config)

    def add_circuits(
        self, model, *, effects: bool = True, model_name: str | None = None, tokenizer=None,
        max_prompts: int = 16, max_tokens: int = 64,
    ) -> "Atlas":
        """Add what the heads do to :attr:`data`.head_stats (and so to head_table, saves,
        similar_heads(by=...) and describe): circuit weight statistics
        (circuits.weight_stats: OV copying, norms, effective ranks, Q/K/V composition and
        partners) and, with effects, attribution-patching estimates of the loss change when
        each head is mean-ablated (circuits.head_effects): ``effect`` on up to max_prompts of
        the atlas's text prompts and ``effect_repeated`` on its probes (loss on the repeated
        tokens). Everything is computed before anything is added; returns self.

        Args:
            model: the model this atlas (or one model of it) was built from.
            model_name: which of the atlas's models it is (default: the only one, or the
                model's own name).
        """
        from .evidence import circuit_stats

        max_prompts = check_int("max_prompts", max_prompts, minimum=1)
        name = model_name or (self.model_names[0] if len(self.model_names) == 1 else source_for(model, tokenizer=tokenizer).name)
        if name not in self.data.models:
            raise ValueError(f"model_name: the atlas has no model {name!r} (it has {self.model_names})")
        info = self.data.models[name]
        stats = circuit_stats(
            model, name, (info.n_layers, info.n_heads), self.prompts if effects else [],
            tokenizer=tokenizer, max_prompts=max_prompts, max_tokens=max_tokens,
        )
        self.data = self.data.with_head_stats(stats)
        self._channels.clear()
        return self

    def configure(self, **changes) -> "Atlas":
        """A copy with other AtlasConfig settings (feature_set, n_components, metric, ...),
        sharing the collected data; embeddings and distances are recomputed lazily (a change
        of metric alone reuses this atlas's embedding)."""
        known = {f.name for f in fields(AtlasConfig)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"configure() got unknown settings {unknown}; AtlasConfig has {sorted(known)}")
        other = Atlas(self.data, replace(self.config, **changes))
        if set(changes) <= {"metric"}:
            for cached in ("embedding", "points"):
                if cached in self.__dict__:
                    other.__dict__[cached] = self.__dict__[cached]
        return other

    # ------------------------------------------------------------------ identities
    @property
    def heads(self) -> pd.DataFrame:
        """[H] head id, model, layer, head_index, layer_depth."""
        return self.data.heads

    @property
    def head_ids(self) -> list[str]:
        return self.data.heads["head"].tolist()

    @property
    def prompts(self) -> list[Prompt]:
        return self.data.prompts

    @property
    def prompt_ids(self) -> list[str]:
        return [p.id for p in self.data.prompts]

    @property
    def model_names(self) -> list[str]:
        return list(self.data.models)

    @cached_property
    def _head_index(self) -> dict[str, int]:
        return {h: k for k, h in enumerate(self.head_ids)}

    def head_index(self, head) -> int:
        """Row of a head: "model:L5H1", "L5H1" (single-model atlas), (layer, head) or an int."""
        if isinstance(head, (bool, np.bool_)) or not isinstance(head, (int, np.integer, str, tuple)):
            raise TypeError(
                f"head must be a head id like {self.head_ids[0]!r}, a (layer, head) pair or a row number, "
                f"got {head!r} ({type(head).__name__})"
            )
        if isinstance(head, (int, np.integer)):
            if not 0 <= head < len(self.head_ids):
                raise ValueError(f"head index {head} out of range 0..{len(self.head_ids) - 1}")
            return int(head)
        if isinstance(head, tuple) and len(head) == 2:
            head = f"L{head[0]}H{head[1]}"
        if isinstance(head, str):
            if head in self._head_index:
                return self._head_index[head]
            if ":" not in head and len(self.model_names) == 1:
                full = f"{self.model_names[0]}:{head}"
                if full in self._head_index:
                    return self._head_index[full]
        raise ValueError(f"unknown head {head!r}; heads look like {self.head_ids[0]!r} ({len(self.head_ids)} heads)")

    # ------------------------------------------------------------------ derived (cached)
    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.data.feature_names[self.config.feature_set]

    @property
    def features(self) -> np.ndarray:
        """[H, P, F] features of the active set. A large atlas loaded lazily gives a
        store.LazyFeatures (``np.asarray`` reads it whole, ``read_heads`` a range of heads);
        an atlas that derives in memory (not is_large) reads a lazy table once, here."""
        f = self.data.features[self.config.feature_set]
        if self.is_large or isinstance(f, np.ndarray):
            return f
        read = self.__dict__.setdefault("_features_read", {})
        if self.config.feature_set not in read:
            read[self.config.feature_set] = np.asarray(f)
        return read[self.config.feature_set]

    @property
    def is_large(self) -> bool:
        """Whether this atlas derives with the out-of-core paths (AtlasConfig.large; by
        default above LARGE_ATLAS_HEADS heads)."""
        if self.config.large is not None:
            return self.config.large
        return len(self.data.heads) > LARGE_ATLAS_HEADS

    def _row_blocks(self):
        """(start, [n * P, F]) row blocks of the active features, whole heads each."""
        for start, block in feature_blocks(self.features):
            n, p, f = block.shape
            yield start, block.reshape(n * p, f)

    @cached_property
    def embedding(self) -> PatternEmbedding:
        """The fitted z-score + PCA over all (head, prompt) rows of the active feature set."""
        c = self.config
        registered = get_feature_set(c.feature_set) if c.feature_set in _registered() else None
        nan_free = registered.nan_free if registered is not None else True
        if c.feature_weights is not None:
            weights = dict(c.feature_weights)
        else:
            weights = {k: w for k, w in registered.weights.items() if k in self.feature_names} if registered else {}
        emb = PatternEmbedding(
            n_components=c.n_components,
            nan_columns=c.nan_columns or ("error" if nan_free else "drop"),
            zero_variance=c.zero_variance,
            variance_tol=c.variance_tol if c.variance_tol is not None else (1e-9 if nan_free else 0.0),
            random_state=c.seed,
            weights=weights,
        )
        if self.is_large:  # one pass over chunks of heads: the features need not fit in memory
            return emb.fit_chunks((block for _, block in self._row_blocks()), feature_names=self.feature_names)
        h, p, f = self.features.shape
        return emb.fit(self.features.reshape(h * p, f), feature_names=self.feature_names)

    @cached_property
    def points(self) -> np.ndarray:
        """[H, P, k] PCA coordinates of every (head, prompt) pattern."""
        h, p, f = self.features.shape
        if self.is_large:
            out = np.empty((h, p, self.embedding.n_components_))
            for start, block in self._row_blocks():
                n = len(block) // p
                out[start : start + n] = self.embedding.transform(block).reshape(n, p, -1)
            return out
        return self.embedding.transform(self.features.reshape(h * p, f)).reshape(h, p, -1)

    @property
    def distances(self) -> np.ndarray:
        """[H, H] head distances under config.metric (float32 for large atlases)."""
        return self._distances_under(self.config.metric)

    def _distances_under(self, metric: str) -> np.ndarray:
        """[H, H] distances over this atlas's embedding (cached per metric)."""
        check_choice("metric", metric, METRICS)
        if metric not in self._distances:
            if metric == "paired" and self.is_large:
                self._distances[metric] = paired_distances(self.points, dtype="float32")
            else:
                opts = {"seed": self.config.seed} if metric == "sliced_wasserstein" else {}
                self._distances[metric] = _head_distances(self.points, metric, **opts)
        return self._distances[metric]

    #: Neighbours per head kept in the neighbour index (Atlas.neighbors).
    N_INDEXED_NEIGHBORS = 32

    def neighbors(self, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The precomputed neighbour index under config.metric: index int64 [H, k] and
        distance float64 [H, k] of each head's k nearest heads (distance.nearest_heads:
        itself excluded, ties by head order; -1 / NaN padded). Computed once for
        max(k, N_INDEXED_NEIGHBORS) neighbours, in row chunks; similar_heads, head maps of
        large atlases and the widgets read it.
        """
        k = self.N_INDEXED_NEIGHBORS if k is None else check_int("k", k, minimum=1)
        if self._neighbors is None or self._neighbors[0].shape[1] < k:
            self._neighbors = nearest_heads(self.distances, max(k, self.N_INDEXED_NEIGHBORS))
        index, dist = self._neighbors
        return index[:, :k], dist[:, :k]

    def head_distances(self, metric: str | None = None) -> pd.DataFrame:
        """Square DataFrame of head distances, indexed by head id both ways (another metric
        reuses the fitted embedding)."""
        d = self._distances_under(metric or self.config.metric)
        return pd.DataFrame(d, index=self.head_ids, columns=self.head_ids)

    # ------------------------------------------------------------------ scores
    def _prompt_mask(self, prompts) -> np.ndarray:
        if prompts in (None, "all"):
            return np.ones(len(self.prompts), bool)
        if prompts == "probes":
            return np.array([p.is_probe for p in self.prompts])
        if prompts == "texts":
            return np.array([not p.is_probe for p in self.prompts])
        wanted = set(prompts)
        unknown = wanted - set(self.prompt_ids)
        if unknown:
            raise ValueError(f"unknown prompt ids {sorted(unknown)[:5]}")
        return np.array([p.id in wanted for p in self.prompts])

    def head_scores(self, prompts="auto") -> pd.DataFrame:
        """[H, scores] head-type scores (see motif_widgets.detect), indexed by head id.

        Args:
            prompts: "auto" (default: token scores on the probes when there are any,
                positional scores on all prompts), "all", "probes", "texts", or prompt ids.
        Scores without any eligible row (e.g. induction with no repeated tokens, or no
        token ids) are left out of the table rather than reported as NaN.
        """
        key = ("head_scores", prompts if isinstance(prompts, str) else tuple(prompts))
        if key in self._cache:
            return self._cache[key].copy()
        if prompts == "auto":
            has_probes = any(p.is_probe for p in self.prompts)
            masks = {s: self._prompt_mask("probes" if s in TOKEN_SCORES and has_probes else "all") for s in SCORE_NAMES}
        else:
            m = self._prompt_mask(prompts)
            if not m.any():
                raise ValueError(f"no prompts selected by {prompts!r}")
            masks = {s: m for s in SCORE_NAMES}
        out = {}
        for k, s in enumerate(SCORE_NAMES):
            rows = self.data.score_rows[:, masks[s], k].sum(1)
            if (rows > 0).all():
                out[s] = self.data.score_sums[:, masks[s], k].sum(1) / rows
        self._cache[key] = pd.DataFrame(out, index=pd.Index(self.head_ids, name="head"))
        return self._cache[key].copy()

    def prompt_scores(self, score: str) -> pd.DataFrame:
        """[H, P] one score per (head, prompt); NaN where the prompt has no eligible row."""
        k = SCORE_NAMES.index(score) if score in SCORE_NAMES else None
        if k is None:
            raise ValueError(f"unknown score {score!r}; choose one of {SCORE_NAMES}")
        rows = self.data.score_rows[:, :, k]
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = np.where(rows > 0, self.data.score_sums[:, :, k] / rows, np.nan)
        return pd.DataFrame(vals, index=self.head_ids, columns=self.prompt_ids)

    def known_classes(self) -> pd.Series:
        """Literature classes of each head (lists; empty for unlabelled heads/models)."""
        h = self.data.heads
        return pd.Series(
            [known_classes(m, int(l), int(i)) for m, l, i in zip(h["model"], h["layer"], h["head_index"])],
            index=self.head_ids, name="known_classes",
        )

    # ------------------------------------------------------------------ search, maps, tables
    def evidence_distances(self, by: str = "pattern", metric: str | None = None) -> np.ndarray:
        """[H, H] head distances of an evidence channel (motif_widgets.evidence): "pattern"
        (the embedding, under `metric`), "circuits", "effects" or "combined"."""
        by = check_choice("by", by, CHANNELS)
        if by == "pattern":
            return self._distances_under(metric or self.config.metric)
        if by not in self._channels:
            stats = self.data.head_stats
            if by == "combined":
                parts = [self._distances_under(metric or self.config.metric)]
                for channel, columns in (("circuits", CIRCUIT_COLUMNS), ("effects", EFFECT_COLUMNS)):
                    if stats is not None and any(c in stats.columns for c in columns):
                        parts.append(self.evidence_distances(channel))
                if len(parts) == 1:
                    raise ValueError(
                        "by='combined' needs circuits or effects beside the patterns; add them with "
                        "atlas.add_circuits(model) or Atlas.from_model(..., circuits=True)"
                    )
                self._channels[by] = combined_distances(parts)
            else:
                columns = CIRCUIT_COLUMNS if by == "circuits" else EFFECT_COLUMNS
                self._channels[by] = stat_distances(stats, columns, by)
        return self._channels[by]

    def similar_heads(
        self, head, k: int = 10, models: Iterable[str] | None = None, metric: str | None = None, by: str = "pattern"
    ) -> pd.DataFrame:
        """The k nearest heads of `head` (itself excluded): rank, head, model, layer, head
        index, distance, head-type scores, known classes and family; optionally only of
        `models`. by: the evidence the distance rests on ("pattern", "circuits", "effects"
        or "combined"; see :meth:`evidence_distances`)."""
        i = self.head_index(head)
        k = check_int("k", k, minimum=1)
        cand = None
        if models is not None:
            models = [models] if isinstance(models, str) else list(models)
            unknown = set(models) - set(self.model_names)
            if unknown:
                raise ValueError(f"models: unknown models {sorted(unknown)}; atlas has {self.model_names}")
            cand = self.data.heads["model"].isin(models).to_numpy()
        indexed = by == "pattern" and cand is None and (metric or self.config.metric) == self.config.metric
        if indexed and k <= max(self.N_INDEXED_NEIGHBORS, 0 if self._neighbors is None else self._neighbors[0].shape[1]):
            index, dist = (a[i : i + 1] for a in self.neighbors(k))
        else:
            index, dist = nearest_heads(self.evidence_distances(by, metric), k, cand, rows=[i])
        found = index[0] >= 0
        idx, dist = index[0][found], dist[0][found]
        table = self.data.heads.iloc[idx][["head", "model", "layer", "head_index"]].reset_index(drop=True)
        table.insert(0, "rank", np.arange(1, len(idx) + 1))
        table["distance"] = dist
        scores = self.head_scores().iloc[idx].reset_index(drop=True)
        table = pd.concat([table, scores], axis=1)
        table["known_classes"] = self.known_classes().iloc[idx].to_list()
        if len(self.head_ids) > 1:
            table["family"] = self.families().iloc[idx].to_list()
        return table

    #: Landmarks of the landmark Isomap of large atlases (projection.landmark_isomap).
    N_LANDMARKS = 1000

    def head_map(self, method: str = "isomap", dim: int = 3, n_neighbors: int = 16) -> pd.DataFrame:
        """[H, dim] map of heads from the distances (cached per settings). For large atlases
        "isomap" is landmark Isomap over the neighbour index (projection.landmark_isomap,
        N_LANDMARKS seeded landmarks); the other methods work on the full matrix."""
        key = (method, dim, n_neighbors, self.config.seed)
        if key not in self._cache:
            if method == "isomap" and self.is_large:
                h = len(self.head_ids)
                if h < dim + 2:
                    raise ValueError(f"need at least {dim + 2} heads for a {dim}-D map, got {h}")
                index, dist = self.neighbors(min(check_int("n_neighbors", n_neighbors, minimum=1), h - 1))
                self._cache[key] = landmark_isomap(index, dist, dim, self.N_LANDMARKS, self.config.seed, self.distances)
            else:
                self._cache[key] = head_map(self.distances, method, dim, n_neighbors, self.config.seed)
        return pd.DataFrame(self._cache[key], index=self.head_ids, columns=[f"{method}.{i}" for i in range(dim)])

    def clusters(self, n_clusters: int | None = None, method: str = "ward") -> pd.Series:
        """Hierarchical cluster label of each head (1..n_clusters).

        Args:
            n_clusters: at most this many clusters; None picks it by the largest mean
                silhouette over 4..12 clusters (projection.choose_n_clusters).
            method: scipy linkage ("ward" by default: it avoids one cluster swallowing most
                heads, as "average" did on SmolLM2 with 189 of 270).
        """
        key = ("clusters", n_clusters, method)
        if key not in self._cache:
            n = len(self.head_ids)
            if n_clusters is None:
                n_clusters = choose_n_clusters(self.distances, method)[0] if n > 2 else n
            n_clusters = min(check_int("n_clusters", n_clusters, minimum=1), n)
            self._cache[key] = cluster_heads(self.distances, n_clusters, method)
        return pd.Series(self._cache[key], index=self.head_ids, name="cluster")

    def families(self, n_clusters: int | None = None, method: str = "ward") -> pd.Series:
        """The name of each head's cluster ("sink", "previous-token + recent", "diffuse", ...),
        from its heads' mean head-type scores (projection.name_families)."""
        key = ("families", n_clusters, method)
        if key not in self._cache:
            clusters = self.clusters(n_clusters, method)
            names = name_families(clusters.to_numpy(), self.head_scores())
            self._cache[key] = pd.Series([names[c] for c in clusters], index=self.head_ids, name="family")
        return self._cache[key].copy()

    def head_table(self, map_method: str | None = "isomap", dim: int = 3, n_clusters: int | None = None) -> pd.DataFrame:
        """One row per head: identity, head-type scores, known classes, cluster and family
        (n_clusters as in :meth:`clusters`), the head's mean PCA coordinates (pc.i) and its
        map coordinates."""
        table = self.data.heads.set_index("head")
        table = table.join(self.head_scores())
        table["known_classes"] = self.known_classes()
        if self.data.head_stats is not None:
            table = table.join(self.data.head_stats)
        if len(self.head_ids) > 1:
            table["cluster"] = self.clusters(n_clusters)
            table["family"] = self.families(n_clusters)
        centroid = self.points.mean(1)
        for i in range(min(3, centroid.shape[1])):
            table[f"pc.{i}"] = centroid[:, i]
        if map_method is not None and len(self.head_ids) >= dim + 2:
            table = table.join(self.head_map(map_method, dim))
        return table

    def suggest_classes(self, reference=None, exclude_models=None) -> pd.DataFrame:
        """Each head's likely type (induction / previous_token / other) from its nearest head
        in the reference atlas shipped with the package (toy, SmolLM2-135M, Gemma-3-270M),
        with a confidence; see motif_widgets.reference.suggest_classes."""
        from .reference import suggest_classes

        return suggest_classes(self, reference, exclude_models)

    def describe(self, head) -> str:
        """A short plain-language account of a head: what it attends to (head-type scores,
        family), what it moves (OV copying, composition) and whether it matters (ablation
        effect estimates), as far as the atlas knows them (see add_circuits)."""
        from .evidence import describe

        return describe(self, head)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per (head, prompt): identity, prompt id/kind/length, the active features
        and the PCA coordinates pc.0..pc.{k-1}."""
        features = np.asarray(self.features)
        h, p, f = features.shape
        heads = self.data.heads.loc[np.repeat(np.arange(h), p)].reset_index(drop=True)
        lengths = np.concatenate([self.data.models[m].lengths for m in self.data.heads["model"]])
        prompts = pd.DataFrame(
            {
                "prompt": np.tile(self.prompt_ids, h),
                "prompt_kind": np.tile([q.kind for q in self.prompts], h),
                "n_tokens": lengths,
            }
        )
        feats = pd.DataFrame(features.reshape(h * p, f), columns=list(self.feature_names))
        pcs = pd.DataFrame(self.points.reshape(h * p, -1), columns=[f"pc.{i}" for i in range(self.points.shape[-1])])
        return pd.concat([heads, prompts, feats, pcs], axis=1)

    def thumbnails(self, head) -> list[dict]:
        """The kept pattern corners of a head: [{prompt, tokens, pattern [m, m] float32}]
        (thumbnails left on disk: this head's are read, nothing else)."""
        i = self.head_index(head)
        model = self.data.models[self.data.heads["model"].iloc[i]]
        corners = self.data.thumbnails[i]  # [T, K, K]
        out = []
        for slot, k in enumerate(self.data.thumbnail_prompts):
            m = min(int(model.lengths[k]), corners.shape[-1])
            out.append(
                {
                    "prompt": self.prompts[k].id,
                    "tokens": model.token_strs[k][:m],
                    "pattern": corners[slot, :m, :m].astype(np.float32),
                }
            )
        return out

    def summary(self, k: int = 3) -> pd.DataFrame:
        """Each head's strongest head-type score and its k nearest heads (the CLI's report)."""
        k = check_int("k", k, minimum=1)
        scores = self.head_scores()
        index, _ = self.neighbors(k)
        rows = []
        for i, hid in enumerate(self.head_ids):
            near = [self.head_ids[j] for j in index[i] if j >= 0]
            best = scores.iloc[i].idxmax()
            rows.append({"head": hid, "top_score": best, "top_score_value": scores.iloc[i][best], "nearest": ", ".join(near)})
        return pd.DataFrame(rows).set_index("head")

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Atlas({len(self.head_ids)} heads of {self.model_names}, {len(self.prompts)} prompts, "
            f"feature_set={c.feature_set!r}, n_components={c.n_components}, metric={c.metric!r})"
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, overwrite: bool = True) -> Path:
        """Write the atlas to a folder (see motif_widgets.store): a complete new copy is
        written beside any atlas already there and replaces it in one atomic step, with
        checksums of every file. overwrite=False refuses to replace an atlas; a folder that
        holds anything else is always refused."""
        return self.data.save(path, config=asdict(self.config), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, lazy: bool | None = None) -> "Atlas":
        """Read an atlas written by :meth:`save`; damage raises store.AtlasFileError naming
        the folder and the damaged part.

        Args:
            lazy: leave the feature tables and thumbnails on disk and read them in chunks of
                heads when the embedding is fitted or the thumbnails are shown (True), read
                them now (False), or decide by size (None, the default: lazy above
                LARGE_ATLAS_HEADS heads).
        """
        data, config = AtlasData.load(path, lazy=lazy)
        atlas = cls(data, AtlasConfig(**config))
        outdated = atlas.outdated_feature_sets()
        if outdated:
            warnings.warn(
                f"{path}: feature sets {outdated} were computed under older definitions than this version of "
                "motif-widgets computes; recompute the atlas before comparing it with new ones",
                stacklevel=2,
            )
        return atlas

    def outdated_feature_sets(self) -> list[str]:
        """Collected feature sets whose registered definition has changed since (FeatureSet.revision)."""
        registered = _registered()
        return [
            name for name, rev in self.data.feature_revisions.items()
            if name in registered and get_feature_set(name).revision != rev
        ]


def _feature_set_list(first: str, extra: Sequence[str]) -> list[str]:
    sets = [get_feature_set(first).name] + [get_feature_set(s).name for s in extra]
    return list(dict.fromkeys(sets))


def _registered() -> set[str]:
    from .features.registry import available_feature_sets

    return set(available_feature_sets())
