"""Prompt sets and loaders."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED
from motif_widgets.prompts import (
    as_prompts,
    chunk_texts,
    default_prompts,
    default_texts,
    load_jsonl,
    pile_prompts,
    repeated_token_probes,
    text_prompt,
)


def test_default_prompts_are_varied_and_include_probes():
    texts = default_texts()
    kinds = {p.kind for p in texts}
    assert {"prose", "dialogue", "code", "list", "numbers", "repetition", "mixed"} <= kinds
    assert len(texts) == 48 and all(250 <= len(p.text) <= 600 for p in texts)
    full = default_prompts()
    assert len(full) == 60 and sum(p.is_probe for p in full) == 12
    assert len({p.id for p in full}) == 60


def test_as_prompts_normalises_and_rejects():
    ps = as_prompts(["a text", [5, 6, 7], text_prompt("other", id="x")])
    assert [p.kind for p in ps] == ["text", "tokens", "text"] and ps[1].token_ids == (5, 6, 7)
    assert as_prompts(["a text"])[0].id == ps[0].id  # ids are content hashes: stable across runs
    for bad, msg in (([], "no prompts"), ([""], "empty"), ([[]], "empty"), ([[1.5, 2]], "integer token ids"),
                     ([["a", "b"]], "integer token ids"), ([{"text": 1}], "unsupported type"),
                     (["same", "same"], "duplicate"), ([[-1, 2]], "negative")):
        with pytest.raises(ValueError, match=msg):
            as_prompts(bad)


def test_chunking_follows_the_paper(tmp_path):
    text = "x" * 1100
    assert [len(c) for c in chunk_texts([text, "short"], min_chars=64, max_chars=512)] == [512, 512, 76]
    assert chunk_texts([text], min_chars=100, max_chars=512) == ["x" * 512] * 2
    assert len(chunk_texts([text] * 5, limit=4)) == 4
    with pytest.raises(ValueError):
        chunk_texts([text], min_chars=10, max_chars=5)


def test_jsonl_loading(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join(json.dumps({"text": t, "meta": {}}) for t in ["one", "two", "three"]) + "\n\n")
    assert load_jsonl(f) == ["one", "two", "three"] and load_jsonl(f, limit=2) == ["one", "two"]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(ValueError, match="no string field 'text'"):
        load_jsonl(tmp_path / "bad.jsonl")


def test_pile_prompts_from_shared_data():
    path = SHARED / "data" / "pile_100.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    ps = pile_prompts(path, n=10, n_probes=3)
    assert len(ps) == 13 and ps[0].id == "doc-000" and ps[-1].is_probe


def test_probe_specs_are_deterministic():
    a, b = repeated_token_probes(3, 9, seed=1), repeated_token_probes(3, 9, seed=1)
    assert a == b and repeated_token_probes(3, 9, seed=2) != a
    with pytest.raises(ValueError):
        repeated_token_probes(2, 1)
