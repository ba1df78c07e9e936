"""How close the fused Triton paper kernels come to the CPU kernels and to the reference fixtures.

Compiled on CUDA when there is a GPU; otherwise in Triton's interpreter on CPU tensors (the same
kernel code, not compiled; set before Triton is imported). Prints the largest relative
difference per feature block, whether NaN falls in the same places, and whether the histogram
counts of the six derived matrices are identical.

    python benchmarks/triton_exactness.py [--patterns 24] [--n-max 96]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import PATTERN_KINDS, causal_pattern  # noqa: E402

from motif_widgets import compute_features  # noqa: E402
from motif_widgets.features import PAPER_FEATURE_NAMES  # noqa: E402
from motif_widgets.features import _triton_kernels as fused  # noqa: E402
from motif_widgets.features.kernels import use_kernels  # noqa: E402
from motif_widgets.features.matrices import paper_matrix_counts  # noqa: E402


def largest_relative_difference(got: np.ndarray, want: np.ndarray) -> tuple[float, bool]:
    """max |got - want| / max(|got|, |want|) over finite pairs, and whether NaNs coincide."""
    finite = np.isfinite(got) & np.isfinite(want)
    scale = np.maximum(np.abs(got[finite]), np.abs(want[finite]))
    diff = np.abs(got[finite] - want[finite])
    rel = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)
    return float(rel.max(initial=0.0)), bool(np.array_equal(np.isnan(got), np.isnan(want)))


def report(name: str, got: np.ndarray, want: np.ndarray) -> None:
    blocks = {"diag / first_tok (28)": slice(0, 28), "six histograms (66)": slice(28, 94)}
    parts = []
    for label, cols in blocks.items():
        rel, nan_same = largest_relative_difference(got[:, cols], want[:, cols])
        parts.append(f"{label}: {rel:.2e}{'' if nan_same else ' (NaN differ!)'}")
    print(f"{name}: " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patterns", type=int, default=24)
    parser.add_argument("--n-max", type=int, default=96)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mode = "compiled on CUDA" if device == "cuda" else "Triton interpreter on the CPU"
    print(f"fused kernels, {mode}; torch {torch.__version__}")
    if device == "cpu":
        fused.SORT_IN_KERNEL_MAX = 0  # interpreted, an in-kernel sort takes ~0.1 s a row: medians from torch

    rng = np.random.default_rng(0)
    lengths = np.linspace(1, args.n_max, args.patterns).astype(int)
    patterns = [causal_pattern(rng, int(n), PATTERN_KINDS[i % len(PATTERN_KINDS)]) for i, n in enumerate(lengths)]
    cpu = compute_features(patterns, "paper").to_numpy()
    with use_kernels("triton"):
        got = compute_features([torch.as_tensor(p, device=device) for p in patterns], "paper").to_numpy()
    report(f"{len(patterns)} patterns, n = 1..{args.n_max}, {len(PATTERN_KINDS)} kinds, vs the CPU kernels", got, cpu)

    same_counts = True
    for p in patterns:
        a = torch.as_tensor(p)[None]
        want = paper_matrix_counts(a)  # numba
        with use_kernels("triton"):
            have = paper_matrix_counts(a.to(device)).cpu()
        same_counts &= bool(torch.equal(have, want))
    print(f"histogram counts of the six matrices identical to the CPU kernels: {same_counts}")

    fixtures = REPO / "tests" / "fixtures"
    expected = json.loads((fixtures / "expected.json").read_text())
    stored = np.load(fixtures / "patterns.npz")
    keys = sorted(stored.files, key=lambda k: int(k[1:]))
    want = np.array([[math.nan if v is None else v for v in (expected["patterns"][k]["features"][f] for f in PAPER_FEATURE_NAMES)]
                     for k in keys])
    with use_kernels("triton"):
        got = compute_features([torch.as_tensor(stored[k].astype(np.float64), device=device) for k in keys], "paper").to_numpy()
    report(f"{len(keys)} reference fixtures (the paper's code, float64 input)", got, want)
    report("CPU kernels on the same fixtures, for comparison", compute_features(
        [stored[k].astype(np.float64) for k in keys], "paper").to_numpy(), want)


if __name__ == "__main__":
    main()
