"""Validation metrics (motif_widgets.evaluate): exact values on hand-built distance
matrices, and the method measured on the toy model whose heads are known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motif_widgets.atlas_data import AtlasData
from motif_widgets import Atlas
from motif_widgets.evaluate import (
    ambiguous_heads,
    compare,
    cross_model_transfer,
    label_heads,
    layer_profile,
    retrieval_metrics,
    score_space_ceiling,
    split_half_stability,
    split_prompts,
    subset_prompts,
)

REPO = Path(__file__).resolve().parents[1]
TOY_INDUCTION = [f"toy-induction:L1H{h}" for h in range(4)]
TOY_PREVIOUS = ["toy-induction:L0H2", "toy-induction:L0H3"]


# ---------------------------------------------------------------- hand-built distance matrices
def line_distances(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.abs(x[:, None] - x[None, :])


def test_retrieval_metrics_exact_values_on_points_on_a_line():
    # heads 0-2 are "A", 3-4 "B", 5 unlabelled; positions chosen so that no distance ties.
    # Rankings (nearest first, relevant = same label):
    #   0: 1 5 2 3 4 -> + - + - -    1: 0 5 2 3 4 -> + - + - -    2: 5 1 0 3 4 -> - + + - -
    #   3: 4 2 5 1 0 -> + - - - -    4: 3 2 5 1 0 -> + - - - -
    d = line_distances([0, 1, 5, 10.5, 11.5, 3])
    table = retrieval_metrics(d, ["A", "A", "A", "B", "B", None], ks=(1, 3, 5))
    assert list(table.index) == ["A", "B", "overall"]
    assert table["n_heads"].tolist() == [3, 2, 5]
    expected = {
        "A": {"p@1": 2 / 3, "p@3": 2 / 3, "p@5": 2 / 5, "r_precision": 1 / 2, "map": (5 / 6 + 5 / 6 + 7 / 12) / 3, "random": 2 / 5},
        "B": {"p@1": 1.0, "p@3": 1 / 3, "p@5": 1 / 5, "r_precision": 1.0, "map": 1.0, "random": 1 / 5},
        "overall": {"p@1": 4 / 5, "p@3": 8 / 15, "p@5": 8 / 25, "r_precision": 0.7, "map": 0.85, "random": 0.32},
    }
    for label, values in expected.items():
        for column, value in values.items():
            assert table.loc[label, column] == pytest.approx(value), (label, column)


def test_retrieval_metrics_perfect_and_worst_rankings():
    labels = ["A"] * 3 + ["B"] * 3 + [None] * 4
    clustered = line_distances([0, 0.1, 0.2, 10, 10.1, 10.2, 50, 60, 70, 80])
    perfect = retrieval_metrics(clustered, labels)
    assert (perfect.loc["overall", ["p@1", "r_precision", "map"]] == 1.0).all()
    assert perfect.loc["overall", "p@3"] == pytest.approx(2 / 3)  # only 2 relevant heads exist
    # class mates farthest apart: each head's 7 other heads come first, its 2 mates at ranks 8, 9
    same = np.array([[a == b and a is not None for b in labels] for a in labels])
    apart = np.where(same, 10.0, 1.0)
    np.fill_diagonal(apart, 0.0)
    worst = retrieval_metrics(apart, labels)
    assert (worst.loc["overall", ["p@1", "p@3", "p@5", "r_precision"]] == 0.0).all()
    assert worst.loc["overall", "map"] == pytest.approx((1 / 8 + 2 / 9) / 2)


def test_retrieval_metrics_follow_the_head_index_of_dataframes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=12)
    names = [f"h{k}" for k in range(12)]
    labels = pd.Series(["A", "B", None] * 4, index=names)
    table = retrieval_metrics(pd.DataFrame(line_distances(x), index=names, columns=names), labels)
    perm = rng.permutation(12)
    shuffled = [names[k] for k in perm]
    permuted = pd.DataFrame(line_distances(x[perm]), index=shuffled, columns=shuffled)
    pd.testing.assert_frame_equal(retrieval_metrics(permuted, labels), table)  # labels realigned by head id


def test_random_baseline_matches_random_distances():
    rng = np.random.default_rng(0)
    labels = ["A"] * 5 + ["B"] * 3 + [None] * 12
    means = []
    for _ in range(300):
        d = rng.random((20, 20))
        d = d + d.T
        np.fill_diagonal(d, 0)
        means.append(retrieval_metrics(d, labels).loc["overall", ["p@3", "r_precision"]].to_numpy())
    baseline = retrieval_metrics(np.ones((20, 20)), labels).loc["overall", "random"]
    assert baseline == pytest.approx((5 * 4 / 19 + 3 * 2 / 19) / 8)
    assert np.mean(means, 0) == pytest.approx([baseline, baseline], abs=0.02)


@pytest.mark.parametrize(
    "distances, labels, ks, message",
    [
        (np.zeros((3, 4)), ["A", "A", None], (1,), "square"),
        (np.zeros((3, 3)), ["A", "A"], (1,), "one label per head"),
        (np.full((3, 3), np.nan), ["A", "A", None], (1,), "finite"),
        (np.ones((3, 3)), [None, None, None], (1,), "no head is labelled"),
        (np.ones((3, 3)), ["A", "B", None], (1,), "single head"),
        (np.ones((3, 3)), ["A", "A", None], (3,), "every k"),
    ],
)
def test_retrieval_metrics_reject_bad_input(distances, labels, ks, message):
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(distances, labels, ks)


def test_a_single_head_class_gets_nan_metrics_and_stays_out_of_overall():
    table = retrieval_metrics(line_distances([0, 1, 5, 9]), ["A", "A", "B", None], ks=(1,))
    assert np.isnan(table.loc["B", "r_precision"]) and table.loc["B", "n_heads"] == 1
    assert table.loc["overall", "n_heads"] == 2 and table.loc["overall", "p@1"] == 1.0


# ---------------------------------------------------------------- the toy model: known heads
def test_toy_detector_scores_identify_its_heads(toy_atlas):
    scores = toy_atlas.head_scores(prompts="probes")
    induction, previous = scores["induction"], scores["previous_token"]
    assert induction[TOY_INDUCTION].min() > 0.8 > 0.05 > induction.drop(TOY_INDUCTION).max()
    assert previous["toy-induction:L0H3"] > 0.85 and previous["toy-induction:L0H2"] > 0.4
    assert previous.drop(TOY_PREVIOUS).max() < 0.2
    labels = label_heads(toy_atlas)
    assert labels[TOY_INDUCTION].eq("induction").all() and labels[TOY_PREVIOUS].eq("previous_token").all()
    assert labels.drop(TOY_INDUCTION + TOY_PREVIOUS).isna().all()  # L0H0, L0H1 attend to themselves


def test_label_heads_highest_passing_score_wins_and_checks_names(toy_atlas):
    everything = label_heads(toy_atlas, {"induction": 0.0, "previous_token": 0.0, "self": 0.0})
    scores = toy_atlas.head_scores(prompts="probes")[["induction", "previous_token", "self"]]
    assert everything.tolist() == scores.idxmax(axis=1).tolist()
    assert everything["toy-induction:L0H0"] == "self"
    with pytest.raises(ValueError, match="not available"):
        label_heads(toy_atlas, {"inductive": 0.5})
    with pytest.raises(ValueError, match="empty"):
        label_heads(toy_atlas, {})


def test_toy_induction_heads_find_each_other(toy_atlas):
    table = retrieval_metrics(toy_atlas.head_distances(), label_heads(toy_atlas), ks=(1, 3))
    induction = table.loc["induction"]
    # 4 induction heads among 8: a random pick of 3 neighbours holds 3/7 = 0.43 of them
    assert induction["random"] == pytest.approx(3 / 7)
    assert induction["p@3"] == 1.0 and induction["r_precision"] == 1.0 and induction["map"] == 1.0


def test_score_space_ceiling_ranks_heads_by_their_label_scores(toy_atlas):
    ceiling = score_space_ceiling(toy_atlas)
    scores = toy_atlas.head_scores(prompts="probes")
    # the weak previous-token head L0H2 sits nearer the self heads than the strong L0H3 in
    # score space, so even this ceiling misses it; the induction heads all find each other
    prev = scores["previous_token"]
    nearest = (prev - prev["toy-induction:L0H2"]).abs().drop("toy-induction:L0H2").idxmin()
    assert nearest in ("toy-induction:L0H0", "toy-induction:L0H1")
    assert ceiling.loc["induction", "r_precision"] == 1.0
    assert ceiling.loc["previous_token", "r_precision"] == 0.5
    assert list(ceiling.columns) == list(retrieval_metrics(toy_atlas.head_distances(), label_heads(toy_atlas)).columns)


def test_subset_prompts_is_the_atlas_built_on_those_prompts(toy_atlas):
    keep = [p.id for p in toy_atlas.prompts][::2]
    sub = subset_prompts(toy_atlas, reversed(keep))  # order of the request does not matter
    assert sub.prompt_ids == keep
    pos = [toy_atlas.prompt_ids.index(p) for p in keep]
    np.testing.assert_array_equal(sub.data.features["paper"], toy_atlas.data.features["paper"][:, pos])
    pd.testing.assert_frame_equal(sub.head_scores(prompts="all"), toy_atlas.head_scores(prompts=keep))
    model = sub.data.models["toy-induction"]
    assert model.token_ids == [toy_atlas.data.models["toy-induction"].token_ids[k] for k in pos]
    for thumb in sub.thumbnails("L1H0"):  # thumbnails still show the right prompts
        original = next(t for t in toy_atlas.thumbnails("L1H0") if t["prompt"] == thumb["prompt"])
        np.testing.assert_array_equal(thumb["pattern"], original["pattern"])
    assert sub.distances.shape == (8, 8) and not np.allclose(sub.distances, toy_atlas.distances)
    with pytest.raises(ValueError, match="unknown prompt"):
        subset_prompts(toy_atlas, ["nope"])
    with pytest.raises(ValueError, match="no prompts"):
        subset_prompts(toy_atlas, [])


def test_split_prompts_gives_disjoint_halves_balanced_by_kind(toy_atlas):
    first, second = split_prompts(toy_atlas, seed=3)
    assert set(first).isdisjoint(second) and set(first) | set(second) == set(toy_atlas.prompt_ids)
    kinds = {p.id: p.is_probe for p in toy_atlas.prompts}
    n_probes = sum(kinds.values())
    assert sum(kinds[p] for p in first) == (n_probes + 1) // 2
    assert split_prompts(toy_atlas, seed=3) == (first, second) != split_prompts(toy_atlas, seed=4)


def test_split_half_stability_is_high_on_the_toy_model_and_zero_for_noise(toy_atlas):
    assert split_half_stability(toy_atlas) > 0.8
    # the same atlas with features replaced by noise: distances between heads are chance
    rng = np.random.default_rng(0)
    shape = toy_atlas.data.features["motifs"].shape
    copies = AtlasData.concat([toy_atlas.data.rename_model("toy-induction", f"copy{k}") for k in range(8)])  # 64 heads
    data = replace(
        copies, features={"motifs": rng.normal(size=(64,) + shape[1:])},
        feature_names={"motifs": copies.feature_names["motifs"]},
    )
    assert abs(split_half_stability(Atlas(data, toy_atlas.config))) < 0.15


def test_cross_model_transfer_between_two_copies_of_the_toy_model(toy_model, toy_prompts, toy_atlas):
    twin = Atlas.from_model(toy_model, toy_prompts, model_name="twin", progress=False)
    both = Atlas.merge([toy_atlas.configure(feature_set="motifs"), twin])
    table = cross_model_transfer(both, "toy-induction", "twin", k=4)
    assert list(table.index) == TOY_INDUCTION
    assert (table["share"] == 1.0).all() and (table["random"] == 0.5).all()  # 4 of twin's 8 heads
    assert table.loc["toy-induction:L1H2", "nearest"].split(", ")[0] == "L1H2"  # its own copy first
    previous = cross_model_transfer(both, "twin", "toy-induction", label="previous_token", k=1)
    assert previous["share"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="must differ"):
        cross_model_transfer(both, "twin", "twin")
    with pytest.raises(ValueError, match="unknown model"):
        cross_model_transfer(both, "twin", "gpt2")
    with pytest.raises(ValueError, match="no head labelled"):
        cross_model_transfer(both, "twin", "toy-induction", label="duplicate_token")


def test_compare_covers_every_feature_set_and_metric(toy_atlas):
    table = compare(toy_atlas, ks=(1, 3))
    assert len(table) == 2 * 2 * 3  # feature sets x metrics x (induction, previous_token, overall)
    assert set(zip(table.feature_set, table.metric)) == {
        (f, m) for f in ("motifs", "paper") for m in ("paired", "sliced_wasserstein")
    }
    direct = retrieval_metrics(toy_atlas.configure(metric="sliced_wasserstein").distances, label_heads(toy_atlas), (1, 3))
    row = table[(table.feature_set == "motifs") & (table.metric == "sliced_wasserstein") & (table.label == "overall")]
    assert row["r_precision"].item() == pytest.approx(direct.loc["overall", "r_precision"])
    assert table["split_half_rho"].between(0.5, 1).all()
    with pytest.raises(ValueError, match="were not collected"):
        compare(toy_atlas, feature_sets=("plain",))


def test_layer_profile_shows_previous_token_heads_in_layer_zero(toy_atlas):
    profile = layer_profile(toy_atlas)
    assert profile[["model", "layer"]].values.tolist() == [["toy-induction", 0], ["toy-induction", 1]]
    scores = toy_atlas.head_scores(prompts="texts")
    assert profile.loc[0, "previous_token"] == pytest.approx(scores["previous_token"].iloc[:4].mean())
    assert profile.loc[0, "previous_token"] > 2 * profile.loc[1, "previous_token"]
    assert profile.loc[0, "recent"] > profile.loc[1, "recent"]
    assert profile[["previous_token", "recent", "first_token", "diffuse"]].stack().between(0, 1).all()


def test_validation_notebook_runs_on_the_toy_model(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("matplotlib")
    notebook = nbformat.read(REPO / "examples" / "validation.ipynb", as_version=4)
    monkeypatch.setenv("MOTIF_WIDGETS_REAL_MODELS", "0")  # the kernel inherits it: toy model only
    nbclient.NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(REPO / "examples")}}).execute()
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "induction" in text and "skipped" in text
    assert any("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def test_ambiguous_band_heads_are_neither_hit_nor_miss():
    # 6 heads on a line: a, a (label x), b (ambiguous for x), c, c (label y), d
    pos = np.array([0.0, 1.0, 0.5, 5.0, 6.0, 9.0])
    d = np.abs(pos[:, None] - pos[None, :])
    labels = ["x", "x", None, "y", "y", None]
    strict = retrieval_metrics(d, labels, ks=(1,))
    assert strict.loc["x", "r_precision"] == 0.0  # the ambiguous head b sits between the two x heads
    band = retrieval_metrics(d, labels, ks=(1,), ambiguous={"x": [False, False, True, False, False, False]})
    assert band.loc["x", "r_precision"] == 1.0 and band.loc["y", "r_precision"] == strict.loc["y", "r_precision"]
    assert band.loc["x", "random"] == pytest.approx(1 / 4)  # b left the candidates: 1 relevant of 4
    # a label's own members are never removed, whatever the mask says
    same = retrieval_metrics(d, labels, ks=(1,), ambiguous={"x": [True, True, False, False, False, False]})
    assert same.loc["x", "r_precision"] == 0.0
    with pytest.raises(ValueError, match=r"ambiguous\['x'\] must hold one bool per head \(6\)"):
        retrieval_metrics(d, labels, ambiguous={"x": [True]})


def test_ambiguous_heads_of_the_toy_model(toy_atlas):
    band = ambiguous_heads(toy_atlas)
    scores = toy_atlas.head_scores(prompts="probes")
    expected = (scores["induction"] >= 0.2) & (scores["induction"] < 0.4)
    assert band["induction"].equals(expected)
    with pytest.raises(ValueError, match="bands: score 'nope' is not available"):
        ambiguous_heads(toy_atlas, bands={"nope": (0.1, 0.2)})
