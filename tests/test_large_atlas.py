"""Large atlases out of core, at small sizes: lazy feature reads, the streamed PCA, float32
eq. 3, the chunked neighbour ranking and index, landmark Isomap, and widgets that ship no
[H, H] matrix. (Speed and memory at 10k heads: benchmarks/large_atlas.py.)"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from motif_widgets import Atlas, PatternEmbedding
from motif_widgets import atlas as atlas_module
from motif_widgets import distance, store
from motif_widgets.atlas_data import JoinedArray
from motif_widgets.distance import nearest_heads, paired_distances
from motif_widgets.projection import head_map, landmark_isomap
from motif_widgets.store import AtlasFileError, LazyFeatures


def head_patterns(rng, n_layers: int, n_heads: int, n: int) -> np.ndarray:
    """[layers, heads, n, n] causal softmax patterns; each head has its own sharpness, sink
    and previous-token strength, so heads differ as real ones do."""
    i, j = np.indices((n, n))
    sharp = rng.uniform(0.5, 4.0, (n_layers, n_heads, 1, 1))
    sink = rng.uniform(0.0, 4.0, (n_layers, n_heads, 1))
    prev = rng.uniform(0.0, 6.0, (n_layers, n_heads, 1, 1))
    scores = rng.standard_normal((n_layers, n_heads, n, n)) * sharp
    scores[..., 0] += sink
    scores = np.where(j <= i, scores + (i - j == 1) * prev, -np.inf)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def pattern_atlas(seed: int = 0, n_layers: int = 4, n_heads: int = 6, n_prompts: int = 10, **config) -> Atlas:
    """Two models' heads over the same prompts, features from the real kernels."""
    parts = []
    for m in range(2):
        rng = np.random.default_rng(seed * 10 + m)
        per_prompt = [head_patterns(rng, n_layers, n_heads, int(n)) for n in rng.integers(10, 18, n_prompts)]
        parts.append(Atlas.from_patterns(per_prompt, model_name=f"m{m}", prompts=[f"p{k}" for k in range(n_prompts)],
                                         extra_feature_sets=["paper"], thumbnails=2, **config))
    return Atlas.merge(parts)


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    return pattern_atlas()


def test_lazy_features_read_like_the_eager_ones(atlas, tmp_path, monkeypatch):
    p = len(atlas.prompts)
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 5 * p)  # row groups of 5 heads: reads cross groups
    path = atlas.save(tmp_path / "a")
    lazy = Atlas.load(path, lazy=True)
    eager = Atlas.load(path, lazy=False)
    assert isinstance(lazy.data.features["motifs"], LazyFeatures) and isinstance(eager.features, np.ndarray)
    for name, want in atlas.data.features.items():
        f = lazy.data.features[name]
        assert f.shape == want.shape and np.array_equal(np.asarray(f), want)
        assert np.array_equal(f.read_heads(3, 17), want[3:17]) and np.array_equal(f[4:6, 2:5], want[4:6, 2:5])
        assert np.array_equal(f[:, [7, 1]], want[:, [7, 1]]) and f.read_heads(48, 60).shape == (0, p, want.shape[2])
        blocks = list(f.iter_heads(rows=3 * p))
        assert [s for s, _ in blocks] == list(range(0, len(want), 3))
        assert np.array_equal(np.concatenate([b for _, b in blocks]), want)
    files = pq.ParquetFile(lazy.data.features["motifs"].file).metadata
    assert files.num_row_groups == -(-len(atlas.head_ids) // 5)
    # the derivations of a lazy atlas equal those of the eager one (same large path)
    assert np.array_equal(lazy.configure(large=True).points, eager.configure(large=True).points)
    assert lazy.take_prompts(["p3", "p0"]).features.shape == (48, 2, len(atlas.feature_names))
    # a lazily loaded atlas saves (streaming its features) to an equal one
    again = Atlas.load(lazy.save(tmp_path / "b"), lazy=False)
    for name, want in atlas.data.features.items():
        assert np.array_equal(again.data.features[name], want)
    # by size: lazy above LARGE_ATLAS_HEADS heads
    assert isinstance(Atlas.load(path).features, np.ndarray)
    monkeypatch.setattr(store, "LARGE_ATLAS_HEADS", 40)
    assert isinstance(Atlas.load(path).data.features["motifs"], LazyFeatures)
    for bad in ("yes", 1):
        with pytest.raises(ValueError, match="lazy must be True, False or None"):
            store.load_atlas(path, lazy=bad)
        with pytest.raises(TypeError, match="large must be True, False or None"):
            atlas_module.AtlasConfig(large=bad)


def test_a_small_atlas_loaded_lazily_derives_like_an_eager_one(atlas, tmp_path):
    """Below the size threshold the in-memory paths run: the lazy table is read once, on first use."""
    path = atlas.save(tmp_path / "a")
    lazy, eager = Atlas.load(path, lazy=True), Atlas.load(path, lazy=False)
    assert not lazy.is_large and isinstance(lazy.data.features["motifs"], LazyFeatures)
    np.testing.assert_array_equal(lazy.points, eager.points)
    np.testing.assert_array_equal(lazy.distances, eager.distances)
    assert lazy.features is lazy.features  # read once
    head = atlas.head_ids[3]
    assert lazy.similar_heads(head, k=5).index.tolist() == eager.similar_heads(head, k=5).index.tolist()


def test_joined_lazy_arrays_read_like_numpy_concatenation(tmp_path):
    """Parts left on disk (and in memory) joined along heads or prompts, with column selections:
    every way the package indexes them gives what np.concatenate would, reading by heads."""
    from motif_widgets.atlas_data import take_columns

    a, b = pattern_atlas(seed=1, n_prompts=6), pattern_atlas(seed=2, n_prompts=6)
    disk = [Atlas.load(x.save(tmp_path / f"p{k}"), lazy=True).data for k, x in enumerate((a, b))]
    for kind in ("features", "thumbnails"):
        arrays = [d.features["motifs"] if kind == "features" else d.thumbnails for d in disk]
        eager = [np.asarray(x) for x in arrays]
        for axis in (0, 1):
            joined = JoinedArray([arrays[0], eager[1]], axis)  # one part on disk, one in memory
            want = np.concatenate(eager, axis=axis)
            cols = [want.shape[1] - 1, 0] + ([3] if want.shape[1] > 3 else [])
            view, want_view = take_columns(joined, cols), want[:, cols]
            assert joined.shape == want.shape and view.shape == want_view.shape
            assert np.array_equal(np.asarray(joined), want) and np.array_equal(np.asarray(view), want_view)
            for j, w in ((joined, want), (view, want_view)):
                assert np.array_equal(j[5:31], w[5:31]) and np.array_equal(j[7], w[7]) and np.array_equal(j[-1], w[-1])
                pick = [w.shape[1] - 1, 0]
                assert np.array_equal(j[:, pick], w[:, pick]) and np.array_equal(j[4, 1], w[4, 1])
                assert np.array_equal(j[2:9, pick[::-1], :3], w[2:9, pick[::-1], :3])
                assert np.array_equal(j[[3, 1, 40]], w[[3, 1, 40]])  # a head list: read all, then select
                assert np.array_equal(j.read_heads(40, 200), w[40:]) and j.read_heads(96, 99).shape[0] == 0
                blocks = list(j.iter_heads(rows=7 * w.shape[1]))
                assert [s for s, _ in blocks] == list(range(0, len(w), 7))
                assert np.array_equal(np.concatenate([x for _, x in blocks]), w)
    with pytest.raises(ValueError, match="do not join"):
        JoinedArray([np.zeros((2, 3, 4)), np.zeros((2, 3, 5))], 0)


def test_a_lazy_read_refuses_a_file_changed_since_the_load(atlas, tmp_path):
    path = atlas.save(tmp_path / "a")
    lazy = Atlas.load(path, lazy=True)
    file = lazy.data.features["motifs"].file
    stat = file.stat()
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AtlasFileError, match="has changed since the atlas was loaded"):
        lazy.features.read_heads(0, 2)
    atlas.save(path)  # a new generation: the old files are removed
    with pytest.raises(AtlasFileError, match="is gone"):
        lazy.data.features["paper"].read_heads(0, 2)


@pytest.mark.parametrize("feature_set", ["motifs", "paper"])
def test_streamed_pca_matches_sklearn(atlas, feature_set):
    a = atlas.configure(feature_set=feature_set)
    ref = a.embedding  # small atlas: scikit-learn PCA
    assert ref.solver_ == "sklearn" and not a.is_large
    h, p, f = a.features.shape
    x = a.features.reshape(h * p, f)
    chunks = (x[s : s + 37] for s in range(0, len(x), 37))  # chunks that do not align with heads
    got = PatternEmbedding(**ref.get_params()).fit_chunks(chunks, feature_names=a.feature_names)
    assert got.solver_ == "covariance"
    assert got.kept_features_ == ref.kept_features_ and got.dropped_features_ == ref.dropped_features_
    assert np.allclose(got.mean_, ref.mean_, rtol=1e-12, atol=1e-12) and np.allclose(got.scale_, ref.scale_, rtol=1e-12)
    assert np.abs(got.components_ - ref.components_).max() < 1e-9  # signs as scikit-learn's too
    assert np.abs(got.explained_variance_ratio_ - ref.explained_variance_ratio_).max() < 1e-12
    assert np.abs(got.transform(x) - ref.transform(x)).max() < 1e-9 * np.abs(ref.transform(x)).max()
    # the atlas takes this path when large
    large = a.configure(large=True)
    assert large.embedding.solver_ == "covariance" and np.abs(large.points - a.points).max() < 1e-9


def test_streamed_pca_applies_the_column_policies():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((90, 4))
    x[:, 1] = 2.0
    x[40, 2] = np.nan
    cols = ["a", "flat", "gap", "d"]
    with pytest.raises(ValueError, match="contain NaN"):
        PatternEmbedding().fit_chunks([x[:50], x[50:]], feature_names=cols)
    emb = PatternEmbedding(nan_columns="drop").fit_chunks([x[:50], x[50:]], feature_names=cols)
    assert emb.dropped_features_ == {"gap": "contains NaN", "flat": "zero variance"} and emb.kept_features_ == ["a", "d"]
    with pytest.raises(ValueError, match="same feature columns"):
        PatternEmbedding().fit_chunks([pd.DataFrame(x[:5], columns=cols), pd.DataFrame(x[5:], columns=cols[::-1])])
    with pytest.raises(ValueError, match="at least 2 rows"):
        PatternEmbedding().fit_chunks([])


def test_float32_distances_match_float64_and_keep_the_ranking(atlas, monkeypatch):
    monkeypatch.setattr(distance, "TILE", 16)  # several tiles, diagonal and off-diagonal
    pts = atlas.points
    d64 = paired_distances(pts)
    d32 = paired_distances(pts, dtype="float32")
    assert d32.dtype == np.float32 and np.array_equal(d32, d32.T) and not np.diag(d32).any()
    off = ~np.eye(len(d64), dtype=bool)
    assert (np.abs(d32 - d64)[off] / d64[off]).max() < 1e-5
    i64, _ = nearest_heads(d64, 10)
    i32, _ = nearest_heads(d32, 10)
    assert np.array_equal(i64, i32)
    for order in (1.0, 3.0):
        ref = paired_distances(pts, order)
        assert np.abs(paired_distances(pts, order, "float32") - ref)[off].max() / ref[off].min() < 1e-5
    with pytest.raises(ValueError, match="dtype must be one of"):
        paired_distances(pts, dtype="float16")
    bad = pts.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        paired_distances(bad, dtype="float32")
    # a large atlas computes eq. 3 this way
    large = atlas.configure(large=True)
    assert large.is_large and large.distances.dtype == np.float32
    assert np.abs(large.distances - atlas.distances)[off].max() / atlas.distances[off].min() < 1e-5


def test_chunked_nearest_heads_ranks_like_a_stable_sort(monkeypatch):
    monkeypatch.setattr(distance, "ROW_CHUNK_ELEMENTS", 7 * 60)  # 7 rows per chunk
    rng = np.random.default_rng(5)
    d = np.round(rng.random((60, 60)), 1)  # many ties
    d = (d + d.T) / 2
    cand = rng.random(60) < 0.3

    def stable(k, candidates=None, d=d):
        m = d.copy()
        np.fill_diagonal(m, np.inf)
        if candidates is not None:
            m[:, ~candidates] = np.inf
        order = np.argsort(m, axis=1, kind="stable")[:, :k]
        return np.where(np.isfinite(np.take_along_axis(m, order, 1)), order, -1)

    for k in (1, 5, 20, 59):
        for m in (d, d.astype(np.float32)):
            index, dist = nearest_heads(m, k)
            assert np.array_equal(index, stable(k, d=m)) and np.array_equal(dist, np.take_along_axis(m, index, 1))
    index, dist = nearest_heads(d, 30, cand)
    assert np.array_equal(index, stable(30, cand)) and np.isnan(dist[index < 0]).all()
    assert (index >= 0).sum(1).max() == cand.sum()
    assert np.array_equal(nearest_heads(d, 4, rows=[9, 2])[0], stable(4)[[9, 2]])
    with pytest.raises(ValueError, match="k must be >= 1"):
        nearest_heads(d, 0)


def test_the_neighbour_index_answers_similar_heads_like_the_full_matrix(atlas):
    large = atlas.configure(large=True)
    index, dist = large.neighbors()
    assert index.shape == (48, Atlas.N_INDEXED_NEIGHBORS)
    full_index, full_dist = nearest_heads(large.distances, Atlas.N_INDEXED_NEIGHBORS)
    assert np.array_equal(index, full_index) and np.array_equal(dist, full_dist, equal_nan=True)
    for head in ("m0:L0H0", "m1:L3H5", 17):
        from_index = large.similar_heads(head, k=10)  # read from the index
        from_matrix = large.similar_heads(head, k=10, models=large.model_names)  # ranked on the matrix row
        pd.testing.assert_frame_equal(from_index, from_matrix)
        assert from_index["distance"].is_monotonic_increasing
    assert len(large.similar_heads("m0:L1H2", k=40)) == 40  # beyond the index: the matrix row
    summary = large.summary(k=3)
    assert summary.loc["m0:L0H0", "nearest"] == ", ".join(large.head_ids[j] for j in index[0, :3])


def test_landmark_isomap_is_isomap_with_every_landmark(atlas):
    d = atlas.distances
    index, dist = nearest_heads(d, 8)
    exact = head_map(d, "isomap", 3, n_neighbors=8)
    full = landmark_isomap(index, dist, 3, n_landmarks=len(d), distances=d)
    assert np.allclose(np.abs(full), np.abs(exact), atol=1e-8 * np.abs(exact).max())
    # fewer landmarks: seeded, so the same map twice (its closeness to Isomap at 1,000 heads
    # is measured by benchmarks/large_atlas.py)
    few = landmark_isomap(index, dist, 3, n_landmarks=30, seed=1, distances=d)
    assert np.array_equal(few, landmark_isomap(index, dist, 3, n_landmarks=30, seed=1, distances=d))
    assert np.isfinite(few).all() and np.allclose(few.mean(0), 0)
    # two far groups: the kNN graph falls apart and is joined by the closest pair
    far = d.copy()
    far[:24, 24:] += 100
    far[24:, :24] += 100
    i2, d2 = nearest_heads(far, 5)
    with pytest.raises(ValueError, match="components; pass distances="):
        landmark_isomap(i2, d2, 3)
    coords = landmark_isomap(i2, d2, 3, n_landmarks=20, distances=far)
    assert np.isfinite(coords).all() and coords.shape == (48, 3)
    large = atlas.configure(large=True)
    assert np.array_equal(large.head_map("isomap", 3, n_neighbors=8).to_numpy(),
                          landmark_isomap(*large.neighbors(8), 3, Atlas.N_LANDMARKS, 0, large.distances))


def test_widgets_on_a_large_atlas_ship_no_square_matrix(atlas, monkeypatch):
    from motif_widgets.widgets import HeadExplorer, PatternCloud, SimilarHeads, _packing

    monkeypatch.setattr(atlas_module, "LARGE_ATLAS_HEADS", 40)  # 48 heads count as large
    large = Atlas(atlas.data, atlas.config)
    assert large.is_large and large.distances.dtype == np.float32
    h = len(large.head_ids)
    for widget in (SimilarHeads(large), PatternCloud(large), HeadExplorer(large)):
        shipped = {name: getattr(widget, name) for name in widget.keys}
        arrays = {n: v for n, v in shipped.items() if isinstance(v, np.ndarray)}
        assert arrays, type(widget).__name__
        assert not [n for n, v in arrays.items() if v.ndim >= 2 and v.shape[:2] == (h, h)], type(widget).__name__
    similar = SimilarHeads(large)
    assert np.array_equal(similar.neighbor_index, large.neighbors(similar.neighbor_index.shape[1])[0])
    # above the point cap the cloud shows every head on evenly spaced prompts
    packed = _packing.cloud(large, max_points=h * 4)
    assert packed["prompt_ids"] == ["p0", "p3", "p6", "p9"] and packed["pattern_points"].shape == (h * 4, 3)
    assert np.array_equal(packed["pattern_points"].reshape(h, 4, 3), large.points[:, [0, 3, 6, 9], :3].astype(np.float32))
    assert len(_packing.cloud(large)["prompt_ids"]) == len(large.prompts)
    # thumbnails: the widgets' one byte budget (thumbnail_plan) holds for large atlases too
    assert _packing.thumbnails(large)["thumbnails"].nbytes <= _packing.MAX_THUMBNAIL_BYTES


# ---------------------------------------------------------------------------- lazy thumbnails
def thumbnail_parts() -> list[Atlas]:
    """Two models over 10 prompts of 10..17 tokens, thumbnails of every prompt at 12 tokens
    (some prompts shorter than that: their corners are zero-padded)."""
    parts = []
    for m in range(2):
        rng = np.random.default_rng(40 + m)
        per_prompt = [head_patterns(rng, 4, 6, int(n)) for n in rng.integers(10, 18, 10)]
        parts.append(Atlas.from_patterns(per_prompt, model_name=f"m{m}", prompts=[f"p{k}" for k in range(10)],
                                         thumbnails="all", thumbnail_tokens=12))
    return parts


@pytest.fixture(scope="module")
def thumbs_atlas() -> Atlas:
    return Atlas.merge(thumbnail_parts())


def five_heads_per_group(atlas: Atlas, monkeypatch) -> None:
    _, t, k, _ = atlas.data.thumbnails.shape
    monkeypatch.setattr(store, "THUMBNAIL_GROUP_BYTES", 5 * t * k * k * 2)


def test_lazy_thumbnails_read_like_the_eager_ones(thumbs_atlas, tmp_path, monkeypatch):
    want = thumbs_atlas.data.thumbnails  # [48, 10, 12, 12]
    five_heads_per_group(thumbs_atlas, monkeypatch)  # row groups of 5 heads: reads cross groups
    path = thumbs_atlas.save(tmp_path / "a")
    lazy, eager = Atlas.load(path, lazy=True), Atlas.load(path, lazy=False)
    t = lazy.data.thumbnails
    assert isinstance(t, store.LazyThumbnails) and isinstance(eager.data.thumbnails, np.ndarray)
    assert t.shape == want.shape and t.dtype == np.float16 and len(t) == 48
    assert pq.ParquetFile(t.file).metadata.num_row_groups == 10
    assert np.array_equal(np.asarray(t), want) and np.array_equal(eager.data.thumbnails, want)
    assert np.array_equal(t.read_heads(3, 17), want[3:17]) and t.read_heads(48, 60).shape == (0, 10, 12, 12)
    for key in [7, -1, (slice(4, 13),), (slice(None, None, 7), [9, 0, 4]), (slice(None), slice(2, 9, 3), slice(None, 5), slice(None, 5)),
                ([47, 0, 22], 3), (np.arange(48) % 4 == 1, slice(None), slice(3, 12), slice(1, 12, 2)), (12, [5, 5, 1]), (30, -2)]:
        assert np.array_equal(t[key], want[key]), key
    view = t.take_slots([8, 2, 5])  # nothing read: a view of three prompt columns
    assert view.shape == (48, 3, 12, 12) and np.array_equal(view[10:20, 1:], want[10:20][:, [2, 5]])
    with pytest.raises(IndexError, match="token axes take slices only"):
        t[:, :, 0]
    with pytest.raises(IndexError, match="at most one sequence"):
        t[[0, 1], [2, 3]]
    with pytest.raises(IndexError):
        t[48]
    # what uses thumbnails gets the same from the lazy atlas, and leaves them on disk
    for head in (0, 29, 47):
        for x, y in zip(lazy.thumbnails(head), thumbs_atlas.thumbnails(head)):
            assert x["prompt"] == y["prompt"] and x["tokens"] == y["tokens"] and np.array_equal(x["pattern"], y["pattern"])
    sub = lazy.take_prompts(["p7", "p2", "p4"])
    assert isinstance(sub.data.thumbnails, store.LazyThumbnails)
    assert np.array_equal(np.asarray(sub.data.thumbnails), thumbs_atlas.take_prompts(["p7", "p2", "p4"]).data.thumbnails)
    assert sub.data.thumbnail_prompts.tolist() == [1, 2, 0]  # slots keep their order: p2, p4, p7
    # merging leaves them on disk too (joined): equal to merging the eager atlases
    halves = [Atlas.load(part.save(tmp_path / f"part{m}"), lazy=True) for m, part in enumerate(thumbnail_parts())]
    assert all(isinstance(half.data.thumbnails, store.LazyThumbnails) for half in halves)
    merged = Atlas.merge(halves)
    assert isinstance(merged.data.thumbnails, JoinedArray) and np.array_equal(np.asarray(merged.data.thumbnails), want)
    assert np.array_equal(merged.data.thumbnails[:, [4, 1], :5, :5], want[:, [4, 1], :5, :5])
    # a lazily loaded atlas saves (streaming head groups) to an equal one
    again = Atlas.load(lazy.save(tmp_path / "b"), lazy=False)
    assert np.array_equal(again.data.thumbnails, want) and again.data.thumbnail_prompts.tolist() == list(range(10))
    # by size: lazy above LARGE_ATLAS_HEADS heads
    assert isinstance(Atlas.load(path).data.thumbnails, np.ndarray)
    monkeypatch.setattr(store, "LARGE_ATLAS_HEADS", 40)
    assert isinstance(Atlas.load(path).data.thumbnails, store.LazyThumbnails)


def test_lazy_thumbnails_read_only_the_row_groups_and_columns_asked_for(thumbs_atlas, tmp_path, monkeypatch):
    from motif_widgets.widgets import _packing

    five_heads_per_group(thumbs_atlas, monkeypatch)
    path = thumbs_atlas.save(tmp_path / "a")
    reads = []
    real = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kwargs):
        reads.append((i, tuple(columns) if columns is not None else None))
        return real(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    lazy = Atlas.load(path, lazy=True)
    assert reads == []  # loading reads no thumbnails (nor features)
    t = lazy.data.thumbnails
    every = tuple(f"prompt:p{k}" for k in range(10))
    t[7:12]
    assert reads == [(1, every), (2, every)]  # heads 5-9 and 10-14
    reads.clear()
    t[:, [3, 8], :4, :4]
    assert reads == [(g, ("prompt:p3", "prompt:p8")) for g in range(10)]
    reads.clear()
    for x in lazy.thumbnails(23):
        assert x["pattern"].shape[0] <= 12
    assert reads == [(4, every)]
    reads.clear()
    # widgets ship a cut of the thumbnails and read just that: 2 of 10 prompts here
    h, k = 48, 12
    budget = h * 2 * k * k * 2  # float16 bytes of two prompts' thumbnails
    packed = _packing.thumbnails(lazy, "float16", budget)
    assert packed["thumbnail_prompts"] == ["p0", "p9"] and packed["thumbnails"].shape == (h, 2, k, k)
    assert reads == [(g, ("prompt:p0", "prompt:p9")) for g in range(10)]
    assert np.array_equal(packed["thumbnails"], thumbs_atlas.data.thumbnails[:, [0, 9]])


def test_widgets_on_a_lazily_loaded_atlas_ship_the_same_thumbnails(thumbs_atlas, tmp_path, monkeypatch):
    from motif_widgets.widgets import HeadExplorer, PatternGrid, SimilarHeads
    from motif_widgets.widgets.export import exported_thumbnails, pack_state

    five_heads_per_group(thumbs_atlas, monkeypatch)
    path = thumbs_atlas.save(tmp_path / "a")
    lazy, eager = (Atlas.load(path, lazy=z) for z in (True, False))
    assert isinstance(lazy.data.thumbnails, store.LazyThumbnails)
    names = ("thumbnails", "thumbnail_prompts", "thumbnail_tokens", "thumbnail_lengths", "prompt_tokens")

    def same(a, b):
        for n in names:
            x, y = getattr(a, n), getattr(b, n)
            assert (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y), n

    for make in (lambda a: HeadExplorer(a), lambda a: HeadExplorer(a, pattern_encoding="uint8", thumbnail_budget_mb=0.05),
                 lambda a: SimilarHeads(a), lambda a: PatternGrid(a, prompts=["p1", "p6"])):
        w_lazy, w_eager = make(lazy), make(eager)
        same(w_lazy, w_eager)
    cut = HeadExplorer(lazy, thumbnail_budget_mb=0.05)
    assert cut.thumbnails.shape[1] < 10 and cut.thumbnails.nbytes <= 50_000  # the budget holds on the lazy atlas too
    assert exported_thumbnails(HeadExplorer(lazy)) == exported_thumbnails(HeadExplorer(eager))
    assert pack_state(SimilarHeads(lazy)) == pack_state(SimilarHeads(eager))
