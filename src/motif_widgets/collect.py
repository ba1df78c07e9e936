"""Stream patterns into features, head scores and thumbnails, one layer/batch at a time.

Patterns never accumulate: each [B, heads, N, N] layer tensor is reduced on its own
device the moment the model produces it, so peak memory does not grow with the number
of prompts beyond the feature table and the few thumbnails kept for display.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ._checks import check_int
from .atlas_data import AtlasData, ModelInfo, heads_frame
from .detect import SCORE_NAMES, score_sums
from .features.batch import PatternBatch, check_patterns
from .features.registry import check_compute_dtype, feature_matrix, get_feature_set
from .prompts import Prompt
from .sources import PatternSource, TokenizedPrompt, pad_token_batch

#: Thumbnails keep the top-left corner of a pattern: under causal masking that is exactly
#: the pattern of the prompt's first THUMBNAIL_TOKENS tokens.
THUMBNAIL_TOKENS = 64
#: Default of collect_from_model / collect_from_patterns: a thumbnail of every prompt, of its
#: first DEFAULT_THUMBNAIL_TOKENS tokens (SmolLM2, 270 heads x 60 prompts: 33 MB of float16).
DEFAULT_THUMBNAILS = "all"
DEFAULT_THUMBNAIL_TOKENS = 32


class Collector:
    """Receives layer patterns and writes their reductions into preallocated tables."""

    def __init__(
        self,
        n_layers: int,
        n_heads: int,
        prompts: Sequence[Prompt],
        feature_sets: Sequence[str],
        thumbnail_prompts: Sequence[int],
        thumbnail_tokens: int = THUMBNAIL_TOKENS,
        dtype: torch.dtype = torch.float64,
        validate: bool = True,
    ):
        self.n_layers, self.n_heads = n_layers, n_heads
        self.prompts = list(prompts)
        self.sets = [get_feature_set(f) for f in feature_sets]
        self.dtype, self.validate = check_compute_dtype(dtype), validate
        n_total, p = n_layers * n_heads, len(self.prompts)
        self.features = {fs.name: np.full((n_total, p, len(fs.feature_names)), np.nan) for fs in self.sets}
        self.score_sums = np.zeros((n_total, p, len(SCORE_NAMES)))
        self.score_rows = np.zeros((p, len(SCORE_NAMES)))
        self.thumbnail_prompts = np.asarray(thumbnail_prompts, dtype=np.int64)
        self.thumb_slot = {int(k): s for s, k in enumerate(self.thumbnail_prompts)}
        self.thumb_k = thumbnail_tokens
        self.thumbnails = np.zeros((n_total, len(self.thumbnail_prompts), thumbnail_tokens, thumbnail_tokens), np.float16)
        self.done = np.zeros((n_layers, p), dtype=bool)

    def add_layer(
        self,
        layer: int,
        prompt_index: Sequence[int],
        patterns: torch.Tensor,
        lengths: torch.Tensor,
        token_ids: torch.Tensor | None,
    ) -> None:
        """Reduce one layer's patterns [B, heads, N, N] of prompts `prompt_index`."""
        b, h, n_max, _ = patterns.shape
        if h != self.n_heads:
            raise ValueError(f"layer {layer} gave {h} heads, expected {self.n_heads}")
        lengths = lengths.to(patterns.device)
        flat_len = lengths.repeat_interleave(h)
        inside = torch.arange(n_max, device=patterns.device)[None, :] < flat_len[:, None]
        a = patterns.detach().reshape(b * h, n_max, n_max).to(self.dtype)
        a = a * (inside[:, :, None] & inside[:, None, :])  # drop padded rows / columns
        batch = PatternBatch(a, flat_len)
        if self.validate:
            names = (f"layer {layer} head {k % h} of prompt {self.prompts[prompt_index[k // h]].id!r}" for k in range(b * h))
            check_patterns(batch, names, source_dtype=patterns.dtype)
        rows = slice(layer * h, (layer + 1) * h)
        idx = np.asarray(prompt_index)
        for fs in self.sets:
            f = feature_matrix(fs, batch).to("cpu", torch.float64).numpy().reshape(b, h, -1)
            self.features[fs.name][rows, idx] = f.transpose(1, 0, 2)
        sums, counts = score_sums(a.view(b, h, n_max, n_max), lengths, token_ids)
        self.score_sums[rows, idx] = sums.to("cpu", torch.float64).numpy().transpose(1, 0, 2)
        self.score_rows[idx] = counts.to("cpu", torch.float64).numpy()
        kept = [(k, slot) for k, p in enumerate(idx) if (slot := self.thumb_slot.get(int(p))) is not None]
        if kept:  # one device-to-host copy of the batch's corners (not one copy and sync per prompt)
            t = min(n_max, self.thumb_k)
            corners = a.view(b, h, n_max, n_max)[[k for k, _ in kept], :, :t, :t].to("cpu", torch.float16).numpy()
            host_lengths = lengths.tolist()
            for (k, slot), corner in zip(kept, corners):
                m = min(host_lengths[k], t)
                self.thumbnails[rows, slot, :m, :m] = corner[:, :m, :m]
        self.done[layer, idx] = True

    def finish(
        self, model_name: str, tokenized: Sequence[TokenizedPrompt], token_strs: list[list[str]], meta: dict | None = None
    ) -> AtlasData:
        """The collected tables as AtlasData (RuntimeError if a layer of a prompt never arrived)."""
        if not self.done.all():
            layer, p = np.argwhere(~self.done)[0]
            raise RuntimeError(f"no patterns arrived for layer {layer} of prompt {self.prompts[p].id!r}")
        info = ModelInfo(
            model_name, self.n_layers, self.n_heads,
            lengths=[len(t.ids) for t in tokenized],
            token_ids=[list(t.ids) for t in tokenized],
            token_strs=token_strs,
            has_bos=[t.has_bos for t in tokenized],
            truncated=[t.truncated for t in tokenized],
        )
        return AtlasData(
            heads=heads_frame(model_name, self.n_layers, self.n_heads),
            prompts=self.prompts,
            models={model_name: info},
            features=self.features,
            feature_names={fs.name: fs.feature_names for fs in self.sets},
            score_sums=self.score_sums,
            # eligible rows depend on the prompt only: the same for every head of the model
            score_rows=np.broadcast_to(self.score_rows[None], self.score_sums.shape).copy(),
            thumbnails=self.thumbnails,
            thumbnail_prompts=self.thumbnail_prompts,
            meta=dict(meta or {}),
            feature_revisions={fs.name: fs.revision for fs in self.sets},
        )


def pick_thumbnail_prompts(prompts: Sequence[Prompt], thumbnails: int | str | Sequence[str]) -> list[int]:
    """Indices of the prompts to keep thumbnails of: "all", an explicit list of prompt ids, or
    a count split between texts and probes (a third of them probes, at least one if any)."""
    if isinstance(thumbnails, str) and thumbnails == "all":
        return list(range(len(prompts)))
    if isinstance(thumbnails, str) or not hasattr(thumbnails, "__iter__"):
        thumbnails = check_int("thumbnails", thumbnails, minimum=0)
    else:
        where = {p.id: k for k, p in enumerate(prompts)}
        thumbnails = list(thumbnails)
        missing = [t for t in thumbnails if t not in where]
        if missing:
            raise ValueError(f"thumbnails: prompts {missing[:5]} are not among the prompts")
        if len(set(thumbnails)) != len(thumbnails):
            raise ValueError("thumbnails names a prompt twice")
        return [where[t] for t in thumbnails]
    probes = [k for k, p in enumerate(prompts) if p.is_probe]
    texts = [k for k, p in enumerate(prompts) if not p.is_probe]
    n_probe = min(len(probes), max(1 if probes and thumbnails > 1 else 0, thumbnails // 3))
    return texts[: thumbnails - n_probe] + probes[:n_probe]


def collect_from_model(
    source: PatternSource,
    prompts: Sequence[Prompt],
    feature_sets: Sequence[str],
    *,
    batch_size: int = 8,
    max_tokens: int | None = 128,
    prepend_bos: bool = True,
    thumbnails: int | str | Sequence[str] = DEFAULT_THUMBNAILS,
    thumbnail_tokens: int = DEFAULT_THUMBNAIL_TOKENS,
    dtype: torch.dtype = torch.float64,
    validate: bool = True,
    progress: bool = True,
) -> AtlasData:
    """Run the model over the prompts (longest first, right-padded batches) and reduce
    every layer's patterns as it arrives."""
    check_int("batch_size", batch_size, minimum=1)
    tokenized = source.tokenize(prompts, prepend_bos=prepend_bos, max_tokens=max_tokens)
    collector = Collector(
        source.n_layers, source.n_heads, prompts, feature_sets, pick_thumbnail_prompts(prompts, thumbnails),
        check_int("thumbnail_tokens", thumbnail_tokens, minimum=1), dtype=dtype, validate=validate,
    )
    order = sorted(range(len(prompts)), key=lambda k: -len(tokenized[k].ids))
    bar = tqdm(total=len(prompts), desc=f"atlas {source.name}", unit="prompt", disable=not progress)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, lengths = pad_token_batch([tokenized[k] for k in idx], source.pad_token_id, source.device)
        source.run(ids, lengths, lambda layer, pat: collector.add_layer(layer, idx, pat, lengths, ids))
        bar.update(len(idx))
    bar.close()
    token_strs = [source.token_strings(t.ids) for t in tokenized]
    meta = {"prepend_bos": prepend_bos, "max_tokens": max_tokens, "dtype": str(dtype).replace("torch.", "")}
    return collector.finish(source.name, tokenized, token_strs, meta)


def collect_from_patterns(
    per_prompt: Sequence,
    model_name: str,
    prompts: Sequence[Prompt],
    feature_sets: Sequence[str],
    *,
    token_ids: Sequence[Sequence[int]] | None = None,
    token_strs: Sequence[Sequence[str]] | None = None,
    has_bos: bool = False,
    thumbnails: int | str | Sequence[str] = DEFAULT_THUMBNAILS,
    thumbnail_tokens: int = DEFAULT_THUMBNAIL_TOKENS,
    dtype: torch.dtype = torch.float64,
    validate: bool = True,
    device: torch.device | str | None = None,
) -> AtlasData:
    """Reduce patterns the user already has: one [layers, heads, n, n] array per prompt."""
    arrays = pattern_arrays(per_prompt)
    if len(prompts) != len(arrays):
        raise ValueError(f"prompts: {len(prompts)} prompts for {len(arrays)} pattern arrays; give one per array")
    n_layers, n_heads = arrays[0].shape[:2]
    lengths = [t.shape[-1] for t in arrays]
    if token_ids is not None:
        if len(token_ids) != len(arrays) or any(len(t) != n for t, n in zip(token_ids, lengths)):
            raise ValueError("token_ids must give one id per pattern row for every prompt")
    dev = torch.device(device) if device is not None else arrays[0].device
    collector = Collector(
        n_layers, n_heads, prompts, feature_sets, pick_thumbnail_prompts(prompts, thumbnails),
        check_int("thumbnail_tokens", thumbnail_tokens, minimum=1), dtype=dtype, validate=validate,
    )
    for k, t in enumerate(arrays):
        n = lengths[k]
        ids = torch.as_tensor([list(token_ids[k])], device=dev) if token_ids is not None else None
        for layer in range(n_layers):
            collector.add_layer(layer, [k], t[layer][None].to(dev), torch.tensor([n], device=dev), ids)
    fake = [
        TokenizedPrompt(p, tuple(token_ids[k]) if token_ids is not None else tuple(range(lengths[k])), has_bos, False)
        for k, p in enumerate(prompts)
    ]
    if token_strs is None:
        token_strs = [[str(t) for t in ids] for ids in token_ids] if token_ids is not None else [[""] * n for n in lengths]
    meta = {"prepend_bos": has_bos, "max_tokens": None, "dtype": str(dtype).replace("torch.", "")}
    out = collector.finish(model_name, fake, [list(s) for s in token_strs], meta)
    if token_ids is None:  # the ids above only numbered the rows
        out.models[model_name].token_ids = [[] for _ in lengths]
    return out


def pattern_arrays(per_prompt) -> list[torch.Tensor]:
    """per_prompt as a list of [layers, heads, n, n] float tensors (detached), or a clear error."""
    expected = "a list with one [layers, heads, n, n] array or tensor per prompt"
    if per_prompt is None or isinstance(per_prompt, (str, bytes, dict)) or not hasattr(per_prompt, "__len__"):
        raise TypeError(f"per_prompt must be {expected}, got {type(per_prompt).__name__}")
    if isinstance(per_prompt, (np.ndarray, torch.Tensor)) and per_prompt.ndim == 4:
        raise ValueError(f"per_prompt has shape {tuple(per_prompt.shape)}: {expected} (wrap one prompt's array in a list)")
    arrays = []
    for k, p in enumerate(per_prompt):
        if isinstance(p, torch.Tensor):
            t = p.detach()
        else:
            try:
                arr = np.asarray(p)
            except ValueError as e:  # ragged nested lists
                raise ValueError(f"per_prompt[{k}] is not a rectangular array: {e}") from None
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                raise TypeError(f"per_prompt[{k}] must be a numeric [layers, heads, n, n] array, got {type(p).__name__} of {arr.dtype}")
            t = torch.as_tensor(arr)
        if t.ndim != 4 or t.shape[-1] != t.shape[-2] or min(t.shape) == 0:
            raise ValueError(f"per_prompt[{k}] has shape {tuple(t.shape)}; expected [layers, heads, n, n] with every size >= 1")
        if t.shape[:2] != arrays[0].shape[:2] if arrays else False:
            raise ValueError(
                f"per_prompt[{k}] has {tuple(t.shape[:2])} layers x heads, per_prompt[0] has {tuple(arrays[0].shape[:2])}"
            )
        if not torch.is_floating_point(t):
            t = t.to(torch.float64)
        arrays.append(t)
    if not arrays:
        raise ValueError(f"per_prompt is empty: expected {expected}")
    return arrays
