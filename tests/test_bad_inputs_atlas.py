"""Bad input to the Atlas and its data: each gets a clear error naming the argument and what
was expected, or is accepted correctly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from motif_widgets import Atlas, AtlasConfig
from motif_widgets.atlas_data import AtlasData
from test_store import random_patterns, small_atlas


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    return small_atlas(0)


@pytest.mark.parametrize(
    "per_prompt, error, message",
    [
        (None, TypeError, r"per_prompt must be a list with one \[layers, heads, n, n\] array or tensor per prompt, got NoneType"),
        ("patterns", TypeError, r"per_prompt must be a list .* got str"),
        ({"a": 1}, TypeError, r"per_prompt must be a list .* got dict"),
        ([], ValueError, r"per_prompt is empty"),
        ([np.zeros((0, 3, 3))], ValueError, r"per_prompt\[0\] has shape \(0, 3, 3\); expected \[layers, heads, n, n\]"),
        ([np.zeros((2, 0, 4, 4))], ValueError, r"per_prompt\[0\] has shape \(2, 0, 4, 4\); expected .* every size >= 1"),
        ([[[[1.0]], [[1.0], [0.5, 0.5]]]], ValueError, r"per_prompt\[0\] is not a rectangular array"),
        ([np.array([["a"]], dtype=object)], TypeError, r"per_prompt\[0\] must be a numeric"),
        (np.ones((2, 2, 3, 3)), ValueError, r"per_prompt has shape \(2, 2, 3, 3\): .*wrap one prompt's array in a list"),
    ],
)
def test_from_patterns_refuses_malformed_patterns(per_prompt, error, message):
    with pytest.raises(error, match=message):
        Atlas.from_patterns(per_prompt)


def test_from_patterns_refuses_mixed_geometry_and_count_mismatch():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"per_prompt\[1\] has \(2, 2\) layers x heads, per_prompt\[0\] has \(2, 3\)"):
        Atlas.from_patterns([random_patterns(rng, 2, 3, 5), random_patterns(rng, 2, 2, 5)])
    with pytest.raises(ValueError, match="prompts: 1 prompts for 2 pattern arrays"):
        Atlas.from_patterns([random_patterns(rng, 2, 3, 5)] * 2, prompts=["only-one"])


def test_duplicate_prompt_ids_are_refused_everywhere(atlas):
    rng = np.random.default_rng(1)
    per_prompt = [random_patterns(rng, 1, 2, 6) for _ in range(3)]
    with pytest.raises(ValueError, match=r"duplicate prompt ids \['x'\]"):
        Atlas.from_patterns(per_prompt, prompts=["x", "y", "x"])
    with pytest.raises(ValueError, match=r"duplicate prompt ids"):
        replace(atlas.data, prompts=[atlas.prompts[0]] * len(atlas.prompts))
    # merge pairs prompts by id and content: same ids with other content are refused
    other = Atlas.from_patterns(per_prompt + per_prompt[:2], prompts=[f"q{k}" for k in range(5)], model_name="other")
    with pytest.raises(ValueError, match="atlases have different prompts"):
        Atlas.merge([atlas, other])


def test_merging_pairs_prompts_by_id_whatever_their_order(atlas):
    reordered = Atlas(atlas.data.take_prompts(atlas.prompt_ids[::-1]).rename_model(atlas.model_names[0], "twin"))
    merged = Atlas.merge([atlas, reordered])
    a, b = merged.data.features["motifs"][:6], merged.data.features["motifs"][6:]
    assert np.array_equal(a, b)  # the same model's data, prompt for prompt
    assert merged.similar_heads(atlas.head_ids[0], k=1)["head"][0] == "twin:" + atlas.head_ids[0].split(":")[1]


@pytest.mark.parametrize(
    "head, error, message",
    [
        (True, TypeError, r"head must be a head id like 'm0:L0H0', a \(layer, head\) pair or a row number, got True"),
        (2.0, TypeError, r"head must be a head id .* got 2.0 \(float\)"),
        (None, TypeError, r"head must be a head id .* got None"),
        (99, ValueError, r"head index 99 out of range 0..5"),
        ("L9H9", ValueError, r"unknown head 'L9H9'"),
    ],
)
def test_head_arguments_are_checked(atlas, head, error, message):
    with pytest.raises(error, match=message):
        atlas.similar_heads(head)


@pytest.mark.parametrize(
    "k, error, message",
    [(2.5, TypeError, r"k must be an integer, got 2.5"), (0, ValueError, r"k must be >= 1, got 0"), (True, TypeError, "k must be an integer")],
)
def test_k_is_checked(atlas, k, error, message):
    with pytest.raises(error, match=message):
        atlas.similar_heads("L0H0", k=k)
    with pytest.raises(error, match=message):
        atlas.summary(k=k)


def test_similar_heads_agrees_with_the_distance_matrix(atlas):
    table = atlas.similar_heads("L1H2", k=5)
    d = atlas.head_distances().loc["m0:L1H2"].drop("m0:L1H2").sort_values(kind="stable")
    assert table["head"].tolist() == d.index.tolist() and np.allclose(table["distance"], d.to_numpy())
    assert atlas.similar_heads("L1H2", k=50).shape[0] == 5  # all the other heads, no padding


@pytest.mark.parametrize(
    "thumbnails, error, message",
    [
        (-1, ValueError, r"thumbnails must be >= 0, got -1"),
        (2.5, TypeError, r"thumbnails must be an integer, got 2.5"),
        (["nope"], ValueError, r"thumbnails: prompts \['nope'\] are not among the prompts"),
    ],
)
def test_thumbnails_argument_is_checked(thumbnails, error, message):
    rng = np.random.default_rng(2)
    with pytest.raises(error, match=message):
        Atlas.from_patterns([random_patterns(rng, 1, 2, 5)], thumbnails=thumbnails)


@pytest.mark.parametrize(
    "config, error, message",
    [
        ({"n_components": 0}, ValueError, r"n_components must be >= 1, got 0"),
        ({"n_components": "16"}, TypeError, r"n_components must be an integer"),
        ({"metric": "cosine"}, ValueError, r"metric must be one of \['paired', 'sliced_wasserstein'\], got 'cosine'"),
        ({"seed": -1}, ValueError, r"seed must be >= 0"),
        ({"feature_weights": [1, 2]}, TypeError, r"feature_weights must be a \{feature: weight\} dict, got list"),
        ({"feature_weights": {"sink": float("nan")}}, ValueError, r"feature weights must be finite and >= 0"),
        ({"zero_variance": "maybe"}, ValueError, r"zero_variance must be one of"),
    ],
)
def test_config_is_checked_before_any_work(config, error, message):
    with pytest.raises(error, match=message):
        AtlasConfig(**config)


def test_all_zero_feature_weights_are_refused_not_every_distance_zero(atlas):
    zero = {name: 0.0 for name in atlas.feature_names}
    with pytest.raises(ValueError, match="weight"):
        atlas.configure(feature_weights=zero).distances
    one_off = atlas.configure(feature_weights={"sink": 0.0})  # one feature off is fine
    assert (one_off.distances[~np.eye(len(atlas.head_ids), dtype=bool)] > 0).all()


def test_configure_names_unknown_settings_and_uncollected_feature_sets(atlas):
    with pytest.raises(TypeError, match=r"configure\(\) got unknown settings \['metrc'\]"):
        atlas.configure(metrc="paired")
    with pytest.raises(ValueError, match=r"build the atlas with extra_feature_sets=\['paper'\] to switch to it"):
        atlas.configure(feature_set="paper")


def test_another_metric_reuses_the_embedding(atlas):
    sw = atlas.configure(metric="sliced_wasserstein")
    assert sw.embedding is atlas.embedding  # fitted once
    table = atlas.head_distances("sliced_wasserstein")
    assert np.allclose(table.to_numpy(), sw.distances)
    assert atlas.embedding is sw.embedding


def test_numpy_token_ids_and_grad_patterns_are_accepted_and_saved(tmp_path):
    rng = np.random.default_rng(3)
    per_prompt = [torch.tensor(random_patterns(rng, 1, 2, 6), requires_grad=True) for _ in range(2)]
    ids = [np.arange(6, dtype=np.int64), np.arange(6, 12, dtype=np.int64)]
    atlas = Atlas.from_patterns(per_prompt, token_ids=ids)
    back = Atlas.load(atlas.save(tmp_path / "a"))
    assert back.data.models["patterns"].token_ids == [list(range(6)), list(range(6, 12))]


def test_atlas_data_validates_its_parts(atlas):
    d = atlas.data
    with pytest.raises(ValueError, match=r"score_sums has shape \(6, 4, 7\), expected \(6, 5, 7\)"):
        replace(d, score_sums=d.score_sums[:, :4])
    with pytest.raises(ValueError, match=r"features 'motifs' have shape"):
        replace(d, features={"motifs": d.features["motifs"][:, :, :3]})
    with pytest.raises(ValueError, match=r"score_sums holds NaN"):
        replace(d, score_sums=np.full_like(d.score_sums, np.nan))
    with pytest.raises(ValueError, match=r"thumbnail_prompts must index the 5 prompts"):
        replace(d, thumbnail_prompts=[0, 9])
    with pytest.raises(ValueError, match=r"unknown prompt ids \['nope'\]"):
        d.take_prompts(["nope"])
    with pytest.raises(TypeError, match=r"data must be AtlasData"):
        Atlas({"features": {}})
    assert isinstance(d, AtlasData)
