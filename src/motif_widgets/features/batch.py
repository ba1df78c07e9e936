"""Padded batches of attention patterns of varying length, and input checks.

A batch holds B causal patterns of true lengths n_b <= N, zero-padded to [B, N, N].
Every kernel works on a :class:`PatternBatch` and uses its masks, so padding never
leaks into a feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np
import torch

#: Tolerances of :func:`check_patterns`: rows must sum to 1 and the strict upper triangle
#: must be 0 within these (float32 softmax outputs are exact to ~1e-6). They are the floors:
#: patterns that come from a lower precision get the wider tolerances of :func:`row_sum_tol`
#: and :func:`upper_tol`.
ROW_SUM_TOL = 1e-3
UPPER_TOL = 1e-6


def _eps(dtype: torch.dtype) -> float:
    """Machine epsilon of a floating dtype; 0 for exact ones (integers, bool)."""
    return torch.finfo(dtype).eps if dtype.is_floating_point else 0.0


def row_sum_tol(source_dtype: torch.dtype, n: int | torch.Tensor):
    """Tolerance on |row sum - 1| for rows of length n that were stored in `source_dtype`:
    max(ROW_SUM_TOL, eps * (4 + sqrt(n) / 4)). Rounding each weight of a softmax row to
    bfloat16 / float16 moves the sum by up to ~eps (measured: at most 0.72 eps over rows of
    n = 2 .. 2048, torch's and a hand-written softmax); the sqrt(n) / 4 term allows for a
    sum accumulated in that precision. bfloat16 n = 128: 0.053; float16: 0.0066; float32
    and float64: ROW_SUM_TOL. Works on a tensor of lengths too."""
    eps = _eps(source_dtype)
    if isinstance(n, torch.Tensor):
        return (eps * (4 + n.to(torch.float64).sqrt() / 4)).clamp(min=ROW_SUM_TOL)
    return max(ROW_SUM_TOL, eps * (4 + float(n) ** 0.5 / 4))


def upper_tol(source_dtype: torch.dtype) -> float:
    """Tolerance on entries above the diagonal of patterns stored in `source_dtype`:
    max(UPPER_TOL, 4 eps) (bfloat16: 0.031, float16: 0.0039, float32 / float64: UPPER_TOL)."""
    return max(UPPER_TOL, 4 * _eps(source_dtype))


def lowest_precision(dtypes: Iterable[torch.dtype]) -> torch.dtype | None:
    """The floating dtype of largest eps among `dtypes` (None if none is floating)."""
    floats = [d for d in dtypes if d.is_floating_point]
    return max(floats, key=_eps) if floats else None


@dataclass(frozen=True)
class PatternBatch:
    """B attention patterns padded to a common size.

    Attributes:
        patterns: [B, N, N] float tensor; entries outside [:n_b, :n_b] are 0.
        lengths: [B] int64 tensor of true lengths n_b (1 <= n_b <= N), same device.
    """

    patterns: torch.Tensor
    lengths: torch.Tensor

    @property
    def size(self) -> int:
        return self.patterns.shape[0]

    @property
    def n_max(self) -> int:
        return self.patterns.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.patterns.device

    @property
    def dtype(self) -> torch.dtype:
        return self.patterns.dtype

    @cached_property
    def positions(self) -> torch.Tensor:
        """[N] int64: 0..N-1."""
        return torch.arange(self.n_max, device=self.device)

    @cached_property
    def row_mask(self) -> torch.Tensor:
        """[B, N] bool: position i < n_b."""
        return self.positions[None, :] < self.lengths[:, None]

    @cached_property
    def square_mask(self) -> torch.Tensor:
        """[B, N, N] bool: both indices < n_b."""
        return self.row_mask[:, :, None] & self.row_mask[:, None, :]

    @cached_property
    def causal_mask(self) -> torch.Tensor:
        """[B, N, N] bool: key j <= query i < n_b (the cells a pattern may fill)."""
        lower = self.positions[None, :, None] >= self.positions[None, None, :]
        return lower & self.square_mask

    def to(self, dtype: torch.dtype) -> "PatternBatch":
        return PatternBatch(self.patterns.to(dtype), self.lengths)


def as_pattern_tensor(pattern, name: str = "patterns") -> torch.Tensor:
    """One pattern (array, tensor or nested list of numbers) as a detached tensor; TypeError /
    ValueError naming `name` for anything else. Keeps the dtype (bfloat16 / float16 included:
    the kernels upcast); numpy bfloat16 (ml_dtypes) becomes float32, which holds it exactly."""
    if isinstance(pattern, torch.Tensor):
        t = pattern.detach()
    elif isinstance(pattern, np.ndarray) or (
        isinstance(pattern, (list, tuple)) and not any(isinstance(x, (torch.Tensor, np.ndarray)) for x in pattern)
    ):
        try:
            arr = np.asarray(pattern)
        except ValueError as err:  # ragged nested lists (numpy >= 1.24)
            raise ValueError(f"{name} is a ragged nested sequence ({err}); expected a square [n, n] matrix") from None
        if arr.dtype.name == "bfloat16":
            arr = arr.astype(np.float32)
        if arr.dtype == object:
            raise ValueError(f"{name} is a ragged nested sequence; expected a square [n, n] matrix of numbers")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        t = torch.as_tensor(arr)
    else:
        raise TypeError(
            f"{name} must be a [n, n] numpy array, torch tensor or nested list of numbers, got {type(pattern).__name__}"
        )
    if t.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0:
        raise ValueError(f"{name} has shape {tuple(t.shape)}; expected a non-empty square [n, n] matrix")
    return t


def pad_patterns(
    patterns: Sequence[np.ndarray | torch.Tensor],
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    names: Sequence[str] | None = None,
) -> PatternBatch:
    """Stack 2-D patterns of varying n into one zero-padded :class:`PatternBatch`.

    Args:
        patterns: sequence of [n_b, n_b] arrays or tensors (any real dtype: bfloat16 and
            float16 are upcast; tensors that require grad are detached).
        dtype: floating dtype of the batch (float64 for exact features).
        device: target device; default the device of the first tensor (CPU for numpy).
        names: how errors name each pattern (default "patterns[k]").
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype (torch.float64 or torch.float32), got {dtype!r}")
    if isinstance(patterns, (str, bytes, dict)) or patterns is None or not hasattr(patterns, "__len__"):
        raise TypeError(
            f"patterns must be a sequence of [n, n] arrays or tensors, got {type(patterns).__name__}"
        )
    if len(patterns) == 0:
        raise ValueError("no patterns given: patterns must hold at least one [n, n] pattern")
    names = list(names) if names is not None else [f"patterns[{k}]" for k in range(len(patterns))]
    tensors = [as_pattern_tensor(p, name) for name, p in zip(names, patterns)]
    if device is None:
        device = tensors[0].device
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.int64, device=device)
    n_max = int(lengths.max())
    out = torch.zeros((len(tensors), n_max, n_max), dtype=dtype, device=device)
    for k, t in enumerate(tensors):
        n = t.shape[0]
        out[k, :n, :n] = t.to(device=device, dtype=dtype)
    return PatternBatch(out, lengths)


def check_patterns(
    batch: PatternBatch, names: Iterable[str] | None = None, *, source_dtype: torch.dtype | None = None
) -> None:
    """Raise ValueError naming the first pattern that is not a valid causal attention pattern.

    Valid: finite, non-negative, strict upper triangle 0 (within :func:`upper_tol`), every
    row summing to 1 (within :func:`row_sum_tol`).

    Args:
        batch: the padded patterns (any floating dtype).
        names: how errors name each pattern (default "pattern k"); read only when one is invalid,
            so a generator costs nothing in the usual case.
        source_dtype: the dtype the patterns were produced in, which sets the tolerances
            (a bfloat16 softmax row sums to 1 only within ~eps = 0.008). Default: the batch's
            dtype; pass the model's dtype when the patterns were converted (e.g. to float64)
            before the check.
    """
    a = batch.patterns
    source_dtype = a.dtype if source_dtype is None else source_dtype
    if not isinstance(source_dtype, torch.dtype):
        raise TypeError(f"source_dtype must be a torch dtype or None, got {source_dtype!r}")
    bad_negative = a.flatten(1).amin(1) < 0
    row_sums = a.sum(-1)  # [B, N]; NaN / inf anywhere in a row makes its sum non-finite
    bad_finite = ~torch.isfinite(row_sums).all(1)
    up_tol = upper_tol(source_dtype)
    bad_upper = torch.triu(a, diagonal=1).flatten(1).amax(1) > up_tol  # entries are >= 0 by now
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    row_err = torch.where(batch.row_mask, (row_sums - 1).abs(), zero)
    row_tol = row_sum_tol(source_dtype, batch.lengths)
    bad_rows = row_err.amax(1) > row_tol.to(a.dtype)
    if not bool(torch.stack([bad_finite, bad_negative, bad_upper, bad_rows]).any()):
        return  # the usual case: one device sync, names never built
    if bad_finite.any():  # confirm on the flagged patterns: a sum can also overflow
        bad_finite[bad_finite.clone()] = ~torch.isfinite(a[bad_finite]).flatten(1).all(1)
    names = list(names) if names is not None else [f"pattern {k}" for k in range(batch.size)]
    for flags, why in (
        (bad_finite, lambda k: "contains NaN or infinite values"),
        (bad_negative, lambda k: "has negative entries"),
        (bad_upper, lambda k: f"is not causal: entries above the diagonal exceed {up_tol:.3g}"),
        (bad_rows, lambda k: f"has rows that do not sum to 1 (tolerance {float(row_tol[k]):.3g} for {source_dtype})"),
    ):
        hit = torch.nonzero(flags).flatten()
        if len(hit):
            k = int(hit[0])
            extra = f" ({len(hit)} patterns in all)" if len(hit) > 1 else ""
            raise ValueError(f"{names[k]} (n = {int(batch.lengths[k])}) {why(k)}{extra}")
