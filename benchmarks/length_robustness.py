#!/usr/bin/env python
"""Does prompt length move a head more than heads differ? Length robustness of head search.

For each model: the first Pile documents that are at least --long tokens long (BOS
included), run once cut at each --short length and once at --long tokens, under two model
names ("short", "long"), merged into one atlas (one z-score + PCA over both). For every
head of "short" we rank its own "long" copy among all heads of "long" by head distance
(paper eq. 3) and print:

- top-1 / top-5: share of heads whose own copy is their nearest / among their 5 nearest;
- median rank (1 = nearest);
- self / between: median distance of a head to its own copy, over the median distance
  between a short head and the long copies of *other* heads;
- per feature, the mean absolute shift of a head's mean feature from short to long, in
  units of the between-head standard deviation (of the long heads' means).

Every number is given for the current `motifs` set and for `motifs-r2`, a frozen copy of
revision 2 of the motif features (before the length-robust definitions), so one run
shows before and after.

    python benchmarks/length_robustness.py [--models smollm2-135m gemma-3-270m] [--n-docs 12]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from motif_widgets import Atlas, load_model
from motif_widgets.features import FeatureSet, get_feature_set, register_feature_set
from motif_widgets.features.batch import PatternBatch
from motif_widgets.features.stats import sort_rows
from motif_widgets.prompts import load_jsonl, text_prompt
from motif_widgets.sources import source_for

REPO = Path(__file__).resolve().parents[1]
PILE = REPO.parent / "shared" / "data" / "pile_100.jsonl"
GOAL_TOP5 = 0.8  # 64 vs 256 tokens: own copy among the 5 nearest heads for >= 80% of heads


# ------------------------------------------------------------------ the core measurement
def length_robustness(atlas: Atlas, short: str = "short", long: str = "long", metric: str | None = None) -> dict:
    """How well each head of model `short` finds its own copy in model `long` of a merged atlas.

    Heads are matched by their id after the model prefix (short:L3H1 <-> long:L3H1).
    Returns {"n_heads", "top1", "top5", "median_rank", "self_over_between", "ranks"}: ranks
    [H] int (1 = the own copy is the nearest of all long heads).
    """
    d = atlas.head_distances(metric)
    heads = atlas.heads
    s_ids = heads.loc[heads["model"] == short, "head"].tolist()
    l_ids = [h.replace(f"{short}:", f"{long}:", 1) for h in s_ids]
    missing = set(l_ids) - set(heads.loc[heads["model"] == long, "head"])
    if missing:
        raise ValueError(f"model {long!r} lacks heads of {short!r}, e.g. {sorted(missing)[:3]}")
    block = d.loc[s_ids, l_ids].to_numpy()  # [H, H]: short head x long head
    own = np.diag(block)
    # rank of the own copy: 1 + number of long heads strictly nearer (ties count in its favour)
    ranks = 1 + (block < own[:, None]).sum(1)
    others = block[~np.eye(len(s_ids), dtype=bool)]
    return {
        "n_heads": len(s_ids),
        "top1": float((ranks == 1).mean()),
        "top5": float((ranks <= 5).mean()),
        "median_rank": float(np.median(ranks)),
        "self_over_between": float(np.median(own) / np.median(others)),
        "ranks": ranks,
    }


def feature_shift(atlas: Atlas, short: str = "short", long: str = "long") -> pd.Series:
    """Per feature of the atlas's feature set: mean over heads of |head mean at long - head
    mean at short|, divided by the between-head standard deviation of the long head means."""
    names = atlas.feature_names
    x = atlas.features  # [H, P, F]
    means = np.nanmean(x, axis=1)  # [H, F]
    models = atlas.heads["model"].to_numpy()
    s, l_ = means[models == short], means[models == long]
    std = l_.std(axis=0)
    shift = np.abs(l_ - s).mean(0) / np.where(std > 0, std, np.nan)
    return pd.Series(shift, index=names, name="shift_in_between_head_std")


def long_documents(model, n_docs: int, n_tokens: int, path: Path = PILE) -> tuple[list, int]:
    """The first n_docs documents of `path` with at least n_tokens tokens (BOS included),
    as text prompts with their file ids (doc-000 ...); and how many documents were scanned."""
    source = source_for(model)
    texts = load_jsonl(path)
    chosen, scanned = [], 0
    for k, text in enumerate(texts):
        scanned = k + 1
        prompt = text_prompt(text, id=f"doc-{k:03d}")
        if len(source.tokenize([prompt], max_tokens=None)[0].ids) >= n_tokens:
            chosen.append(prompt)
            if len(chosen) == n_docs:
                break
    return chosen, scanned


# ------------------------------------------------------------------ frozen "before" definitions
def _offset_layout(a: torch.Tensor) -> torch.Tensor:
    b, n, _ = a.shape
    q = a.new_zeros((b, n, 2 * n))
    q[:, :, :n] = a.flip(-1)
    return q.as_strided((b, n, n), (2 * n * n, 2 * n - 1, 1), n - 1)


def _mean_row_cosine(rows: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    norms = torch.linalg.vector_norm(rows, dim=-1).clamp(min=torch.finfo(rows.dtype).tiny)
    unit_sum = torch.bmm((used.to(rows.dtype) / norms)[:, None, :], rows)[:, 0]
    r = used.sum(1).to(rows.dtype)
    mean = ((unit_sum**2).sum(-1) - r) / (r * (r - 1)).clamp(min=1)
    return torch.where(r > 1, mean.clamp(0.0, 1.0), torch.ones_like(mean))


def motif_features_r2(batch: PatternBatch) -> torch.Tensor:
    """Revision 2 of the motif features (motifs.py as of commit 43524a1), frozen: the "before" column."""
    a = batch.patterns
    dt = a.dtype
    zero = torch.zeros((), dtype=dt, device=a.device)
    n = batch.lengths.to(dt)
    rows = batch.row_mask & ((batch.positions[None, :] >= 1) | (batch.lengths[:, None] == 1))
    rows_f = rows.to(dt)
    n_rows = rows_f.sum(1)

    def row_mean(v):
        return (rows_f * v).sum(1) / n_rows

    def rvp(w, r):
        return torch.bmm(w[:, None, :], r)[:, 0]

    pos = batch.positions.to(dt)
    i = pos[None, :]
    sink = a[:, :, 0]
    sink_mass = row_mean(sink)
    offs = _offset_layout(a)
    mass = (rvp(rows_f, offs) - rows_f * sink) / n_rows[:, None]
    mass = mass / (1 - sink_mass + 0.05)[:, None]
    near, far = mass[:, 4:9].sum(1), mass[:, 9:].sum(1)
    ent = -torch.xlogy(a, a).sum(-1) / torch.log(i + 1).clamp(min=torch.finfo(dt).tiny)
    ent = torch.where(i >= 1, ent, zero)
    causal = torch.tril(a)
    expected = i * causal.sum(-1) - causal @ pos
    rel = torch.where(i >= 1, expected / i.clamp(min=1), zero)
    col = rvp(rows_f, a) / n_rows[:, None]
    key_spread = torch.exp(-torch.xlogy(col, col).sum(1)) / n
    ranked = sort_rows(-torch.where(batch.row_mask, col, zero)[:, 1:]).neg()
    n_top = torch.ceil(0.1 * (batch.lengths - 1).to(dt)).long()
    bar = torch.cat([torch.zeros_like(n[:, None]), ranked.cumsum(1)], 1).gather(1, n_top[:, None])[:, 0]
    col_sums = offs.sum(1) - sink
    reach = (n[:, None] - 1 - pos[None, :]).clamp(min=1)
    dd = batch.positions[None, :]
    eligible = (dd >= 2) & (dd <= (batch.lengths[:, None] - 1) // 2)
    stripe = torch.where(eligible, col_sums / reach, zero).amax(1)
    pick = (lambda k: mass[:, k] if batch.n_max > k else zero.expand(batch.size))
    return torch.stack([
        sink_mass, mass[:, 0], pick(1), pick(2), pick(3), near, far, row_mean(ent), row_mean(a.amax(-1)),
        row_mean(rel), row_mean(torch.log1p(expected)), key_spread, bar, _mean_row_cosine(a, rows),
        _mean_row_cosine(offs, rows), stripe,
    ], dim=1)


R2_NAMES = ("sink", "self", "prev", "offset2", "offset3", "near", "far", "entropy", "max_weight", "distance",
            "log_distance", "key_spread", "bar_mass", "row_similarity", "offset_similarity", "stripe")
R2_WEIGHTS = {k: 1.0 if k in ("sink", "self", "prev", "offset2", "offset3", "near", "far", "stripe") else 0.3 for k in R2_NAMES}


def register_r2() -> str:
    try:
        get_feature_set("motifs-r2")
    except ValueError:
        register_feature_set(FeatureSet("motifs-r2", "motif features, revision 2 (frozen)", revision="2").add_block(
            R2_NAMES, motif_features_r2, weights=R2_WEIGHTS))
    return "motifs-r2"


# ------------------------------------------------------------------ the run
def run_model(name: str, n_docs: int, shorts: list[int], long: int, feature_sets: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    t0 = time.perf_counter()
    model = load_model(name)
    prompts, scanned = long_documents(model, n_docs, long)
    print(f"\n=== {name}: {len(prompts)} documents of >= {long} tokens (the first such among {scanned} scanned)")
    if len(prompts) < n_docs:
        print(f"  only {len(prompts)} documents are long enough")
    runs = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*were truncated")
        for n in sorted(set(shorts) | {long}):
            runs[n] = Atlas.from_model(
                model, prompts, max_tokens=n, model_name=f"n{n}", feature_set=feature_sets[0],
                extra_feature_sets=feature_sets[1:], progress=False,
            )
    print(f"  atlases built in {time.perf_counter() - t0:.0f} s")
    rows, shifts = [], {}
    for n in shorts:
        merged = Atlas.merge([runs[n].rename_model(f"n{n}", "short"), runs[long].rename_model(f"n{long}", "long")])
        for fs in feature_sets:
            configured = merged.configure(feature_set=fs)
            r = length_robustness(configured)
            rows.append({"model": name, "lengths": f"{n} v {long}", "feature_set": fs, "heads": r["n_heads"],
                         "top1": r["top1"], "top5": r["top5"], "median_rank": r["median_rank"],
                         "self/between": r["self_over_between"]})
            shifts[(f"{n} v {long}", fs)] = feature_shift(configured)
    table = pd.DataFrame(rows)
    shift_table = pd.DataFrame(shifts)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print("per-feature shift (mean |head mean long - short| / between-head std):")
    print(shift_table.to_string(float_format=lambda x: f"{x:.2f}"))
    return table, shift_table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--n-docs", type=int, default=12)
    parser.add_argument("--short", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--long", type=int, default=256)
    parser.add_argument("--feature-sets", nargs="+", default=None, help="default: motifs motifs-r2")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    feature_sets = args.feature_sets or ["motifs", register_r2()]
    if "motifs-r2" in feature_sets:
        register_r2()
    tables = [run_model(m, args.n_docs, args.short, args.long, feature_sets)[0] for m in args.models]
    table = pd.concat(tables)
    print("\n=== summary (goal: 64 v 256, top-5 >= 0.8)")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
