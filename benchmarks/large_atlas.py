"""Large atlases out of core: load, embed, eq. 3 distances, head map and similar-head search
at 1,000 / 3,000 / 10,000 heads x 500 prompts, each size in a fresh subprocess, with the
cost of every stage, its growth with the number of heads and the peak RSS (VmHWM).

    python benchmarks/large_atlas.py [--quick] [--sizes 1000 3000 10000] [--prompts 500]
                                     [--work DIR] [--source PATH] [--exact-isomap-sizes 3000]
                                     [--code DIR] [--no-check]
    python benchmarks/large_atlas.py --exact-isomap /tmp/motif-large-atlas/h10000-p500
    python benchmarks/large_atlas.py --sizes 10000 --sharded 10 --no-check   # as a distributed run writes it

How the synthetic atlases are made (features are synthetic, the rest is real data reused):
from the saved SmolLM2-135M atlas (270 heads x 112 prompts, /work/main/out/length/validity/
smollm2-135m, or --source), each synthetic prompt j takes a source prompt (j itself for the
first 112, then seeded random ones; text and per-model tokens are the source's) and each
synthetic head a pair of seeded random source heads h1, h2 and a weight w ~ U(0, 0.5): its
`motifs` features on prompt j are (1 - w) f[h1, s_j] + w f[h2, s_j] plus Gaussian noise of
5% of each feature's std over the source atlas. Head-type score sums / rows are h1's.
Thumbnails: every prompt at 32 tokens, as a collector's default atlas keeps them
(collect.DEFAULT_THUMBNAILS), resampled from the source's 64-token thumbnails (6 prompts):
prompt j of head i is the 32 x 32 diagonal window at offset (j // 6) mod 33 of the source
thumbnail of slot j mod 6, mixed (1 - v) h1 + v h2 with v ~ U(0, 0.5) seeded per (head,
prompt), in float16, cut to the prompt's length (zeros beyond, as the collector leaves them).
Mixing per (head, prompt) leaves no repeated cells, so Parquet compresses them about as much
as real thumbnails (2.0x for the default SmolLM2 atlas, benchmarks/storage.py: half of each
corner is the causal zeros).
They are generated head group by head group while the atlas is saved (a lazy array-like that
AtlasData takes in place of the [H, P, 32, 32] array: 10 GB at 10k heads x 500 prompts).
Heads are grouped into synthetic models of 1,000 heads (40 layers x 25 heads).
Only the `motifs` set (16 features) is stored. Atlases are saved with AtlasConfig(large=True)
so every size takes the same (out-of-core) path, and loaded with Atlas.load(path, lazy=True).

Stages, each timed in the measuring subprocess (numba kernels are compiled and cached by a
tiny warm-up call before timing; its time is printed as `compile`):
  load       Atlas.load: manifest + checksums of every file, meta, scores; features and
             thumbnails stay on disk (store.LazyFeatures / LazyThumbnails)
  embed      atlas.points: streamed PCA (one pass over chunks of heads) + chunked transform
  distances  atlas.distances: fused float32 eq. 3 kernel, [H, H] float32
  index      atlas.neighbors(): the top-32 neighbour index, chunked
  head map   atlas.head_map("isomap"): landmark Isomap (1,000 landmarks) on the 16-NN graph
  families   atlas.families(): ward clusters (silhouette-chosen count) and their names
  similar    atlas.similar_heads(head, k=10): median of 50 queries (index + table)
  widgets    SimilarHeads + PatternCloud built on the atlas (pattern points capped at 200k;
             SimilarHeads reads the thumbnails it ships: 40 MB of float16, a few prompts' columns)
  thumbs     atlas.thumbnails(head): one head's thumbnails of every prompt (median of 5 heads)
--code DIR measures the motif_widgets of another checkout (DIR/src), e.g. the code before
storage format 3, which reads thumbnails whole: the build then holds them in memory.
Accuracy, on the size given by --check-heads (default 1,000; float64 is affordable there):
float32-vs-float64 eq. 3 (max relative error, top-10 neighbour overlap), streamed-vs-sklearn
PCA (max error of components, explained variance ratios and points) and landmark-vs-exact
Isomap with the landmark share used at 10k heads (a tenth): Procrustes disparity and the
10-NN overlap of the maps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE = Path("/work/main/out/length/validity/smollm2-135m")
HEADS_PER_MODEL, LAYERS = 1000, 40


def vm_hwm_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmHWM")


# ---------------------------------------------------------------------------- build
THUMBNAIL_TOKENS = 32


class SyntheticThumbnails:
    """[H, P, 32, 32] float16 thumbnails made on demand from a source atlas's 64-token ones
    (module docstring); AtlasData keeps it where the array goes and save_atlas streams it.

    Args:
        source: [S, T, K0, K0] the source thumbnails (K0 >= 32); h1, h2: [H] source heads;
        mix: [H, P] float32 weights of h2; lengths: [P] tokens of each synthetic prompt.
    """

    dtype = np.dtype(np.float16)
    ndim = 4

    def __init__(self, source: np.ndarray, h1: np.ndarray, h2: np.ndarray, mix: np.ndarray, lengths: np.ndarray,
                 prompts: np.ndarray | None = None):
        k, t = THUMBNAIL_TOKENS, source.shape[1]
        n_offsets = source.shape[-1] - k + 1
        j = np.arange(mix.shape[1]) if prompts is None else np.asarray(prompts)  # [P] which synthetic prompts
        mix, lengths = mix[:, j], np.asarray(lengths)[j]
        p = len(j)
        self.window = (j % t) * n_offsets + (j // t) % n_offsets  # [P] window of each prompt
        windows = np.stack([source[:, s, o : o + k, o : o + k] for s in range(t) for o in range(n_offsets)], 1)
        self.windows = windows.astype(np.float32)  # [S, T * offsets, 32, 32]
        r = np.arange(k)
        m = np.minimum(np.asarray(lengths), k)[:, None, None]
        self.inside = ((r[:, None] < m) & (r[None, :] < m)).astype(np.float32)  # [P, 32, 32]
        self.h1, self.h2, self.mix = h1, h2, mix
        self.shape = (len(h1), p, k, k)

    def read_heads(self, start: int, stop: int) -> np.ndarray:
        a, b = self.windows[self.h1[start:stop]][:, self.window], self.windows[self.h2[start:stop]][:, self.window]
        v = self.mix[start:stop, :, None, None]
        return (((1 - v) * a + v * b) * self.inside).astype(np.float16)

    def __array__(self, dtype=None, copy=None):
        out = self.read_heads(0, self.shape[0])
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key):  # heads by a slice (how a JoinedArray reads a part), the rest as numpy
        key = key if isinstance(key, tuple) else (key,)
        heads = key[0] if isinstance(key[0], slice) else slice(None)
        start, stop, _ = heads.indices(self.shape[0])
        block = self.read_heads(start, stop)
        return block[(slice(None),) + key[1:]] if isinstance(key[0], slice) else block[key]


def build(n_heads: int, n_prompts: int, out: Path, source: Path, seed: int = 0, shards: int = 0) -> Path:
    """Save a synthetic atlas of n_heads x n_prompts made from the source atlas (module docstring);
    with shards > 0, as the folder a distributed run writes: each model's prompts in that many
    shards (slices of the longest-first order), each an ordinary saved atlas, and plan.json."""
    from motif_widgets.atlas import AtlasConfig
    from motif_widgets.atlas_data import AtlasData, ModelInfo, heads_frame
    from motif_widgets.prompts import Prompt

    import pandas as pd

    src, _ = AtlasData.load(source)
    rng = np.random.default_rng(seed)
    sp = src.n_prompts
    s_of = np.concatenate([np.arange(min(sp, n_prompts)), rng.integers(0, sp, max(0, n_prompts - sp))])  # [P]
    prompts = []
    for j, s in enumerate(s_of):
        q = src.prompts[s]
        prompts.append(Prompt(f"syn{j:04d}", kind=q.kind, text=q.text, token_ids=q.token_ids,
                              probe_half_length=q.probe_half_length, probe_seed=q.probe_seed))
    info = next(iter(src.models.values()))
    n_models = -(-n_heads // HEADS_PER_MODEL)
    if n_heads % HEADS_PER_MODEL and n_heads > HEADS_PER_MODEL:
        raise ValueError(f"n_heads must be at most {HEADS_PER_MODEL} or a multiple of it")
    per_model = min(n_heads, HEADS_PER_MODEL)
    layers = LAYERS if per_model % LAYERS == 0 else 1
    models, frames = {}, []
    for m in range(n_models):
        name = f"syn{m:02d}"
        models[name] = ModelInfo(name, layers, per_model // layers, info.lengths[s_of], [info.token_ids[s] for s in s_of],
                                 [info.token_strs[s] for s in s_of], info.has_bos[s_of], info.truncated[s_of])
        frames.append(heads_frame(name, layers, per_model // layers))
    f = src.features["motifs"]  # [270, 112, 16]
    noise = 0.05 * f.reshape(-1, f.shape[-1]).std(0)
    h1 = rng.integers(0, src.n_heads, n_heads)
    h2 = rng.integers(0, src.n_heads, n_heads)
    w = rng.uniform(0, 0.5, n_heads)[:, None, None]
    mix = rng.uniform(0, 0.5, (n_heads, n_prompts)).astype(np.float32)
    thumbs = SyntheticThumbnails(src.thumbnails, h1, h2, mix, info.lengths[s_of])
    from motif_widgets import store

    if not hasattr(store, "LazyThumbnails"):  # code before storage format 3 (--code): in memory
        thumbs = np.asarray(thumbs)
    feats = np.empty((n_heads, n_prompts, f.shape[-1]))
    for a in range(0, n_heads, 500):  # in blocks: bounded temporaries
        b = slice(a, a + 500)
        mix = (1 - w[b]) * f[h1[b]][:, s_of] + w[b] * f[h2[b]][:, s_of]
        feats[b] = mix + rng.standard_normal(mix.shape) * noise
    if shards:
        return _save_sharded(out, shards, prompts, models, frames, feats, src, s_of, h1, h2, thumbs.mix, info.lengths[s_of])
    data = AtlasData(
        heads=pd.concat(frames, ignore_index=True),
        prompts=prompts,
        models=models,
        features={"motifs": feats},
        feature_names={"motifs": src.feature_names["motifs"]},
        score_sums=src.score_sums[h1][:, s_of],
        score_rows=src.score_rows[h1][:, s_of],
        thumbnails=thumbs,
        thumbnail_prompts=np.arange(n_prompts),
        meta={"synthetic": f"benchmarks/large_atlas.py from {source} (seed {seed})"},
        feature_revisions={"motifs": src.feature_revisions["motifs"]},
    )
    return data.save(out, config=asdict(AtlasConfig(large=True)))


def _save_sharded(out: Path, shards: int, prompts, models, frames, feats, src, s_of, h1, h2, mix, lengths) -> Path:
    """The synthetic atlas as a distributed run's folder (build, shards > 0)."""
    from motif_widgets import distributed
    from motif_widgets.atlas import AtlasConfig
    from motif_widgets.atlas_data import AtlasData

    import shutil

    shutil.rmtree(out, ignore_errors=True)  # a previous run's folder (collect_atlas would refuse other prompts)
    size = -(-len(prompts) // shards)
    order = sorted(range(len(prompts)), key=lambda k: -int(lengths[k]))
    parts = [order[a : a + size] for a in range(0, len(order), size)]
    revisions = {"motifs": src.feature_revisions["motifs"]}
    settings = {"feature_sets": ["motifs"], "feature_revisions": revisions, "batch_size": 8, "shard_size": size,
                "max_tokens": None, "prepend_bos": True, "dtype": "float64",
                "thumbnail_ids": [q.id for q in prompts], "thumbnail_tokens": THUMBNAIL_TOKENS}
    plan = distributed.Plan(prompts, settings, asdict(AtlasConfig(large=True)))
    start = 0
    for (name, info), heads in zip(models.items(), frames):
        block = slice(start, start + len(heads))
        start += len(heads)
        plan.models[name] = {"loader": "synthetic", "n_layers": info.n_layers, "n_heads": info.n_heads, "shards": parts}
        for k, idx in enumerate(parts):
            thumbs = SyntheticThumbnails(src.thumbnails, h1[block], h2[block], mix[block], lengths, prompts=idx)
            AtlasData(
                heads=heads, prompts=[prompts[i] for i in idx], models={name: info.take(np.array(idx))},
                features={"motifs": feats[block][:, idx]}, feature_names={"motifs": src.feature_names["motifs"]},
                score_sums=src.score_sums[h1[block]][:, s_of[idx]], score_rows=src.score_rows[h1[block]][:, s_of[idx]],
                thumbnails=thumbs, thumbnail_prompts=np.arange(len(idx)),
                meta={"synthetic": "benchmarks/large_atlas.py, sharded"}, feature_revisions=revisions,
            ).save(distributed.shard_folder(out, name, k))
    distributed._write_plan(out, plan)
    return out


# ---------------------------------------------------------------------------- measure (subprocess)
def measure(path: Path) -> dict:
    """Time each stage on a saved atlas; run in a fresh process (VmHWM is a high-water mark)."""
    t = time.perf_counter()
    from motif_widgets import Atlas
    from motif_widgets.distance import paired_distances
    from motif_widgets.widgets import PatternCloud, SimilarHeads

    out = {"import": time.perf_counter() - t}
    t = time.perf_counter()
    paired_distances(np.random.default_rng(0).standard_normal((8, 3, 4)), dtype="float32")  # compile / load cache
    out["compile"] = time.perf_counter() - t

    def stage(name, fn):
        t = time.perf_counter()
        value = fn()
        out[name] = time.perf_counter() - t
        return value

    atlas = stage("load", lambda: Atlas.load(path, lazy=True))  # lazy at every size: one path
    out["lazy"] = type(atlas.features).__name__
    out["lazy_thumbs"] = type(atlas.data.thumbnails).__name__
    stage("embed", lambda: atlas.points)
    stage("distances", lambda: atlas.distances)
    stage("index", lambda: atlas.neighbors())
    stage("head map", lambda: atlas.head_map("isomap", 3))
    stage("families", lambda: atlas.families())
    rng = np.random.default_rng(1)
    times = []
    for i in rng.integers(0, len(atlas.head_ids), 50):
        t = time.perf_counter()
        atlas.similar_heads(int(i), k=10)
        times.append(time.perf_counter() - t)
    out["similar"] = float(np.median(times))
    out["peak_mb_core"] = vm_hwm_mb()
    similar = stage("widgets", lambda: (SimilarHeads(atlas), PatternCloud(atlas)))
    out["cloud_points"] = int(similar[1].pattern_points.shape[0])
    out["shipped_thumbs"] = list(similar[0].thumbnails.shape)
    times = []
    for i in rng.integers(0, len(atlas.head_ids), 5):
        t = time.perf_counter()
        atlas.thumbnails(int(i))
        times.append(time.perf_counter() - t)
    out["thumbs"] = float(np.median(times))
    out["shipped_hh"] = any(
        isinstance(getattr(w, n), np.ndarray) and getattr(w, n).ndim >= 2 and getattr(w, n).shape[:2] == (len(atlas.head_ids),) * 2
        for w in similar for n in w.keys
    )
    out["peak_mb"] = vm_hwm_mb()
    out["heads"], out["prompts"] = len(atlas.head_ids), len(atlas.prompts)
    return out


def exact_isomap(path: Path) -> dict:
    """Time and peak RSS of the exact (scikit-learn) Isomap on the float32 distances, for
    comparison with the landmark Isomap of the large path."""
    from motif_widgets import Atlas
    from motif_widgets.projection import head_map

    atlas = Atlas.load(path, lazy=True)
    d = atlas.distances
    before = vm_hwm_mb()
    t = time.perf_counter()
    head_map(d, "isomap", 3, 16)
    return {"heads": len(d), "exact_isomap_s": time.perf_counter() - t, "peak_mb_before": before, "peak_mb": vm_hwm_mb()}


def check(path: Path) -> dict:
    """float32 vs float64 eq. 3, streamed vs sklearn PCA, landmark vs exact Isomap."""
    from scipy.spatial import procrustes

    from motif_widgets import Atlas, PatternEmbedding
    from motif_widgets.distance import nearest_heads, paired_distances
    from motif_widgets.projection import head_map, landmark_isomap

    atlas = Atlas.load(path, lazy=False)
    exact = atlas.configure(large=False)
    h, p, f = exact.features.shape
    out = {"heads": h, "prompts": p}
    ref, streamed = exact.embedding, atlas.embedding  # sklearn PCA / streamed (large path)
    x = exact.features.reshape(h * p, f)
    blocks = [x[s : s + (1 << 18)] for s in range(0, len(x), 1 << 18)]
    t = time.perf_counter()  # warm timings: both fitted once above
    PatternEmbedding(**ref.get_params()).fit(x, feature_names=exact.feature_names)
    out["pca_sklearn_s"] = time.perf_counter() - t
    t = time.perf_counter()
    PatternEmbedding(**ref.get_params()).fit_chunks(blocks, feature_names=exact.feature_names)
    out["pca_streamed_s"] = time.perf_counter() - t
    out["pca_components_err"] = float(np.abs(ref.components_ - streamed.components_).max())
    out["pca_ratio_err"] = float(np.abs(ref.explained_variance_ratio_ - streamed.explained_variance_ratio_).max())
    pts_ref = ref.transform(x)
    out["pca_points_err"] = float(np.abs(pts_ref - atlas.points.reshape(h * p, -1)).max())
    out["pca_points_scale"] = float(np.abs(pts_ref).max())
    paired_distances(np.zeros((4, 2, 3)), dtype="float32")  # compile / load the numba cache
    t = time.perf_counter()
    d64 = paired_distances(exact.points)
    out["d64_s"] = time.perf_counter() - t
    t = time.perf_counter()
    d32 = paired_distances(exact.points, dtype="float32")
    out["d32_s"] = time.perf_counter() - t
    off = ~np.eye(h, dtype=bool)
    out["d32_rel_err"] = float((np.abs(d32.astype(np.float64) - d64)[off] / d64[off]).max())
    i64, _ = nearest_heads(d64, 10)
    i32, _ = nearest_heads(d32, 10)
    overlap = np.array([len(set(a) & set(b)) / 10 for a, b in zip(i64, i32)])
    out["top10_overlap_mean"], out["top10_overlap_min"] = float(overlap.mean()), float(overlap.min())
    out["top10_identical_rows"] = float((i64 == i32).all(1).mean())
    t = time.perf_counter()
    iso = head_map(d64, "isomap", 3, 16)
    out["isomap_exact_s"] = time.perf_counter() - t
    # as many landmarks per head as at 10,000 heads (Atlas.N_LANDMARKS = 1,000: a tenth)
    out["landmarks"] = max(h * Atlas.N_LANDMARKS // 10000, 5)
    t = time.perf_counter()
    lm = landmark_isomap(*atlas.neighbors(16), 3, out["landmarks"], 0, atlas.distances)
    out["isomap_landmark_s"] = time.perf_counter() - t
    out["isomap_procrustes"] = float(procrustes(iso, lm)[2])
    sq = lambda m: ((m[:, None] - m[None]) ** 2).sum(-1)  # noqa: E731
    a, _ = nearest_heads(sq(iso), 10)
    b, _ = nearest_heads(sq(lm), 10)
    out["isomap_10nn_overlap"] = float(np.mean([len(set(u) & set(v)) / 10 for u, v in zip(a, b)]))
    return out


# ---------------------------------------------------------------------------- driver
CODE = REPO  # the checkout whose motif_widgets the children import (--code)


def run_child(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(CODE / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if res.returncode:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"child {args} failed")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run: 300 / 600 heads x 100 prompts")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--prompts", type=int, default=500)
    ap.add_argument("--check-heads", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/motif-large-atlas"))
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--check", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--exact-isomap", type=Path, metavar="PATH",
                    help="only time scikit-learn's exact Isomap on a saved atlas (prints JSON)")
    ap.add_argument("--exact-isomap-sizes", type=int, nargs="*", default=[3000],
                    help="sizes at which to time scikit-learn's exact Isomap too (default 3000)")
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose src/ the build and measure children import")
    ap.add_argument("--no-check", action="store_true", help="skip the accuracy checks")
    ap.add_argument("--build", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--sharded", type=int, default=0, metavar="K",
                    help="build each size as a distributed run's folder, K prompt shards per model, and time that")
    args = ap.parse_args()
    global CODE
    CODE = args.code
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    if args.check:
        print(json.dumps(check(args.check)))
        return
    if args.exact_isomap:
        print(json.dumps(exact_isomap(args.exact_isomap)))
        return
    if args.build:
        h, p, path = args.build
        t = time.perf_counter()
        build(int(h), int(p), Path(path), args.source, shards=args.sharded)
        print(json.dumps({"build_s": time.perf_counter() - t, "peak_mb": vm_hwm_mb()}))
        return
    if args.quick:
        args.sizes, args.prompts, args.check_heads, args.exact_isomap_sizes = [300, 600], 100, 300, [600]
    print(f"load average before: {os.getloadavg()}  cpus: {os.cpu_count()}  code: {CODE}")
    paths = {}
    for h in sorted(set(args.sizes) | (set() if args.no_check else {args.check_heads})):
        paths[h] = args.work / (f"h{h}-p{args.prompts}" + (f"-sharded{args.sharded}" if args.sharded else ""))
        built = run_child(["--source", str(args.source), "--sharded", str(args.sharded),
                           "--build", str(h), str(args.prompts), str(paths[h])])
        size = sum(f.stat().st_size for f in paths[h].rglob("*") if f.is_file()) / 2**20
        manifests = sorted(paths[h].rglob("manifest.json"))
        thumbs = sum(json.loads(m.read_text())["files"]["thumbnails"]["bytes"] for m in manifests) / 2**20
        raw = h * args.prompts * THUMBNAIL_TOKENS**2 * 2 / 2**20
        layout = f"{len(manifests)} shards, " if args.sharded else ""
        print(f"built {h} heads x {args.prompts} prompts in {built['build_s']:.1f} s (peak RSS {built['peak_mb']:.0f} MB; "
              f"{layout}{size:.0f} MiB on disk, thumbnails {thumbs:.0f} MiB of it: {raw:.0f} MiB of float16, compressed "
              f"{raw / thumbs:.2f}x; format {json.loads(manifests[0].read_text())['format_version']})")
    rows = [run_child(["--measure", str(paths[h])]) for h in args.sizes]
    stages = ["load", "embed", "distances", "index", "head map", "families", "similar", "widgets", "thumbs"]
    print(f"\nstage seconds per size (x {args.prompts} prompts); similar = one query (median of 50)")
    print(f"{'heads':>6} " + " ".join(f"{s:>9}" for s in stages) + f" {'total':>7} {'peak MB':>8} {'core MB':>8}")
    for r in rows:
        total = sum(r[s] for s in stages)
        print(f"{r['heads']:>6} " + " ".join(f"{r[s]:>9.3f}" for s in stages) + f" {total:>7.1f} {r['peak_mb']:>8.0f} {r['peak_mb_core']:>8.0f}")
    for r in rows[1:]:
        ratio = r["heads"] / rows[0]["heads"]
        print(f"growth {rows[0]['heads']} -> {r['heads']} heads (x{ratio:g}, x{ratio ** 2:g} pairs): "
              + ", ".join(f"{s} x{r[s] / max(rows[0][s], 1e-9):.1f}" for s in stages)
              + f", peak RSS x{r['peak_mb'] / rows[0]['peak_mb']:.1f}")
    for r in rows:
        print(f"{r['heads']} heads: import {r['import']:.1f} s, numba compile/cache {r['compile']:.1f} s, features {r['lazy']}, "
              f"thumbnails {r.get('lazy_thumbs', '?')} (SimilarHeads ships {r.get('shipped_thumbs')}), "
              f"cloud ships {r['cloud_points']} pattern points, widgets ship an [H, H] array: {r['shipped_hh']}")
    if args.no_check:
        print(f"load average after: {os.getloadavg()}")
        return
    c = run_child(["--check", str(paths[args.check_heads])])
    print(f"\naccuracy at {c['heads']} heads x {c['prompts']} prompts:")
    print(f"  eq. 3 float32 vs float64: max relative error {c['d32_rel_err']:.2e}; top-10 neighbour overlap mean "
          f"{c['top10_overlap_mean']:.4f}, min {c['top10_overlap_min']:.1f}; identical top-10 lists {c['top10_identical_rows']:.1%}; "
          f"time {c['d64_s']:.1f} s (torch float64) vs {c['d32_s']:.2f} s (numba float32)")  # noqa: E501
    print(f"  PCA streamed vs sklearn: max |components| error {c['pca_components_err']:.1e}, explained variance ratio "
          f"{c['pca_ratio_err']:.1e}, points {c['pca_points_err']:.1e} (|points| <= {c['pca_points_scale']:.1f}); "
          f"time {c['pca_sklearn_s']:.2f} s (sklearn) vs {c['pca_streamed_s']:.2f} s (streamed)")
    print(f"  landmark ({c['landmarks']} landmarks, the share used at 10k heads) vs exact Isomap: Procrustes disparity {c['isomap_procrustes']:.4f}, 10-NN overlap of the maps "
          f"{c['isomap_10nn_overlap']:.3f}; time {c['isomap_exact_s']:.1f} s (exact) vs {c['isomap_landmark_s']:.2f} s "
          "(landmark, incl. the float32 distances and neighbour index)")
    for h in [h for h in args.exact_isomap_sizes if h in paths]:
        e = run_child(["--exact-isomap", str(paths[h])])
        landmark = next((r["head map"] for r in rows if r["heads"] == h), float("nan"))
        print(f"  exact (scikit-learn) Isomap at {h} heads: {e['exact_isomap_s']:.1f} s (landmark Isomap in the table: "
              f"{landmark:.1f} s); peak RSS {e['peak_mb_before']:.0f} -> {e['peak_mb']:.0f} MB")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
