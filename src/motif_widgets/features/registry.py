"""Named feature sets and the `compute_features` front door.

A :class:`FeatureSet` is an ordered list of blocks; a block is a function
``fn(batch: PatternBatch) -> Tensor [B, k]`` with k feature names. Batches mix lengths:
``batch.patterns`` is zero-padded to [B, N, N] and ``batch.lengths`` holds each true n
(``batch.row_mask`` / ``batch.causal_mask`` help), so e.g. the last row of pattern b is
``batch.patterns[b, batch.lengths[b] - 1]``. Users add their own
features to a copy of a built-in set (``get_feature_set("motifs").extended("mine")``) or
to a set of their own, and register it under a name any API accepts as `feature_set=`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from .._checks import checked_weights
from .batch import PatternBatch, as_pattern_tensor, check_patterns, lowest_precision, pad_patterns
from .kernels import compilable
from .motifs import MOTIF_FEATURE_DOCS, MOTIF_FEATURE_WEIGHTS, motif_features
from .paper import PAPER_DROPPED_92, PAPER_FEATURE_NAMES, paper_features

BlockFn = Callable[[PatternBatch], torch.Tensor]


@dataclass
class FeatureSet:
    """An ordered collection of feature blocks.

    Attributes:
        name: registry name.
        description: one line.
        nan_free: True if every feature is finite for every valid pattern (the embedding
            then treats a NaN as an error instead of dropping the column, as the paper did).
        weights: embedding weight of each feature (its z-score is multiplied by it before
            PCA, so it counts that much in head distances); features not named weigh 1.
        revision: the version of the set's definitions; saved with every atlas, so an atlas
            computed under other definitions is recognised (Atlas.outdated_feature_sets).
            Bump it whenever a feature's values change.
    """

    name: str
    description: str = ""
    nan_free: bool = True
    _blocks: list[tuple[tuple[str, ...], BlockFn]] = field(default_factory=list)
    docs: dict[str, str] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    revision: str = "1"

    def add_block(
        self, names: Sequence[str], fn: BlockFn, docs: dict[str, str] | None = None, weights: dict[str, float] | None = None
    ) -> "FeatureSet":
        """Append a block computing len(names) features at once: fn(batch) -> [B, len(names)].
        weights: optional embedding weight per feature name (default 1)."""
        names = tuple(names)
        clash = set(names) & set(self.feature_names)
        if clash:
            raise ValueError(f"feature set {self.name!r} already has features {sorted(clash)}")
        weights = checked_weights(weights)
        unknown = set(weights) - set(names)
        if unknown:
            raise ValueError(f"weights name features {sorted(unknown)} that the block does not compute")
        self._blocks.append((names, fn))
        for n in names:
            self.docs[n] = (docs or {}).get(n, "")
        self.weights.update(weights)
        return self

    def add(
        self, name: str, fn: Callable[[PatternBatch], torch.Tensor], doc: str = "", weight: float = 1.0
    ) -> "FeatureSet":
        """Append one feature: fn(batch) -> [B] tensor (on the batch's device)."""
        return self.add_block([name], lambda b: fn(b)[:, None], {name: doc}, {name: weight})

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(n for names, _ in self._blocks for n in names)

    def extended(self, name: str, description: str = "", nan_free: bool | None = None) -> "FeatureSet":
        """A copy under a new name, to add features to without changing this set."""
        return FeatureSet(
            name, description or self.description, self.nan_free if nan_free is None else nan_free,
            list(self._blocks), dict(self.docs), dict(self.weights),
        )

    def weight_vector(self) -> np.ndarray:
        """[F] embedding weight of every feature, in feature order."""
        return np.array([self.weights.get(n, 1.0) for n in self.feature_names])

    def compute(self, batch: PatternBatch) -> torch.Tensor:
        """[B, F] features of a padded batch, on its device and in its dtype."""
        cols = []
        for names, fn in self._blocks:
            out = fn(batch)
            if out.shape != (batch.size, len(names)):
                raise ValueError(
                    f"feature block {names[:3]}... of set {self.name!r} returned shape {tuple(out.shape)}, "
                    f"expected {(batch.size, len(names))}"
                )
            cols.append(out.to(batch.dtype))
        return torch.cat(cols, dim=1)


_REGISTRY: dict[str, FeatureSet] = {}


def register_feature_set(feature_set: FeatureSet, overwrite: bool = False) -> FeatureSet:
    """Make a feature set available by name to every `feature_set=` argument."""
    if feature_set.name in _REGISTRY and not overwrite:
        raise ValueError(f"a feature set named {feature_set.name!r} is already registered (pass overwrite=True)")
    if not feature_set.feature_names:
        raise ValueError(f"feature set {feature_set.name!r} has no features")
    _REGISTRY[feature_set.name] = feature_set
    return feature_set


def get_feature_set(feature_set: str | FeatureSet) -> FeatureSet:
    """Look a feature set up by name (FeatureSet objects pass through)."""
    if isinstance(feature_set, FeatureSet):
        return feature_set
    try:
        return _REGISTRY[feature_set]
    except KeyError:
        raise ValueError(
            f"unknown feature set {feature_set!r}; available: {sorted(_REGISTRY)}"
        ) from None


def available_feature_sets() -> dict[str, str]:
    """Registered feature sets: name -> description."""
    return {k: v.description for k, v in _REGISTRY.items()}


register_feature_set(
    # revision 2: offset features became shares of the non-sink attention (and embedding weights)
    # revision 3: rows weighted 1 / i, far = the older half of the context, log_distance relative
    # to log(1 + i), row similarities weighted (benchmarks/length_robustness.py)
    FeatureSet("motifs", "our bounded, NaN-free, length-robust motif features (default)", revision="3").add_block(
        tuple(MOTIF_FEATURE_DOCS), compilable(motif_features), MOTIF_FEATURE_DOCS, MOTIF_FEATURE_WEIGHTS
    )
)
register_feature_set(
    FeatureSet("paper", "the reference's 94 features, exact in float64", nan_free=False).add_block(
        PAPER_FEATURE_NAMES, paper_features
    )
)
_keep_92 = [PAPER_FEATURE_NAMES.index(n) for n in PAPER_FEATURE_NAMES if n not in PAPER_DROPPED_92]
register_feature_set(
    FeatureSet(
        "paper92", "the paper's 92: the 94 minus the two log-gram medians it dropped", nan_free=False
    ).add_block(
        [PAPER_FEATURE_NAMES[k] for k in _keep_92], lambda b: paper_features(b)[:, _keep_92]
    )
)

#: Keep one chunk's largest intermediate (about 8 [B, N, N] tensors) near this many elements:
#: on the CPU sized for its caches; on CUDA as large as memory comfortably allows (~2 GB of float32
#: intermediates), since there every slice costs a few hundred kernel launches (the motifs set
#: runs ~180 torch ops per call): a layer of 16 prompts x 32 heads at 512 tokens is 2 slices
#: instead of 32.
CHUNK_ELEMENTS = 1 << 22
CUDA_CHUNK_ELEMENTS = 1 << 26


def chunk_elements(device: torch.device | str) -> int:
    """The slice budget (cells of [B, N, N]) for work on this device."""
    return CUDA_CHUNK_ELEMENTS if torch.device(device).type == "cuda" else CHUNK_ELEMENTS


_PATTERNS_EXPECTED = "a [n, n] or [B, n, n] array or tensor, or a sequence of [n, n] arrays / tensors"


def _as_pattern_list(patterns) -> list[torch.Tensor]:
    """`patterns` as a list of detached [n, n] tensors; TypeError / ValueError naming
    `patterns` and what was expected for anything else."""
    if patterns is None or isinstance(patterns, (str, bytes, dict)) or not hasattr(patterns, "__iter__"):
        raise TypeError(f"patterns must be {_PATTERNS_EXPECTED}; got {type(patterns).__name__}")
    if isinstance(patterns, (list, tuple)) and not any(isinstance(p, (np.ndarray, torch.Tensor)) for p in patterns):
        # nested lists of numbers: one [n, n] pattern or a [B, n, n] stack (ragged ones raise)
        try:
            arr = np.asarray(patterns)
        except ValueError:
            arr = None  # ragged: a list of patterns of different n, each checked below
            if all(isinstance(row, (list, tuple)) and all(np.isscalar(x) for x in row) for row in patterns):
                raise ValueError(
                    f"patterns is a ragged nested list (rows of lengths {[len(r) for r in patterns][:8]}); "
                    "expected a square [n, n] matrix, a [B, n, n] stack or a list of [n, n] patterns"
                ) from None
        if arr is not None and arr.dtype != object and arr.ndim in (2, 3):
            patterns = arr
    if isinstance(patterns, (np.ndarray, torch.Tensor)):
        shape = tuple(patterns.shape)
        if patterns.ndim == 2:
            items = [patterns]
        elif patterns.ndim == 3:
            if shape[0] == 0:
                raise ValueError(f"patterns has shape {shape}: no patterns given; expected at least one [n, n] pattern")
            items = list(patterns)
        else:
            raise ValueError(f"patterns has shape {shape}; expected [n, n], [B, n, n] or a list of [n, n]")
        return [as_pattern_tensor(p, "patterns" if len(items) == 1 and patterns.ndim == 2 else f"patterns[{k}]")
                for k, p in enumerate(items)]
    patterns = list(patterns)
    if not patterns:
        raise ValueError("no patterns given: patterns must hold at least one [n, n] pattern")
    return [as_pattern_tensor(p, f"patterns[{k}]") for k, p in enumerate(patterns)]


#: Compute dtypes of the kernels (the CPU histogram kernels are compiled for these).
COMPUTE_DTYPES = (torch.float64, torch.float32)


def check_compute_dtype(dtype) -> torch.dtype:
    """`dtype` if the kernels compute in it, else ValueError naming `dtype`."""
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"dtype must be torch.float64 or torch.float32 (the compute precision; bfloat16 / float16 "
            f"patterns are accepted as input and upcast), got {dtype!r}"
        )
    return dtype


def length_chunks(lengths: Sequence[int], budget: int = CHUNK_ELEMENTS) -> Iterable[list[int]]:
    """Group pattern indices by similar length into chunks of about `budget` / N^2 patterns."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    chunk: list[int] = []
    for k in order:
        n = int(lengths[k])
        if chunk and (len(chunk) + 1) * n * n > budget:
            yield chunk
            chunk = []
        chunk.append(int(k))
    if chunk:
        yield chunk


def feature_matrix(fs: FeatureSet, batch: PatternBatch, max_elements: int | None = None) -> torch.Tensor:
    """[B, F] features of a padded batch, computed in slices of about max_elements cells
    (default: chunk_elements of the batch's device)."""
    max_elements = chunk_elements(batch.device) if max_elements is None else max_elements
    step = max(1, max_elements // (batch.n_max * batch.n_max))
    if step >= batch.size:
        return fs.compute(batch)
    parts = [
        fs.compute(PatternBatch(batch.patterns[k : k + step], batch.lengths[k : k + step]))
        for k in range(0, batch.size, step)
    ]
    return torch.cat(parts)


def compute_features(
    patterns,
    feature_set: str | FeatureSet = "motifs",
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    validate: bool = True,
) -> pd.DataFrame:
    """Features of attention patterns, one row per pattern.

    Args:
        patterns: a list of [n, n] numpy arrays or torch tensors (n may differ), or one
            [B, n, n] / [n, n] array. Each must be causal with rows summing to 1 (within a
            tolerance set by the input's precision: bfloat16 / float16 inputs are accepted
            and upcast to `dtype`; tensors that require grad are detached).
        feature_set: "motifs" (default), "paper" (the reference's 94), "paper92", or a
            registered / given FeatureSet.
        dtype: the compute precision, float64 (exact; default) or float32 (fast mode:
            paper features then differ from float64 where float32 rounding moves matrix
            entries across histogram bin edges, see benchmarks/feature_precision.py).
            Anything else raises ValueError.
        device: where to compute; default the device of the input tensors (CPU for numpy).
        validate: check that every pattern is a causal attention pattern (ValueError if not).

    Returns:
        DataFrame [n_patterns, n_features], columns named as the set names them,
        rows in input order.
    """
    check_compute_dtype(dtype)
    fs = get_feature_set(feature_set)
    tensors = _as_pattern_list(patterns)
    if device is None:
        device = tensors[0].device
    out = np.empty((len(tensors), len(fs.feature_names)), dtype=np.float64)
    for idx in length_chunks([t.shape[-1] for t in tensors], chunk_elements(device)):
        names = [f"patterns[{k}]" for k in idx]
        chunk = [tensors[k] for k in idx]
        batch = pad_patterns(chunk, dtype=dtype, device=device, names=names)
        if validate:
            source = lowest_precision(t.dtype for t in chunk)
            check_patterns(batch, names=names, source_dtype=source if source is not None else dtype)
        out[idx] = fs.compute(batch).to("cpu", torch.float64).numpy()
    return pd.DataFrame(out, columns=list(fs.feature_names))
