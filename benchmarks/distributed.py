"""Distributed collection on a local Ray cluster vs one process, on this machine.

SmolLM2-135M over the 100 Pile documents of ../shared/data/pile_100.jsonl (<= --max-tokens
tokens, batch 8). The same run three ways, in one process, timings in one run:

- one process: ``Atlas.from_model`` with torch's default threads (every core), and with one
  thread (what each Ray worker gets: on a busy 2-core machine two threads can be slower);
- Ray, 1 worker and Ray, --workers workers (one CPU each), into a fresh sharded folder,
  then ``Atlas.load`` of it; the features are checked bit-identical to the single run.

Overhead per shard = (shard phase wall x workers - the workers' time in run_shard) / shards:
the time a worker holds a CPU without computing or saving a shard (actor start and model
load, dispatch, argument transfer, waiting for the last shards). Cluster start and
planning (one model load + tokenization per model) are fixed costs, reported apart.

    python benchmarks/distributed.py [--workers 2] [--n-docs 100] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from motif_widgets import Atlas, distributed, load_model
from motif_widgets.prompts import pile_prompts

REPO = Path(__file__).resolve().parents[1]
PILE = REPO.parent / "shared" / "data" / "pile_100.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-docs", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--shard-size", type=int, default=16)
    args = ap.parse_args()
    import ray

    prompts = pile_prompts(PILE, n=args.n_docs, n_probes=0)
    options = dict(batch_size=8, max_tokens=args.max_tokens)
    print(f"SmolLM2-135M, {len(prompts)} Pile documents <= {args.max_tokens} tokens, batch 8, shards of "
          f"{args.shard_size}; {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")

    model = load_model("smollm2-135m")
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    single = Atlas.from_model(model, prompts, progress=False, **options)
    t_single = time.perf_counter() - t0
    print(f"one process, {threads} threads: {t_single:7.1f} s")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    Atlas.from_model(model, prompts, progress=False, **options)
    t_single1 = time.perf_counter() - t0
    torch.set_num_threads(threads)
    print(f"one process, 1 thread:  {t_single1:7.1f} s")
    del model

    t0 = time.perf_counter()
    ray.init(num_cpus=max(args.workers, 1), include_dashboard=False, log_to_driver=False)
    t_start = time.perf_counter() - t0
    rows = {}
    for workers in sorted({1, args.workers}):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            report = distributed.collect_atlas(
                ["smollm2-135m"], prompts, Path(tmp) / "run", workers=workers, shard_size=args.shard_size,
                progress=False, **options,
            )
            t_run = time.perf_counter() - t0
            t1 = time.perf_counter()
            atlas = Atlas.load(Path(tmp) / "run")
            t_load = time.perf_counter() - t1
            same = np.array_equal(atlas.data.features["motifs"], single.data.features["motifs"])
        compute = sum(report.shard_seconds["smollm2-135m"])
        shard_phase = t_run - report.connect_seconds - report.plan_seconds
        overhead = (shard_phase * workers - compute) / report.shards_run
        rows[workers] = t_run
        print(
            f"Ray, {workers} worker(s):       {t_run:7.1f} s = planning {report.plan_seconds:.1f} s + shards "
            f"{shard_phase:.1f} s ({report.shards_run} shards, {compute / report.shards_run:.2f} s compute each, "
            f"overhead {overhead:.2f} s per shard); join shards {t_load:.2f} s; bit-identical: {same}"
        )
    print(f"cluster start (once):  {t_start:7.1f} s")
    best = min(t_single, t_single1)
    print(f"ratio best one process / Ray {args.workers} workers: {best / rows[args.workers]:.2f}x "
          f"(with cluster start: {best / (rows[args.workers] + t_start):.2f}x)")
    print(f"ratio Ray 1 worker / Ray {args.workers} workers: {rows[1] / rows[args.workers]:.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
