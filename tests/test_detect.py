"""Head-type score sums equal their definitions, computed row by row, on padded batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import causal_pattern
from motif_widgets.detect import RECENT_WINDOW, SCORE_NAMES, score_sums


def plain_scores(a: np.ndarray, tok: np.ndarray) -> tuple[dict, dict]:
    """Sums and eligible-row counts of every score for one [n, n] pattern (the docstring of detect.py)."""
    n = a.shape[0]
    sums, rows = dict.fromkeys(SCORE_NAMES, 0.0), dict.fromkeys(SCORE_NAMES, 0)
    for i in range(1, n):
        p = a[i, : i + 1]
        p = p[p > 0]
        values = {
            "previous_token": a[i, i - 1],
            "self": a[i, i],
            "first_token": a[i, 0],
            "recent": sum(a[i, j] for j in range(max(1, i - RECENT_WINDOW), i)),
            "diffuse": float(-(p * np.log(p)).sum() / np.log(i + 1)),
        }
        for k, v in values.items():
            sums[k] += v
            rows[k] += 1
        dup = [j for j in range(1, i) if tok[j] == tok[i]]
        ind = [j for j in range(1, i) if tok[j - 1] == tok[i]]
        for name, keys in (("duplicate_token", dup), ("induction", ind)):
            if keys:
                sums[name] += a[i, keys].sum()
                rows[name] += 1
    return sums, rows


@pytest.mark.parametrize("kind", ["softmax", "prev", "sink"])
def test_score_sums_equal_row_by_row_definitions(kind):
    rng = np.random.default_rng(7)
    lengths, heads = [1, 2, 5, 19, 33], 3
    n_max = max(lengths)
    patterns = torch.zeros((len(lengths), heads, n_max, n_max), dtype=torch.float64)
    tokens = torch.full((len(lengths), n_max), 99, dtype=torch.int64)  # padding repeats a token: must not count
    per_prompt = []
    for b, n in enumerate(lengths):
        half = rng.integers(0, 6, size=(n + 1) // 2)
        tok = np.concatenate([half, half])[:n]  # a repeated sequence: duplicates and induction targets
        tokens[b, :n] = torch.as_tensor(tok)
        pats = [causal_pattern(rng, n, kind) for _ in range(heads)]
        patterns[b, :, :n, :n] = torch.as_tensor(np.stack(pats))
        per_prompt.append((pats, tok))
    sums, rows = score_sums(patterns, torch.as_tensor(lengths), tokens)
    for b, (pats, tok) in enumerate(per_prompt):
        for h, a in enumerate(pats):
            want_sums, want_rows = plain_scores(a, tok)
            for s, name in enumerate(SCORE_NAMES):
                assert sums[b, h, s].item() == pytest.approx(want_sums[name], rel=1e-12, abs=1e-12), (b, h, name)
                assert rows[b, s].item() == want_rows[name], (b, name)


def test_score_sums_without_tokens_have_no_token_rows():
    rng = np.random.default_rng(8)
    a = torch.as_tensor(np.stack([causal_pattern(rng, 6)]))[None]  # [1, 1, 6, 6]
    sums, rows = score_sums(a, torch.tensor([6]), None)
    token = [SCORE_NAMES.index("duplicate_token"), SCORE_NAMES.index("induction")]
    assert (rows[0, token] == 0).all() and (sums[0, 0, token] == 0).all()
    assert (rows[0, [k for k in range(len(SCORE_NAMES)) if k not in token]] == 5).all()


def test_gpt2_small_classes_are_found_under_transformerlens_and_hub_names():
    from motif_widgets.detect import canonical_model_name, known_classes

    expected = known_classes("gpt2-small", 9, 9)
    assert expected  # a name mover in IOI
    for name in ("gpt2", "GPT2", "openai-community/gpt2", "gpt2-small"):
        assert canonical_model_name(name) == "gpt2-small"
        assert known_classes(name, 9, 9) == expected
    assert known_classes("smollm2-135m", 9, 9) == [] and canonical_model_name("smollm2-135m") == "smollm2-135m"
