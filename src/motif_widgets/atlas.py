"""The Atlas: the one result object of an analysis.

It holds what was collected from the patterns (per-(head, prompt) features of one or
more feature sets, head-type score sums, thumbnails, tokens) and derives, lazily and
cached, the PCA embedding of patterns, head distances, head maps and clusters under its
:class:`AtlasConfig`. Widgets are views over an Atlas; nothing here depends on them.
Heads are named ``model:L{layer}H{head}``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import __version__
from .collect import Collected, collect_from_model, collect_from_patterns
from .detect import SCORE_NAMES, TOKEN_SCORES, known_classes
from .distance import head_distances as _head_distances
from .embed import PatternEmbedding
from .features.registry import get_feature_set
from .projection import cluster_heads, head_map
from .prompts import Prompt, as_prompts
from .sources import source_for

FORMAT_VERSION = 1


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
    """

    feature_set: str = "motifs"
    n_components: int = 16
    metric: str = "paired"
    nan_columns: str | None = None
    zero_variance: str = "drop"
    variance_tol: float | None = None
    seed: int = 0
    feature_weights: dict[str, float] | None = None


@dataclass
class ModelInfo:
    """Per-model facts: geometry and how each prompt was tokenized for it."""

    name: str
    n_layers: int
    n_heads: int
    lengths: np.ndarray  # [P] tokens per prompt, BOS included
    token_ids: list[list[int]]
    token_strs: list[list[str]]
    has_bos: np.ndarray  # [P] bool
    truncated: np.ndarray  # [P] bool


@dataclass
class AtlasData:
    """The collected arrays, shared by an atlas and its reconfigured copies.

    Attributes:
        features: set name -> [H, P, F] float64; feature_names: set name -> names.
        score_sums / score_rows: [H, P, S] (see detect.score_sums).
        thumbnails: [H, T, K, K] float16; thumbnail_prompts: [T] prompt indices.
    """

    heads: pd.DataFrame
    prompts: list[Prompt]
    models: dict[str, ModelInfo]
    features: dict[str, np.ndarray]
    feature_names: dict[str, tuple[str, ...]]
    score_sums: np.ndarray
    score_rows: np.ndarray
    thumbnails: np.ndarray
    thumbnail_prompts: np.ndarray
    meta: dict = field(default_factory=dict)
    feature_revisions: dict[str, str] = field(default_factory=dict)


def _heads_frame(model: str, n_layers: int, n_heads: int) -> pd.DataFrame:
    layer, head = np.divmod(np.arange(n_layers * n_heads), n_heads)
    return pd.DataFrame(
        {
            "head": [f"{model}:L{l}H{h}" for l, h in zip(layer, head)],
            "model": model,
            "layer": layer,
            "head_index": head,
            "layer_depth": layer / max(n_layers - 1, 1),
        }
    )


def _from_collected(c: Collected, meta: dict) -> AtlasData:
    info = ModelInfo(c.model_name, c.n_layers, c.n_heads, c.lengths, c.token_ids, c.token_strs, c.has_bos, c.truncated)
    rows = np.broadcast_to(c.score_rows[None], c.score_sums.shape).copy()
    return AtlasData(
        heads=_heads_frame(c.model_name, c.n_layers, c.n_heads),
        prompts=list(c.prompts),
        models={c.model_name: info},
        features=c.features,
        feature_names=c.feature_names,
        score_sums=c.score_sums,
        score_rows=rows,
        thumbnails=c.thumbnails,
        thumbnail_prompts=c.thumbnail_prompts,
        meta=meta,
        feature_revisions=dict(c.feature_revisions),
    )


class Atlas:
    """Attention-pattern atlas of one or more models over one prompt set."""

    def __init__(self, data: AtlasData, config: AtlasConfig | None = None):
        self.data = data
        self.config = config or AtlasConfig()
        if self.config.feature_set not in data.features:
            raise ValueError(
                f"feature set {self.config.feature_set!r} was not collected; available: {sorted(data.features)}"
            )
        self._maps: dict = {}

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
        thumbnails: int | Sequence[str] = 6,
        dtype: torch.dtype = torch.float64,
        validate: bool = True,
        progress: bool = True,
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
            thumbnails: how many prompts (or which prompt ids) to keep pattern thumbnails of.
            dtype: feature precision (float64 exact; float32 fast).
            **config: AtlasConfig fields (n_components, metric, seed, ...).
        """
        source = source_for(model, tokenizer=tokenizer, name=model_name, bos_token_id=bos_token_id)
        prompts = as_prompts(prompts)
        sets = _feature_set_list(feature_set, extra_feature_sets)
        collected = collect_from_model(
            source, prompts, sets, batch_size=batch_size, max_tokens=max_tokens, prepend_bos=prepend_bos,
            thumbnails=thumbnails, dtype=dtype, validate=validate, progress=progress,
        )
        meta = {"prepend_bos": prepend_bos, "max_tokens": max_tokens, "dtype": str(dtype).replace("torch.", "")}
        return cls(_from_collected(collected, meta), AtlasConfig(feature_set=sets[0], **config))

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
        thumbnails: int | Sequence[str] = 6,
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
        if prompts is None:
            prompts = [Prompt(f"p{k:03d}") for k in range(len(per_prompt))]
        else:
            prompts = [p if isinstance(p, Prompt) else Prompt(str(p)) for p in prompts]
        sets = _feature_set_list(feature_set, extra_feature_sets)
        collected = collect_from_patterns(
            per_prompt, model_name, prompts, sets, token_ids=token_ids, token_strs=token_strs, has_bos=has_bos,
            thumbnails=thumbnails, dtype=dtype, validate=validate,
        )
        meta = {"prepend_bos": has_bos, "max_tokens": None, "dtype": str(dtype).replace("torch.", "")}
        return cls(_from_collected(collected, meta), AtlasConfig(feature_set=sets[0], **config))

    @classmethod
    def merge(cls, atlases: Sequence["Atlas"]) -> "Atlas":
        """One atlas of several models (same prompt ids, distinct model names); one PCA is
        then fitted over all of them. Uses the first atlas's config and the feature sets
        every atlas has."""
        atlases = list(atlases)
        if not atlases:
            raise ValueError("nothing to merge")
        first = atlases[0].data
        ids = [p.id for p in first.prompts]
        names: list[str] = []
        for a in atlases:
            clash = set(names) & set(a.data.models)
            if clash:
                raise ValueError(f"model names {sorted(clash)} occur in more than one atlas; give distinct model_name=")
            names += list(a.data.models)
            other = [p.id for p in a.data.prompts]
            if set(other) != set(ids):
                missing, extra = sorted(set(ids) - set(other)), sorted(set(other) - set(ids))
                raise ValueError(f"atlases have different prompts (missing {missing[:3]}, extra {extra[:3]})")
        sets = [s for s in first.features if all(s in a.data.features for a in atlases)]
        for s in sets:
            revisions = {a.data.feature_revisions.get(s, "1") for a in atlases}
            if len(revisions) > 1:
                raise ValueError(
                    f"the atlases computed feature set {s!r} under different definitions (revisions "
                    f"{sorted(revisions)}); recompute the older ones"
                )
        if atlases[0].config.feature_set not in sets:
            raise ValueError(f"feature set {atlases[0].config.feature_set!r} is missing from some atlases")
        thumb_ids = [ids[k] for k in first.thumbnail_prompts]
        for a in atlases:
            theirs = {a.data.prompts[k].id for k in a.data.thumbnail_prompts}
            thumb_ids = [t for t in thumb_ids if t in theirs]

        def aligned(a: "Atlas"):
            pos = {p.id: k for k, p in enumerate(a.data.prompts)}
            return np.array([pos[i] for i in ids])

        orders = [aligned(a) for a in atlases]
        models = {}
        for a, order in zip(atlases, orders):
            for name, m in a.data.models.items():
                models[name] = ModelInfo(
                    name, m.n_layers, m.n_heads, m.lengths[order], [m.token_ids[k] for k in order],
                    [m.token_strs[k] for k in order], m.has_bos[order], m.truncated[order],
                )

        def thumbs(a: "Atlas") -> np.ndarray:
            slot = {a.data.prompts[k].id: s for s, k in enumerate(a.data.thumbnail_prompts)}
            return a.data.thumbnails[:, [slot[t] for t in thumb_ids]]

        data = AtlasData(
            heads=pd.concat([a.data.heads for a in atlases], ignore_index=True),
            prompts=list(first.prompts),
            models=models,
            features={s: np.concatenate([a.data.features[s][:, o] for a, o in zip(atlases, orders)]) for s in sets},
            feature_names={s: first.feature_names[s] for s in sets},
            score_sums=np.concatenate([a.data.score_sums[:, o] for a, o in zip(atlases, orders)]),
            score_rows=np.concatenate([a.data.score_rows[:, o] for a, o in zip(atlases, orders)]),
            thumbnails=np.concatenate([thumbs(a) for a in atlases]),
            thumbnail_prompts=np.array([ids.index(t) for t in thumb_ids], dtype=np.int64),
            meta={"merged": [a.data.meta for a in atlases]},
            feature_revisions={s: first.feature_revisions.get(s, "1") for s in sets},
        )
        return cls(data, atlases[0].config)

    def configure(self, **changes) -> "Atlas":
        """A copy with other AtlasConfig settings (feature_set, n_components, metric, ...),
        sharing the collected data; embeddings and distances are recomputed lazily."""
        return Atlas(self.data, replace(self.config, **changes))

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
        """[H, P, F] features of the active set."""
        return self.data.features[self.config.feature_set]

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
        h, p, f = self.features.shape
        return emb.fit(self.features.reshape(h * p, f), self.feature_names)

    @cached_property
    def points(self) -> np.ndarray:
        """[H, P, k] PCA coordinates of every (head, prompt) pattern."""
        h, p, f = self.features.shape
        return self.embedding.transform(self.features.reshape(h * p, f)).reshape(h, p, -1)

    @cached_property
    def distances(self) -> np.ndarray:
        """[H, H] head distances under config.metric."""
        opts = {"seed": self.config.seed} if self.config.metric == "sliced_wasserstein" else {}
        return _head_distances(self.points, self.config.metric, **opts)

    def head_distances(self, metric: str | None = None) -> pd.DataFrame:
        """Square DataFrame of head distances, indexed by head id both ways."""
        atlas = self if metric in (None, self.config.metric) else self.configure(metric=metric)
        return pd.DataFrame(atlas.distances, index=self.head_ids, columns=self.head_ids)

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
        return pd.DataFrame(out, index=pd.Index(self.head_ids, name="head"))

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
    def similar_heads(self, head, k: int = 10, models: Iterable[str] | None = None, metric: str | None = None) -> pd.DataFrame:
        """The k nearest heads of `head` (itself excluded): rank, head, model, layer, head
        index, distance, head-type scores and known classes; optionally only of `models`."""
        i = self.head_index(head)
        d = self.head_distances(metric).to_numpy()[i]
        cand = np.ones(len(d), bool)
        cand[i] = False
        if models is not None:
            models = [models] if isinstance(models, str) else list(models)
            unknown = set(models) - set(self.model_names)
            if unknown:
                raise ValueError(f"unknown models {sorted(unknown)}; atlas has {self.model_names}")
            cand &= self.data.heads["model"].isin(models).to_numpy()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        idx = np.nonzero(cand)[0]
        idx = idx[np.argsort(d[idx], kind="stable")][:k]
        table = self.data.heads.iloc[idx][["head", "model", "layer", "head_index"]].reset_index(drop=True)
        table.insert(0, "rank", np.arange(1, len(idx) + 1))
        table["distance"] = d[idx]
        scores = self.head_scores().iloc[idx].reset_index(drop=True)
        table = pd.concat([table, scores], axis=1)
        table["known_classes"] = self.known_classes().iloc[idx].to_list()
        return table

    def head_map(self, method: str = "isomap", dim: int = 3, n_neighbors: int = 16) -> pd.DataFrame:
        """[H, dim] map of heads from the distances (cached per settings)."""
        key = (method, dim, n_neighbors, self.config.seed)
        if key not in self._maps:
            self._maps[key] = head_map(self.distances, method, dim, n_neighbors, self.config.seed)
        return pd.DataFrame(self._maps[key], index=self.head_ids, columns=[f"{method}.{i}" for i in range(dim)])

    def clusters(self, n_clusters: int = 8, method: str = "average") -> pd.Series:
        """Hierarchical cluster label of each head (1..n_clusters)."""
        return pd.Series(cluster_heads(self.distances, n_clusters, method), index=self.head_ids, name="cluster")

    def head_table(self, map_method: str | None = "isomap", dim: int = 3, n_clusters: int = 8) -> pd.DataFrame:
        """One row per head: identity, head-type scores, known classes, cluster (of at most
        n_clusters), the head's mean PCA coordinates (pc.i) and its map coordinates."""
        table = self.data.heads.set_index("head")
        table = table.join(self.head_scores())
        table["known_classes"] = self.known_classes()
        if len(self.head_ids) > 1:
            table["cluster"] = self.clusters(min(n_clusters, len(self.head_ids)))
        centroid = self.points.mean(1)
        for i in range(min(3, centroid.shape[1])):
            table[f"pc.{i}"] = centroid[:, i]
        if map_method is not None and len(self.head_ids) >= dim + 2:
            table = table.join(self.head_map(map_method, dim))
        return table

    def to_dataframe(self) -> pd.DataFrame:
        """One row per (head, prompt): identity, prompt id/kind/length, the active features
        and the PCA coordinates pc.0..pc.{k-1}."""
        h, p, f = self.features.shape
        heads = self.data.heads.loc[np.repeat(np.arange(h), p)].reset_index(drop=True)
        lengths = np.concatenate([self.data.models[m].lengths for m in self.data.heads["model"]])
        prompts = pd.DataFrame(
            {
                "prompt": np.tile(self.prompt_ids, h),
                "prompt_kind": np.tile([q.kind for q in self.prompts], h),
                "n_tokens": lengths,
            }
        )
        feats = pd.DataFrame(self.features.reshape(h * p, f), columns=list(self.feature_names))
        pcs = pd.DataFrame(self.points.reshape(h * p, -1), columns=[f"pc.{i}" for i in range(self.points.shape[-1])])
        return pd.concat([heads, prompts, feats, pcs], axis=1)

    def thumbnails(self, head) -> list[dict]:
        """The kept pattern corners of a head: [{prompt, tokens, pattern [m, m] float32}]."""
        i = self.head_index(head)
        model = self.data.models[self.data.heads["model"].iloc[i]]
        out = []
        for slot, k in enumerate(self.data.thumbnail_prompts):
            m = min(int(model.lengths[k]), self.data.thumbnails.shape[-1])
            out.append(
                {
                    "prompt": self.prompts[k].id,
                    "tokens": model.token_strs[k][:m],
                    "pattern": self.data.thumbnails[i, slot, :m, :m].astype(np.float32),
                }
            )
        return out

    def summary(self, k: int = 3) -> pd.DataFrame:
        """Each head's strongest head-type score and its k nearest heads (the CLI's report)."""
        scores = self.head_scores()
        order = np.argsort(self.distances, axis=1, kind="stable")
        rows = []
        for i, hid in enumerate(self.head_ids):
            near = [self.head_ids[j] for j in order[i] if j != i][:k]
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
    def save(self, path: str | Path) -> Path:
        """Write the atlas to a folder: atlas.json (metadata) and arrays.npz (tables)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        d = self.data
        doc = {
            "format_version": FORMAT_VERSION,
            "motif_widgets_version": __version__,
            "config": asdict(self.config),
            "meta": d.meta,
            "heads": d.heads.to_dict(orient="list"),
            "prompts": [asdict(p) for p in d.prompts],
            "models": {
                n: {
                    "n_layers": m.n_layers, "n_heads": m.n_heads, "lengths": m.lengths.tolist(),
                    "token_ids": m.token_ids, "token_strs": m.token_strs,
                    "has_bos": m.has_bos.tolist(), "truncated": m.truncated.tolist(),
                }
                for n, m in d.models.items()
            },
            "feature_names": {k: list(v) for k, v in d.feature_names.items()},
            "feature_revisions": d.feature_revisions,
            "thumbnail_prompts": d.thumbnail_prompts.tolist(),
        }
        (path / "atlas.json").write_text(json.dumps(doc), encoding="utf-8")
        arrays = {f"features.{k}": v for k, v in d.features.items()}
        np.savez_compressed(
            path / "arrays.npz", score_sums=d.score_sums, score_rows=d.score_rows, thumbnails=d.thumbnails, **arrays
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Atlas":
        """Read an atlas written by :meth:`save`."""
        path = Path(path)
        if not (path / "atlas.json").exists() or not (path / "arrays.npz").exists():
            raise ValueError(f"{path} is not a saved atlas (atlas.json and arrays.npz expected)")
        doc = json.loads((path / "atlas.json").read_text(encoding="utf-8"))
        if doc.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: atlas format {doc.get('format_version')} is not {FORMAT_VERSION}")
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        prompts = [Prompt(**{**p, "token_ids": tuple(p["token_ids"]) if p["token_ids"] is not None else None}) for p in doc["prompts"]]
        models = {
            n: ModelInfo(
                n, m["n_layers"], m["n_heads"], np.array(m["lengths"]), m["token_ids"], m["token_strs"],
                np.array(m["has_bos"], bool), np.array(m["truncated"], bool),
            )
            for n, m in doc["models"].items()
        }
        data = AtlasData(
            heads=pd.DataFrame(doc["heads"]),
            prompts=prompts,
            models=models,
            features={k[len("features."):]: v for k, v in arrays.items() if k.startswith("features.")},
            feature_names={k: tuple(v) for k, v in doc["feature_names"].items()},
            score_sums=arrays["score_sums"],
            score_rows=arrays["score_rows"],
            thumbnails=arrays["thumbnails"],
            thumbnail_prompts=np.array(doc["thumbnail_prompts"], dtype=np.int64),
            meta=doc["meta"],
            # atlases saved before revisions were recorded hold revision 1 of every set
            feature_revisions={k: str(doc.get("feature_revisions", {}).get(k, "1")) for k in doc["feature_names"]},
        )
        atlas = cls(data, AtlasConfig(**doc["config"]))
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
