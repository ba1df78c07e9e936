"""The fused Triton kernels of the paper features (features/_triton_kernels.py): identical bin
counts and statistics equal to rounding, against the torch / numba kernels and the reference
fixtures.

They run compiled on CUDA tensors where there is a GPU. Without one, this module runs itself
again in a subprocess under TRITON_INTERPRET=1 (Triton's interpreter, on CPU tensors): the
kernels' arithmetic is the same code, only not compiled (test_kernels_in_the_triton_interpreter).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import PATTERN_KINDS, causal_pattern
from motif_widgets import compute_features
from motif_widgets.features import PAPER_FEATURE_NAMES
from motif_widgets.features.kernels import GPU_KERNELS_ENV, chosen_kernels, use_kernels, use_triton
from motif_widgets.features.matrices import LOG_BIN_EDGES, log_bin_counts
from motif_widgets.features.stats import FULL_STATS, REDUCED_STATS, vector_stats
from test_features import assert_features_close

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cpu" if INTERPRETED else "cuda"
runs_kernels = pytest.mark.skipif(
    not INTERPRETED and not torch.cuda.is_available(), reason="runs compiled on CUDA, or under TRITON_INTERPRET=1"
)


@pytest.fixture
def fused():
    pytest.importorskip("triton")
    from motif_widgets.features import _triton_kernels

    return _triton_kernels


@pytest.mark.skipif(INTERPRETED, reason="this is the run that starts the interpreter")
def test_kernels_in_the_triton_interpreter():
    pytest.importorskip("triton")
    if torch.cuda.is_available():
        pytest.skip("CUDA is here: the kernels ran compiled in this process")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=900,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 6 and "failed" not in summary and "error" not in summary, summary


@runs_kernels
def test_bin_grams_counts_equal_the_lookup_binning(fused):
    """Every entry, edges and their neighbours included, lands in the bin the torch kernel gives;
    the cosine rows equal binning the cosines computed by torch ops."""
    rng = np.random.default_rng(3)
    edges = LOG_BIN_EDGES.astype(np.float64)
    special = np.concatenate([edges, np.nextafter(edges, -1), np.nextafter(edges, 2),
                              [-1.0, -1e-300, 0.0, 1.0, 1.5, 2.0, np.inf, np.nan]])
    n = 37
    plain = rng.random((4, n * n)) ** 5 * 1.05 - 0.01
    plain[0, : len(special)] = special
    x = torch.as_tensor(rng.random((3, n, n)) ** 3)
    grams = torch.cat([torch.as_tensor(plain).view(4, n, n), x @ x.mT, torch.zeros(1, n, n)])  # a zero gram: 0 / 1e-10
    grams[5, 3, 4] = -0.25  # a negative cosine is dropped
    got = fused.bin_grams(grams.to(DEVICE), cosine_from=4).cpu()
    norms = torch.diagonal(grams, dim1=1, dim2=2).sqrt()
    cosines = grams / (norms[:, :, None] * norms[:, None, :] + 1e-10) + 0.0
    want = torch.cat([log_bin_counts(grams[:4].reshape(4, -1), kernel="torch"),
                      log_bin_counts(cosines[4:].reshape(4, -1), kernel="torch")])
    assert torch.equal(got, want)
    assert int(got[0].sum()) == int(np.histogram(plain[0][np.isfinite(plain[0])], bins=LOG_BIN_EDGES)[0].sum())


def _rows(rng: np.random.Generator, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of every length 1..width (plus constant, tied, two-valued and all-NaN rows)."""
    lengths = list(range(1, width + 1)) + [width] * 5
    x = rng.random((len(lengths), width)) ** 3
    x[width] = 0.125  # constant: skewness, kurtosis, r2 are NaN
    x[width + 1] = np.round(x[width + 1] * 4) / 4  # ties on the entropy bin edges
    x[width + 2, ::2] = 0.0  # two values
    x[width + 3] = math.nan  # a histogram with nothing in range
    x[width + 4] = np.linspace(0.0, 1.0, width)  # a straight line
    return torch.as_tensor(x), torch.as_tensor(lengths, dtype=torch.int64)


@runs_kernels
@pytest.mark.parametrize(("width", "sort_in_kernel_max", "loop_block"), [
    (32, 4096, None),  # the median from a sort in the kernel, one block
    (70, 0, 16),  # the median from torch's sort, the row read in five blocks
    pytest.param(300, 4096, None, marks=pytest.mark.skipif(INTERPRETED, reason="a long sort is slow interpreted")),
])
def test_vector_stats_equal_the_torch_block(fused, width, sort_in_kernel_max, loop_block):
    x, lengths = _rows(np.random.default_rng(width), width)
    for full, names in ((True, FULL_STATS), (False, REDUCED_STATS)):
        with use_kernels("torch"):
            want = vector_stats(x, lengths, full=full).numpy()
        got = fused.vector_stats(x.to(DEVICE), lengths.to(DEVICE), full, sort_in_kernel_max, loop_block or 1024)
        assert_features_close(got.cpu().numpy(), want, rtol=1e-10, atol=1e-13, names=names)
        assert np.isnan(want[width, [names.index("skewness"), names.index("linreg.r2")]]).all()  # a constant row
        assert np.isnan(want[0, names.index("variance")])  # m = 1


@runs_kernels
def test_paper_features_fused_equal_reference_fixtures(fused, shared_fixtures, monkeypatch):
    if INTERPRETED:  # a sort is slow interpreted (~0.1 s a row): the medians come from torch
        monkeypatch.setattr(fused, "SORT_IN_KERNEL_MAX", 0)
    expected = json.loads((shared_fixtures / "expected.json").read_text())
    patterns = np.load(shared_fixtures / "patterns.npz")
    keys = sorted(patterns.files, key=lambda k: int(k[1:]))
    tensors = [torch.as_tensor(patterns[k].astype(np.float64), device=DEVICE) for k in keys]
    with use_kernels("triton"):
        got = compute_features(tensors, "paper").to_numpy()
    for row, key in zip(got, keys):
        want = [math.nan if v is None else v for v in (expected["patterns"][key]["features"][n] for n in PAPER_FEATURE_NAMES)]
        assert_features_close(row, want, rtol=1e-9)


@runs_kernels
def test_paper_features_fused_equal_cpu_kernels(fused, monkeypatch):
    if INTERPRETED:
        monkeypatch.setattr(fused, "SORT_IN_KERNEL_MAX", 0)
    rng = np.random.default_rng(5)
    lengths = (1, 2, 3, 5, 12, 12, 40, 64)
    patterns = [causal_pattern(rng, n, PATTERN_KINDS[i % len(PATTERN_KINDS)]) for i, n in enumerate(lengths)]
    cpu = compute_features(patterns, "paper").to_numpy()  # numba binning, torch statistics
    with use_kernels("triton"):
        got = compute_features([torch.as_tensor(p, device=DEVICE) for p in patterns], "paper").to_numpy()
    assert_features_close(got, cpu, rtol=1e-10, atol=1e-13)


@pytest.mark.skipif(INTERPRETED or torch.cuda.is_available(), reason="the interpreter does not compile; CUDA runs them")
def test_kernels_compile_for_the_h200_without_a_gpu(fused):
    """Triton's compiler and its bundled ptxas build both kernels for sm_90 (the H200) here, so a
    lowering error shows without a GPU; the binning kernel's PTX has no fused multiply-add (fp
    fusion is off: cosines round as on the CPU)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile as compile_kernel

    target = GPUTarget("cuda", 90, 32)
    options = {"enable_fp_fusion": False}
    binning = compile_kernel(ASTSource(
        fn=fused._bin_grams_kernel,
        signature={"grams_ptr": "*fp64", "codes_ptr": "*i64", "counts_ptr": "*i64", "n": "i32", "cosine_from": "i32",
                   "SHIFT": "constexpr", "CELL_MASK": "constexpr", "BLOCK": "constexpr", "TILE": "constexpr"},
        constexprs={"SHIFT": 46, "CELL_MASK": (1 << 18) - 1, "BLOCK": fused.BIN_BLOCK, "TILE": fused.BIN_TILE},
    ), target=target, options=options)
    ptx = binning.asm["ptx"]
    assert ".target sm_90" in ptx and "div.rn.f64" in ptx and "sqrt.rn.f64" in ptx and "fma.rn.f64" not in ptx
    assert binning.asm["cubin"]
    for block, sort, full in ((32, True, False), (256, True, True), (fused.STATS_BLOCK_MAX, False, True)):
        stats = compile_kernel(ASTSource(
            fn=fused._vector_stats_kernel,
            signature={"x_ptr": "*fp64", "lengths_ptr": "*i64", "median_ptr": "*fp64", "out_ptr": "*fp64",
                       "row_stride": "i32", "eps": "fp64", "BLOCK": "constexpr", "SORT": "constexpr", "FULL": "constexpr"},
            constexprs={"BLOCK": block, "SORT": sort, "FULL": full},
        ), target=target, options=options)
        assert ".target sm_90" in stats.asm["ptx"] and stats.asm["cubin"]


def test_kernel_choice_is_checked(monkeypatch):
    monkeypatch.setenv(GPU_KERNELS_ENV, "fast")
    with pytest.raises(ValueError, match=GPU_KERNELS_ENV):
        chosen_kernels()
    with pytest.raises(ValueError, match="choice must be one of"):
        with use_kernels("cuda"):
            pass
    monkeypatch.setenv(GPU_KERNELS_ENV, "torch")
    assert not use_triton(torch.zeros(2, dtype=torch.float64))
    with use_kernels("auto"):
        assert chosen_kernels() == "auto"
        # auto: Triton only for float64 CUDA tensors
        assert use_triton(torch.zeros(2, dtype=torch.float64)) is False
    assert chosen_kernels() == "torch"


def test_a_failing_fused_kernel_falls_back_to_torch_ops_once_under_auto(monkeypatch):
    """Under "auto", Triton kernels that a machine's compiler or driver does not take warn once
    and hand over to the torch ops (same results); a forced "triton" choice raises."""
    from motif_widgets.features import kernels

    monkeypatch.setattr(kernels, "_triton_failure", None)
    cuda_like = SimpleNamespace(dtype=torch.float64, device=torch.device("cuda"))  # all use_triton reads
    with use_kernels("auto"):
        assert use_triton(cuda_like) == kernels.triton_available()

    def broken():
        raise RuntimeError("PTX for sm_00 failed")

    with use_kernels("triton"), pytest.raises(RuntimeError, match="sm_00"):
        kernels.run_fused(broken, lambda: "torch ops")
    with use_kernels("auto"), pytest.warns(RuntimeWarning, match="fused Triton kernels failed.*sm_00"):
        assert kernels.run_fused(broken, lambda: "torch ops") == "torch ops"
    assert "sm_00" in kernels._triton_failure
    with use_kernels("auto"):
        assert not use_triton(cuda_like)  # the rest of the process keeps the torch ops


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_takes_triton_on_cuda():
    pytest.importorskip("triton")
    with use_kernels("auto"):
        assert use_triton(torch.zeros(2, dtype=torch.float64, device="cuda"))
        assert not use_triton(torch.zeros(2, dtype=torch.float32, device="cuda"))  # float32 mode: torch ops
