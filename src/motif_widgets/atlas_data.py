"""AtlasData: the one value type that holds what was collected from attention patterns.

The collector produces it, the Atlas derives everything else from it, and it owns what
is done to collected data as such: validation (every constructor checks shapes, ids and
dtypes), prompt selection (:meth:`AtlasData.take_prompts`), concatenation of several
models over the same prompts (:meth:`AtlasData.concat`) and persistence
(:meth:`AtlasData.save` / :meth:`AtlasData.load`, see :mod:`motif_widgets.store`).
Heads are ordered model by model, then (layer, head); ids are ``model:L{layer}H{head}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .detect import SCORE_NAMES
from .prompts import Prompt

HEAD_COLUMNS = ("head", "model", "layer", "head_index", "layer_depth")
#: Atlases of more heads than this are "large": Atlas.load leaves their features on disk
#: (store.LazyFeatures) and Atlas derives with the out-of-core paths (AtlasConfig.large).
LARGE_ATLAS_HEADS = 2000


def is_lazy(features) -> bool:
    """Whether an array is left on disk (a store.LazyFeatures / LazyThumbnails) rather than in memory."""
    return not isinstance(features, np.ndarray) and hasattr(features, "read_heads")


class JoinedArray:
    """Arrays [H_i, P_i, ...] joined along the heads (axis 0) or the prompts / thumbnail slots
    (axis 1) without reading them, optionally then a selection of axis-1 positions; what
    AtlasData.concat / concat_prompts / take_prompts make of parts that a lazy load left on
    disk. Reads by heads like store.LazyFeatures (``read_heads``, ``iter_heads``;
    ``np.asarray`` reads all), and ``t[heads, cols, ...]`` with heads an int or a slice reads
    only those heads and, for thumbnails, only the slots and token window asked for.
    """

    ndim: int

    def __init__(self, parts: Sequence, axis: int, cols: np.ndarray | None = None):
        if axis not in (0, 1) or not parts:
            raise ValueError("JoinedArray joins one or more parts along axis 0 or 1")
        self.parts, self.axis = list(parts), axis
        shapes = [tuple(part.shape) for part in self.parts]
        other = 1 - axis
        if len({sh[other] for sh in shapes}) > 1 or len({sh[2:] for sh in shapes}) > 1:
            raise ValueError(f"parts of shapes {shapes[:3]}... do not join along axis {axis}")
        sizes = [sh[axis] for sh in shapes]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # [parts + 1] along the axis
        full = list(shapes[0])
        full[axis] = int(self._starts[-1])
        self.cols = None if cols is None else np.asarray(cols, dtype=np.int64)
        if self.cols is not None:
            full[1] = len(self.cols)
        self.shape = tuple(full)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(self.parts[0].dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"JoinedArray({len(self.parts)} parts along axis {self.axis}, shape={self.shape})"

    def take_slots(self, cols) -> "JoinedArray":
        """A lazy view of some axis-1 positions, in that order (nothing is read)."""
        cols = np.arange(self.shape[1])[np.asarray(cols, dtype=np.int64)]
        return JoinedArray(self.parts, self.axis, cols if self.cols is None else self.cols[cols])

    def read_heads(self, start: int, stop: int) -> np.ndarray:
        """[stop - start, ...] of heads start..stop-1."""
        start, stop = max(0, int(start)), min(self.shape[0], int(stop))
        return self[start : max(start, stop)]

    def iter_heads(self, rows: int = 1 << 18):
        """(start, block) over consecutive heads, about `rows` (head, prompt) rows each."""
        step = max(1, int(rows) // max(self.shape[1], 1))
        for start in range(0, self.shape[0], step):
            yield start, self.read_heads(start, start + step)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        heads, cols, rest = key[0], (key[1] if len(key) > 1 else slice(None)), key[2:]
        if not isinstance(heads, (int, np.integer, slice)) or (isinstance(heads, slice) and heads.step not in (None, 1)):
            return np.asarray(self)[key]  # other head selections: read all, then select
        one_head = not isinstance(heads, slice)
        if one_head:
            k = int(heads) + (self.shape[0] if heads < 0 else 0)
            if not 0 <= k < self.shape[0]:
                raise IndexError(f"head {heads} is out of range for {self.shape[0]} heads")
            heads = slice(k, k + 1)
        h0, h1, _ = heads.indices(self.shape[0])
        h1 = max(h0, h1)
        picked = np.arange(self.shape[1])[cols]
        one_col = np.ndim(picked) == 0
        base = np.atleast_1d(picked if self.cols is None else self.cols[picked])
        if self.axis == 0:  # parts hold consecutive heads: each reads its share
            blocks = []
            for part, a, b in zip(self.parts, self._starts[:-1], self._starts[1:]):
                lo, hi = max(h0, a), min(h1, b)
                if lo < hi:
                    blocks.append(np.asarray(part[(slice(lo - a, hi - a), base) + rest]))
            out = np.concatenate(blocks) if blocks else np.asarray(self.parts[0][(slice(0, 0), base) + rest])
        else:  # parts hold consecutive columns: each reads the columns it has
            owner = np.searchsorted(self._starts, base, side="right") - 1
            out = None
            for p in np.unique(owner):
                where = np.flatnonzero(owner == p)
                block = np.asarray(self.parts[p][(slice(h0, h1), base[where] - self._starts[p]) + rest])
                if out is None:
                    out = np.empty((block.shape[0], len(base)) + block.shape[2:], block.dtype)
                out[:, where] = block
            if out is None:
                out = np.asarray(self.parts[0][(slice(h0, h1), base) + rest])
        out = out[:, 0] if one_col else out
        return out[0] if one_head else out


def take_columns(array, cols):
    """array[:, cols]; a lazy view when the array was left on disk (nothing read)."""
    if not is_lazy(array):
        return array[:, cols]
    return array.take_slots(cols) if hasattr(array, "take_slots") else JoinedArray([array], 1, np.asarray(cols))


def _joined(parts: Sequence, axis: int):
    """np.concatenate of the parts, or a JoinedArray when any is left on disk (nothing read)."""
    if any(is_lazy(part) for part in parts):
        return JoinedArray(parts, axis)
    return np.concatenate([np.asarray(part) for part in parts], axis=axis)


def feature_blocks(features, rows: int = 1 << 18):
    """Yield (start, [n, P, F] float64) blocks of consecutive heads of a feature array
    [H, P, F] (in memory or lazy), about `rows` (head, prompt) rows each."""
    if is_lazy(features):
        yield from features.iter_heads(rows)
        return
    h, p = features.shape[:2]
    step = max(1, int(rows) // max(p, 1))
    for start in range(0, h, step):
        yield start, features[start : start + step]


@dataclass(eq=False)
class ModelInfo:
    """Per-model facts: geometry and how each of the P prompts was tokenized for it.

    Attributes:
        lengths: [P] int64 tokens per prompt, BOS included.
        token_ids / token_strs: per prompt, the ids fed to the model and their text
            (token_ids may be empty lists when the patterns came without ids).
        has_bos / truncated: [P] bool.
    """

    name: str
    n_layers: int
    n_heads: int
    lengths: np.ndarray
    token_ids: list[list[int]]
    token_strs: list[list[str]]
    has_bos: np.ndarray
    truncated: np.ndarray

    def __post_init__(self):
        self.n_layers, self.n_heads = int(self.n_layers), int(self.n_heads)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        self.has_bos = np.asarray(self.has_bos, dtype=bool)
        self.truncated = np.asarray(self.truncated, dtype=bool)
        self.token_ids = [[int(t) for t in ids] for ids in self.token_ids]
        self.token_strs = [[str(s) for s in strs] for strs in self.token_strs]

    def check(self, n_prompts: int) -> None:
        where = f"model {self.name!r}"
        if self.n_layers < 1 or self.n_heads < 1:
            raise ValueError(f"{where} has {self.n_layers} layers x {self.n_heads} heads; both must be >= 1")
        for what, value in (("lengths", self.lengths), ("has_bos", self.has_bos), ("truncated", self.truncated)):
            if value.shape != (n_prompts,):
                raise ValueError(f"{where}: {what} has shape {value.shape}, expected ({n_prompts},)")
        if len(self.token_ids) != n_prompts or len(self.token_strs) != n_prompts:
            raise ValueError(f"{where}: token_ids / token_strs must hold one list per prompt ({n_prompts})")
        if (self.lengths < 1).any():
            raise ValueError(f"{where}: every prompt must have at least one token")
        for k, (ids, strs, n) in enumerate(zip(self.token_ids, self.token_strs, self.lengths)):
            if (ids and len(ids) != n) or len(strs) != n:
                raise ValueError(f"{where}: prompt {k} has {n} tokens but {len(ids)} ids / {len(strs)} strings")

    def take(self, index: np.ndarray) -> "ModelInfo":
        """The same facts for the prompts at `index` [P'] (in that order)."""
        return ModelInfo(
            self.name, self.n_layers, self.n_heads, self.lengths[index], [self.token_ids[k] for k in index],
            [self.token_strs[k] for k in index], self.has_bos[index], self.truncated[index],
        )


def heads_frame(model: str, n_layers: int, n_heads: int) -> pd.DataFrame:
    """[n_layers * n_heads] rows: head id, model, layer, head_index, layer_depth (0..1)."""
    layer, head = np.divmod(np.arange(n_layers * n_heads), n_heads)
    return pd.DataFrame(
        {
            "head": [f"{model}:L{l}H{h}" for l, h in zip(layer, head)],
            "model": model,
            "layer": layer,
            "head_index": head,
            "layer_depth": layer / max(n_layers - 1, 1),
        }
    )


@dataclass(eq=False)
class AtlasData:
    """The collected arrays of H heads (of one or more models) over P prompts.

    Attributes:
        heads: [H] rows of HEAD_COLUMNS.
        prompts: [P] Prompt objects with distinct ids.
        models: model name -> ModelInfo (every model of `heads`, in head order).
        features: set name -> [H, P, F] float64 (an array, or a store.LazyFeatures left
            on disk by a lazy load; np.asarray reads it); feature_names: set name -> F names.
        score_sums / score_rows: [H, P, S] float64, S = len(SCORE_NAMES): each head-type
            score's sum over its eligible query rows and the number of those rows.
        thumbnails: [H, T, K, K] float16 top-left pattern corners of T prompts (an array, or a
            store.LazyThumbnails left on disk by a lazy load: indexing reads only the heads and
            prompts asked for, np.asarray reads all); thumbnail_prompts: [T] int64 indices of
            those prompts.
        meta: JSON-able facts of the run (max_tokens, dtype, ...).
        feature_revisions: set name -> FeatureSet.revision it was computed under.
        head_stats: optional per-head evidence beyond the patterns, indexed by head id in
            head order (circuit weight statistics, ablation effects: see Atlas.add_circuits);
            NaN where a head has no value (e.g. a model of a merged atlas without them).
    Construction validates everything (ValueError naming the part that is wrong).
    """

    heads: pd.DataFrame
    prompts: list[Prompt]
    models: dict[str, ModelInfo]
    features: dict[str, np.ndarray]
    feature_names: dict[str, tuple[str, ...]]
    score_sums: np.ndarray
    score_rows: np.ndarray
    thumbnails: np.ndarray
    thumbnail_prompts: np.ndarray
    meta: dict = field(default_factory=dict)
    feature_revisions: dict[str, str] = field(default_factory=dict)
    head_stats: pd.DataFrame | None = None

    def __post_init__(self):
        self.prompts = list(self.prompts)
        self.feature_names = {k: tuple(str(n) for n in v) for k, v in self.feature_names.items()}
        # sets recorded before revisions were kept hold revision 1
        self.feature_revisions = {k: str(self.feature_revisions.get(k, "1")) for k in self.features}
        self.thumbnail_prompts = np.asarray(self.thumbnail_prompts, dtype=np.int64).reshape(-1)
        self.validate()

    # ------------------------------------------------------------------ identities
    @property
    def n_heads(self) -> int:
        return len(self.heads)

    @property
    def n_prompts(self) -> int:
        return len(self.prompts)

    @property
    def head_ids(self) -> list[str]:
        return self.heads["head"].tolist()

    @property
    def prompt_ids(self) -> list[str]:
        return [p.id for p in self.prompts]

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistency (shapes, ids, dtypes, ranges)."""
        h, p = len(self.heads), len(self.prompts)
        if not all(isinstance(q, Prompt) for q in self.prompts):
            raise ValueError("prompts must be Prompt objects")
        if p < 1:
            raise ValueError("an atlas needs at least one prompt")
        ids = self.prompt_ids
        if len(set(ids)) != p:
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"duplicate prompt ids {dup[:5]}: each prompt may appear once")
        missing = [c for c in HEAD_COLUMNS if c not in self.heads.columns]
        if missing:
            raise ValueError(f"heads table lacks columns {missing}")
        if h < 1:
            raise ValueError("an atlas needs at least one head")
        if self.heads["head"].duplicated().any():
            raise ValueError(f"duplicate head ids {self.heads['head'][self.heads['head'].duplicated()].tolist()[:5]}")
        counts = self.heads["model"].value_counts()
        if set(counts.index) != set(self.models):
            raise ValueError(f"heads name models {sorted(counts.index)} but model facts are for {sorted(self.models)}")
        for name, m in self.models.items():
            if m.name != name:
                raise ValueError(f"model facts stored under {name!r} are named {m.name!r}")
            m.check(p)
            if counts[name] != m.n_layers * m.n_heads:
                raise ValueError(f"model {name!r} has {counts[name]} heads, expected {m.n_layers} x {m.n_heads}")
        if not self.features:
            raise ValueError("no feature set collected")
        if set(self.feature_names) != set(self.features):
            raise ValueError(f"feature names are for {sorted(self.feature_names)}, features for {sorted(self.features)}")
        for name, f in self.features.items():
            if not is_lazy(f):
                f = self.features[name] = np.asarray(f, dtype=np.float64)
            if f.shape != (h, p, len(self.feature_names[name])):
                raise ValueError(f"features {name!r} have shape {f.shape}, expected {(h, p, len(self.feature_names[name]))}")
        s = len(SCORE_NAMES)
        self.score_sums = np.asarray(self.score_sums, dtype=np.float64)
        self.score_rows = np.asarray(self.score_rows, dtype=np.float64)
        for what, arr in (("score_sums", self.score_sums), ("score_rows", self.score_rows)):
            if arr.shape != (h, p, s):
                raise ValueError(f"{what} has shape {arr.shape}, expected {(h, p, s)}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{what} holds NaN or infinite values")
        if (self.score_rows < 0).any():
            raise ValueError("score_rows holds negative row counts")
        t = len(self.thumbnail_prompts)
        if self.thumbnails.ndim != 4 or self.thumbnails.shape[:2] != (h, t) or self.thumbnails.shape[2] != self.thumbnails.shape[3]:
            raise ValueError(f"thumbnails have shape {self.thumbnails.shape}, expected ({h}, {t}, K, K)")
        if self.thumbnails.dtype != np.float16:  # (a lazy array is float16)
            self.thumbnails = self.thumbnails.astype(np.float16)
        if t and (self.thumbnail_prompts.min() < 0 or self.thumbnail_prompts.max() >= p):
            raise ValueError(f"thumbnail_prompts must index the {p} prompts")
        if len(set(self.thumbnail_prompts.tolist())) != t:
            raise ValueError("thumbnail_prompts name a prompt twice")
        if self.head_stats is not None:
            stats = self.head_stats
            if not isinstance(stats, pd.DataFrame):
                raise ValueError(f"head_stats must be a DataFrame indexed by head id, got {type(stats).__name__}")
            if stats.index.duplicated().any():
                raise ValueError("head_stats has a head twice")
            unknown = sorted(set(stats.index) - set(self.head_ids))
            if unknown:
                raise ValueError(f"head_stats has rows for heads {unknown[:3]} that the data lacks")
            clash = set(stats.columns) & set(HEAD_COLUMNS)
            if clash:
                raise ValueError(f"head_stats columns {sorted(clash)} clash with the heads table")
            self.head_stats = stats.reindex(pd.Index(self.head_ids, name="head"))

    # ------------------------------------------------------------------ selection
    def take_prompts(self, prompts: Sequence[str]) -> "AtlasData":
        """The data of some prompts, in the order given (ids; unknown ids raise ValueError).

        Thumbnails of dropped prompts are dropped; everything else is sliced along the
        prompt axis, so an atlas of the result equals one built on those prompts alone.
        Features and thumbnails left on disk stay there (views of the kept prompts / slots).
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        position = {q: k for k, q in enumerate(self.prompt_ids)}
        unknown = [q for q in prompts if q not in position]
        if unknown:
            raise ValueError(f"unknown prompt ids {unknown[:5]}")
        if len(set(prompts)) != len(prompts):
            raise ValueError("prompts names a prompt twice")
        if not prompts:
            raise ValueError("no prompts selected")
        keep = np.array([position[q] for q in prompts], dtype=np.int64)  # [P']
        new_position = {int(k): s for s, k in enumerate(keep)}
        slots = [s for s, k in enumerate(self.thumbnail_prompts) if int(k) in new_position]
        meta = dict(self.meta)
        if len(keep) < self.n_prompts:
            meta["subset_of_prompts"] = self.meta.get("subset_of_prompts", self.n_prompts)
        return replace(
            self,
            prompts=[self.prompts[k] for k in keep],
            models={name: m.take(keep) for name, m in self.models.items()},
            features={name: take_columns(f, keep) for name, f in self.features.items()},
            score_sums=self.score_sums[:, keep],
            score_rows=self.score_rows[:, keep],
            thumbnails=take_columns(self.thumbnails, slots),
            thumbnail_prompts=np.array([new_position[int(self.thumbnail_prompts[s])] for s in slots], dtype=np.int64),
            meta=meta,
        )

    @classmethod
    def concat(cls, parts: Sequence["AtlasData"]) -> "AtlasData":
        """One dataset of several models over the same prompts (matched by id, in the first
        part's order), keeping the feature sets every part has and the thumbnails of the
        prompts every part kept them for. Features and thumbnails that a lazy load left on
        disk stay there (a JoinedArray over the parts); the rest is in memory.

        Raises ValueError when model names repeat, prompt sets differ, or a feature set was
        computed under different revisions.
        """
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to merge")
        names: list[str] = []
        for part in parts:
            clash = set(names) & set(part.models)
            if clash:
                raise ValueError(f"model names {sorted(clash)} occur in more than one atlas; give distinct model_name=")
            names += list(part.models)
        first = parts[0]
        ids = first.prompt_ids
        for part in parts[1:]:
            if set(part.prompt_ids) != set(ids):
                missing, extra = sorted(set(ids) - set(part.prompt_ids)), sorted(set(part.prompt_ids) - set(ids))
                raise ValueError(f"atlases have different prompts (missing {missing[:3]}, extra {extra[:3]})")
            for q, other in zip(first.prompts, part.take_prompts(ids).prompts):
                if q != other:
                    raise ValueError(f"prompt {q.id!r} differs between the atlases (same id, other content)")
        sets = [s for s in first.features if all(s in part.features for part in parts)]
        if not sets:
            raise ValueError("the atlases have no feature set in common")
        for s in sets:
            revisions = {part.feature_revisions[s] for part in parts}
            if len(revisions) > 1:
                raise ValueError(
                    f"the atlases computed feature set {s!r} under different definitions (revisions "
                    f"{sorted(revisions)}); recompute the older ones"
                )
            if any(part.feature_names[s] != first.feature_names[s] for part in parts):
                raise ValueError(f"feature set {s!r} has different columns in the atlases")
        thumb_ids = [ids[k] for k in first.thumbnail_prompts]
        for part in parts:
            theirs = {part.prompt_ids[k] for k in part.thumbnail_prompts}
            thumb_ids = [t for t in thumb_ids if t in theirs]
        aligned = [part.take_prompts(ids) for part in parts]

        def thumbs(part: AtlasData):
            slot = {int(k): s for s, k in enumerate(part.thumbnail_prompts)}
            slots = [slot[ids.index(t)] for t in thumb_ids]
            return take_columns(part.thumbnails, slots)

        sizes = {part.thumbnails.shape[-1] for part in parts}
        if len(sizes) > 1:
            raise ValueError(f"the atlases keep thumbnails of different sizes {sorted(sizes)}")
        return cls(
            heads=pd.concat([part.heads for part in aligned], ignore_index=True),
            prompts=list(first.prompts),
            models={n: m for part in aligned for n, m in part.models.items()},
            features={s: _joined([part.features[s] for part in aligned], 0) for s in sets},
            feature_names={s: first.feature_names[s] for s in sets},
            score_sums=np.concatenate([part.score_sums for part in aligned]),
            score_rows=np.concatenate([part.score_rows for part in aligned]),
            thumbnails=_joined([thumbs(part) for part in aligned], 0),
            thumbnail_prompts=np.array([ids.index(t) for t in thumb_ids], dtype=np.int64),
            meta={"merged": [part.meta for part in parts]},
            feature_revisions={s: first.feature_revisions[s] for s in sets},
            head_stats=(
                pd.concat([part.head_stats for part in aligned if part.head_stats is not None])
                if any(part.head_stats is not None for part in aligned) else None
            ),
        )

    @classmethod
    def concat_prompts(cls, parts: Sequence["AtlasData"]) -> "AtlasData":
        """One dataset of the same heads over the prompts of several parts, in part order
        (e.g. the prompt shards of a distributed run). Features and thumbnails that a lazy
        load left on disk stay there (a JoinedArray over the parts); the rest is in memory.

        Raises ValueError when the parts hold different heads or models, a prompt occurs in
        two parts, or feature sets, revisions or thumbnail sizes differ.
        """
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to join")
        first = parts[0]
        for part in parts[1:]:
            if part.head_ids != first.head_ids:
                raise ValueError("the parts hold different heads; concat_prompts joins prompt shards of the same heads")
            if part.feature_revisions != first.feature_revisions or part.feature_names != first.feature_names:
                raise ValueError(
                    f"the parts computed different feature sets or revisions ({part.feature_revisions} vs "
                    f"{first.feature_revisions})"
                )
            if part.thumbnails.shape[2:] != first.thumbnails.shape[2:]:
                raise ValueError(f"the parts keep thumbnails of different sizes {part.thumbnails.shape[2:]} vs {first.thumbnails.shape[2:]}")
        if any(part.head_stats is not None for part in parts):
            raise ValueError("head_stats are per head, not per prompt: add them after joining the prompt shards")
        offsets = np.cumsum([0] + [part.n_prompts for part in parts[:-1]])
        models = {}
        for name, m in first.models.items():
            infos = [part.models[name] for part in parts]
            models[name] = ModelInfo(
                name, m.n_layers, m.n_heads,
                lengths=np.concatenate([i.lengths for i in infos]),
                token_ids=[ids for i in infos for ids in i.token_ids],
                token_strs=[strs for i in infos for strs in i.token_strs],
                has_bos=np.concatenate([i.has_bos for i in infos]),
                truncated=np.concatenate([i.truncated for i in infos]),
            )
        return cls(
            heads=first.heads.copy(),
            prompts=[q for part in parts for q in part.prompts],
            models=models,
            features={s: _joined([part.features[s] for part in parts], 1) for s in first.features},
            feature_names=dict(first.feature_names),
            score_sums=np.concatenate([part.score_sums for part in parts], axis=1),
            score_rows=np.concatenate([part.score_rows for part in parts], axis=1),
            thumbnails=_joined([part.thumbnails for part in parts], 1),
            thumbnail_prompts=np.concatenate([part.thumbnail_prompts + o for part, o in zip(parts, offsets)]),
            meta=dict(first.meta),
            feature_revisions=dict(first.feature_revisions),
        )

    def rename_model(self, old: str, new: str) -> "AtlasData":
        """The same data with model `old` called `new` (head ids follow), e.g. to merge two
        runs of one model on different settings."""
        if old not in self.models:
            raise ValueError(f"old: unknown model {old!r}; the data has {sorted(self.models)}")
        if not isinstance(new, str) or not new or ":" in new:
            raise ValueError(f"new must be a non-empty model name without ':', got {new!r}")
        if new != old and new in self.models:
            raise ValueError(f"new: a model named {new!r} is already in the data")
        heads = self.heads.copy()
        mine = heads["model"] == old
        heads.loc[mine, "head"] = [new + h[len(old):] for h in heads.loc[mine, "head"]]
        heads.loc[mine, "model"] = new
        models = {(new if n == old else n): (replace(m, name=new) if n == old else m) for n, m in self.models.items()}
        stats = None
        if self.head_stats is not None:  # ids in the index and in partner columns follow
            rename = dict(zip(self.heads["head"], heads["head"]))
            stats = self.head_stats.rename(index=rename).replace(rename)
        return replace(self, heads=heads, models=models, head_stats=stats)

    def with_head_stats(self, stats: pd.DataFrame) -> "AtlasData":
        """A copy with `stats` [heads, columns] (indexed by head id) merged into head_stats:
        new columns are added, existing ones replaced where `stats` has a value."""
        if not isinstance(stats, pd.DataFrame):
            raise TypeError(f"stats must be a DataFrame indexed by head id, got {type(stats).__name__}")
        current = self.head_stats if self.head_stats is not None else pd.DataFrame(index=pd.Index(self.head_ids, name="head"))
        merged = current.copy()
        for column in stats.columns:
            values = stats[column].reindex(merged.index)
            merged[column] = values if column not in merged else values.where(values.notna(), merged[column])
        return replace(self, head_stats=merged)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, config: dict | None = None, overwrite: bool = True) -> Path:
        """Write to a folder atomically, with checksums (see motif_widgets.store.save_atlas)."""
        from .store import save_atlas

        return save_atlas(self, path, config=config or {}, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, lazy: bool | None = False) -> tuple["AtlasData", dict]:
        """(data, saved config) of a folder written by :meth:`save` or by
        :func:`motif_widgets.distributed.collect_atlas` (its shards joined); damage raises
        AtlasFileError. lazy: leave the features and thumbnails on disk (True), read them
        (False) or decide by size (None); see store.load_atlas."""
        from .distributed import is_sharded, load_sharded
        from .store import load_atlas

        return load_sharded(path, lazy=lazy) if is_sharded(path) else load_atlas(path, lazy=lazy)
