"""Bad prompt inputs: each raises a TypeError / ValueError that names what was wrong."""

from __future__ import annotations

import numpy as np
import pytest

from motif_widgets import Atlas
from motif_widgets.prompts import (
    Prompt,
    as_prompts,
    probe_token_ids,
    repeated_token_probes,
    text_prompt,
    token_probe,
    token_prompt,
)


class ColumnsOnly:
    def __init__(self, column_names):
        self.column_names = column_names

    def __getitem__(self, key):
        raise KeyError(key)


@pytest.mark.parametrize(
    "make, error, msg",
    [
        (lambda: token_prompt([]), ValueError, "empty token-id sequence"),
        (lambda: token_prompt([1.5, 2]), TypeError, r"token ids must be integers, got 1.5 \(float\)"),
        (lambda: token_prompt([True, 2]), TypeError, r"token ids must be integers, got True \(bool\)"),
        (lambda: token_prompt(np.array([1.0, 2.0])), TypeError, "integers, got an array of dtype float64"),
        (lambda: token_prompt(np.zeros((2, 2), dtype=int)), ValueError, r"must be 1-D, got an array of shape \(2, 2\)"),
        (lambda: token_prompt([-1, 2]), ValueError, "token ids must be >= 0, got negative ids"),
        (lambda: token_prompt("12"), TypeError, "sequence of integers, got str"),
        (lambda: token_prompt(7), TypeError, "sequence of integers, got int"),
        (lambda: Prompt("x", "tokens", token_ids=[2, 2.5]), TypeError, "prompt 'x': token ids must be integers"),
        (lambda: Prompt(3), TypeError, r"prompt id must be a non-empty string, got 3 \(int\)"),
        (lambda: Prompt(""), TypeError, "prompt id must be a non-empty string"),
        (lambda: Prompt("p", "probe"), ValueError, "probe 'p' needs either token_ids .* or probe_half_length"),
        (lambda: Prompt("p", "probe", token_ids=(1, 1), probe_half_length=3), ValueError, "not both or neither"),
        (lambda: Prompt("p", "text", probe_half_length=3), ValueError, "probes have kind='probe'"),
        (lambda: token_probe([1, 2, 3]), ValueError, "repeat no token"),
        (lambda: token_probe([]), ValueError, "token probe: empty token-id sequence"),
        (lambda: text_prompt("  "), ValueError, "empty or non-text prompt"),
        (lambda: repeated_token_probes(-1), ValueError, "n must be >= 0, got -1"),
        (lambda: repeated_token_probes(2, 1), ValueError, "half_length must be >= 2, got 1"),
        (lambda: repeated_token_probes(2.0), TypeError, "n must be an integer"),
        (lambda: repeated_token_probes(2, 5, seed=-1), ValueError, "seed must be >= 0"),
        (lambda: probe_token_ids(token_prompt([1, 2]), 1000), ValueError, "is not a generated probe"),
    ],
)
def test_bad_prompt_construction(make, error, msg):
    with pytest.raises(error, match=msg):
        make()


@pytest.mark.parametrize(
    "prompts, msg",
    [
        ([], "no prompts given"),
        (42, "prompts must be a list of prompts .*, got int"),
        ([3], "prompt 0 has unsupported type int"),
        (["ok", None], "prompt 1 has unsupported type NoneType"),
        (["ok", ""], "prompt 1 is an empty text"),
        ([[1.5, 2]], "neither text nor a 1-D sequence of integer token ids"),
        ([np.zeros((2, 3), dtype=int)], "neither text nor a 1-D sequence"),
        ([{"body": "x"}], r"prompt 0 is a record without a 'text' field \(keys: \['body'\]\)"),
        ({"id": "a"}, r"prompt 0 is a record without a 'text' field \(keys: \['id'\]\)"),
        ([{"text": 5}], "prompt 0: the record's 'text' must be a string, got int"),
        ([{"text": "a", "id": 1.5}], "the record's 'id' must be a string or an integer, got float"),
        ([{"text": "a", "kind": "probe"}], "'kind' must be a text genre string, got 'probe'"),
        ([{"text": "a", "id": "x"}, {"text": "b", "id": "x"}], r"duplicate prompts \(ids \['x'\]\)"),
        ([token_prompt([1, 2], id="a"), text_prompt("x", id="a")], r"duplicate prompts \(ids \['a'\]\)"),
        (["same", "same"], "duplicate prompts"),
        ([[5, 6], np.array([5, 6])], "duplicate prompts"),
        (ColumnsOnly(["content", "meta"]), r"the dataset has no 'text' column \(columns: \['content', 'meta'\]\)"),
        (ColumnsOnly({"train": ["text"]}), r"DatasetDict with splits \['train'\]; pick one"),
    ],
)
def test_bad_as_prompts_inputs(prompts, msg):
    with pytest.raises(ValueError, match=msg):
        as_prompts(prompts)


def test_duplicate_prompts_are_refused_where_models_take_prompts(toy_model):
    from motif_widgets.sources import source_for

    dup = [token_prompt([5, 6], id="a"), token_probe([7, 8, 7, 8], id="a")]
    with pytest.raises(ValueError, match=r"duplicate prompts \(ids \['a'\]\)"):
        Atlas.from_model(toy_model, dup, progress=False)
    with pytest.raises(ValueError, match=r"duplicate prompts \(ids \['a'\]\)"):
        source_for(toy_model).tokenize(dup)  # the path every model run goes through
