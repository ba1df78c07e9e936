"""Command line: compute an atlas of a model and report each head's type and neighbours.

    motif-widgets atlas                       # SmolLM2-135M, default prompts -> out/smollm2-135m
    motif-widgets atlas gemma-3-270m --prompts ../shared/data/pile_100.jsonl --n-prompts 50
    motif-widgets models                      # the models load_model knows
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd


def _atlas(args: argparse.Namespace) -> int:
    from . import Atlas, load_model
    from .prompts import default_prompts, pile_prompts

    t0 = time.perf_counter()
    model = load_model(args.model, backend=args.backend)
    t_load = time.perf_counter() - t0
    if args.prompts == "default":
        prompts = default_prompts(n_probes=args.probes)
    else:
        prompts = pile_prompts(args.prompts, n=args.n_prompts, n_probes=args.probes)
    t1 = time.perf_counter()
    atlas = Atlas.from_model(
        model, prompts, feature_set=args.feature_set, batch_size=args.batch_size, max_tokens=args.max_tokens,
        progress=not args.quiet,
    )
    t_atlas = time.perf_counter() - t1
    out = Path(args.out or f"out/{args.model}")
    atlas.save(out / "atlas")
    table = atlas.head_table()
    table.to_csv(out / "head_table.csv")
    summary = atlas.summary(k=args.k)
    summary.to_csv(out / "summary.csv")

    print(f"\n{atlas}")
    print(f"model load {t_load:.1f} s, atlas {t_atlas:.1f} s; saved to {out}/ (atlas/, head_table.csv, summary.csv)")
    scores = atlas.head_scores()
    near = summary["nearest"]
    pd.set_option("display.width", 160)
    for score in scores.columns:
        top = scores[score].sort_values(ascending=False).head(args.top)
        rows = pd.DataFrame({score: top.round(3), f"nearest {args.k}": near.loc[top.index]})
        print(f"\nTop {args.top} heads by {score}:")
        print(rows.to_string())
    return 0


def _models(_: argparse.Namespace) -> int:
    from .models import available_models

    for name, desc in available_models().items():
        print(f"{name:15s} {desc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="motif-widgets", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("atlas", help="compute and save an atlas, print the heads of each type")
    p.add_argument("model", nargs="?", default="smollm2-135m", help="a name from `motif-widgets models`")
    p.add_argument("--backend", default="bridge", choices=["bridge", "hooked"])
    p.add_argument("--prompts", default="default", help="'default' or a JSONL file with a 'text' field")
    p.add_argument("--n-prompts", type=int, default=100, help="documents to read from --prompts")
    p.add_argument("--probes", type=int, default=12, help="repeated-random-token probes to add")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--feature-set", default="motifs")
    p.add_argument("--k", type=int, default=3, help="nearest heads listed per head")
    p.add_argument("--top", type=int, default=5, help="heads listed per head type")
    p.add_argument("--out", default=None, help="output folder (default out/<model>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_atlas)
    m = sub.add_parser("models", help="list the models load_model knows")
    m.set_defaults(func=_models)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
