"""Speed and accuracy of motif_widgets.circuits on SmolLM2-135M (and Gemma-3-270M weights).

Prints, from one run:
- weight_stats time (wall and CPU seconds) for SmolLM2 (and Gemma-3-270M with --gemma);
- one plain forward + loss on the prompt batch, head_effects (attribution patching, all heads),
  exact mean-ablation of every head (residual reuse, several ablations per forward), and the
  ratios: head_effects / forward, ablate-all / (k plain forwards);
- the saving from residual reuse: reuse vs full reruns on the heads of a few layers;
- accuracy of attribution patching: Spearman rho of head_effects vs exact mean-ablation over
  all heads, and the overlap of their top-10 heads (by delta_loss, and by |delta_loss|).

Prompts: the first --docs documents of ../shared/data/pile_100.jsonl cut to --tokens tokens,
plus --probes repeated-token probes ([BOS] + 25 random tokens twice).

    .venv/bin/python benchmarks/circuits_speed.py [--docs 20 --probes 5 --tokens 64] [--gemma]
        [--heads-subset N] [--out results.csv]

CPU seconds (process time over all threads) are printed next to wall seconds because the
machine may be shared: on a loaded machine wall time says little.

Measured 2026-12-02 on the 2-core CPU machine, `--skip-weights` (25 prompts, 1535 tokens, all 270
heads, machine otherwise quiet): forward+loss 5.2-9.4 s wall; head_effects / forward 3.56 (CPU),
5.40 (wall); ablate-270 / 270 plain forwards 0.51; reuse / full rerun (heads of layers 0, 14, 29)
0.63, identical delta_loss; Spearman rho 0.619 (docs only 0.537, probes only 0.776), top-10
overlap 7/10 (signed), 6/10 (|delta_loss|). An earlier run under load on 54 heads
(`--heads-subset 5`) gave rho 0.787. weight_stats (quiet): SmolLM2 8.9 s, Gemma-3-270M 17.5 s.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from motif_widgets import circuits, load_hf_model, load_model
from motif_widgets.prompts import load_jsonl, repeated_token_probes, text_prompt

REPO = Path(__file__).resolve().parents[1]
PILE = REPO.parent / "shared" / "data" / "pile_100.jsonl"


class Timer:
    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        print(f"  {self.label}: {self.wall:.2f} s wall, {self.cpu:.2f} s CPU", flush=True)


def weight_timings(model, gemma: bool) -> None:
    print("weight_stats")
    with Timer("smollm2-135m weight_stats (270 heads)"):
        ws = circuits.weight_stats(model)
    print(f"    k_comp baseline {ws.attrs['k_comp_baseline']:.4f}; top K-composition: "
          + ", ".join(f"{h.split(':')[1]}<-{p.split(':')[1]} {v:.3f}" for h, v, p in
                      ws.nlargest(3, "k_comp_max")[["k_comp_max", "k_comp_partner"]].itertuples()))
    if gemma:
        hf, _ = load_hf_model("gemma-3-270m")
        with Timer("gemma-3-270m weight_stats (72 heads)"):
            gws = circuits.weight_stats(hf)
        print(f"    k_comp baseline {gws.attrs['k_comp_baseline']:.4f}, k_comp_max median {gws.k_comp_max.median():.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--probes", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--gemma", action="store_true", help="also time weight_stats on Gemma-3-270M")
    ap.add_argument("--skip-weights", action="store_true", help="skip the weight_stats timings")
    ap.add_argument("--heads-subset", type=int, default=0, help="exact-ablate only every N-th head (0: all heads)")
    ap.add_argument("--rerun-layers", default="0,14,29", help="layers whose heads are ablated with and without reuse")
    ap.add_argument("--out", default=None, help="CSV of head_effects and exact ablation per head")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*were truncated.*")

    model = load_model("smollm2-135m")
    if not args.skip_weights:
        weight_timings(model, args.gemma)

    texts = load_jsonl(PILE, limit=args.docs)
    prompts = [text_prompt(t, id=f"doc-{k:03d}") for k, t in enumerate(texts)] + repeated_token_probes(args.probes, 25)
    runner = circuits._Runner(model)
    batch = runner.batch(prompts, args.tokens)
    n_tok = int(batch.lengths.sum())
    print(f"\nprompts: {len(prompts)} ({args.docs} Pile docs <= {args.tokens} tokens, {args.probes} probes), {n_tok} tokens")

    fwd = []
    for k in range(2):
        with Timer(f"plain forward + loss #{k + 1}") as t:
            circuits._per_prompt_loss(runner.forward(batch.ids, batch.lengths), batch.ids, batch.loss_mask)
        fwd.append(t)
    f_wall, f_cpu = min(t.wall for t in fwd), min(t.cpu for t in fwd)

    with Timer("head_effects (attribution, all 270 heads)") as t_attr:
        est = circuits.head_effects(model, prompts, max_tokens=args.tokens)

    heads = list(est.index)
    if args.heads_subset > 1:  # every N-th head in layer-major order (N coprime to 9: all layers, all head slots)
        heads = heads[:: args.heads_subset]
    with Timer(f"ablate (exact mean-ablation, residual reuse) of {len(heads)} heads") as t_abl:
        exact = circuits.ablate(model, prompts, heads, max_tokens=args.tokens)

    layers = [int(x) for x in args.rerun_layers.split(",") if x.strip()]
    sub = [h for h in exact.index if int(exact.loc[h, "layer"]) in layers]
    with Timer(f"ablate {len(sub)} heads of layers {layers} with reuse") as t_sub_reuse:
        a = circuits.ablate(model, prompts, sub, max_tokens=args.tokens)
    with Timer(f"ablate {len(sub)} heads of layers {layers} rerunning the whole model") as t_sub_full:
        b = circuits.ablate(model, prompts, sub, max_tokens=args.tokens, reuse_residual=False)
    max_diff = float(np.abs(a.delta_loss.to_numpy() - b.delta_loss.to_numpy()).max())

    e = est.loc[exact.index, "delta_loss"].to_numpy()
    x = exact.delta_loss.to_numpy()
    rho = spearmanr(e, x).statistic
    top = lambda v, k=10: set(np.argsort(-v)[:k])  # noqa: E731
    overlap = len(top(e) & top(x))
    overlap_abs = len(top(np.abs(e)) & top(np.abs(x)))
    probes = [c for c in est.columns if c.startswith("delta_loss[probe")]
    docs = [c for c in est.columns if c.startswith("delta_loss[doc")]
    rho_docs = spearmanr(est.loc[exact.index, docs].mean(axis=1), exact[docs].mean(axis=1)).statistic
    rho_probes = spearmanr(est.loc[exact.index, probes].mean(axis=1), exact[probes].mean(axis=1)).statistic if probes else float("nan")

    print("\nratios (wall / CPU)")
    print(f"  head_effects / one forward+loss:           {t_attr.wall / f_wall:.2f} / {t_attr.cpu / f_cpu:.2f}   (goal <= 3)")
    print(f"  ablate {len(heads)} heads / {len(heads)} plain forwards:      {t_abl.wall / (len(heads) * f_wall):.2f} / {t_abl.cpu / (len(heads) * f_cpu):.2f}")
    print(f"  reuse / full rerun on layers {layers}:   {t_sub_reuse.wall / t_sub_full.wall:.2f} / {t_sub_reuse.cpu / t_sub_full.cpu:.2f}"
          f"   (max |difference| of delta_loss {max_diff:.2e})")
    print("\nattribution patching vs exact mean-ablation")
    print(f"  Spearman rho over {len(heads)} heads: {rho:.3f} (Pile docs only {rho_docs:.3f}, probes only {rho_probes:.3f})")
    print(f"  top-10 overlap: {overlap}/10 by delta_loss, {overlap_abs}/10 by |delta_loss|")
    print(f"  clean loss {exact.attrs['clean_loss']:.3f}; largest exact effects: "
          + ", ".join(f"{h.split(':')[1]} {v:+.3f} (est {est.loc[h, 'delta_loss']:+.3f})" for h, v in exact.delta_loss.nlargest(5).items()))
    if args.out:
        exact[["layer", "head_index"]].assign(exact=x, attribution=e).to_csv(args.out)
        print(f"  per-head values written to {args.out}")


if __name__ == "__main__":
    main()
