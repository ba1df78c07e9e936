"""Head types suggested from a reference atlas (motif_widgets.reference)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataclasses import replace

from motif_widgets import Atlas, AtlasConfig
from motif_widgets.prompts import repeated_token_probes
from motif_widgets.reference import head_profiles, load_reference, reference_rows, suggest_classes


@pytest.fixture(scope="module")
def twin_reference(toy_model):
    """The toy model on other prompts, under another name: a reference with known types."""
    rng = np.random.default_rng(7)
    prompts = repeated_token_probes(8, seed=3) + [list(rng.integers(5, 40, 24)) for _ in range(10)]
    twin = Atlas.from_model(toy_model, prompts, model_name="twin", progress=False)
    return reference_rows(twin)


def test_reference_rows_carry_types_scores_and_profiles(twin_reference):
    assert set(twin_reference.loc[[f"twin:L1H{h}" for h in range(4)], "label"]) == {"induction"}
    assert {"model", "label", "score.induction", "text.sink", "probe.stripe"} <= set(twin_reference.columns)


def test_suggestions_find_the_toy_heads_types_from_its_twin(toy_atlas, twin_reference):
    s = toy_atlas.suggest_classes(reference=twin_reference)
    assert list(s.columns) == ["suggested", "confidence", "nearest", "distance"]
    induction = [f"toy-induction:L1H{h}" for h in range(4)]
    assert (s.loc[induction, "suggested"] == "induction").all()
    assert s["confidence"].between(0.5, 1.0).all() and (s.loc[induction, "confidence"] > 0.6).all()
    assert s.loc[induction, "nearest"].str.startswith("twin:L1H").all()


def test_own_model_is_excluded_and_bad_references_are_named(toy_atlas, twin_reference):
    own = reference_rows(toy_atlas)
    with pytest.raises(ValueError, match="no heads of at least two types once the excluded models are left out"):
        suggest_classes(toy_atlas, reference=own)  # only the atlas's own model: excluded
    d = toy_atlas.data
    paper_only = replace(d, features={"paper": d.features["paper"]}, feature_names={"paper": d.feature_names["paper"]})
    with pytest.raises(ValueError, match=r"class suggestions compare `motifs` features"):
        suggest_classes(Atlas(paper_only, AtlasConfig(feature_set="paper")), reference=twin_reference)


def test_the_shipped_reference_covers_three_families():
    ref = load_reference()
    assert set(ref["model"]) == {"toy-induction", "smollm2-135m", "gemma-3-270m"}
    assert (ref["label"] == "induction").sum() >= 8 and (ref["label"] == "previous_token").sum() >= 8
    assert ref.attrs["revision"]
    profiles = [c for c in ref.columns if c.startswith(("text.", "probe."))]
    assert ref.loc[ref["model"] != "toy-induction", profiles].notna().all().all()


def test_texts_only_atlases_are_compared_on_the_text_block(toy_model, twin_reference):
    rng = np.random.default_rng(1)
    texts_only = Atlas.from_model(toy_model, [list(rng.integers(5, 40, 24)) for _ in range(6)], progress=False)
    assert head_profiles(texts_only).filter(like="probe.").isna().all().all()
    s = texts_only.suggest_classes(reference=twin_reference)
    assert s["suggested"].isin(["induction", "previous_token", "other"]).all()
    assert isinstance(s, pd.DataFrame) and len(s) == 8
