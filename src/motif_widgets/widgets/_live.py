"""Patterns the explorer asks the kernel for when a model is attached: the full-resolution
pattern of a (head, atlas prompt) and every head's pattern on the user's own text.

Both are one forward pass of one prompt through :func:`motif_widgets.circuits.patterns` (all
heads of the model at once); the results are cached per prompt, so further heads on the same
prompt cost nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from ..atlas import Atlas
from ..prompts import Prompt

#: Prompts whose patterns (all heads, float16) stay cached: SmolLM2 at 128 tokens is 8.8 MB each.
CACHE_PROMPTS = 12
#: Tokens of the user's text kept (longer texts are cut, as the atlas cuts its prompts).
TEXT_MAX_TOKENS = 256


class LivePatterns:
    """Forward passes of one attached model over single prompts, for the heads of one model of
    the atlas (the model's own heads: ``rows`` are their atlas head indices).

    Args:
        atlas: the explorer's atlas.
        model: a TransformerLens model (``circuits.patterns`` reads ``hook_pattern``).
    """

    def __init__(self, atlas: Atlas, model):
        from .. import circuits

        self.atlas, self.model = atlas, model
        runner_name = self.runner_name = circuits._model_name(model)
        names = atlas.model_names
        if len(names) == 1:
            self.model_name = names[0]
        elif runner_name in names:
            self.model_name = runner_name
        else:
            raise ValueError(f"the attached model {runner_name!r} is none of the atlas's models {names}")
        info = atlas.data.models[self.model_name]
        n_layers, n_heads = circuits._n_layers_heads(model)
        if (n_layers, n_heads) != (info.n_layers, info.n_heads):
            raise ValueError(
                f"the attached model has {n_layers} layers x {n_heads} heads, the atlas's {self.model_name!r} "
                f"{info.n_layers} x {info.n_heads}: attach the model the atlas was built from"
            )
        heads = atlas.heads
        mine = np.flatnonzero(heads["model"].to_numpy() == self.model_name)
        # rows in (layer, head) order, as circuits.patterns returns them
        order = np.lexsort((heads["head_index"].to_numpy()[mine], heads["layer"].to_numpy()[mine]))
        self.rows = mine[order]
        self.pairs = [(int(heads["layer"].iloc[i]), int(heads["head_index"].iloc[i])) for i in self.rows]
        self.row_of = {int(i): r for r, i in enumerate(self.rows)}
        self.max_tokens = atlas.data.meta.get("max_tokens", 128)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _run(self, prompt, max_tokens) -> tuple[np.ndarray, float]:
        """float16 [R, n, n] patterns of every head of the model (rows = self.rows) on one
        prompt, and the forward pass's seconds."""
        from .. import circuits

        t0 = time.perf_counter()
        out = circuits.patterns(self.model, [prompt], self.pairs, max_tokens=max_tokens)
        seconds = time.perf_counter() - t0
        n = next(iter(out.values()))[0].shape[0]
        stacked = np.empty((len(self.pairs), n, n), np.float16)
        for r, (layer, head) in enumerate(self.pairs):
            stacked[r] = out[circuits.head_id(self.runner_name, layer, head)][0]
        return stacked, seconds

    def prompt_patterns(self, prompt_id: str) -> np.ndarray:
        """float16 [R, n, n]: every head's full pattern on atlas prompt `prompt_id` (cached)."""
        hit = self._cache.get(prompt_id)
        if hit is not None:
            self._cache.move_to_end(prompt_id)
            return hit
        ids = self.atlas.prompt_ids
        if prompt_id not in ids:
            raise ValueError(f"prompt {prompt_id!r} is not an atlas prompt; choose among {ids[:5]}...")
        k = ids.index(prompt_id)
        stacked, _ = self._run(self.atlas.prompts[k], self.max_tokens)
        expected = int(self.atlas.data.models[self.model_name].lengths[k])
        if stacked.shape[-1] != expected:
            raise ValueError(
                f"prompt {prompt_id!r} has {stacked.shape[-1]} tokens now and {expected} in the atlas: "
                "the attached model tokenizes it differently from the model the atlas was built with"
            )
        self._cache[prompt_id] = stacked
        while len(self._cache) > CACHE_PROMPTS:
            self._cache.popitem(last=False)
        return stacked

    def pattern(self, head: int, prompt_id: str) -> np.ndarray:
        """float32 [n, n]: full pattern of atlas head index `head` on atlas prompt `prompt_id`."""
        if int(head) not in self.row_of:
            raise ValueError(f"head {self.atlas.head_ids[head]!r} is not a head of the attached model {self.model_name!r}")
        return self.prompt_patterns(prompt_id)[self.row_of[int(head)]].astype(np.float32)

    def text(self, text: str, max_tokens: int = TEXT_MAX_TOKENS) -> dict:
        """Every head's pattern on the user's `text`: {"tokens" [n] strings, "rows" [R] atlas
        head indices, "patterns" float16 [R, n, n], "seconds" of the forward pass}."""
        from ..sources import source_for

        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty string, got {text!r}")
        prompt = Prompt("your-text", "text", text=text)
        source = source_for(self.model)
        tokenized = source.tokenize([prompt], max_tokens=max_tokens)[0]
        if len(tokenized.ids) < 2:
            raise ValueError(f"text {text!r} is {len(tokenized.ids)} token(s): give at least 2")
        patterns, seconds = self._run(prompt, max_tokens)
        return {
            "tokens": [str(t) for t in source.token_strings(tokenized.ids)],
            "rows": self.rows,
            "patterns": patterns,
            "seconds": seconds,
        }

