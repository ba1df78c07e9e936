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
    bad = PatternEmbedding(weights={"a": -1.0})  # stored as given (scikit-learn contract) ...
    assert bad.weights == {"a": -1.0}
    with pytest.raises(ValueError, match="finite and >= 0"):  # ... and refused by fit
        bad.fit(x)


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
        PatternEmbedding(nan_columns="fill").fit(df)


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


def test_embedding_follows_the_scikit_learn_estimator_contract():
    from sklearn.base import clone

    weights = {"b": 0.5}
    emb = PatternEmbedding(n_components=2, nan_columns="drop", weights=weights)
    params = emb.get_params()
    assert params == {
        "n_components": 2, "nan_columns": "drop", "zero_variance": "drop", "variance_tol": 1e-9,
        "random_state": 0, "weights": {"b": 0.5},
    }
    assert params["weights"] is weights  # stored exactly as given, not converted
    # __init__ does not validate: bad values are kept and refused by fit, naming the parameter
    lazy = PatternEmbedding(n_components=0, zero_variance="sometimes", variance_tol=-1.0)
    assert lazy.n_components == 0 and lazy.zero_variance == "sometimes"
    rng = np.random.default_rng(5)
    x = pd.DataFrame(rng.standard_normal((40, 3)), columns=["a", "b", "c"])
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        lazy.fit(x)
    with pytest.raises(ValueError, match="zero_variance must be one of"):
        lazy.set_params(n_components=2).fit(x)
    with pytest.raises(ValueError, match="variance_tol must be >= 0"):
        lazy.set_params(zero_variance="drop").fit(x)
    with pytest.raises(TypeError, match="n_components must be an integer"):
        PatternEmbedding(n_components=2.5).fit(x)
    # clone: an unfitted copy with equal parameters that fits to the same numbers
    fitted = emb.fit(x)
    twin = clone(fitted)
    assert twin is not fitted and twin.get_params() == fitted.get_params() and not hasattr(twin, "components_")
    assert np.allclose(twin.fit_transform(x), fitted.transform(x))
    assert emb.set_params(n_components=3) is emb and emb.get_params()["n_components"] == 3
    assert emb.fit(x).n_components_ == 3


def test_embedding_refuses_weights_that_zero_every_feature():
    rng = np.random.default_rng(6)
    x = pd.DataFrame(rng.standard_normal((30, 2)) + [0, 2], columns=["a", "b"])
    with pytest.raises(ValueError, match="every kept feature weight 0.*every distance would be 0"):
        PatternEmbedding(weights={"a": 0.0, "b": 0.0}).fit(x)
    # zero weight on the only column that survives the zero-variance drop counts too
    x["c"] = 1.0
    with pytest.raises(ValueError, match="every kept feature weight 0"):
        PatternEmbedding(weights={"a": 0.0, "b": 0.0, "c": 1.0}).fit(x)
    assert PatternEmbedding(weights={"a": 0.0}).fit(x).weights_.tolist() == [0.0, 1.0]
    with pytest.raises(TypeError, match="weights must be a mapping"):
        PatternEmbedding(weights=[1.0, 2.0]).fit(x)


def test_checked_weights_lives_in_checks_and_the_registry_does_not_import_embed():
    import subprocess
    import sys

    from motif_widgets import _checks, embed

    assert embed.checked_weights is _checks.checked_weights
    # the feature registry imports without the embedding layer: load the package without its
    # __init__ (which imports everything) and make `import motif_widgets.embed` fail
    code = (
        "import sys, types, importlib.util as u; path = list(u.find_spec('motif_widgets').submodule_search_locations); "
        "pkg = types.ModuleType('motif_widgets'); pkg.__path__ = path; "
        "sys.modules['motif_widgets'] = pkg; sys.modules['motif_widgets.embed'] = None; "
        "import motif_widgets.features.registry as r; print(r.checked_weights.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == "motif_widgets._checks"


def test_pattern_embedding_works_inside_an_sklearn_pipeline():
    from sklearn.pipeline import make_pipeline

    x = np.random.default_rng(0).normal(size=(40, 5))
    y = np.arange(40)  # a Pipeline passes y along; the embedding ignores it
    pipe = make_pipeline(PatternEmbedding(n_components=3)).fit(x, y)
    assert np.allclose(pipe.transform(x), PatternEmbedding(n_components=3).fit(x).transform(x))
    names = PatternEmbedding(n_components=2).fit(x, feature_names=list("abcde")).kept_features_
    assert names == list("abcde")
