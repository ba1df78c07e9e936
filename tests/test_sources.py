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


# ---------------------------------------------------------------------------- BOS, limits, dtypes
def test_probes_never_draw_the_bos_id_0(toy_model):
    # the toy's BOS id is 0, and its vocabulary is too small for the usual [100, V-1000) range,
    # so probes draw from the whole vocabulary: probe-01 of seed 2 drew 0 when BOS 0 was read as "none"
    source = source_for(toy_model)
    assert source.bos_token_id == 0
    toks = source.tokenize(repeated_token_probes(12, 25, seed=2))
    assert all(t.ids[0] == 0 and 0 not in t.ids[1:] for t in toks)
    assert len(toks[1].ids) == 51 and toks[1].ids[1:26] == toks[1].ids[26:]


@pytest.mark.parametrize(
    "bad, error, msg",
    [(0, ValueError, "max_tokens must be >= 1, got 0"), (-5, ValueError, "max_tokens must be >= 1, got -5"),
     (2.5, TypeError, "max_tokens must be an integer"), (True, TypeError, "max_tokens must be an integer"),
     ("64", TypeError, "max_tokens must be an integer")],
)
def test_max_tokens_must_be_a_positive_int_or_none(toy_model, bad, error, msg):
    with pytest.raises(error, match=msg):
        source_for(toy_model).tokenize([token_prompt([5, 6, 7])], max_tokens=bad)


def test_prompts_are_clamped_to_the_model_context(toy_model, tiny_llama):
    source = source_for(toy_model)
    assert source.n_ctx == 81 == toy_model.cfg.n_ctx
    long = token_prompt(np.arange(1, 200) % 999 + 1, id="long")
    for max_tokens in (None, 500):
        with pytest.warns(UserWarning, match=r"1 of 2 prompts were longer than the context .*n_ctx=81"):
            toks = source.tokenize([long, token_prompt([5, 6])], max_tokens=max_tokens)
        assert len(toks[0].ids) == 81 and toks[0].truncated and toks[1].ids == (0, 5, 6) and not toks[1].truncated
    with pytest.warns(UserWarning, match="longer than max_tokens=50"):
        assert len(source.tokenize([long], max_tokens=50)[0].ids) == 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(source.tokenize([token_prompt(range(1, 81))], max_tokens=None)[0].ids) == 81  # BOS + 80: fits
    # Hugging Face config: max_position_embeddings; the same through TransformerLens cfg.n_ctx
    for kind in ("hf", "hooked", "bridge"):
        assert source_for(tiny_llama[kind], tokenizer=tiny_llama["tokenizer"]).n_ctx == 256


def test_unknown_context_leaves_max_tokens_none_unlimited(tiny_llama):
    source = source_for(tiny_llama["hf"], tokenizer=tiny_llama["tokenizer"])
    source.n_ctx = None  # a config without a context length
    ids = list(range(3, 300)) * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        toks = source.tokenize([token_prompt(ids)], max_tokens=None)
    assert len(toks[0].ids) == len(ids) + 1 and not toks[0].truncated


def test_user_marked_probes_keep_their_ids_and_duplicates_are_refused(toy_model):
    from motif_widgets.prompts import token_probe

    source = source_for(toy_model)
    block = np.array([7, 9, 11, 13], dtype=np.int64)
    probe = token_probe(np.concatenate([block, block]), id="mine")
    assert probe.is_probe and probe.token_ids == (7, 9, 11, 13, 7, 9, 11, 13)
    assert source.tokenize([probe])[0].ids == (0, 7, 9, 11, 13, 7, 9, 11, 13)
    with pytest.raises(ValueError, match=r"duplicate prompts \(ids \['mine'\]\)"):
        source.tokenize([probe, token_prompt([5, 6], id="mine")])


@pytest.mark.parametrize("kind", ["hf", "hooked", "bridge", "toy"])
def test_sources_run_models_in_bfloat16(tiny_llama, toy_model, kind):
    import copy

    if kind == "toy":
        model, prompts, tok = toy_model, [token_prompt([5, 6, 7, 8, 9]), *repeated_token_probes(2, 6)], None
    else:
        model, tok = tiny_llama[kind], tiny_llama["tokenizer"]
        prompts = [text_prompt(t) for t in TEXTS[:3]] + repeated_token_probes(1, 6)
    source32 = source_for(model, tokenizer=tok)
    want = patterns_of(source32, prompts, batch_size=4)
    model16 = copy.deepcopy(model).to(torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = patterns_of(source_for(model16, tokenizer=tok), prompts, batch_size=4)
    for k in want:
        assert got[k].dtype == torch.bfloat16 and got[k].shape == want[k].shape
        rows = got[k].float().sum(-1)
        assert torch.allclose(rows, torch.ones_like(rows), atol=2e-2)
        assert torch.allclose(got[k].float(), want[k], atol=0.1), k


def test_numpy_token_ids_make_a_saveable_atlas_and_marked_probes_feed_token_scores(toy_model, tmp_path):
    from motif_widgets.prompts import token_probe

    rng = np.random.default_rng(1)
    block = rng.choice(np.arange(1, 1000), size=20, replace=False)  # numpy int64
    prompts = [
        Prompt("np-ids", "tokens", token_ids=rng.integers(1, 1000, size=40)),
        token_prompt(rng.integers(1, 1000, size=30), id="np-prompt"),
        token_probe(np.concatenate([block, block]), id="my-probe"),
    ]
    assert all(type(t) is int for p in prompts for t in p.token_ids)
    atlas = Atlas.from_model(toy_model, prompts, progress=False)
    loaded = Atlas.load(atlas.save(tmp_path / "atlas"))
    assert loaded.prompts == atlas.prompts and loaded.prompts[2].is_probe
    auto = atlas.head_scores()
    on_probe = atlas.head_scores(prompts=["my-probe"])
    on_all = atlas.head_scores(prompts="all")
    assert np.allclose(auto["induction"], on_probe["induction"])
    assert not np.allclose(auto["induction"], on_all["induction"])
    assert auto["induction"].idxmax().startswith("toy-induction:L1")
