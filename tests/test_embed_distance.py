"""Embedding column policy, head distances (eq. 3 and sliced Wasserstein), maps, clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from motif_widgets import PatternEmbedding
from motif_widgets.distance import head_distances, paired_distances, sliced_wasserstein_distances
from motif_widgets.projection import cluster_heads, head_map


def test_embedding_is_zscore_then_pca():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6)) + 5
    emb = PatternEmbedding(n_components=3).fit(pd.DataFrame(x, columns=list("abcdef")))
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    want = PCA(n_components=3, random_state=0).fit(z)
    assert np.allclose(emb.transform(pd.DataFrame(x, columns=list("abcdef"))), want.transform(z))
    assert np.allclose(emb.explained_variance_ratio_, want.explained_variance_ratio_)
    assert emb.loadings().shape == (6, 3) and list(emb.loadings().columns) == ["pc.0", "pc.1", "pc.2"]
    imp = emb.importance()
    assert imp["weighted_importance"].is_monotonic_decreasing and set(imp.index) == set("abcdef")


def test_embedding_weights_scale_zscores_before_pca():
    rng = np.random.default_rng(2)
    x = pd.DataFrame(rng.standard_normal((120, 4)) + 3, columns=["a", "b", "c", "d"])
    z = (x.to_numpy() - x.to_numpy().mean(0)) / x.to_numpy().std(0, ddof=1)
    emb = PatternEmbedding(n_components=4, weights={"b": 0.3, "d": 0.0}).fit(x)
    # all components kept: the embedding is a rotation of the weighted z-scores
    got = emb.transform(x)
    want = z * [1.0, 0.3, 1.0, 0.0]
    gram = lambda m: m @ m.T  # noqa: E731
    assert np.allclose(gram(got), gram(want)) and np.allclose(emb.weights_, [1.0, 0.3, 1.0, 0.0])
    with pytest.raises(ValueError, match="not in the table"):
        PatternEmbedding(weights={"nope": 1.0}).fit(x)
    with pytest.raises(ValueError, match="finite and >= 0"):
        PatternEmbedding(weights={"a": -1.0})


def test_embedding_column_policies():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 4))
    x[:, 1] = 3.0  # constant
    x[7, 2] = np.nan
    df = pd.DataFrame(x, columns=["a", "const", "gap", "d"])
    with pytest.raises(ValueError, match="contain NaN"):
        PatternEmbedding().fit(df)
    emb = PatternEmbedding(nan_columns="drop").fit(df)
    assert emb.dropped_features_ == {"gap": "contains NaN", "const": "zero variance"}
    assert emb.kept_features_ == ["a", "d"] and emb.n_components_ == 2
    with pytest.raises(ValueError, match="zero variance"):
        PatternEmbedding(nan_columns="drop", zero_variance="error").fit(df)
    kept = PatternEmbedding(nan_columns="drop", zero_variance="keep").fit(df)
    assert "const" in kept.kept_features_ and np.isfinite(kept.transform(df.fillna(0))).all()
    with pytest.raises(ValueError, match="differ"):
        emb.transform(df[["a", "d"]])
    with pytest.raises(ValueError, match="at least 2 rows"):
        PatternEmbedding().fit(df.iloc[:1])
    with pytest.raises(ValueError, match="nan_columns"):
        PatternEmbedding(nan_columns="fill")


def test_paired_distance_is_the_papers_equation_3():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((7, 11, 4))
    d = paired_distances(z)
    naive = np.array([[np.mean([np.linalg.norm(z[a, p] - z[b, p]) for p in range(11)]) for b in range(7)] for a in range(7)])
    assert np.allclose(d, naive, atol=1e-12) and np.array_equal(d, d.T) and not np.diag(d).any()
    manhattan = paired_distances(z, order=1)
    assert np.allclose(manhattan[0, 1], np.mean(np.abs(z[0] - z[1]).sum(-1)))


def test_sliced_wasserstein_ignores_prompt_pairing():
    """Two heads with the same patterns on shuffled prompts: far under eq. 3, identical
    under the distributional metric (the paper's section 4 example)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 5))
    b = a[rng.permutation(20)]
    c = a + 3.0
    z = np.stack([a, b, c])
    paired = paired_distances(z)
    sw = sliced_wasserstein_distances(z, n_projections=32, seed=0)
    assert paired[0, 1] > 1.0 and sw[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert sw[0, 2] > 1.0 and np.array_equal(sw, sliced_wasserstein_distances(z, n_projections=32, seed=0))
    # one dimension: exactly the 1-D Wasserstein-2 distance of the two samples
    x, y = rng.standard_normal(30), rng.standard_normal(30) * 2
    sw1 = sliced_wasserstein_distances(np.stack([x, y])[:, :, None], n_projections=4)
    assert sw1[0, 1] == pytest.approx(np.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2)))
    with pytest.raises(ValueError, match="unknown metric"):
        head_distances(z, "cosine")
    with pytest.raises(ValueError, match="heads, prompts, dims"):
        paired_distances(z[0])


def test_maps_and_clusters_validate_input():
    rng = np.random.default_rng(4)
    pts = np.concatenate([rng.normal(0, 0.1, (10, 3)), rng.normal(5, 0.1, (10, 3))])
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    labels = cluster_heads(d, n_clusters=2)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]
    assert head_map(d, "isomap", dim=3, n_neighbors=5).shape == (20, 3)
    with pytest.raises(ValueError, match="square"):
        head_map(d[:3])
    with pytest.raises(ValueError, match="NaN"):
        cluster_heads(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="unknown map method"):
        head_map(d, "mds")
    with pytest.raises(ValueError, match="unknown linkage"):
        cluster_heads(d, method="median")
