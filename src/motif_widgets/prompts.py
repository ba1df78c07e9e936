"""Prompts: the default set, text loaders, the paper's character chunking, and
repeated-random-token probes (the inputs on which induction heads show themselves).

A :class:`Prompt` is text, token ids, or a probe. Prompt ids are stable: given, or derived
from a hash of the content; they must be unique within a prompt set.

Probes are the prompts the token scores are measured on. Two kinds:

- generated probes (:func:`repeated_token_probes`): [BOS] + s + s with s a block of random
  tokens that each model draws from its own vocabulary when the prompt is tokenized (so
  probes of different models share ids and pair up in cross-model atlases);
- user-marked probes (:func:`token_probe`, or ``Prompt(id, kind="probe", token_ids=...)``):
  token ids of a repeated sequence, used exactly as given.

Which prompts feed which head-type score (``Atlas.head_scores(prompts="auto")``): the token
scores (``induction``, ``duplicate_token``) come from the probes when the prompt set holds any
(else from all prompts); the positional scores (previous-token, BOS, self, ...) come from all
prompts, probes included. ``head_scores(prompts="all" / "probes" / "texts" / [ids])`` overrides.

User input is normalised by :func:`as_prompts`: strings, token-id sequences (lists, tuples,
numpy or torch integer arrays), ``{"text": ..., "id": ...}`` records, a Hugging Face
``datasets.Dataset`` (its "text" column) or Prompt objects.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ._checks import check_int

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
        token_ids: explicit token ids (tokens prompts and user-marked probes), used as given;
            any integer sequence (numpy ints included) is stored as a tuple of Python ints.
        probe_half_length: for generated probes, the length L of the random block repeated twice.
        probe_seed: for generated probes, the seed of the random block.

    A probe is either generated (probe_half_length set, tokens drawn per model) or marked by
    the user (kind="probe" with token_ids); see :attr:`is_probe`.
    """

    id: str
    kind: str = "text"
    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    probe_half_length: int | None = None
    probe_seed: int | None = None

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise TypeError(f"prompt id must be a non-empty string, got {self.id!r} ({type(self.id).__name__})")
        if self.token_ids is not None:
            object.__setattr__(self, "token_ids", _token_id_tuple(self.token_ids, f"prompt {self.id!r}"))
        if self.kind == "probe":
            if (self.token_ids is None) == (self.probe_half_length is None):
                raise ValueError(
                    f"probe {self.id!r} needs either token_ids (a user-marked probe, used as given) or "
                    "probe_half_length (a generated probe), not both or neither"
                )
        elif self.probe_half_length is not None:
            raise ValueError(f"prompt {self.id!r} has probe_half_length but kind={self.kind!r}; probes have kind='probe'")

    @property
    def is_probe(self) -> bool:
        """True for probes: generated ones (probe_half_length) and user-marked token-id probes
        (kind="probe"). Token scores (induction, duplicate_token) are measured on probes when
        the prompt set has any."""
        return self.probe_half_length is not None or self.kind == "probe"


def _digest(content: str) -> str:
    return hashlib.md5(content.encode("utf-8")).hexdigest()[:12]


def text_prompt(text: str, id: str | None = None, kind: str = "text") -> Prompt:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty or non-text prompt {text!r}")
    return Prompt(id or f"t-{_digest(text)}", kind, text=text)


def _token_id_tuple(ids, what: str = "token-id prompt") -> tuple[int, ...]:
    """ids (list/tuple/range, or a 1-D numpy/torch integer array) as a non-empty tuple of
    non-negative Python ints; TypeError for non-integers, ValueError for empty / negative."""
    if isinstance(ids, (str, bytes, dict)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"{what}: token ids must be a sequence of integers, got {type(ids).__name__}")
    if hasattr(ids, "detach"):  # a torch tensor
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ValueError(f"{what}: token ids must be 1-D, got an array of shape {ids.shape}")
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"{what}: token ids must be integers, got an array of dtype {ids.dtype}")
        out = tuple(int(t) for t in ids.tolist())
    else:
        out = []
        for t in ids:
            if isinstance(t, (bool, np.bool_)) or not isinstance(t, (numbers.Integral, np.integer)):
                raise TypeError(f"{what}: token ids must be integers, got {t!r} ({type(t).__name__})")
            out.append(int(t))
        out = tuple(out)
    if not out:
        raise ValueError(f"{what}: empty token-id sequence")
    if min(out) < 0:
        raise ValueError(f"{what}: token ids must be >= 0, got negative ids in {list(out[:10])}")
    return out


def token_prompt(ids: Sequence[int], id: str | None = None) -> Prompt:
    """A prompt of explicit token ids (ints, numpy ints or a 1-D integer array), used as given."""
    ids = _token_id_tuple(ids)
    return Prompt(id or f"ids-{_digest(','.join(map(str, ids)))}", "tokens", token_ids=ids)


def token_probe(ids: Sequence[int], id: str | None = None) -> Prompt:
    """Mark a token-id sequence as a probe: `ids` (e.g. [BOS] + s + s, or s + s) are used as
    given, and the prompt counts as a probe (``is_probe``), so ``head_scores("auto")`` measures
    the token scores (induction, duplicate_token) on it. The ids must repeat at least one token
    (induction and duplicate-token attention need an earlier copy of the current token).
    """
    ids = _token_id_tuple(ids, "token probe")
    if len(set(ids)) == len(ids):
        raise ValueError(
            "token probe: the ids repeat no token, so they show no induction or duplicate-token attention; "
            "give a repeated sequence such as s + s"
        )
    return Prompt(id or f"probe-ids-{_digest(','.join(map(str, ids)))}", "probe", token_ids=ids)


def repeated_token_probes(n: int = 12, half_length: int = 25, seed: int = 0) -> list[Prompt]:
    """n probes: [BOS] + s + s with s a block of `half_length` distinct random tokens.

    The tokens are drawn per model from its vocabulary when the prompt is tokenized
    (see :func:`probe_token_ids`); ids are "probe-00", "probe-01", ...
    """
    n = check_int("n", n, minimum=0)
    half_length = check_int("half_length", half_length, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    return [Prompt(f"probe-{k:02d}", "probe", probe_half_length=half_length, probe_seed=seed * 100003 + k) for k in range(n)]


def probe_token_ids(prompt: Prompt, vocab_size: int, exclude: Iterable[int] = ()) -> list[int]:
    """The repeated random block of a generated probe for a vocabulary: s + s (BOS not included)."""
    if prompt.probe_half_length is None:
        raise ValueError(f"prompt {prompt.id!r} is not a generated probe (it has no probe_half_length)")
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
    """Normalise user input to a list of Prompts.

    Accepts None (the default set), one string / Prompt / record, or an iterable of:
    Prompt objects, strings, token-id sequences (lists, tuples, numpy or torch integer
    arrays; numpy ints become Python ints), and ``{"text": ..., "id": ...}`` records ("id"
    optional). A Hugging Face ``datasets.Dataset`` (anything with ``column_names`` and a
    "text" column) gives one prompt per row of its "text" column; an IterableDataset
    yields records. Token-id sequences become "tokens" prompts; use :func:`token_probe` to
    mark one as a probe.

    Raises ValueError for an empty set, empty strings or sequences, a record without a
    string "text", a dataset without a "text" column, non-integer token ids, and duplicate ids.
    """
    if prompts is None:
        return default_prompts()
    if hasattr(prompts, "column_names") and not isinstance(prompts, (list, tuple)):
        prompts = _dataset_texts(prompts)  # a datasets.Dataset (a DatasetDict is a dict: checked first)
    elif isinstance(prompts, (str, Prompt, dict)):
        prompts = [prompts]
    elif not hasattr(prompts, "__iter__") or isinstance(prompts, bytes):
        raise ValueError(f"prompts must be a list of prompts (text, token ids, records), got {type(prompts).__name__}")
    out = []
    for k, p in enumerate(prompts):
        if isinstance(p, Prompt):
            out.append(p)
        elif isinstance(p, str):
            if not p.strip():
                raise ValueError(f"prompt {k} is an empty text")
            out.append(text_prompt(p))
        elif isinstance(p, dict):
            out.append(_record_prompt(p, k))
        elif hasattr(p, "__len__") and not isinstance(p, bytes):
            if hasattr(p, "detach"):
                p = p.detach().cpu().numpy()
            arr = np.asarray(p) if not isinstance(p, np.ndarray) else p
            if arr.size == 0:
                raise ValueError(f"prompt {k} is an empty token-id sequence")
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"prompt {k} is neither text nor a 1-D sequence of integer token ids")
            out.append(token_prompt(arr))
        else:
            raise ValueError(
                f"prompt {k} has unsupported type {type(p).__name__}; give text, token ids, a {{'text': ...}} "
                "record or a Prompt"
            )
    if not out:
        raise ValueError("no prompts given")
    check_unique_ids(out)
    return out


def check_unique_ids(prompts: Sequence[Prompt]) -> None:
    """ValueError naming the duplicated ids when two prompts share an id."""
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate prompts (ids {dup[:5]}): each prompt may appear once")


def _record_prompt(record: dict, k: int) -> Prompt:
    """A {"text": str, "id": optional, "kind": optional} record as a text prompt."""
    if "text" not in record:
        raise ValueError(f"prompt {k} is a record without a 'text' field (keys: {sorted(map(str, record))[:8]})")
    text = record["text"]
    if not isinstance(text, str):
        raise ValueError(f"prompt {k}: the record's 'text' must be a string, got {type(text).__name__}")
    rid = record.get("id")
    if rid is not None and not isinstance(rid, (str, numbers.Integral)):
        raise ValueError(f"prompt {k}: the record's 'id' must be a string or an integer, got {type(rid).__name__}")
    kind = record.get("kind", "text")
    if not isinstance(kind, str) or kind in ("tokens", "probe"):
        raise ValueError(f"prompt {k}: a text record's 'kind' must be a text genre string, got {kind!r}")
    return text_prompt(text, id=None if rid is None else str(rid), kind=kind)


def _dataset_texts(dataset) -> list:
    """The "text" column of a Hugging Face datasets.Dataset / IterableDataset (or a look-alike)."""
    columns = dataset.column_names
    if columns is None:  # a streamed IterableDataset whose columns are not known yet: read its records
        return list(dataset)
    if isinstance(columns, dict):  # a DatasetDict: {split: columns}
        raise ValueError(f"prompts is a DatasetDict with splits {sorted(columns)}; pick one, e.g. dataset['train']")
    if "text" not in list(columns):
        raise ValueError(f"the dataset has no 'text' column (columns: {list(columns)})")
    return list(dataset["text"])


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
