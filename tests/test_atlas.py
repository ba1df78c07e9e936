"""The Atlas end to end: toy model and user patterns, search, tables, maps, merging,
persistence and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import causal_pattern
from motif_widgets import Atlas, get_feature_set
from motif_widgets.detect import SCORE_NAMES
from motif_widgets.features import MOTIF_FEATURE_NAMES
from motif_widgets.prompts import repeated_token_probes, token_prompt


def test_toy_atlas_finds_its_known_heads(toy_atlas):
    scores = toy_atlas.head_scores()
    assert list(scores.columns) == list(SCORE_NAMES)
    assert scores["previous_token"].idxmax() == "toy-induction:L0H3"
    assert scores.loc["toy-induction:L0H3", "previous_token"] > 0.7
    induction = scores["induction"]
    assert set(induction[induction > 0.7].index) == {f"toy-induction:L1H{h}" for h in range(4)}
    assert induction.filter(like=":L0").max() < 0.05
    # every induction head's nearest heads are the other induction heads
    for h in range(4):
        near = toy_atlas.similar_heads(f"L1H{h}", k=3)
        assert set(near["head"]) == {f"toy-induction:L1H{o}" for o in range(4) if o != h}
        assert (near["induction"] > 0.7).all() and near["distance"].is_monotonic_increasing


def test_similar_heads_table_and_filters(toy_atlas):
    t = toy_atlas.similar_heads("toy-induction:L0H3", k=2)
    assert list(t.columns[:6]) == ["rank", "head", "model", "layer", "head_index", "distance"]
    assert "known_classes" in t.columns and t["rank"].tolist() == [1, 2]
    assert "toy-induction:L0H3" not in t["head"].tolist()
    assert toy_atlas.similar_heads((0, 3), k=2).equals(t)
    with pytest.raises(ValueError, match="unknown head"):
        toy_atlas.similar_heads("L9H9")
    with pytest.raises(ValueError, match="unknown models"):
        toy_atlas.similar_heads("L0H3", models=["gpt2-small"])
    with pytest.raises(ValueError, match="k must be"):
        toy_atlas.similar_heads("L0H3", k=0)


def test_tables_have_the_promised_shape(toy_atlas):
    d = toy_atlas.head_distances()
    assert d.shape == (8, 8) and (d.index == toy_atlas.head_ids).all() and np.allclose(d, d.T)
    assert np.allclose(np.diag(d), 0)
    table = toy_atlas.head_table()
    assert len(table) == 8 and {"layer", "previous_token", "induction", "cluster", "pc.0", "isomap.0"} <= set(table.columns)
    rows = toy_atlas.to_dataframe()
    p = len(toy_atlas.prompts)
    assert len(rows) == 8 * p
    assert {"head", "prompt", "prompt_kind", "n_tokens", "pc.0", "pc.15"} <= set(rows.columns)
    assert set(MOTIF_FEATURE_NAMES) <= set(rows.columns)
    first = rows[rows["head"] == "toy-induction:L0H0"]
    assert first["prompt"].tolist() == toy_atlas.prompt_ids
    assert first["n_tokens"].tolist() == toy_atlas.data.models["toy-induction"].lengths.tolist()
    emb = toy_atlas.embedding
    assert emb.n_components_ == 16 and emb.components_.shape == (16, len(emb.kept_features_))
    assert np.isclose(emb.explained_variance_ratio_.sum(), 1.0, atol=1e-6) or emb.explained_variance_ratio_.sum() < 1


def test_paper_feature_set_and_other_metric(toy_atlas):
    paper = toy_atlas.configure(feature_set="paper")
    assert paper.embedding.dropped_features_  # the reference's filter drops constant / NaN columns
    assert np.isfinite(paper.distances).all()
    sw = toy_atlas.configure(metric="sliced_wasserstein")
    assert sw.similar_heads("L1H0", k=3)["induction"].min() > 0.7
    with pytest.raises(ValueError, match="was not collected"):
        toy_atlas.configure(feature_set="paper92")
    with pytest.raises(ValueError, match=r"metric must be one of \['paired', 'sliced_wasserstein'\], got 'cosine'"):
        toy_atlas.configure(metric="cosine")  # refused before anything is computed


def test_saved_atlases_know_the_feature_definitions_they_were_computed_with(toy_atlas, tmp_path):
    from dataclasses import replace

    assert toy_atlas.data.feature_revisions == {"motifs": get_feature_set("motifs").revision, "paper": "1"}
    assert toy_atlas.outdated_feature_sets() == []
    older = replace(toy_atlas.data, feature_revisions={"motifs": "0", "paper": "1"})  # as if computed by an older version
    path = Atlas(older).save(tmp_path / "a")
    with pytest.warns(UserWarning, match=r"\['motifs'\] were computed under older definitions"):
        old = Atlas.load(path)
    assert old.outdated_feature_sets() == ["motifs"]
    toy_atlas.rename_model("toy-induction", "twin").save(tmp_path / "b")  # the same model under another name
    assert Atlas.merge([Atlas.load(path.parent / "b"), toy_atlas]).outdated_feature_sets() == []
    with pytest.raises(ValueError, match="different definitions"):
        Atlas.merge([old, Atlas.load(path.parent / "b")])


def test_feature_set_weights_reach_the_embedding(toy_atlas):
    from motif_widgets.features.motifs import MOTIF_FEATURE_WEIGHTS

    emb = toy_atlas.embedding
    assert dict(zip(emb.kept_features_, emb.weights_)) == {k: MOTIF_FEATURE_WEIGHTS[k] for k in emb.kept_features_}
    assert min(emb.weights_) == 0.3 and max(emb.weights_) == 1.0
    # an explicit override replaces the set's weights; equal weights change the distances
    flat = toy_atlas.configure(feature_weights={})
    assert (flat.embedding.weights_ == 1.0).all()
    assert not np.allclose(flat.distances, toy_atlas.distances)
    assert (toy_atlas.configure(feature_set="paper").embedding.weights_ == 1.0).all()  # the paper's pipeline
    with pytest.raises(ValueError, match="finite and >= 0"):
        get_feature_set("motifs").extended("bad").add("neg", lambda b: b.lengths.to(b.dtype), weight=-1)


def test_maps_and_clusters_are_deterministic(toy_atlas):
    a = toy_atlas.configure()  # fresh caches
    for method in ("isomap", "tsne", "pca"):
        m1 = a.head_map(method, dim=2, n_neighbors=4)
        m2 = toy_atlas.configure().head_map(method, dim=2, n_neighbors=4)
        assert m1.shape == (8, 2) and np.allclose(m1, m2), method
    labels = toy_atlas.clusters(n_clusters=2)
    assert labels.nunique() == 2
    layer1 = labels[[f"toy-induction:L1H{h}" for h in range(4)]]
    assert layer1.nunique() == 1


def test_umap_map(toy_atlas):
    m = toy_atlas.head_map("umap", dim=2, n_neighbors=4)
    assert m.shape == (8, 2) and np.isfinite(m.to_numpy()).all()


def test_save_load_round_trip(toy_atlas, tmp_path):
    toy_atlas.save(tmp_path / "a")
    back = Atlas.load(tmp_path / "a")
    assert back.head_ids == toy_atlas.head_ids and back.prompt_ids == toy_atlas.prompt_ids
    assert back.config == toy_atlas.config
    for k in toy_atlas.data.features:
        assert np.array_equal(back.data.features[k], toy_atlas.data.features[k], equal_nan=True)
    assert np.array_equal(back.distances, toy_atlas.distances)
    pd.testing.assert_frame_equal(back.head_scores(), toy_atlas.head_scores())
    assert back.thumbnails("L1H0")[0]["tokens"] == toy_atlas.thumbnails("L1H0")[0]["tokens"]
    assert back.prompts[0] == toy_atlas.prompts[0]
    with pytest.raises(ValueError, match="not a saved atlas"):
        Atlas.load(tmp_path / "missing")


def test_thumbnails_are_pattern_corners(toy_model, toy_prompts):
    atlas = Atlas.from_model(toy_model, toy_prompts, thumbnails=["probe-00", "rand-80"], thumbnail_tokens=64, progress=False)
    thumbs = atlas.thumbnails("L0H3")
    assert [t["prompt"] for t in thumbs] == ["probe-00", "rand-80"]
    probe = thumbs[0]["pattern"]
    assert probe.shape == (41, 41) and np.allclose(probe.sum(1), 1, atol=2e-3)
    assert thumbs[1]["pattern"].shape == (64, 64)  # the first 64 tokens of an 81-token prompt
    with pytest.raises(ValueError, match="not among the prompts"):
        Atlas.from_model(toy_model, toy_prompts, thumbnails=["nope"], progress=False)
    with pytest.raises(ValueError, match="thumbnail_tokens"):
        Atlas.from_model(toy_model, toy_prompts, thumbnail_tokens=0, progress=False)


def test_default_thumbnails_cover_every_prompt(toy_model, toy_prompts):
    atlas = Atlas.from_model(toy_model, toy_prompts, progress=False)
    assert [atlas.prompt_ids[k] for k in atlas.data.thumbnail_prompts] == atlas.prompt_ids
    assert atlas.data.thumbnails.shape[-1] == 32
    wide = Atlas.from_model(toy_model, toy_prompts, thumbnails=["rand-80"], thumbnail_tokens=64, progress=False)
    corner = wide.thumbnails("L1H2")[0]["pattern"][:32, :32]
    assert np.array_equal({t["prompt"]: t for t in atlas.thumbnails("L1H2")}["rand-80"]["pattern"], corner)


def synthetic_per_prompt(rng, n_layers, n_heads, lengths, kinds):
    """[layers, heads, n, n] per prompt with head h of every layer showing kinds[h]."""
    return [
        np.stack([np.stack([causal_pattern(rng, n, kinds[h]) for h in range(n_heads)]) for _ in range(n_layers)])
        for n in lengths
    ]


def test_from_patterns_and_cross_model_merge():
    rng = np.random.default_rng(0)
    lengths = [12, 30, 25, 40, 18]
    kinds = ["prev", "diag", "bos", "uniform"]
    a = Atlas.from_patterns(synthetic_per_prompt(rng, 2, 4, lengths, kinds), model_name="model-a")
    b = Atlas.from_patterns(synthetic_per_prompt(rng, 3, 4, [20, 15, 33, 12, 28], kinds), model_name="model-b")
    assert a.head_ids[0] == "model-a:L0H0" and len(a.prompts) == 5
    assert "induction" not in a.head_scores().columns  # no token ids given: not reported, not NaN
    merged = Atlas.merge([a, b])
    assert len(merged.head_ids) == 8 + 12 and merged.model_names == ["model-a", "model-b"]
    near = merged.similar_heads("model-a:L0H0", k=3, models=["model-b"])
    assert set(near["head"]) == {f"model-b:L{l}H0" for l in range(3)}  # prev-token heads match across models
    assert merged.data.models["model-b"].lengths.tolist() == [20, 15, 33, 12, 28]
    with pytest.raises(ValueError, match="occur in more than one"):
        Atlas.merge([a, a])
    c = Atlas.from_patterns(synthetic_per_prompt(rng, 1, 4, [10, 11], kinds), model_name="model-c")
    with pytest.raises(ValueError, match="different prompts"):
        Atlas.merge([a, c])


def test_from_models_merges_into_one_embedding(toy_model, toy_prompts):
    atlas = Atlas.from_models({"toy-a": toy_model, "toy-b": toy_model}, toy_prompts[:5], progress=False)
    assert len(atlas.head_ids) == 16
    d = atlas.head_distances()
    for h in ("L0H3", "L1H2"):
        assert d.loc[f"toy-a:{h}", f"toy-b:{h}"] == pytest.approx(0.0, abs=1e-9)  # same weights, same prompts


def test_known_classes_for_gpt2_small():
    rng = np.random.default_rng(1)
    per_prompt = synthetic_per_prompt(rng, 6, 12, [9, 11, 13], ["uniform"] * 12)
    atlas = Atlas.from_patterns(per_prompt, model_name="gpt2-small")
    classes = atlas.known_classes()
    assert "IOI:Induction" in classes["gpt2-small:L5H5"] and "SAE-survey:Induction" in classes["gpt2-small:L5H5"]
    assert classes["gpt2-small:L4H11"][0] == "IOI:Previous Token"
    assert classes["gpt2-small:L1H1"] == []
    assert atlas.head_table(map_method=None).loc["gpt2-small:L0H1", "known_classes"][0] == "IOI:Duplicate Token"


def test_from_patterns_rejects_bad_input():
    rng = np.random.default_rng(2)
    good = synthetic_per_prompt(rng, 1, 2, [5, 6], ["prev", "diag"])
    with pytest.raises(ValueError, match="expected \\[layers, heads, n, n\\]"):
        Atlas.from_patterns([good[0][0]])
    with pytest.raises(ValueError, match="layers x heads"):
        Atlas.from_patterns([good[0], good[1][:, :1]])
    bad = [p.copy() for p in good]
    bad[1][0, 1, 2, 4] = 0.3
    with pytest.raises(ValueError, match="not causal"):
        Atlas.from_patterns(bad)
    with pytest.raises(ValueError, match="token_ids"):
        Atlas.from_patterns(good, token_ids=[[1, 2, 3], [1, 2]])
    with pytest.raises(ValueError, match="2 prompts for 1"):
        Atlas.from_patterns(good[:1], prompts=["a", "b"])


def test_empty_and_duplicate_prompts_are_rejected(toy_model):
    with pytest.raises(ValueError, match="no prompts"):
        Atlas.from_model(toy_model, [], progress=False)
    with pytest.raises(ValueError, match="duplicate prompts"):
        Atlas.from_model(toy_model, [[5, 6, 7], [5, 6, 7]], progress=False)
    with pytest.raises(ValueError, match="empty"):
        Atlas.from_model(toy_model, ["  "], progress=False)


def test_prompt_scores_and_subsets(toy_atlas):
    per_prompt = toy_atlas.prompt_scores("induction")
    probes = [p.id for p in toy_atlas.prompts if p.is_probe]
    assert per_prompt.loc["toy-induction:L1H0", probes].min() > 0.6
    on_probes = toy_atlas.head_scores(prompts="probes")
    assert on_probes.loc["toy-induction:L1H1", "induction"] > 0.8
    with pytest.raises(ValueError, match="unknown prompt ids"):
        toy_atlas.head_scores(prompts=["nope"])
    with pytest.raises(ValueError, match="unknown score"):
        toy_atlas.prompt_scores("nope")


def test_token_prompts_only_model_runs_end_to_end(toy_model):
    rng = np.random.default_rng(3)
    prompts = [token_prompt(rng.integers(1, 1000, 30).tolist()) for _ in range(4)] + repeated_token_probes(2, 15)
    atlas = Atlas.from_model(toy_model, prompts, batch_size=3, progress=False)
    assert atlas.data.models["toy-induction"].has_bos.all()
    assert atlas.data.models["toy-induction"].lengths.tolist() == [31] * 4 + [31, 31]
    assert np.isfinite(atlas.points).all()


def test_families_are_named_and_the_cluster_count_is_chosen_by_silhouette(toy_atlas):
    from motif_widgets.projection import choose_n_clusters

    k, silhouettes = choose_n_clusters(toy_atlas.distances)
    assert silhouettes and k == max(silhouettes, key=silhouettes.get) and 4 <= k <= 7  # 4..12, capped at H - 1
    assert toy_atlas.clusters().max() == k
    families = toy_atlas.families()
    induction = families[[f"toy-induction:L1H{h}" for h in range(4)]]
    assert induction.nunique() == 1 and "induction" in induction.iloc[0]  # the four induction heads: one named family
    assert not any("induction" in f for f in families.drop(induction.index))
    table = toy_atlas.head_table()
    assert table["family"].equals(families) and table["cluster"].equals(toy_atlas.clusters())
    assert toy_atlas.similar_heads("L1H0", k=3)["family"].tolist() == [induction.iloc[0]] * 3
    with pytest.raises(ValueError, match="n_clusters must be >= 1"):
        toy_atlas.clusters(0)


def test_family_names_follow_the_mean_scores():
    import pandas as pd

    from motif_widgets.projection import name_families

    scores = pd.DataFrame(
        {
            "previous_token": [0.9, 0.8, 0.0, 0.0, 0.0, 0.1],
            "first_token": [0.0, 0.1, 0.9, 0.8, 0.6, 0.1],
            "self": [0.0, 0.0, 0.0, 0.0, 0.35, 0.1],
            "recent": [0.9, 0.8, 0.0, 0.0, 0.0, 0.1],
            "diffuse": [0.1, 0.1, 0.1, 0.1, 0.1, 0.2],
        }
    )
    names = name_families(np.array([1, 1, 2, 2, 3, 4]), scores)
    assert names[1] == "previous-token + recent" and names[4] == "mixed"
    assert names[2] == "sink" and names[3] == "self + sink"  # the more specific trait first
