"""Saving and loading atlases: today's format (Parquet tables + checksummed manifest, atomic
replacement) against the format-1 layout of motif-widgets 0.1 (atlas.json + one compressed
npz), on the default SmolLM2-135M atlas (270 heads, 60 prompts) and on a synthetic
1,500-head atlas (tests/widgets/synthetic.py; 5 models x 12 layers x 25 heads, 134 prompts).
Sizes in MB, times as the median of --repeats runs, ratios within one run. The thumbnail
table is also compared with the layout of storage format 2 (one flat float16 column, zstd),
which format 3's per-prompt columns in row groups of heads replaced.

    python benchmarks/storage.py [--skip-smollm2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from motif_widgets import Atlas, load_model
from motif_widgets.store import _meta_doc

REPO = Path(__file__).resolve().parents[1]


def save_format1(atlas: Atlas, path: Path) -> None:
    """The 0.1 writer: one JSON document and one np.savez_compressed file, no checksums."""
    path.mkdir(parents=True, exist_ok=True)
    d = atlas.data
    (path / "atlas.json").write_text(json.dumps({**_meta_doc(d, asdict(atlas.config)), "format_version": 1}))
    np.savez_compressed(
        path / "arrays.npz", score_sums=d.score_sums, score_rows=d.score_rows, thumbnails=d.thumbnails,
        **{f"features.{k}": v for k, v in d.features.items()},
    )


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(name: str, atlas: Atlas, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        new, old = Path(tmp) / "new", Path(tmp) / "old"
        t_save_new = timed(lambda: atlas.save(new), repeats)
        t_save_old = timed(lambda: save_format1(atlas, old), repeats)
        t_load_new = timed(lambda: Atlas.load(new), repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_load_old = timed(lambda: Atlas.load(old), repeats)
        s_new, s_old = size_mb(new), size_mb(old)
        files = json.loads((new / "manifest.json").read_text())["files"]
        thumbs_new = files["thumbnails"]["bytes"] / 1e6
        flat = Path(tmp) / "thumbnails-format2.parquet"  # format 2's layout, as its writer made it
        pq.write_table(pa.table({"value": np.asarray(atlas.data.thumbnails).reshape(-1)}), flat, compression="zstd")
        thumbs_old = flat.stat().st_size / 1e6
    print(f"\n{name}: {atlas}")
    print(f"{'':24s}{'format 1 (npz)':>16s}{'parquet+manifest':>18s}{'ratio new/old':>15s}")
    print(f"{'size (MB)':24s}{s_old:16.2f}{s_new:18.2f}{s_new / s_old:15.2f}")
    print(f"{'save (s)':24s}{t_save_old:16.3f}{t_save_new:18.3f}{t_save_new / t_save_old:15.2f}")
    print(f"{'load incl. checks (s)':24s}{t_load_old:16.3f}{t_load_new:18.3f}{t_load_new / t_load_old:15.2f}")
    print(f"thumbnails {list(atlas.data.thumbnails.shape)} float16 ({atlas.data.thumbnails.nbytes / 1e6:.2f} MB): "
          f"{thumbs_new:.2f} MB in format 3 (a column per prompt) vs {thumbs_old:.2f} MB in format 2's flat column "
          f"(ratio {thumbs_new / thumbs_old:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-smollm2", action="store_true")
    args = parser.parse_args()
    if not args.skip_smollm2:
        atlas = Atlas.from_model(load_model("smollm2-135m"), prompts=None, progress=False)
        measure("SmolLM2-135M, default prompts", atlas, args.repeats)
    spec = importlib.util.spec_from_file_location("synthetic", REPO / "tests" / "widgets" / "synthetic.py")
    synthetic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synthetic)
    measure("synthetic 1,500 heads", synthetic.feature_atlas(5, 12, 25, 134, n_thumbnail_tokens=64), args.repeats)


if __name__ == "__main__":
    main()
