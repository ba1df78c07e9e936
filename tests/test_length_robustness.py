"""benchmarks/length_robustness.py: the core measurement on the toy model (no tokenizer needed)."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

from conftest import REPO
from motif_widgets import Atlas
from motif_widgets.prompts import token_prompt


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("length_robustness", REPO / "benchmarks" / "length_robustness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(toy_model):
    rng = np.random.default_rng(0)
    prompts = [token_prompt(rng.integers(1, 1000, size=48).tolist(), id=f"doc-{k}") for k in range(4)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*were truncated")
        return {
            n: Atlas.from_model(toy_model, prompts, max_tokens=n, model_name=name, progress=False)
            for n, name in ((16, "short"), (48, "long"))
        }


def test_length_robustness_ranks_each_heads_own_copy(bench, runs):
    merged = Atlas.merge([runs[16], runs[48]])
    r = bench.length_robustness(merged)
    h = r["n_heads"]
    assert h == len(runs[16].head_ids) and r["ranks"].shape == (h,)
    assert ((1 <= r["ranks"]) & (r["ranks"] <= h)).all()
    assert 0 <= r["top1"] <= r["top5"] <= 1 and 1 <= r["median_rank"] <= h and r["self_over_between"] > 0
    shift = bench.feature_shift(merged)
    assert list(shift.index) == list(merged.feature_names) and np.isfinite(shift).all() and (shift >= 0).all()


def test_length_robustness_of_identical_runs_is_perfect(bench, runs):
    same = Atlas.merge([runs[48].rename_model("long", "short"), runs[48]])
    r = bench.length_robustness(same)
    assert r["top1"] == 1 and r["median_rank"] == 1 and r["self_over_between"] == 0
    assert (bench.feature_shift(same) == 0).all()


def test_length_robustness_names_missing_heads(bench, runs):
    with pytest.raises(ValueError, match="lacks heads"):
        bench.length_robustness(Atlas.merge([runs[16], runs[48].rename_model("long", "other")]), long="other2")


def test_frozen_revision_2_kernel_is_registered_and_differs(bench):
    from motif_widgets import compute_features

    name = bench.register_r2()
    assert bench.register_r2() == name  # idempotent
    rng = np.random.default_rng(1)
    patterns = [np.tril(rng.random((n, n))) for n in (1, 5, 40)]
    patterns = [p / p.sum(1, keepdims=True) for p in patterns]
    old, new = compute_features(patterns, name), compute_features(patterns, "motifs")
    assert list(old.columns) == list(new.columns) and np.isfinite(old.to_numpy()).all()
    assert old["log_distance"].iloc[2] > 1  # log tokens in revision 2; relative (<= 1) now
