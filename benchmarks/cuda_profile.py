"""Where the paper kernels spend their time on CUDA: torch.profiler's top kernels for one
batch of 128 patterns at n = 128, fused Triton kernels and torch ops (a diagnostic for GPU
work; needs CUDA).

    python benchmarks/cuda_profile.py [--n 128] [--count 128]
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from feature_speed import random_patterns
from motif_widgets.features import PatternBatch, paper_features
from motif_widgets.features.kernels import triton_available, use_kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--count", type=int, default=128)
    args = parser.parse_args()
    device = torch.device("cuda")
    a = random_patterns(args.n, args.count, device)
    batch = PatternBatch(a, torch.full((args.count,), args.n, device=device))
    for kernels in ("triton", "torch"):  # the fused kernels (the default on CUDA), then torch ops
        if kernels == "triton" and not triton_available():
            print("Triton does not import here: only the torch-ops path is profiled")
            continue
        with use_kernels(kernels):
            for _ in range(3):
                paper_features(batch)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                paper_features(batch)
                torch.cuda.synchronize()
        print(f"== {kernels} ==")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18))


if __name__ == "__main__":
    main()
