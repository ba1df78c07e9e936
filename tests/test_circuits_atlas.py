"""Circuits in the atlas: add_circuits, head_table columns, saved stats, similar_heads(by=), describe."""

from __future__ import annotations

import numpy as np
import pytest

from motif_widgets import Atlas
from motif_widgets.prompts import repeated_token_probes


@pytest.fixture(scope="module")
def toy_circuits_atlas(toy_model):
    rng = np.random.default_rng(0)
    prompts = repeated_token_probes(6) + [list(rng.integers(5, 40, 30)) for _ in range(6)]
    return Atlas.from_model(toy_model, prompts, circuits=True, progress=False)


def test_add_circuits_fills_the_head_table_and_survives_a_save(toy_circuits_atlas, tmp_path):
    table = toy_circuits_atlas.head_table()
    for column in ("ov_copying", "qk_norm", "k_comp_max", "k_comp_partner", "effect", "effect_repeated"):
        assert column in table.columns
    induction = table.loc[[f"toy-induction:L1H{h}" for h in range(4)]]
    assert (induction["ov_copying"] > 0.5).all()  # induction heads copy
    assert set(induction["k_comp_partner"]) <= {f"toy-induction:L0H{h}" for h in range(4)}
    assert table.loc["toy-induction:L0H0", "k_comp_max"] != table.loc["toy-induction:L0H0", "k_comp_max"]  # NaN in layer 0
    back = Atlas.load(toy_circuits_atlas.save(tmp_path / "a"))
    assert np.allclose(back.head_table()["ov_copying"], table["ov_copying"])
    assert back.describe("L1H0") == toy_circuits_atlas.describe("L1H0")


def test_similar_heads_by_each_channel(toy_circuits_atlas):
    for by in ("pattern", "circuits", "effects", "combined"):
        near = toy_circuits_atlas.similar_heads("L1H0", k=3, by=by)
        assert len(near) == 3 and (np.diff(near["distance"]) >= 0).all()
    assert set(toy_circuits_atlas.similar_heads("L1H0", k=3, by="circuits")["head"]) == {
        f"toy-induction:L1H{h}" for h in (1, 2, 3)
    }
    with pytest.raises(ValueError, match=r"by must be one of \['pattern', 'circuits', 'effects', 'combined'\]"):
        toy_circuits_atlas.similar_heads("L1H0", by="vibes")


def test_describe_says_what_a_head_looks_at_moves_and_matters(toy_circuits_atlas):
    text = toy_circuits_atlas.describe("L1H0")
    assert "the token after earlier copies of the current token" in text and "family: induction" in text
    assert "copies what it reads (OV copying" in text and "Mean-ablating it changes the loss" in text


def test_channels_without_circuits_say_how_to_add_them(toy_atlas, toy_model):
    with pytest.raises(ValueError, match=r"add them with atlas.add_circuits\(model\)"):
        toy_atlas.similar_heads("L1H0", by="circuits")
    assert "OV copying" not in toy_atlas.describe("L1H0")  # only what is known
    with pytest.raises(ValueError, match=r"model_name: the atlas has no model 'other'"):
        toy_atlas.add_circuits(toy_model, model_name="other")
    before = toy_atlas.data
    with pytest.raises(ValueError):
        toy_atlas.add_circuits(toy_model, max_tokens=1)  # prompts of one token: no loss
    assert toy_atlas.data is before  # nothing half-added


def test_compare_channels_reports_each_available_channel(toy_circuits_atlas, toy_atlas):
    from motif_widgets.evaluate import compare_channels, label_heads

    labels = label_heads(toy_circuits_atlas)
    table = compare_channels(toy_circuits_atlas, labels)
    assert list(dict.fromkeys(table["channel"])) == ["pattern", "circuits", "effects", "combined"]
    circuits = table[(table["channel"] == "circuits") & (table["label"] == "induction")]
    assert circuits["r_precision"].iloc[0] == 1.0  # the four copying, K-composing heads find each other
    assert list(dict.fromkeys(compare_channels(toy_atlas)["channel"])) == ["pattern"]  # no circuits: skipped
