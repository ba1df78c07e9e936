"""Throughput of the paper-feature kernels, measured in one run against
(a) a plain per-pattern numpy/scipy implementation (motif_widgets.features.plain) and
(b) the floor: the six batched float64 matrix products the features need.

    python benchmarks/feature_speed.py [--device cuda] [--quick]

Prints ms per pattern and the ratios; goals: >= 8x faster than plain numpy at n = 128,
within 2x of the floor. Also reports the motifs set (eager, and compiled by torch.compile as
MOTIF_WIDGETS_COMPILE=1 runs it) and the float32 fast mode. On CUDA a
second table compares the fused Triton kernels (the default there) with the torch-ops path
(MOTIF_WIDGETS_GPU_KERNELS=torch): time, ratio to the floor (goal <= 3x), the largest relative
difference of their features and the number of GPU kernels each launches per batch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from motif_widgets.features import PAPER_FEATURE_NAMES, PatternBatch, motif_features, paper_features
from motif_widgets.features import get_feature_set
from motif_widgets.features.kernels import triton_available, use_compile, use_kernels
from motif_widgets.features.plain import paper_features_plain


def random_patterns(n: int, count: int, device, seed: int = 0) -> torch.Tensor:
    """[count, n, n] causal softmax patterns with a first-token sink, float64."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(count, n, n, generator=g, dtype=torch.float64) * 2
    scores[:, :, 0] += 2
    scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, -1).to(device)


def best_of(fn, repeat: int, device) -> float:
    """Best wall time of `repeat` calls, seconds (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def six_products(a: torch.Tensor) -> None:
    """The floor, straightforwardly: six batched float64 products over the whole batch."""
    at = a.mT
    for x, y in ((a, at), (at, a), (at, a), (a, at), (at, a), (a, at)):
        torch.bmm(x, y)


def six_products_chunked(a: torch.Tensor, cells: int = 1 << 18) -> None:
    """The floor, cache-friendly: the same products in small chunks into a reused buffer."""
    b, n, _ = a.shape
    step = max(1, min(b, cells // (6 * n * n)))
    out = torch.empty((6, step, n, n), dtype=a.dtype, device=a.device)
    for s in range(0, b, step):
        x = a[s : s + step]
        c = x.shape[0]
        for k, (p, q) in enumerate(((x, x.mT), (x.mT, x), (x.mT, x), (x, x.mT), (x.mT, x), (x, x.mT))):
            torch.bmm(p, q, out=out[k, :c])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer patterns and repeats")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    sizes = {64: (256, 20), 128: (128, 12), 256: (32, 6), 512: (8, 3)}
    repeat = 2 if args.quick else 3
    header = (f"{'n':>4} {'plain ms':>9} {'kernel ms':>9} {'vs plain':>8} {'floor ms':>9} {'vs floor':>8} "
              f"{'(whole-batch floor)':>19} {'f32 ms':>7} {'f32 off':>7} {'f32 max dev':>11} {'motifs ms':>9} {'compiled':>8}")
    print(header)
    notes = []
    for n, (count, n_plain) in sizes.items():
        if args.quick:
            count, n_plain = max(4, count // 4), max(2, n_plain // 4)
        a = random_patterns(n, count, device)
        batch = PatternBatch(a, torch.full((count,), n, device=device))
        cpu = a[:n_plain].cpu().numpy()
        t_plain = best_of(lambda: [paper_features_plain(p) for p in cpu], 1, torch.device("cpu")) / n_plain
        t_kernel = best_of(lambda: paper_features(batch), repeat, device) / count
        t_floor_whole = best_of(lambda: six_products(a), repeat, device) / count
        t_floor_chunk = best_of(lambda: six_products_chunked(a), repeat, device) / count
        t_floor = min(t_floor_whole, t_floor_chunk)
        b32 = batch.to(torch.float32)
        t_f32 = best_of(lambda: paper_features(b32), repeat, device) / count
        f64, f32 = paper_features(batch), paper_features(b32).double()
        ok = torch.isfinite(f64) & torch.isfinite(f32)
        # how far float32 is from float64: share of values off by more than 1e-6 relative, and the
        # largest deviation in units of its feature's spread (std over the batch, float64)
        f64n, f32n, okn = f64.cpu().numpy(), f32.cpu().numpy(), ok.cpu().numpy()
        diff = np.where(okn, np.abs(f32n - f64n), 0.0)
        off = (diff > 1e-6 * np.abs(f64n))[okn].mean()
        std = np.nanstd(np.where(okn, f64n, np.nan), axis=0)
        varying = std > 1e-9  # constant columns (e.g. entropies that are equal in every pattern) have no spread
        dev_by_feature = np.where(varying, diff.max(0) / np.where(varying, std, 1.0), 0.0)
        worst = int(dev_by_feature.argmax())
        dev = dev_by_feature[worst]
        notes.append(f"n={n}: float32 vs float64: {off:.1%} of values off by > 1e-6 relative; largest deviation "
                     f"{dev:.3g} feature std in {PAPER_FEATURE_NAMES[worst]}")
        t_motifs = best_of(lambda: motif_features(batch), repeat, device) / count
        with use_compile(True):  # the registered block through torch.compile (compiled in best_of's warm-up)
            motifs_block = get_feature_set("motifs").compute
            t_motifs_compiled = best_of(lambda: motifs_block(batch), repeat, device) / count
        print(f"{n:4d} {t_plain*1e3:9.2f} {t_kernel*1e3:9.3f} {t_plain/t_kernel:7.1f}x {t_floor*1e3:9.3f} "
              f"{t_kernel/t_floor:7.2f}x {t_floor_whole*1e3:13.3f} ms   {t_f32*1e3:7.3f} {off:7.1%} {dev:9.3f}sd {t_motifs*1e3:9.3f} {t_motifs_compiled*1e3:8.3f}")
    print("\n".join(notes))
    if device.type == "cuda":
        fused_vs_torch(sizes, repeat, device, args.quick)
    print("vs plain: plain numpy time / kernel time (goal >= 8x at n=128); vs floor: kernel time / the faster "
          "of the two ways of running the six float64 products (goal <= 2x). f32 off: share of features more than 1e-6 "
          "(relative) from float64; f32 max dev: the largest float32 - float64 difference in feature standard deviations.")


def cuda_kernel_count(fn) -> int:
    """GPU kernels one call of fn launches (torch.profiler's CUDA activity)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def fused_vs_torch(sizes: dict, repeat: int, device: torch.device, quick: bool) -> None:
    """The fused Triton kernels against the torch-ops path on CUDA, same batches."""
    if not triton_available():
        print("\nfused kernels: Triton does not import here; not measured")
        return
    print(f"\nfused Triton kernels vs torch ops on {torch.cuda.get_device_name(device)} (ms per pattern; goal <= 3x the floor)")
    print(f"{'n':>4} {'count':>5} {'floor ms':>9} {'fused ms':>9} {'vs floor':>8} {'torch ms':>9} {'vs floor':>8} "
          f"{'speed-up':>8} {'max rel diff':>12} {'kernels fused/torch':>19}")
    for n, (count, _) in sizes.items():
        count = max(4, count // 4) if quick else count
        a = random_patterns(n, count, device)
        batch = PatternBatch(a, torch.full((count,), n, device=device))
        t_floor = min(best_of(lambda: six_products(a), repeat, device),
                      best_of(lambda: six_products_chunked(a), repeat, device)) / count
        with use_kernels("triton"):
            t_fused = best_of(lambda: paper_features(batch), repeat, device) / count
            fused = paper_features(batch).cpu().numpy()
            k_fused = cuda_kernel_count(lambda: paper_features(batch))
        with use_kernels("torch"):
            t_torch = best_of(lambda: paper_features(batch), repeat, device) / count
            ops = paper_features(batch).cpu().numpy()
            k_torch = cuda_kernel_count(lambda: paper_features(batch))
        both = np.isfinite(fused) & np.isfinite(ops)
        nan_same = np.array_equal(np.isnan(fused), np.isnan(ops))
        rel = np.abs(fused - ops)[both] / np.maximum(np.abs(ops[both]), 1e-300)
        rel_text = f"{rel.max():.1e}" + ("" if nan_same else " NaN!")
        print(f"{n:4d} {count:5d} {t_floor*1e3:9.4f} {t_fused*1e3:9.4f} {t_fused/t_floor:7.2f}x {t_torch*1e3:9.4f} "
              f"{t_torch/t_floor:7.2f}x {t_torch/t_fused:7.2f}x {rel_text:>12} {k_fused:>9d}/{k_torch:<9d}")


if __name__ == "__main__":
    main()
