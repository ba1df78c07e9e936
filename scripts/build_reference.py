"""Build src/motif_widgets/data/reference_heads.parquet: the heads of the toy model, SmolLM2-135M
and Gemma-3-270M with their probe-measured types and motif profiles (see motif_widgets.reference).

    python scripts/build_reference.py [--pile ../shared/data/pile_100.jsonl] [--n 100]

Atlases: the first --n Pile documents (<= 128 tokens) + 12 repeated-random-token probes for the
real models; 24 random-token prompts + 12 probes for the toy model. Rerun whenever the motifs
feature set's revision changes (the file records the revision it was built under).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from motif_widgets import Atlas, get_feature_set, load_model
from motif_widgets.prompts import pile_prompts, repeated_token_probes
from motif_widgets.reference import REFERENCE_FILE, reference_rows

REPO = Path(__file__).resolve().parents[1]


def toy_prompts() -> list:
    rng = np.random.default_rng(0)
    return repeated_token_probes(12) + [list(rng.integers(5, 40, 30)) for _ in range(24)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pile", type=Path, default=REPO.parent / "shared" / "data" / "pile_100.jsonl")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--atlases", type=Path, default=None,
                        help="reuse saved atlases <dir>/<model> of these prompts (e.g. out/validity) when current")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rows = [reference_rows(Atlas.from_model(load_model("toy-induction"), toy_prompts(), progress=False))]
    prompts = pile_prompts(args.pile, n=args.n)
    for name in ("smollm2-135m", "gemma-3-270m"):
        saved = args.atlases / name if args.atlases is not None else None
        atlas = Atlas.load(saved) if saved is not None and (saved / "manifest.json").exists() else None
        if atlas is None or atlas.prompt_ids != [p.id for p in prompts] or atlas.outdated_feature_sets():
            atlas = Atlas.from_model(load_model(name), prompts, progress=False)
        rows.append(reference_rows(atlas))
        print(name, rows[-1]["label"].value_counts().to_dict())
    table = pd.concat(rows).reset_index()
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"motifs_revision": get_feature_set("motifs").revision.encode()})
    out = REPO / "src" / "motif_widgets" / "data" / REFERENCE_FILE
    pq.write_table(arrow, out, compression="zstd")
    print(f"{len(table)} reference heads -> {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
