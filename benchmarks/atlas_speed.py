"""SmolLM2-135M over the first 100 Pile documents (<= 128 tokens each): the time of the
bare forward passes against the full atlas (patterns -> features -> scores -> embedding ->
head distances), and peak memory at 25 / 50 / 100 prompts, measured in one run.

    python benchmarks/atlas_speed.py [--pile ../shared/data/pile_100.jsonl] [--device cuda]

Goals: atlas <= 2x the bare forward passes; peak RSS flat in the number of prompts.
Each memory point runs in a fresh subprocess (ru_maxrss is a high-water mark).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
PILE = REPO.parent / "shared" / "data" / "pile_100.jsonl"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Restart the peak-RSS mark (Linux: write 5 to /proc/self/clear_refs), so that the
    atlas's own peak is not hidden under the model load's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def load(device: str):
    from motif_widgets import load_model

    warnings.simplefilter("ignore")
    return load_model("smollm2-135m", device=device)


def prompts_for(path: Path, n: int):
    from motif_widgets.prompts import load_jsonl, text_prompt

    return [text_prompt(t, id=f"doc-{k:03d}") for k, t in enumerate(load_jsonl(path, limit=n))]


def bare_forward(model, prompts, batch_size: int = 8, max_tokens: int = 128) -> None:
    """The model's own forward passes over the same padded batches the atlas uses."""
    from motif_widgets.sources import pad_token_batch, source_for

    source = source_for(model)
    toks = source.tokenize(prompts, max_tokens=max_tokens)
    order = sorted(range(len(toks)), key=lambda k: -len(toks[k].ids))
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            ids, lengths = pad_token_batch([toks[k] for k in order[s : s + batch_size]], source.pad_token_id, source.device)
            mask = (torch.arange(ids.shape[1], device=ids.device)[None] < lengths[:, None]).long()
            model(ids, attention_mask=mask)
    if source.device.type == "cuda":
        torch.cuda.synchronize()


def full_atlas(model, prompts, extra=()):
    from motif_widgets import Atlas

    atlas = Atlas.from_model(model, prompts, extra_feature_sets=list(extra), progress=False)
    atlas.distances  # embedding + head distances included
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return atlas


def rss_child(n: int, path: Path, device: str) -> None:
    model = load(device)
    prompts = prompts_for(path, n)
    gc.collect()
    load_peak = peak_rss_mb()
    if reset_peak_rss():
        after_load = proc_status_mb("VmRSS")
        full_atlas(model, prompts)
        peak = proc_status_mb("VmHWM")
    else:  # no way to reset the mark: the peak may be the model load's
        after_load = load_peak
        full_atlas(model, prompts)
        peak = peak_rss_mb()
    print(json.dumps({"n": n, "load_peak_mb": load_peak, "after_load_mb": after_load, "peak_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pile", type=Path, default=PILE)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        return rss_child(args.rss_child, args.pile, args.device)

    model = load(args.device)
    prompts = prompts_for(args.pile, 100)
    print(f"SmolLM2-135M on {args.device}, {len(prompts)} Pile documents, max 128 tokens, batch 8, "
          f"{torch.get_num_threads()} threads")
    bare_forward(model, prompts[:8])  # warm-up
    times = {}
    for name, fn in (
        ("bare forward passes", lambda: bare_forward(model, prompts)),
        ("atlas (motifs)", lambda: full_atlas(model, prompts)),
        ("atlas (motifs + paper)", lambda: full_atlas(model, prompts, extra=("paper",))),
    ):
        t0 = time.perf_counter()
        fn()
        times[name] = time.perf_counter() - t0
    base = times["bare forward passes"]
    for name, t in times.items():
        print(f"  {name:24s} {t:7.1f} s   {t / base:5.2f}x forward")
    print("peak RSS (fresh process per point: model load, then the atlas):")
    for n in (25, 50, 100):
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(n), "--pile", str(args.pile), "--device", args.device],
            capture_output=True, text=True, check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {n:3d} prompts: model load peak {r['load_peak_mb']:6.0f} MB; resident after load "
              f"{r['after_load_mb']:6.0f} MB; peak while building the atlas {r['peak_mb']:6.0f} MB "
              f"(+{r['peak_mb'] - r['after_load_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
