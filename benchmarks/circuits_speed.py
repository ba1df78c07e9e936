"""Speed and accuracy of motif_widgets.circuits on SmolLM2-135M (and Gemma-3-270M).

Prints, from one run:
- weight_stats time (wall and CPU seconds) for SmolLM2 (and Gemma-3-270M with --gemma), in the
  default precision="float32" and in "float64", and the largest relative difference of the
  statistics between the two;
- one plain forward + loss on the prompt batch (--repeats runs, median), head_effects for all
  heads ("atp" --repeats runs, median; "integrated" with each of --steps once), and the ratios
  to the forward;
- exact mean-ablation of every head (residual reuse, several ablations per forward; cached in
  out/ and reused: --fresh-exact recomputes and times it), ablate-all / (k plain forwards), and
  the saving from residual reuse on the heads of a few layers (--rerun-layers);
- accuracy of each estimate: Spearman rho vs exact mean-ablation over all heads, and the
  overlap of their top-10 heads (by delta_loss, and by |delta_loss|);
- with --gemma-layers: the same accuracy on Gemma-3-270M for the heads of those layers.

Prompts: the first --docs documents of ../shared/data/pile_100.jsonl cut to --tokens tokens,
plus --probes repeated-token probes ([BOS] + 25 random tokens twice).

    PYTHONPATH=src .venv/bin/python benchmarks/circuits_speed.py [--docs 20 --probes 5 --tokens 64]
        [--gemma] [--skip-weights] [--steps 2,4] [--gemma-layers 0,5,11,17] [--out results.csv]

CPU seconds (process time over all threads) are printed next to wall seconds because the
machine may be shared: on a loaded machine wall time says little; ratios of CPU times are the
figures to quote.

Measured 2026-12-02 on the 2-core CPU machine (`--gemma --repeats 3 --steps 2 --refine 10,20
--rerun-layers ""`, heavily loaded by other jobs): head_effects atp / forward+loss 2.22 CPU,
2.25 wall (was 3.56 CPU); refine=10 4.93 wall; integrated 2 steps 5.28 CPU. Spearman rho vs exact
(270 heads): atp 0.619, refine=10 0.740, refine=20 0.800, integrated 2 steps 0.269; top-10 overlap
7, 9, 9, 6. `--gemma --skip-effects` on a nearly idle machine: weight_stats SmolLM2 4.93 s,
Gemma-3-270M 8.96 s (float64 product 10.51 s); float32 vs float64 ov_copying: Gemma 1.6e-7
relative, SmolLM2 5.0e-8 absolute (3.0e-6 relative at a near-zero score). Gemma, 24 heads of
layers 0,3,6,9,12,15: atp rho 0.479, refine=10 0.750.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _exact_cache import exact_cached  # noqa: E402

from motif_widgets import circuits, load_hf_model, load_model  # noqa: E402
from motif_widgets.prompts import load_jsonl, repeated_token_probes, text_prompt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PILE = REPO.parent / "shared" / "data" / "pile_100.jsonl"
STAT_COLUMNS = ["ov_copying", "ov_norm", "qk_norm", "ov_rank", "qk_rank", "q_comp_max", "k_comp_max", "v_comp_max"]


class Timer:
    def __init__(self, label: str, quiet: bool = False):
        self.label, self.quiet = label, quiet

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        if not self.quiet:
            print(f"  {self.label}: {self.wall:.2f} s wall, {self.cpu:.2f} s CPU", flush=True)


def median_timer(label: str, fn, repeats: int):
    """Run fn `repeats` times; print and return (median wall, median CPU, last result)."""
    walls, cpus = [], []
    for _ in range(repeats):
        with Timer(label, quiet=True) as t:
            out = fn()
        walls.append(t.wall)
        cpus.append(t.cpu)
    w, c = statistics.median(walls), statistics.median(cpus)
    print(f"  {label}: median of {repeats} {w:.2f} s wall, {c:.2f} s CPU "
          f"(wall {min(walls):.2f}-{max(walls):.2f}, CPU {min(cpus):.2f}-{max(cpus):.2f})", flush=True)
    return w, c, out


def weight_timings(label: str, model) -> None:
    with Timer(f"{label} weight_stats float32") as t32:
        ws = circuits.weight_stats(model)
    with Timer(f"{label} weight_stats float64") as t64:
        ws64 = circuits.weight_stats(model, precision="float64")
    a, b = ws[STAT_COLUMNS].to_numpy(float), ws64[STAT_COLUMNS].to_numpy(float)
    ok = ~np.isnan(b)
    rel = np.abs(a[ok] - b[ok]) / np.abs(b[ok]).clip(1e-12)
    cop = np.abs(ws.ov_copying - ws64.ov_copying).max() / np.abs(ws64.ov_copying).clip(1e-12).min()
    print(f"    float32 / float64 time {t32.wall / t64.wall:.2f} wall, {t32.cpu / t64.cpu:.2f} CPU; largest relative "
          f"difference: all statistics {rel.max():.1e}, ov_copying {np.max(np.abs(ws.ov_copying - ws64.ov_copying) / np.abs(ws64.ov_copying)):.1e} "
          f"(absolute {np.abs(ws.ov_copying - ws64.ov_copying).max():.1e}; vs the smallest |score| {cop:.1e})")
    med = {k: float(ws[f"{k}_comp_max"].median()) for k in "qkv"}
    print("    composition: median of the per-head max / Gaussian baseline / scale-matched baseline: "
          + ", ".join(f"{k} {med[k]:.4f} / {ws.attrs[f'{k}_comp_baseline']:.4f} / {ws.attrs[f'{k}_comp_baseline_scaled']:.4f}" for k in "qkv"))
    all_pairs = {k: float(np.nanmedian(circuits.composition_scores(model, k).to_numpy())) for k in "qkv"}
    print("    composition, median over all (reader, earlier writer) pairs: " + ", ".join(f"{k} {v:.4f}" for k, v in all_pairs.items()))


def accuracy(label: str, est, exact) -> None:
    e = est.loc[exact.index, "delta_loss"].to_numpy()
    x = exact.delta_loss.to_numpy()
    top = lambda v, k=10: set(np.argsort(-v)[:k])  # noqa: E731
    cols = lambda kind: [c for c in exact.columns if c.startswith(f"delta_loss[{kind}")]  # noqa: E731
    part = {}
    for kind in ("doc", "probe"):
        if cols(kind):
            part[kind] = spearmanr(est.loc[exact.index, cols(kind)].mean(axis=1), exact[cols(kind)].mean(axis=1)).statistic
    print(f"  {label:<22} rho {spearmanr(e, x).statistic:.3f} over {len(x)} heads (docs {part.get('doc', np.nan):.3f}, "
          f"probes {part.get('probe', np.nan):.3f}); top-10 overlap {len(top(e) & top(x))}/10 signed, "
          f"{len(top(np.abs(e)) & top(np.abs(x)))}/10 by |delta|", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--probes", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5, help="runs of the forward baseline and of head_effects (median)")
    ap.add_argument("--steps", default="2,4", help="steps of the 'integrated' estimate to measure (empty: none)")
    ap.add_argument("--refine", default="10,20", help="head_effects(refine=k) values to measure (empty: none)")
    ap.add_argument("--gemma", action="store_true", help="also time weight_stats on Gemma-3-270M")
    ap.add_argument("--gemma-layers", default="", help="layers of Gemma-3-270M whose heads are exact-ablated for accuracy")
    ap.add_argument("--skip-weights", action="store_true", help="skip the weight_stats timings")
    ap.add_argument("--skip-effects", action="store_true", help="skip everything but the weight_stats timings")
    ap.add_argument("--fresh-exact", action="store_true", help="recompute (and time) the exact ablation of all heads")
    ap.add_argument("--rerun-layers", default="0,14,29", help="layers whose heads are ablated with and without reuse")
    ap.add_argument("--out", default=None, help="CSV of the estimates and exact ablation per head")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*were truncated.*")

    model = load_model("smollm2-135m")
    if not args.skip_weights:
        print("weight_stats (model loaded)")
        weight_timings("smollm2-135m (270 heads)", model)
        if args.gemma:
            hf, _ = load_hf_model("gemma-3-270m")
            weight_timings("gemma-3-270m (72 heads)", hf)
            del hf
    if args.skip_effects:
        return

    texts = load_jsonl(PILE, limit=args.docs)
    prompts = [text_prompt(t, id=f"doc-{k:03d}") for k, t in enumerate(texts)] + repeated_token_probes(args.probes, 25)
    runner = circuits._Runner(model)
    batch = runner.batch(prompts, args.tokens)
    n_tok = int(batch.lengths.sum())
    print(f"\nprompts: {len(prompts)} ({args.docs} Pile docs <= {args.tokens} tokens, {args.probes} probes), {n_tok} tokens")

    def forward_loss():
        return circuits._per_prompt_loss(runner.forward(batch.ids, batch.lengths), batch.ids, batch.loss_mask)

    forward_loss()  # warm-up
    f_wall, f_cpu, _ = median_timer("plain forward + loss", forward_loss, args.repeats)
    a_wall, a_cpu, est = median_timer(
        "head_effects atp (all heads)", lambda: circuits.head_effects(model, prompts, max_tokens=args.tokens), args.repeats
    )
    estimates = {"atp": est}
    ratios = {"atp": (a_wall / f_wall, a_cpu / f_cpu)}
    for k in [int(s) for s in args.steps.split(",") if s.strip()]:
        with Timer(f"head_effects integrated, {k} steps") as t:
            estimates[f"integrated, {k} steps"] = circuits.head_effects(
                model, prompts, max_tokens=args.tokens, estimate="integrated", steps=k
            )
        ratios[f"integrated, {k} steps"] = (t.wall / f_wall, t.cpu / f_cpu)

    for k in [int(s) for s in args.refine.split(",") if s.strip()]:
        with Timer(f"head_effects atp, refine={k}") as t:
            estimates[f"atp, refine={k}"] = circuits.head_effects(model, prompts, max_tokens=args.tokens, refine=k)
        ratios[f"atp, refine={k}"] = (t.wall / f_wall, t.cpu / f_cpu)

    if args.fresh_exact:
        with Timer("ablate (exact mean-ablation, residual reuse) of all heads") as t_abl:
            exact = circuits.ablate(model, prompts, max_tokens=args.tokens)
    else:
        exact = exact_cached(model, prompts, args.tokens)
    layers = [int(x) for x in args.rerun_layers.split(",") if x.strip()]
    if layers:
        sub = [h for h in exact.index if int(exact.loc[h, "layer"]) in layers]
        with Timer(f"ablate {len(sub)} heads of layers {layers} with reuse") as t_sub_reuse:
            a = circuits.ablate(model, prompts, sub, max_tokens=args.tokens)
        with Timer(f"ablate {len(sub)} heads of layers {layers} rerunning the whole model") as t_sub_full:
            b = circuits.ablate(model, prompts, sub, max_tokens=args.tokens, reuse_residual=False)
        max_diff = float(np.abs(a.delta_loss.to_numpy() - b.delta_loss.to_numpy()).max())
        cached_diff = float(np.abs(a.delta_loss.to_numpy() - exact.loc[sub, "delta_loss"].to_numpy()).max())

    print("\nratios (wall / CPU)")
    for name, (w, c) in ratios.items():
        goal = "   (goal <= 3)" if name == "atp" else ""
        print(f"  head_effects {name} / one forward+loss: {w:.2f} / {c:.2f}{goal}")
    if args.fresh_exact:
        k = len(exact)
        print(f"  ablate {k} heads / {k} plain forwards: {t_abl.wall / (k * f_wall):.2f} / {t_abl.cpu / (k * f_cpu):.2f}")
    if layers:
        print(f"  reuse / full rerun on layers {layers}: {t_sub_reuse.wall / t_sub_full.wall:.2f} / {t_sub_reuse.cpu / t_sub_full.cpu:.2f}"
              f"   (max |difference| of delta_loss {max_diff:.2e}; vs the cached exact run {cached_diff:.2e})")

    print(f"\nestimates vs exact mean-ablation (SmolLM2; clean loss {exact.attrs['clean_loss']:.3f})")
    for name, e in estimates.items():
        accuracy(name, e, exact)
    print("  largest exact effects (exact; " + " / ".join(estimates) + "): "
          + ", ".join(f"{h.split(':')[1]} {v:+.3f} (" + " / ".join(f"{e.loc[h, 'delta_loss']:+.3f}" for e in estimates.values()) + ")"
                      for h, v in exact.delta_loss.nlargest(5).items()))
    if args.out:
        cols = {name.replace(", ", "_").replace(" ", "_"): e.loc[exact.index, "delta_loss"].to_numpy() for name, e in estimates.items()}
        exact[["layer", "head_index"]].assign(exact=exact.delta_loss.to_numpy(), **cols).to_csv(args.out)
        print(f"  per-head values written to {args.out}")

    g_layers = [int(x) for x in args.gemma_layers.split(",") if x.strip()]
    if g_layers:
        gemma = load_model("gemma-3-270m")
        heads = [(l, h) for l in g_layers for h in range(gemma.cfg.n_heads)]
        g_exact = exact_cached(gemma, prompts, args.tokens, heads=heads, tag="_layers" + "-".join(map(str, g_layers)))
        print(f"\nestimates vs exact mean-ablation (Gemma-3-270M, heads of layers {g_layers}; clean loss {g_exact.attrs['clean_loss']:.3f})")
        accuracy("atp", circuits.head_effects(gemma, prompts, max_tokens=args.tokens), g_exact)
        for k in [int(s) for s in args.refine.split(",") if s.strip()]:
            accuracy(f"atp, refine={k}", circuits.head_effects(gemma, prompts, max_tokens=args.tokens, refine=k), g_exact)
        for k in [int(s) for s in args.steps.split(",") if s.strip()]:
            accuracy(f"integrated, {k} steps", circuits.head_effects(gemma, prompts, max_tokens=args.tokens, estimate="integrated", steps=k), g_exact)


if __name__ == "__main__":
    main()
