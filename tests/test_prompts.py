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
                     ([["a", "b"]], "integer token ids"), ([{"text": 1}], "'text' must be a string"), ([object()], "unsupported type"),
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


# ---------------------------------------------------------------------------- datasets, records, probes
class DuckDataset:
    """What as_prompts needs of a Hugging Face datasets.Dataset: column_names and dataset[column]."""

    def __init__(self, columns: dict):
        self.columns = columns
        self.column_names = list(columns)

    def __getitem__(self, key):
        if not isinstance(key, str):
            raise TypeError("rows are not used by as_prompts")
        return self.columns[key]

    def __iter__(self):
        raise AssertionError("as_prompts must read the 'text' column, not iterate rows")


def test_as_prompts_reads_a_datasets_like_text_column():
    ps = as_prompts(DuckDataset({"text": ["first doc", "second doc"], "meta": [1, 2]}))
    assert [p.text for p in ps] == ["first doc", "second doc"] and [p.kind for p in ps] == ["text", "text"]
    assert ps == as_prompts(["first doc", "second doc"])  # same ids as the plain strings


def test_as_prompts_reads_a_real_hugging_face_dataset():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": ["alpha beta", "gamma delta", "epsilon"], "label": [0, 1, 0]})
    assert [p.text for p in as_prompts(ds)] == ["alpha beta", "gamma delta", "epsilon"]
    assert [p.text for p in as_prompts(ds.to_iterable_dataset())] == ["alpha beta", "gamma delta", "epsilon"]
    with pytest.raises(ValueError, match=r"DatasetDict with splits \['train'\]"):
        as_prompts(datasets.DatasetDict({"train": ds}))


def test_as_prompts_reads_text_records():
    records = ({"text": t, **({"id": i} if i is not None else {})} for t, i in (("one", "a"), ("two", None), ("three", 7)))
    ps = as_prompts(records)  # any iterable, a generator included
    assert [p.text for p in ps] == ["one", "two", "three"]
    assert ps[0].id == "a" and ps[1].id == as_prompts(["two"])[0].id and ps[2].id == "7"
    assert as_prompts({"text": "single", "id": "s", "kind": "prose"}) == [text_prompt("single", id="s", kind="prose")]


def test_numpy_and_torch_token_ids_become_python_ints():
    import numpy as np
    import torch

    from motif_widgets.prompts import Prompt, token_prompt

    ps = as_prompts([np.array([5, 6, 7], dtype=np.int64), torch.tensor([8, 9]), [np.int32(3), np.int64(4)]])
    assert [p.token_ids for p in ps] == [(5, 6, 7), (8, 9), (3, 4)]
    direct = [Prompt("d", "tokens", token_ids=np.arange(3, 6)), token_prompt(np.arange(3, 6))]
    for p in ps + direct:
        assert type(p.token_ids) is tuple and all(type(t) is int for t in p.token_ids)
    assert json.dumps(direct[0].token_ids) == "[3, 4, 5]"


def test_token_probes_are_probes_with_their_own_ids():
    import dataclasses

    import numpy as np

    from motif_widgets.prompts import Prompt, token_probe, token_prompt

    probe = token_probe([0, 11, 12, 13, 11, 12, 13])
    assert probe.is_probe and probe.kind == "probe" and probe.token_ids == (0, 11, 12, 13, 11, 12, 13)
    assert probe.id.startswith("probe-ids-") and token_probe(np.array(probe.token_ids)).id == probe.id
    assert token_probe([4, 4], id="mine").id == "mine"
    assert Prompt("p", kind="probe", token_ids=(3, 4, 3, 4)).is_probe
    assert not token_prompt([3, 4, 3, 4]).is_probe and not text_prompt("x").is_probe
    assert all(p.is_probe for p in repeated_token_probes(2, 5))
    # a saved prompt (dataclasses.asdict, as Atlas.save writes it) comes back equal
    for p in (probe, repeated_token_probes(1, 5)[0], token_prompt([1, 2])):
        assert Prompt(**dataclasses.asdict(p)) == p
