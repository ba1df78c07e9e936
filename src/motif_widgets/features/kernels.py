"""Which kernels compute the features on a device.

`paper` features:

CPU: torch ops plus one-pass numba binning (_cpu_binning). CUDA: the fused Triton kernels
(_triton_kernels) when Triton is importable, else torch ops. Choose with the environment
variable MOTIF_WIDGETS_GPU_KERNELS or ``use_kernels(...)``:

- "auto" (default): Triton on CUDA when it imports, torch ops otherwise;
- "torch": torch ops on CUDA (the path before the fused kernels);
- "triton": Triton wherever the input is, also on CPU tensors, which works only under
  TRITON_INTERPRET=1 (Triton's interpreter; how the tests check the kernels without a GPU).

Only float64 work takes the Triton path (the kernels are exact in float64); float32 mode keeps
torch ops.

`motifs` features: eager torch ops (about 180 per call, ~17 passes over [B, N, N]) unless
compiling is switched on with MOTIF_WIDGETS_COMPILE=1 or ``use_compile(True)``: then the block
runs through ``torch.compile(dynamic=True)``, which fuses those passes (Triton kernels on CUDA,
C++ on the CPU). Off by default: the first call compiles for ~15-30 s on a 2-core CPU, on the CPU
it pays only from ~256 tokens (2.3x at 512, slower at 64-128; benchmarks/feature_speed.py), and it
has not been measured on a GPU yet.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from functools import lru_cache

import torch

GPU_KERNELS_ENV = "MOTIF_WIDGETS_GPU_KERNELS"
COMPILE_ENV = "MOTIF_WIDGETS_COMPILE"
GPU_KERNEL_CHOICES = ("auto", "triton", "torch")
_chosen: str | None = None  # set by use_kernels; None: the environment decides
_compile: bool | None = None  # set by use_compile; None: the environment decides
_triton_failure: str | None = None  # why the fused kernels failed here under "auto", if they did


def chosen_kernels() -> str:
    """The choice in force: use_kernels(...) if set, else $MOTIF_WIDGETS_GPU_KERNELS, else "auto"."""
    choice = _chosen if _chosen is not None else os.environ.get(GPU_KERNELS_ENV, "auto")
    if choice not in GPU_KERNEL_CHOICES:
        raise ValueError(f"{GPU_KERNELS_ENV} must be one of {GPU_KERNEL_CHOICES}, got {choice!r}")
    return choice


@contextmanager
def use_kernels(choice: str):
    """Compute the paper features with the given kernels inside the block ("auto", "triton", "torch")."""
    global _chosen
    if choice not in GPU_KERNEL_CHOICES:
        raise ValueError(f"choice must be one of {GPU_KERNEL_CHOICES}, got {choice!r}")
    before, _chosen = _chosen, choice
    try:
        yield
    finally:
        _chosen = before


@lru_cache(maxsize=1)
def triton_available() -> bool:
    """Whether the Triton kernels import (Triton installed and compatible)."""
    try:
        from . import _triton_kernels  # noqa: F401
    except ImportError:
        return False
    return True


def use_triton(tensor: torch.Tensor) -> bool:
    """Whether work on this tensor takes the fused Triton kernels (float64 only)."""
    choice = chosen_kernels()
    if choice == "torch" or tensor.dtype != torch.float64:
        return False
    if choice == "triton":
        if not triton_available():
            raise ImportError(f"{GPU_KERNELS_ENV}=triton but Triton does not import (pip install triton)")
        return True
    return tensor.device.type == "cuda" and triton_available() and _triton_failure is None



def run_fused(fused, fallback):
    """fused() when it works. Under "auto" a failure of the Triton kernels on this machine (a
    compiler or driver that does not take them) warns once and switches this process to the
    torch ops (fallback(), the same results); a forced "triton" choice raises instead."""
    global _triton_failure
    if chosen_kernels() == "triton":
        return fused()
    try:
        return fused()
    except torch.OutOfMemoryError:  # the device's memory, not the kernels: the torch ops would not fit either
        raise
    except Exception as error:  # noqa: BLE001 - any failure of the compiled kernels: fall back, said once
        _triton_failure = f"{type(error).__name__}: {error}"
        warnings.warn(
            f"the fused Triton kernels failed on this machine ({_triton_failure[:300]}); the paper features "
            f"are computed with torch ops instead (same results; set {GPU_KERNELS_ENV}=torch to choose them)",
            RuntimeWarning, stacklevel=3,
        )
        return fallback()


def compile_enabled() -> bool:
    """Whether compilable feature blocks (the motifs set) run through torch.compile."""
    if _compile is not None:
        return _compile
    value = os.environ.get(COMPILE_ENV, "0")
    if value not in ("0", "1"):
        raise ValueError(f"{COMPILE_ENV} must be 0 or 1, got {value!r}")
    return value == "1"


@contextmanager
def use_compile(on: bool):
    """Run compilable feature blocks through torch.compile inside the block (True) or not (False)."""
    global _compile
    if not isinstance(on, bool):
        raise ValueError(f"on must be True or False, got {on!r}")
    before, _compile = _compile, on
    try:
        yield
    finally:
        _compile = before


def compilable(fn):
    """fn(batch), run through torch.compile(fn, dynamic=True) while compile_enabled()."""
    compiled = None

    def run(batch):
        nonlocal compiled
        if not compile_enabled():
            return fn(batch)
        if compiled is None:
            compiled = torch.compile(fn, dynamic=True)
        return compiled(batch)

    run.__name__ = run.__qualname__ = getattr(fn, "__name__", "block")
    run.__doc__ = fn.__doc__
    return run
