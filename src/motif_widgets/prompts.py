"""Prompts: the default set, text loaders, the paper's character chunking, and
repeated-random-token probes (the inputs on which induction heads show themselves).

A :class:`Prompt` is text, token ids, or a probe that each model resolves against its
own vocabulary (so probes of different models share ids and pair up in cross-model
atlases). Prompt ids are stable: given, or derived from a hash of the content.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

#: Probe tokens are drawn from [PROBE_LOW_ID, vocab_size - PROBE_HIGH_MARGIN), avoiding
#: special and rare ids (the reference's ablation data excludes the same ranges).
PROBE_LOW_ID = 100
PROBE_HIGH_MARGIN = 1000


@dataclass(frozen=True)
class Prompt:
    """One prompt.

    Attributes:
        id: stable identifier; prompts with equal ids are paired across models.
        kind: "text" / "tokens" / "probe", or a finer text genre ("prose", "code", ...).
        text: the text (None for token-id prompts and probes).
        token_ids: explicit token ids (tokens prompts), used as given.
        probe_half_length: for probes, the length L of the random block repeated twice.
        probe_seed: for probes, the seed of the random block.
    """

    id: str
    kind: str = "text"
    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    probe_half_length: int | None = None
    probe_seed: int | None = None

    @property
    def is_probe(self) -> bool:
        return self.probe_half_length is not None


def _digest(content: str) -> str:
    return hashlib.md5(content.encode("utf-8")).hexdigest()[:12]


def text_prompt(text: str, id: str | None = None, kind: str = "text") -> Prompt:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty or non-text prompt {text!r}")
    return Prompt(id or f"t-{_digest(text)}", kind, text=text)


def token_prompt(ids: Sequence[int], id: str | None = None) -> Prompt:
    ids = tuple(int(t) for t in ids)
    if not ids:
        raise ValueError("empty token-id prompt")
    if min(ids) < 0:
        raise ValueError(f"token-id prompt has negative ids: {ids[:10]}...")
    return Prompt(id or f"ids-{_digest(','.join(map(str, ids)))}", "tokens", token_ids=ids)


def repeated_token_probes(n: int = 12, half_length: int = 25, seed: int = 0) -> list[Prompt]:
    """n probes: [BOS] + s + s with s a block of `half_length` distinct random tokens.

    The tokens are drawn per model from its vocabulary when the prompt is tokenized
    (see :func:`probe_token_ids`); ids are "probe-00", "probe-01", ...
    """
    if n < 0 or half_length < 2:
        raise ValueError(f"need n >= 0 probes with half_length >= 2, got n={n}, half_length={half_length}")
    return [Prompt(f"probe-{k:02d}", "probe", probe_half_length=half_length, probe_seed=seed * 100003 + k) for k in range(n)]


def probe_token_ids(prompt: Prompt, vocab_size: int, exclude: Iterable[int] = ()) -> list[int]:
    """The repeated random block of a probe for a vocabulary: s + s (BOS not included)."""
    hi = vocab_size - PROBE_HIGH_MARGIN
    lo = PROBE_LOW_ID if hi - PROBE_LOW_ID >= 4 * prompt.probe_half_length else 0
    hi = hi if hi - lo >= 2 * prompt.probe_half_length else vocab_size
    excluded = set(int(e) for e in exclude)
    pool = np.arange(lo, hi)
    pool = pool[~np.isin(pool, list(excluded))]
    if len(pool) < prompt.probe_half_length:
        raise ValueError(f"vocabulary of {vocab_size} tokens is too small for probes of {prompt.probe_half_length}")
    rng = np.random.default_rng(prompt.probe_seed)
    block = rng.choice(pool, size=prompt.probe_half_length, replace=False).tolist()
    return block + block


def as_prompts(prompts) -> list[Prompt]:
    """Normalise user input: Prompt objects, strings, or token-id sequences -> [Prompt].

    Raises ValueError for an empty list, empty strings, or duplicate ids.
    """
    if prompts is None:
        return default_prompts()
    if isinstance(prompts, (str, Prompt)):
        prompts = [prompts]
    out = []
    for k, p in enumerate(prompts):
        if isinstance(p, Prompt):
            out.append(p)
        elif isinstance(p, str):
            out.append(text_prompt(p))
        elif hasattr(p, "__len__") and not isinstance(p, (bytes, dict)):
            arr = np.asarray(p)
            if arr.size == 0:
                raise ValueError(f"prompt {k} is an empty token-id sequence")
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"prompt {k} is neither text nor a 1-D sequence of integer token ids")
            out.append(token_prompt(arr.tolist()))
        else:
            raise ValueError(f"prompt {k} has unsupported type {type(p).__name__}; give text or token ids")
    if not out:
        raise ValueError("no prompts given")
    ids = [p.id for p in out]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate prompts (ids {dup[:5]}): each prompt may appear once")
    return out


def default_texts() -> list[Prompt]:
    """The 48 texts shipped with the package (prose, dialogue, code, lists, numbers, ...)."""
    path = resources.files("motif_widgets") / "data" / "default_prompts.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Prompt(r["id"], r["kind"], text=r["text"]) for r in rows]


def default_prompts(n_probes: int = 12, probe_half_length: int = 25) -> list[Prompt]:
    """The default prompt set: the shipped texts followed by `n_probes` repeated-token probes."""
    return default_texts() + repeated_token_probes(n_probes, probe_half_length)


def load_jsonl(path: str | Path, field: str = "text", limit: int | None = None) -> list[str]:
    """Texts from a JSON-lines file (one object per line with a `field` string), in file order."""
    texts = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if field not in row or not isinstance(row[field], str):
                raise ValueError(f"{path}:{line_no} has no string field {field!r}")
            texts.append(row[field])
            if limit is not None and len(texts) >= limit:
                break
    return texts


def chunk_texts(texts: Iterable[str], min_chars: int = 64, max_chars: int = 512, limit: int | None = None) -> list[str]:
    """The paper's prompt construction: split each text into consecutive `max_chars` chunks
    (the remainder is the last chunk), drop chunks shorter than `min_chars`, keep file order."""
    if not 0 < min_chars <= max_chars:
        raise ValueError(f"need 0 < min_chars <= max_chars, got {min_chars}, {max_chars}")
    chunks = []
    for text in texts:
        if len(text) < min_chars:
            continue
        for start in range(0, len(text), max_chars):
            chunk = text[start : start + max_chars]
            if len(chunk) >= min_chars:
                chunks.append(chunk)
                if limit is not None and len(chunks) >= limit:
                    return chunks
    return chunks


def pile_prompts(path: str | Path, n: int = 100, n_probes: int = 12, probe_half_length: int = 25) -> list[Prompt]:
    """The first n documents of a Pile-style JSONL file plus repeated-token probes."""
    return [text_prompt(t, id=f"doc-{k:03d}") for k, t in enumerate(load_jsonl(path, limit=n))] + repeated_token_probes(
        n_probes, probe_half_length
    )
