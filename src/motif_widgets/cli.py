"""Command line: compute an atlas of a model and report each head's type and neighbours.

    motif-widgets atlas                       # SmolLM2-135M, default prompts -> out/smollm2-135m
    motif-widgets atlas gemma-3-270m --prompts ../shared/data/pile_100.jsonl --n-prompts 50
    motif-widgets atlas toy-induction --html out/toy.html   # token-id prompts; offline explorer
    motif-widgets atlas smollm2-135m gemma-3-270m --ray       # both models on a local Ray cluster
    motif-widgets models                      # the models load_model knows

Every argument and the output paths are checked before the model is loaded. A user error
prints one line, ``motif-widgets: error: ...``, to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

PROG = "motif-widgets"
#: what `motif-widgets atlas` writes into its output folder (besides an optional .html export)
OUTPUT_ENTRIES = ("atlas", "head_table.csv", "summary.csv")
#: token-id prompts made for a model without a tokenizer (the toy model), besides the probes
DEFAULT_TOKEN_PROMPTS = 24
DEFAULT_DOCUMENTS = 100


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line too, same status
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ---------------------------------------------------------------------------- checks
def _at_least(name: str, value, minimum: int) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{name} must be >= {minimum}, got {value}")


def _max_tokens(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: an integer >= 1 or 'none'") from None


def _check_device(device: str) -> str:
    import torch

    m = re.fullmatch(r"cpu|cuda(?::(\d+))?", device)
    if not m:
        raise UsageError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__})")
        index, count = int(m.group(1) or 0), torch.cuda.device_count()
        if index >= count:
            raise UsageError(f"--device {device}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return device


def _check_model(name: str) -> None:
    import importlib.util

    from .models import PRETRAINED, TOY_MODELS

    if name in TOY_MODELS:
        return
    if name not in PRETRAINED:
        raise UsageError(f"unknown model {name!r}; available: {', '.join(sorted(PRETRAINED) + sorted(TOY_MODELS))}")
    spec = PRETRAINED[name]
    if importlib.util.find_spec(spec.package) is None:
        raise UsageError(f"model {name!r} needs the package {spec.package!r}; install it with: {spec.install}")


def _writable_folder(folder: Path, what: str) -> None:
    """Create `folder` if needed and prove it writable by creating a file in it."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{what} {folder} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UsageError(f"{what} {folder} cannot be created or written: {e.strerror or e}") from None


def _looks_like_atlas(folder: Path) -> bool:
    """An atlas folder as Atlas.save writes it (either format), or an empty folder."""
    names = {e.name for e in folder.iterdir()}
    return not names or "manifest.json" in names or "plan.json" in names or {"atlas.json", "arrays.npz"} <= names


def _check_out(out: Path, ray: bool | None = None) -> None:
    """The output folder: new, empty, or holding only an earlier run's output."""
    if out.exists() and out.is_dir():
        foreign = sorted(
            e.name for e in out.iterdir() if e.name not in OUTPUT_ENTRIES and not (e.is_file() and e.suffix == ".html")
        )
        if foreign:
            raise UsageError(
                f"--out {out} holds files that are not atlas output ({', '.join(foreign[:5])}); "
                "choose a new or empty folder"
            )
        for name in OUTPUT_ENTRIES:
            entry = out / name
            if name == "atlas" and entry.exists() and not (entry.is_dir() and _looks_like_atlas(entry)):
                raise UsageError(f"--out {out}: {entry} is not a saved atlas; choose a new or empty folder")
            if name == "atlas" and entry.is_dir() and any(entry.iterdir()) and ray is not None:
                sharded = (entry / "plan.json").exists()
                if sharded != ray:
                    kind = "a sharded (--ray) atlas" if sharded else "a single-process atlas"
                    raise UsageError(f"--out {out}: {entry} holds {kind}; choose a new folder"
                                     f"{' or add --ray' if sharded else ' or leave out --ray'}")
            if name != "atlas" and entry.exists() and not entry.is_file():
                raise UsageError(f"--out {out}: {entry} is not a file; choose a new or empty folder")
    _writable_folder(out, "--out")


def _check_html(path: Path) -> None:
    if path.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--html writes an .html file, got {str(path)!r}")
    if path.is_dir():
        raise UsageError(f"--html {path} is a folder; give a file name ending in .html")
    try:
        from .widgets import HeadExplorer  # noqa: F401
    except ImportError as e:
        raise UsageError(f"--html needs the widget libraries ({e}); install motif-widgets with its widget extras") from None


def _check_ray(args: argparse.Namespace) -> None:
    """--ray, --address, --workers, --shard-size; the cluster address must answer."""
    if not args.ray:
        for flag, value in (("--address", args.address), ("--workers", args.workers), ("--shard-size", args.shard_size)):
            if value is not None:
                raise UsageError(f"{flag} applies to distributed runs; add --ray")
        return
    _at_least("--workers", args.workers, 1)
    _at_least("--shard-size", args.shard_size, 1)
    if args.shard_size is not None and args.shard_size % args.batch_size:
        raise UsageError(f"--shard-size must be a multiple of --batch-size ({args.batch_size}), got {args.shard_size}")
    if args.device != "cpu":
        raise UsageError("--device does not apply with --ray: workers use the cluster's GPUs when it has them")
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise UsageError("--ray needs Ray: pip install ray")
    if args.address is not None:
        from .distributed import check_address

        try:
            check_address(args.address)
        except (ConnectionError, ValueError) as e:
            raise UsageError(f"--address: {e}") from None


def _check_args(args: argparse.Namespace) -> None:
    _at_least("--n-prompts", args.n_prompts, 1)
    _at_least("--probes", args.probes, 0)
    _at_least("--max-tokens", args.max_tokens, 1)
    _at_least("--batch-size", args.batch_size, 1)
    _at_least("--k", args.k, 1)
    _at_least("--top", args.top, 1)
    for model in args.models:
        _check_model(model)
    from .models import TOY_MODELS

    if len(args.models) > 1 and any(m in TOY_MODELS for m in args.models):
        raise UsageError(f"{', '.join(m for m in args.models if m in TOY_MODELS)} has no tokenizer, so it cannot share "
                         "text prompts with other models; compute its atlas on its own")
    if len(set(args.models)) != len(args.models):
        raise UsageError(f"a model is named twice: {' '.join(args.models)}")
    _check_ray(args)
    from .features import available_feature_sets

    if args.feature_set not in available_feature_sets():
        raise UsageError(f"--feature-set must be one of {sorted(available_feature_sets())}, got {args.feature_set!r}")
    if args.prompts != "default":
        path = Path(args.prompts)
        if not path.is_file():
            raise UsageError(f"--prompts {path}: no such file (give 'default' or a JSONL file with a 'text' field)")
        if not os.access(path, os.R_OK):
            raise UsageError(f"--prompts {path}: not readable")
        if args.models[0] in TOY_MODELS:
            raise UsageError(f"model {args.models[0]!r} has no tokenizer, so it cannot read text prompts; leave out --prompts")
    args.device = _check_device(args.device)
    if args.html is not None:
        _check_html(args.html)
    _check_out(args.out, ray=args.ray)  # the checks that create folders come last
    if args.html is not None:
        _writable_folder(args.html.parent, "--html folder")


# ---------------------------------------------------------------------------- prompts
def _text_prompts(args: argparse.Namespace) -> list:
    from .prompts import default_texts, pile_prompts, repeated_token_probes

    if args.prompts == "default":
        return default_texts()[: args.n_prompts] + repeated_token_probes(args.probes)
    return pile_prompts(args.prompts, n=args.n_prompts or DEFAULT_DOCUMENTS, n_probes=args.probes)


def _token_prompts(source, n: int, n_probes: int, max_tokens: int | None) -> list:
    """For a model without a tokenizer: repeated-token probes plus random-token prompts of
    its vocabulary (BOS and special ids left out), of lengths spread up to its context."""
    import numpy as np

    from .prompts import repeated_token_probes, token_prompt

    limit = max(1, min(x for x in (source.n_ctx, max_tokens, 128) if x is not None) - 1)  # room for BOS
    excluded = source.special_ids() | ({source.bos_token_id} if source.bos_token_id is not None else set())
    pool = np.setdiff1d(np.arange(source.vocab_size), list(excluded))
    rng = np.random.default_rng(0)
    lengths = np.linspace(min(16, limit), limit, n).round().astype(int) if n > 1 else [limit]
    texts = [token_prompt(rng.choice(pool, size=int(m)), id=f"rand-{k:03d}") for k, m in enumerate(lengths)]
    return repeated_token_probes(n_probes, min(25, max(2, limit // 2))) + texts


# ---------------------------------------------------------------------------- commands
def _atlas(args: argparse.Namespace) -> int:
    args.models = args.model or ["smollm2-135m"]
    args.out = Path(args.out or f"out/{'+'.join(args.models)}")
    args.html = Path(args.html) if args.html is not None else None
    _check_args(args)
    from . import Atlas, load_model
    from .sources import source_for

    try:
        prompts = _text_prompts(args) if args.prompts != "default" else None
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise UsageError(f"--prompts {args.prompts}: {e}") from None

    t0 = time.perf_counter()
    model = load_model(args.models[0], backend=args.backend, device=args.device)
    t_load = time.perf_counter() - t0
    source = source_for(model)
    try:  # the library's input checks, before any computing
        if prompts is None and source.tokenizer is None:  # e.g. the toy model: token ids of its vocabulary
            prompts = _token_prompts(source, args.n_prompts or DEFAULT_TOKEN_PROMPTS, args.probes, args.max_tokens)
        elif prompts is None:
            prompts = _text_prompts(args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source.tokenize(prompts, max_tokens=args.max_tokens)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None

    t1 = time.perf_counter()
    options = dict(feature_set=args.feature_set, batch_size=args.batch_size, max_tokens=args.max_tokens, progress=not args.quiet)
    if args.ray:
        model = source = None  # the workers load their own copies
        atlas, report = _atlas_on_ray(args, prompts, options)
    else:
        atlas = Atlas.from_model(model, prompts, **options)
        if len(args.models) > 1:
            del model, source
            parts = [atlas] + [
                Atlas.from_model(load_model(name, backend=args.backend, device=args.device), prompts, **options)
                for name in args.models[1:]
            ]
            atlas = Atlas.merge(parts)
    t_atlas = time.perf_counter() - t1
    out = args.out
    if not args.ray:
        atlas.save(out / "atlas")
    table = atlas.head_table()
    table.to_csv(out / "head_table.csv")
    summary = atlas.summary(k=args.k)
    summary.to_csv(out / "summary.csv")
    written = "atlas/, head_table.csv, summary.csv"
    if args.html is not None:
        from .widgets import HeadExplorer

        HeadExplorer(atlas).save_html(args.html)

    print(f"\n{atlas}")
    if args.ray:
        print(f"Ray: {report}")
    print(f"model load {t_load:.1f} s, atlas {t_atlas:.1f} s; saved to {out}/ ({written})")
    if args.html is not None:
        print(f"explorer: {args.html}")
    scores = atlas.head_scores()
    near = summary["nearest"]
    pd.set_option("display.width", 160)
    for score in scores.columns:
        top = scores[score].sort_values(ascending=False).head(args.top)
        rows = pd.DataFrame({score: top.round(3), f"nearest {args.k}": near.loc[top.index]})
        print(f"\nTop {args.top} heads by {score}:")
        print(rows.to_string())
    if "family" in table.columns:
        counts = table["family"].value_counts()
        print(f"\nFamilies ({len(counts)}, from the head distances): " + "; ".join(f"{f} {n}" for f, n in counts.items()))
    return 0


def _atlas_on_ray(args: argparse.Namespace, prompts: list, options: dict):
    """Collect on a Ray cluster into the sharded folder <out>/atlas (resuming a run there)."""
    from . import Atlas, distributed

    feature_set = options.pop("feature_set")
    try:
        report = distributed.collect_atlas(
            args.models, prompts, args.out / "atlas", feature_sets=[feature_set], workers=args.workers,
            address=args.address, shard_size=args.shard_size, backend=args.backend, **options,
        )
    except (ValueError, TypeError, ConnectionError) as e:  # checked before any shard runs
        raise UsageError(str(e)) from None
    return Atlas.load(args.out / "atlas"), report


def _models(_: argparse.Namespace) -> int:
    from .models import available_models

    for name, desc in available_models().items():
        print(f"{name:15s} {desc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("atlas", help="compute and save an atlas, print the heads of each type")
    p.add_argument("model", nargs="*", help="one or more names from `motif-widgets models` (default smollm2-135m; "
                   "several share the prompts and one embedding)")
    p.add_argument("--backend", default="bridge", choices=["bridge", "hooked"])
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--prompts", default="default", help="'default' or a JSONL file with a 'text' field")
    p.add_argument(
        "--n-prompts", type=int, default=None,
        help=f"documents read from --prompts (default {DEFAULT_DOCUMENTS}); with 'default', the first N of the "
        f"48 default texts; for a model without a tokenizer, random-token prompts (default {DEFAULT_TOKEN_PROMPTS})",
    )
    p.add_argument("--probes", type=int, default=12, help="repeated-random-token probes to add (>= 0)")
    p.add_argument("--max-tokens", type=_max_tokens, default=128, help="longest prompt in tokens (>= 1, or 'none': "
                   "the model's context)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--feature-set", default="motifs")
    p.add_argument("--k", type=int, default=3, help="nearest heads listed per head (>= 1)")
    p.add_argument("--top", type=int, default=5, help="heads listed per head type (>= 1)")
    p.add_argument("--out", default=None, help="output folder (default out/<model>): new, empty or an earlier output")
    p.add_argument("--html", default=None, metavar="PATH", help="also write the offline explorer (one .html file)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--ray", action="store_true", help="collect on a Ray cluster: (model, prompt shard) tasks, "
                   "resumable; <out>/atlas becomes a sharded folder")
    p.add_argument("--address", default=None, help="with --ray: an existing cluster (e.g. auto, host:6379, "
                   "ray://host:10001); default: a local cluster on this machine")
    p.add_argument("--workers", type=int, default=None, help="with --ray: workers per model (default: one per CPU)")
    p.add_argument("--shard-size", type=int, default=None, help="with --ray: prompts per shard, a multiple of "
                   "--batch-size (default 4 batches)")
    p.set_defaults(func=_atlas)
    m = sub.add_parser("models", help="list the models load_model knows")
    m.set_defaults(func=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for user errors, reported in one line)."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
