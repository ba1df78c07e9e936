"""Model adapters: run a model on padded token batches and hand each layer's attention
patterns to a callback as soon as that layer has computed them.

Supported: TransformerLens `HookedTransformer` (TL 3.x) and `TransformerBridge` (TL 3.9
and 4.x), through `run_with_hooks` on `blocks.{L}.attn.hook_pattern`; and Hugging Face
causal LMs, through forward hooks on their attention modules with eager attention.
Batches are right-padded: under the causal mask the first n rows and columns of a padded
pattern equal the pattern of the unpadded prompt, so trimming back is exact.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ._checks import check_int
from .prompts import Prompt, as_prompts, probe_token_ids

LayerCallback = Callable[[int, torch.Tensor], None]


@dataclass(frozen=True)
class TokenizedPrompt:
    """A prompt as one model sees it.

    Attributes:
        prompt: the prompt.
        ids: token ids fed to the model, BOS first when has_bos.
        has_bos: whether ids[0] is a BOS token we prepended (or the user's ids began with it).
        truncated: whether the prompt was cut to max_tokens.
    """

    prompt: Prompt
    ids: tuple[int, ...]
    has_bos: bool
    truncated: bool


class PatternSource:
    """Base class: tokenization shared by all model adapters.

    Subclasses set name, n_layers, n_heads, device, vocab_size, bos_token_id, tokenizer
    and n_ctx (the longest sequence the model takes, None when unknown) and implement
    :meth:`run`. Patterns reach the callback in the model's own dtype (float32, float16
    or bfloat16).
    """

    name: str
    n_layers: int
    n_heads: int
    device: torch.device
    vocab_size: int
    bos_token_id: int | None
    pad_token_id: int
    tokenizer: object | None
    n_ctx: int | None = None

    def run(self, ids: torch.Tensor, lengths: torch.Tensor, on_layer: LayerCallback) -> None:
        """Forward ids [B, N] (right-padded; lengths [B]); call on_layer(layer, patterns
        [B, n_heads, N, N]) once per layer, in layer order, before the next layer runs."""
        raise NotImplementedError

    # -- tokenization ---------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            raise ValueError(f"model {self.name!r} has no tokenizer: give token-id prompts or pass tokenizer=")
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Readable text of each token (decoded one by one)."""
        if self.tokenizer is None:
            return [str(t) for t in ids]
        return [self.tokenizer.decode([int(t)]) for t in ids]

    def special_ids(self) -> set[int]:
        tok = self.tokenizer
        return set(getattr(tok, "all_special_ids", []) or []) if tok is not None else set()

    def tokenize(self, prompts: Sequence[Prompt], prepend_bos: bool = True, max_tokens: int | None = 128) -> list[TokenizedPrompt]:
        """Token ids of every prompt, BOS handled explicitly and truncation warned about.

        Text is encoded without the tokenizer's special tokens; with prepend_bos the BOS id
        is put first (token-id prompts that already start with it are left as they are).
        Probes made by :func:`~motif_widgets.prompts.repeated_token_probes` draw their tokens
        from this model's vocabulary (never its BOS or special tokens); probes marked by the
        user (:func:`~motif_widgets.prompts.token_probe`) keep their token ids as given.

        Args:
            max_tokens: an int >= 1, or None for no limit of our own. Longer prompts are
                truncated with a warning. Prompts are also clamped, with a warning, to the
                model's context (`n_ctx`, when known), whatever max_tokens is.

        Raises:
            TypeError / ValueError: max_tokens not an int >= 1 or None; duplicate prompt ids;
                token ids outside the vocabulary; a prompt without tokens.
        """
        max_tokens = check_int("max_tokens", max_tokens, minimum=1, allow_none=True)
        prompts = as_prompts(list(prompts))  # Prompt objects pass through; duplicates are refused
        if prepend_bos and self.bos_token_id is None:
            raise ValueError(
                f"model {self.name!r} has no BOS token id; pass prepend_bos=False or a tokenizer with bos_token_id"
            )
        n_ctx = self.n_ctx
        limit = max_tokens if n_ctx is None or (max_tokens is not None and max_tokens <= n_ctx) else n_ctx
        by_context = limit is not None and limit != max_tokens
        exclude = self.special_ids() | ({int(self.bos_token_id)} if self.bos_token_id is not None else set())
        out, n_truncated = [], 0
        for p in prompts:
            if p.is_probe and p.token_ids is None:
                body = probe_token_ids(p, self.vocab_size, exclude=exclude)
            elif p.token_ids is not None:
                body = list(p.token_ids)
                bad = [t for t in body if t >= self.vocab_size]
                if bad:
                    raise ValueError(f"prompt {p.id!r} has token ids {bad[:5]} outside the vocabulary of {self.vocab_size}")
            else:
                body = self.encode(p.text)
            starts_with_bos = bool(body) and body[0] == self.bos_token_id
            has_bos = prepend_bos or starts_with_bos
            ids = ([self.bos_token_id] if prepend_bos and not starts_with_bos else []) + body
            if not ids:
                raise ValueError(f"prompt {p.id!r} has no tokens")
            truncated = limit is not None and len(ids) > limit
            if truncated:
                ids, n_truncated = ids[:limit], n_truncated + 1
            out.append(TokenizedPrompt(p, tuple(int(t) for t in ids), has_bos, truncated))
        if n_truncated and by_context:
            asked = "no max_tokens" if max_tokens is None else f"max_tokens={max_tokens}"
            warnings.warn(
                f"{n_truncated} of {len(prompts)} prompts were longer than the context of model {self.name!r} "
                f"(n_ctx={n_ctx} tokens) and were truncated to it ({asked} was given)",
                stacklevel=3,
            )
        elif n_truncated:
            warnings.warn(
                f"{n_truncated} of {len(prompts)} prompts were longer than max_tokens={max_tokens} "
                "tokens and were truncated",
                stacklevel=3,
            )
        return out


def _layer_of(hook_name: str) -> int:
    return int(hook_name.split(".")[1])


class TransformerLensSource(PatternSource):
    """HookedTransformer (TL 3.x) or TransformerBridge (TL 3.9 / 4.x)."""

    def __init__(self, model, name: str | None = None, tokenizer=None):
        self.model = model
        cfg = model.cfg
        self.name = name or _model_name(model)
        self.n_layers = int(cfg.n_layers)
        self.n_heads = int(cfg.n_heads)
        self.tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        self.vocab_size = int(cfg.d_vocab)
        self.n_ctx = _positive_int_or_none(getattr(cfg, "n_ctx", None))
        self.bos_token_id = getattr(self.tokenizer, "bos_token_id", None) if self.tokenizer is not None else None
        self.pad_token_id = _pad_id(self.tokenizer)
        self.device = _device_of(model)

    def run(self, ids: torch.Tensor, lengths: torch.Tensor, on_layer: LayerCallback) -> None:
        def hook(pattern, hook):
            on_layer(_layer_of(hook.name), pattern)

        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]).long()
        with torch.no_grad():
            self.model.run_with_hooks(
                ids,
                return_type=None,
                fwd_hooks=[(lambda name: name.endswith("attn.hook_pattern"), hook)],
                attention_mask=mask,
            )


class HuggingFaceSource(PatternSource):
    """A Hugging Face causal LM; run with eager attention (switched on for the run only)."""

    def __init__(self, model, tokenizer=None, name: str | None = None):
        self.model = model
        cfg = model.config
        self.name = name or _model_name(model)
        self.n_layers = int(cfg.num_hidden_layers)
        self.n_heads = int(cfg.num_attention_heads)
        self.tokenizer = tokenizer
        self.vocab_size = int(cfg.vocab_size)
        self.n_ctx = _positive_int_or_none(
            next((getattr(cfg, a) for a in ("max_position_embeddings", "n_positions") if getattr(cfg, a, None)), None)
        )
        bos = getattr(tokenizer, "bos_token_id", None) if tokenizer is not None else None
        self.bos_token_id = bos if bos is not None else getattr(cfg, "bos_token_id", None)
        self.pad_token_id = _pad_id(tokenizer)
        self.device = _device_of(model)
        self.attention_modules = _attention_modules(model)
        if len(self.attention_modules) != self.n_layers:
            raise ValueError(
                f"found {len(self.attention_modules)} attention modules with a layer_idx in "
                f"{type(model).__name__}, expected {self.n_layers}"
            )

    @contextlib.contextmanager
    def _eager(self):
        before = getattr(self.model.config, "_attn_implementation", None)
        if before != "eager":
            self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            if before not in (None, "eager"):
                self.model.set_attn_implementation(before)

    def run(self, ids: torch.Tensor, lengths: torch.Tensor, on_layer: LayerCallback) -> None:
        def make_hook(layer: int):
            def hook(module, args, output):
                weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
                if not isinstance(weights, torch.Tensor):
                    raise RuntimeError(f"layer {layer} returned no attention weights; eager attention is required")
                on_layer(layer, weights)

            return hook

        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]).long()
        handles = [m.register_forward_hook(make_hook(layer)) for layer, m in enumerate(self.attention_modules)]
        try:
            with self._eager(), torch.no_grad():
                self.model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)
        finally:
            for h in handles:
                h.remove()


def _attention_modules(model) -> list:
    found = [
        m for m in model.modules() if type(m).__name__.endswith("Attention") and isinstance(getattr(m, "layer_idx", None), int)
    ]
    return sorted(found, key=lambda m: m.layer_idx)


def _positive_int_or_none(value) -> int | None:
    """A context length read from a config: a positive int, else None (unknown)."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _pad_id(tokenizer) -> int:
    for attr in ("pad_token_id", "eos_token_id", "bos_token_id"):
        v = getattr(tokenizer, attr, None) if tokenizer is not None else None
        if v is not None:
            return int(v)
    return 0


def _device_of(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _model_name(model) -> str:
    explicit = getattr(model, "motif_widgets_name", None)
    if explicit:
        return explicit
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "model_name", None):
        return str(cfg.model_name)
    config = getattr(model, "config", None)
    path = getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None)
    return str(path).rstrip("/").split("/")[-1] if path else type(model).__name__


def source_for(model, tokenizer=None, name: str | None = None, bos_token_id: int | None = None) -> PatternSource:
    """The adapter for a model: a PatternSource passes through; TransformerLens models
    (anything with `run_with_hooks` and `cfg`) and Hugging Face PreTrainedModels are wrapped.

    bos_token_id overrides the tokenizer's BOS (needed for models without a tokenizer; a
    model may also carry it as the attribute `motif_widgets_bos_token_id`).
    """
    if isinstance(model, PatternSource):
        return model
    from transformers import PreTrainedModel

    if hasattr(model, "run_with_hooks") and hasattr(model, "cfg"):
        source: PatternSource = TransformerLensSource(model, name=name, tokenizer=tokenizer)
    elif isinstance(model, PreTrainedModel):
        source = HuggingFaceSource(model, tokenizer=tokenizer, name=name)
    else:
        raise ValueError(
            f"unsupported model type {type(model).__name__}: expected a TransformerLens HookedTransformer / "
            "TransformerBridge, a Hugging Face causal LM, or a PatternSource"
        )
    for bos in (bos_token_id, getattr(model, "motif_widgets_bos_token_id", None)):
        if bos is not None:
            source.bos_token_id = int(bos)
            break
    return source


def pad_token_batch(prompts: Sequence[TokenizedPrompt], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token ids: ([B, N] int64, lengths [B] int64) on device."""
    lengths = np.array([len(p.ids) for p in prompts])
    ids = np.full((len(prompts), lengths.max()), pad_id, dtype=np.int64)
    for k, p in enumerate(prompts):
        ids[k, : len(p.ids)] = p.ids
    return torch.as_tensor(ids, device=device), torch.as_tensor(lengths, device=device)
