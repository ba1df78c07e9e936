"""Synthetic atlases for widget tests and benchmarks: real Atlas objects built from generated
causal attention patterns, with heads of distinct, recognisable motifs.

Also imported by benchmarks/widget_latency.py (by file path).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from motif_widgets import Atlas
from motif_widgets.atlas import AtlasData, ModelInfo
from motif_widgets.detect import SCORE_NAMES


def head_patterns(rng: np.random.Generator, n_layers: int, n_heads: int, n_tokens: int) -> np.ndarray:
    """[layers, heads, n, n] causal softmax patterns. Each head mixes three motifs with its own
    (seeded) strengths: a first-token sink, a previous-token offset and noise sharpness."""
    i, j = np.indices((n_tokens, n_tokens))
    lower = j <= i
    head_rng = np.random.default_rng(int(rng.integers(1 << 31)))
    sharp = head_rng.uniform(0.5, 5.0, (n_layers, n_heads, 1, 1))
    sink = head_rng.uniform(0.0, 4.0, (n_layers, n_heads, 1))
    prev = head_rng.uniform(0.0, 6.0, (n_layers, n_heads, 1, 1)) * (head_rng.random((n_layers, n_heads, 1, 1)) < 0.5)
    scores = rng.standard_normal((n_layers, n_heads, n_tokens, n_tokens)) * sharp
    scores[..., 0] += sink
    scores = scores + (i - j == 1) * prev
    scores = np.where(lower, scores, -np.inf)
    a = np.exp(scores - scores.max(-1, keepdims=True))
    return a / a.sum(-1, keepdims=True)


def synthetic_atlas(
    n_models: int = 2, n_layers: int = 3, n_heads: int = 4, n_prompts: int = 6, n_tokens: int = 20,
    seed: int = 0, model_names: list[str] | None = None, thumbnails: int = 4,
) -> Atlas:
    """An atlas of n_models x n_layers x n_heads heads, through Atlas.from_patterns (+ merge).

    Token strings are "t0", "t1", ... per position, token ids a repeated random block (so the
    duplicate-token / induction scores exist)."""
    rng = np.random.default_rng(seed)
    names = model_names or [f"model{m}" for m in range(n_models)]
    prompts = [f"p{k:02d}" for k in range(n_prompts)]
    half = n_tokens // 2
    ids = [list(np.tile(rng.choice(np.arange(10, 500), half, replace=False), 2)[:n_tokens]) for _ in prompts]
    ids = [t + list(rng.integers(10, 500, n_tokens - len(t))) for t in ids]
    strs = [[f"t{q}" for q in range(n_tokens)] for _ in prompts]
    atlases = []
    for m, name in enumerate(names):
        model_rng = np.random.default_rng(seed * 1000 + m)
        per_prompt = [head_patterns(model_rng, n_layers, n_heads, n_tokens) for _ in prompts]
        atlases.append(
            Atlas.from_patterns(
                per_prompt, model_name=name, prompts=prompts, token_ids=ids, token_strs=strs, thumbnails=thumbnails
            )
        )
    return atlases[0] if len(atlases) == 1 else Atlas.merge(atlases)


def feature_atlas(
    n_models: int, n_layers: int, n_heads: int, n_prompts: int, seed: int = 0, n_thumbnail_tokens: int = 16
) -> Atlas:
    """A large atlas straight from synthetic feature tables (no patterns to reduce): clustered
    random 'motifs' features, random scores, small thumbnails. For benchmarks with 10^5+
    (head, prompt) points, where building from patterns would take minutes."""
    from motif_widgets.features.registry import get_feature_set
    from motif_widgets.prompts import Prompt

    rng = np.random.default_rng(seed)
    names = tuple(get_feature_set("motifs").feature_names)
    heads_per_model = n_layers * n_heads
    h_total = n_models * heads_per_model
    centers = rng.standard_normal((12, len(names))) * 3
    head_center = centers[rng.integers(0, len(centers), h_total)] + rng.standard_normal((h_total, len(names)))
    features = head_center[:, None, :] + 0.5 * rng.standard_normal((h_total, n_prompts, len(names)))
    frames, models = [], {}
    prompts = [Prompt(f"p{k:04d}") for k in range(n_prompts)]
    for m in range(n_models):
        name = f"model{m}"
        layer, head = np.divmod(np.arange(heads_per_model), n_heads)
        frames.append(pd.DataFrame({
            "head": [f"{name}:L{a}H{b}" for a, b in zip(layer, head)], "model": name, "layer": layer,
            "head_index": head, "layer_depth": layer / max(n_layers - 1, 1),
        }))
        models[name] = ModelInfo(
            name, n_layers, n_heads, np.full(n_prompts, n_thumbnail_tokens), [list(range(n_thumbnail_tokens))] * n_prompts,
            [[f"t{q}" for q in range(n_thumbnail_tokens)]] * n_prompts, np.zeros(n_prompts, bool), np.zeros(n_prompts, bool),
        )
    rows = np.full((h_total, n_prompts, len(SCORE_NAMES)), float(n_thumbnail_tokens - 1))
    thumbs = rng.random((h_total, 4, n_thumbnail_tokens, n_thumbnail_tokens)) * np.tri(n_thumbnail_tokens)
    thumbs /= thumbs.sum(-1, keepdims=True)
    data = AtlasData(
        heads=pd.concat(frames, ignore_index=True), prompts=prompts, models=models,
        features={"motifs": features}, feature_names={"motifs": names},
        score_sums=rng.random((h_total, n_prompts, len(SCORE_NAMES))) * rows, score_rows=rows,
        thumbnails=thumbs.astype(np.float16), thumbnail_prompts=np.arange(4), meta={"synthetic": True},
    )
    return Atlas(data)
