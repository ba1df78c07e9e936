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
#: must be 0 within these (float32 softmax outputs are exact to ~1e-6).
ROW_SUM_TOL = 1e-3
UPPER_TOL = 1e-6


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


def pad_patterns(
    patterns: Sequence[np.ndarray | torch.Tensor],
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    names: Sequence[str] | None = None,
) -> PatternBatch:
    """Stack 2-D patterns of varying n into one zero-padded :class:`PatternBatch`.

    Args:
        patterns: sequence of [n_b, n_b] arrays or tensors.
        dtype: dtype of the batch (float64 for exact features).
        device: target device; default the device of the first tensor (CPU for numpy).
        names: how errors name each pattern (default "pattern k").
    """
    if len(patterns) == 0:
        raise ValueError("no patterns given: expected at least one [n, n] pattern")
    tensors = [torch.as_tensor(p) for p in patterns]
    if device is None:
        device = tensors[0].device
    names = list(names) if names is not None else [f"pattern {k}" for k in range(len(tensors))]
    for name, t in zip(names, tensors):
        if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0:
            raise ValueError(f"{name} has shape {tuple(t.shape)}; expected a non-empty square [n, n] matrix")
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.int64, device=device)
    n_max = int(lengths.max())
    out = torch.zeros((len(tensors), n_max, n_max), dtype=dtype, device=device)
    for k, t in enumerate(tensors):
        n = t.shape[0]
        out[k, :n, :n] = t.to(device=device, dtype=dtype)
    return PatternBatch(out, lengths)


def check_patterns(batch: PatternBatch, names: Iterable[str] | None = None) -> None:
    """Raise ValueError naming the first pattern that is not a valid causal attention pattern.

    Valid: finite, non-negative, strict upper triangle 0 (within UPPER_TOL), every row
    summing to 1 (within ROW_SUM_TOL).
    """
    a = batch.patterns
    names = list(names) if names is not None else [f"pattern {k}" for k in range(batch.size)]
    row_sums = a.sum(-1)  # [B, N]; NaN / inf anywhere in a row makes its sum non-finite
    bad_finite = ~torch.isfinite(row_sums).all(1)
    if bad_finite.any():  # confirm on the flagged patterns: a sum can also overflow
        bad_finite[bad_finite.clone()] = ~torch.isfinite(a[bad_finite]).flatten(1).all(1)
    bad_negative = a.flatten(1).amin(1) < 0
    bad_upper = torch.triu(a, diagonal=1).flatten(1).amax(1) > UPPER_TOL  # entries are >= 0 by now
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    row_err = torch.where(batch.row_mask, (row_sums - 1).abs(), zero)
    bad_rows = row_err.amax(1) > ROW_SUM_TOL
    for flags, why in (
        (bad_finite, "contains NaN or infinite values"),
        (bad_negative, "has negative entries"),
        (bad_upper, f"is not causal: entries above the diagonal exceed {UPPER_TOL}"),
        (bad_rows, f"has rows that do not sum to 1 (tolerance {ROW_SUM_TOL})"),
    ):
        hit = torch.nonzero(flags).flatten()
        if len(hit):
            k = int(hit[0])
            extra = f" ({len(hit)} patterns in all)" if len(hit) > 1 else ""
            raise ValueError(f"{names[k]} (n = {int(batch.lengths[k])}) {why}{extra}")
