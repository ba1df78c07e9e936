"""The atlas -> trait packing: every value is the atlas's own result, in the wire layout."""

from __future__ import annotations

import numpy as np
import pytest

from motif_widgets.widgets import _packing
from motif_widgets.widgets._serialization import decode_patterns


def test_head_identity(multi_atlas):
    ident = _packing.head_identity(multi_atlas)
    heads = multi_atlas.heads
    assert ident["head_ids"] == multi_atlas.head_ids
    assert ident["model_names"] == ["model0", "model1"] and ident["model_layers"] == [3, 3]
    assert [ident["model_names"][m] for m in ident["head_model"]] == heads["model"].tolist()
    assert ident["head_layer"].tolist() == heads["layer"].tolist()
    assert ident["head_number"].tolist() == heads["head_index"].tolist()


def test_nearest_heads_rank_like_similar_heads(toy_view_atlas, multi_atlas):
    for atlas in (toy_view_atlas, multi_atlas):
        packed = _packing.neighbors(atlas, 5)
        for i, head in enumerate(atlas.head_ids):
            expected = atlas.similar_heads(head, k=5)
            assert [atlas.head_ids[j] for j in packed["neighbor_index"][i]] == expected["head"].tolist()
            assert np.allclose(packed["neighbor_distance"][i], expected["distance"], rtol=1e-6)


def test_per_model_neighbours(multi_atlas):
    packed = _packing.neighbors(multi_atlas, 20)
    index, dist = packed["model_neighbor_index"], packed["model_neighbor_distance"]
    assert index.shape == (2, 24, 20) and dist.shape == (2, 24, 20)
    for m, model in enumerate(multi_atlas.model_names):
        for i in (0, 7, 13, 23):
            head = multi_atlas.head_ids[i]
            expected = multi_atlas.similar_heads(head, k=20, models=[model])
            n = len(expected)  # 11 of the own model, 12 of the other
            assert [multi_atlas.head_ids[j] for j in index[m, i, :n]] == expected["head"].tolist()
            assert np.allclose(dist[m, i, :n], expected["distance"])
            assert (index[m, i, n:] == -1).all() and np.isnan(dist[m, i, n:]).all()
    with pytest.raises(ValueError, match="n_neighbors"):
        _packing.neighbors(multi_atlas, 0)


def test_one_model_ships_no_per_model_table(toy_view_atlas):
    assert _packing.neighbors(toy_view_atlas, 3)["model_neighbor_index"] is None




def test_thumbnails_are_the_atlas_thumbnails(toy_view_atlas):
    for encoding in ("float16", "uint8"):
        packed = _packing.thumbnails(toy_view_atlas, encoding)
        thumbs = packed["thumbnails"]
        assert thumbs.dtype == np.dtype(encoding) and thumbs.shape == toy_view_atlas.data.thumbnails.shape
        assert packed["thumbnail_prompts"] == [t["prompt"] for t in toy_view_atlas.thumbnails(0)]
        for h in (0, 5):
            for t, kept in enumerate(toy_view_atlas.thumbnails(h)):
                m = kept["pattern"].shape[0]
                assert packed["thumbnail_lengths"][0, t] == m
                assert packed["thumbnail_tokens"][0][t] == kept["tokens"]
                tol = 1e-3 if encoding == "float16" else 4e-3
                assert np.allclose(decode_patterns(thumbs[h, t, :m, :m]), kept["pattern"], atol=tol)


def test_cloud_points_scores_and_map(multi_atlas):
    packed = _packing.cloud(multi_atlas, "isomap")
    h, p = len(multi_atlas.head_ids), len(multi_atlas.prompts)
    points = packed["pattern_points"]
    assert points.shape == (h * p, 3) and points.dtype == np.float32
    # head-major: point h * P + p is head h on prompt p
    assert np.allclose(points[5 * p + 2], multi_atlas.points[5, 2, :3])
    scores = packed["pattern_scores"]
    names = list(multi_atlas.head_scores().columns)
    s = names.index("previous_token")
    assert np.allclose(scores[:, s].astype(float), multi_atlas.prompt_scores("previous_token").to_numpy().ravel(), atol=1e-3)
    assert np.allclose(packed["head_points"], multi_atlas.head_map("isomap", 3).to_numpy(), atol=1e-5)
    assert packed["prompt_ids"] == multi_atlas.prompt_ids
    ratio = multi_atlas.embedding.explained_variance_ratio_
    assert packed["pattern_axis_labels"][0] == f"PC1 ({ratio[0]:.0%})"
    with pytest.raises(ValueError, match="unknown head map"):
        _packing.cloud(multi_atlas, "mds")


def test_known_classes_and_clusters(gpt2_like_atlas, multi_atlas):
    packed = _packing.known_classes(gpt2_like_atlas)
    series = gpt2_like_atlas.known_classes()
    assert packed["known_classes"] == {str(i): c for i, c in enumerate(series) if c}
    assert packed["known_classes"]["1"] == series["gpt2-small:L0H1"]
    assert set(packed["known_class_colors"]) == {c for cs in series for c in cs}
    assert all(v.startswith("#") and len(v) == 7 for v in packed["known_class_colors"].values())
    assert _packing.known_classes(multi_atlas) == {"known_classes": {}, "known_class_colors": {}}
    packed = _packing.clusters(multi_atlas, 5)
    assert packed["clusters"].tolist() == multi_atlas.clusters(5).tolist()
    families = multi_atlas.families(5)
    for c, name in enumerate(packed["cluster_names"], start=1):
        assert set(families[multi_atlas.clusters(5) == c]) == {name}  # the legend names each cluster's family
    auto = _packing.clusters(multi_atlas, None)
    assert len(auto["cluster_names"]) == auto["clusters"].max() == multi_atlas.clusters().max()


def test_thumbnail_budget_cuts_tokens_then_prompts():
    # SmolLM2's default atlas (270 heads, 60 prompts of 32 tokens) in the export budget: every
    # prompt, 16 tokens; 1,500 heads x 134 prompts: 16 tokens of fewer prompts, spread evenly
    assert _packing.thumbnail_plan(270, 60, 32, 1, 4.5e6) == (16, list(range(60)))
    size, slots = _packing.thumbnail_plan(1500, 134, 64, 1, 4.5e6)
    assert size == 16 and slots[0] == 0 and slots[-1] == 133 and 1500 * len(slots) * 16 * 16 <= 4.5e6
    assert _packing.thumbnail_plan(270, 60, 32, 2, None) == (32, list(range(60)))  # no budget
    assert _packing.thumbnail_plan(270, 60, 32, 2, 40e6) == (32, list(range(60)))  # fits


def test_thumbnails_fit_the_widget_budget(toy_view_atlas):
    full = _packing.thumbnails(toy_view_atlas, "uint8", None)
    h, t, k, _ = full["thumbnails"].shape
    cut = _packing.thumbnails(toy_view_atlas, "uint8", h * t * 16 * 16)
    assert cut["thumbnails"].shape == (h, t, 16, 16)
    assert np.array_equal(cut["thumbnails"], full["thumbnails"][:, :, :16, :16])  # top-left corners
    assert all(len(tok) <= 16 for per in cut["thumbnail_tokens"] for tok in per)
    assert cut["thumbnail_lengths"].max() <= 16
    # every prompt's full tokens travel too (the large view's text), per model
    model = toy_view_atlas.data.models["toy-induction"]
    assert cut["prompt_tokens"][0] == [[str(s) for s in strs] for strs in model.token_strs]
