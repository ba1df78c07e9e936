"""Model adapters: padding and trimming are exact, the three adapters agree, BOS and
truncation are explicit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from motif_widgets import Atlas
from motif_widgets.prompts import Prompt, repeated_token_probes, text_prompt, token_prompt
from motif_widgets.sources import TransformerLensSource, pad_token_batch, source_for

TEXTS = [
    "w5 w6 w7 w8 w9 w10",
    "w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 w24 w25 w26 w27",
    "w30 w31 w30 w31 w30 w31 w30 w31 w40",
    "w50 w51",
]


def patterns_of(source, prompts, batch_size):
    """{prompt index: [layers, heads, n, n]} trimmed from batched runs."""
    toks = source.tokenize(prompts)
    out = {k: [None] * source.n_layers for k in range(len(prompts))}
    for s in range(0, len(toks), batch_size):
        idx = list(range(s, min(s + batch_size, len(toks))))
        ids, lengths = pad_token_batch([toks[k] for k in idx], source.pad_token_id, source.device)

        def keep(layer, pat):
            for b, k in enumerate(idx):
                n = int(lengths[b])
                out[k][layer] = pat[b, :, :n, :n].detach().clone()

        source.run(ids, lengths, keep)
    return {k: torch.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("kind", ["hf", "hooked", "bridge"])
def test_padding_and_trimming_are_exact(tiny_llama, kind):
    m = tiny_llama[kind]
    source = source_for(m, tokenizer=tiny_llama["tokenizer"])
    prompts = [text_prompt(t) for t in TEXTS]
    batched = patterns_of(source, prompts, batch_size=4)
    single = patterns_of(source, prompts, batch_size=1)
    for k in batched:
        assert batched[k].shape == single[k].shape
        assert torch.allclose(batched[k], single[k], atol=1e-6), k
        rows = batched[k].sum(-1)
        assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)


def test_adapters_give_the_same_patterns_and_features(tiny_llama):
    prompts = [text_prompt(t) for t in TEXTS] + repeated_token_probes(2, 10)
    atlases = {
        kind: Atlas.from_model(
            tiny_llama[kind], prompts, tokenizer=tiny_llama["tokenizer"], model_name="tiny",
            extra_feature_sets=["paper"], progress=False,
        )
        for kind in ("hf", "hooked", "bridge")
    }
    ref = atlases["hf"]
    assert ref.head_ids[:2] == ["tiny:L0H0", "tiny:L0H1"] and len(ref.head_ids) == 8
    for kind in ("hooked", "bridge"):
        a = atlases[kind]
        assert a.data.models["tiny"].token_ids == ref.data.models["tiny"].token_ids
        assert np.allclose(a.data.features["motifs"], ref.data.features["motifs"], atol=1e-5)
        # paper histograms can move an entry across a bin edge at float32 noise level
        diag_first = slice(0, 28)
        assert np.allclose(a.data.features["paper"][..., diag_first], ref.data.features["paper"][..., diag_first],
                           atol=1e-5, equal_nan=True)
        assert np.allclose(a.head_scores().to_numpy(), ref.head_scores().to_numpy(), atol=1e-5)


def test_bos_is_prepended_and_recorded(tiny_llama):
    source = source_for(tiny_llama["hf"], tokenizer=tiny_llama["tokenizer"])
    with_bos = source.tokenize([text_prompt("w5 w6"), token_prompt([1, 7, 8]), token_prompt([9, 10])])
    assert [t.ids for t in with_bos] == [(1, 5, 6), (1, 7, 8), (1, 9, 10)]
    assert all(t.has_bos for t in with_bos)
    without = source.tokenize([text_prompt("w5 w6")], prepend_bos=False)
    assert without[0].ids == (5, 6) and not without[0].has_bos
    assert source.token_strings([1, 5]) == ["<s>", "w5"]


def test_long_prompts_are_truncated_with_a_warning(tiny_llama):
    source = source_for(tiny_llama["hf"], tokenizer=tiny_llama["tokenizer"])
    long = text_prompt(" ".join(f"w{k}" for k in range(3, 60)))
    with pytest.warns(UserWarning, match="1 of 2 prompts were longer than max_tokens=20"):
        toks = source.tokenize([long, text_prompt("w5")], max_tokens=20)
    assert len(toks[0].ids) == 20 and toks[0].truncated and not toks[1].truncated


def test_probes_repeat_a_random_block_of_distinct_tokens(tiny_llama):
    source = source_for(tiny_llama["hf"], tokenizer=tiny_llama["tokenizer"])
    probes = repeated_token_probes(3, 12, seed=4)
    toks = source.tokenize(probes)
    for t in toks:
        body = t.ids[1:]
        assert t.ids[0] == 1 and len(body) == 24 and body[:12] == body[12:]
        assert len(set(body[:12])) == 12 and not set(body) & {0, 1, 2}
    assert toks[0].ids != toks[1].ids
    assert source.tokenize(probes)[0].ids == toks[0].ids  # deterministic


def test_bad_model_and_token_inputs_raise(tiny_llama):
    with pytest.raises(ValueError, match="unsupported model type"):
        source_for(object())
    source = source_for(tiny_llama["hf"], tokenizer=tiny_llama["tokenizer"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        source.tokenize([token_prompt([5, 999])])
    no_tok = source_for(tiny_llama["hf"])  # no tokenizer given
    with pytest.raises(ValueError, match="no tokenizer"):
        no_tok.tokenize([text_prompt("w5")], prepend_bos=False)


def test_model_without_tokenizer_needs_explicit_bos(toy_model):
    src = TransformerLensSource(toy_model)
    src.bos_token_id = None
    with pytest.raises(ValueError, match="no BOS token id"):
        src.tokenize([Prompt("x", "tokens", token_ids=(5, 6))])
    assert source_for(toy_model).bos_token_id == 0  # carried by the toy model itself


def test_hf_source_restores_attention_implementation(tiny_llama):
    hf = tiny_llama["hf"]
    hf.set_attn_implementation("sdpa")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Atlas.from_model(hf, [text_prompt(TEXTS[0])], tokenizer=tiny_llama["tokenizer"], progress=False)
        assert hf.config._attn_implementation == "sdpa"
    finally:
        hf.set_attn_implementation("eager")
