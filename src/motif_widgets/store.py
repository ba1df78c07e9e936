"""Saving and loading atlases: atomic replacement, checksums, columnar files, no pickle.

An atlas folder holds one ``manifest.json`` and one generation folder ``g-<id>/``:

- ``g-<id>/meta.json``: heads, prompts, models, feature names and revisions, config, run facts;
- ``g-<id>/features.<k>.parquet``: feature set k, one row per (head, prompt), head-major,
  columns ``head``, ``prompt`` and the set's features (float64);
- ``g-<id>/scores.parquet``: ``head``, ``prompt``, ``sum.<score>`` and ``rows.<score>``;
- ``g-<id>/thumbnails.parquet``: one float16 column ``value``, the [H, T, K, K] array flattened;
- ``g-<id>/head_stats.parquet`` (when present): ``head`` and the per-head circuit / effect columns.

Parquet (zstd) makes every table readable from pandas, polars, DuckDB, R or Arrow without
this package. The manifest names each file with its size and SHA-256 and carries a
checksum of itself. A save writes a complete new generation beside the old one, then
replaces the manifest in one atomic ``os.replace``, and only then removes the old
generation: a process killed at any moment leaves the old atlas or the new one, whole.
Every byte that load reads is covered by a checksum, so damage raises
:class:`AtlasFileError` naming the folder and the damaged part. Writers are assumed to
be one process at a time per folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .atlas_data import AtlasData, ModelInfo
from .detect import SCORE_NAMES
from .prompts import Prompt

FORMAT = "motif-widgets-atlas"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
LEGACY_FILES = ("atlas.json", "arrays.npz")  # format 1 (motif-widgets 0.1): no checksums


class AtlasFileError(ValueError):
    """A folder that is not a saved atlas, or a saved atlas that is damaged."""


# ---------------------------------------------------------------------------- helpers
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bytes(path: Path, payload: bytes) -> None:
    with open(path, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in atlas metadata")


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=_json_default).encode("utf-8")


def _long_index(data: AtlasData) -> dict[str, pa.Array]:
    """head / prompt columns of a head-major [H * P] table, dictionary-encoded."""
    h, p = data.n_heads, data.n_prompts
    head = pa.DictionaryArray.from_arrays(np.repeat(np.arange(h, dtype=np.int32), p), pa.array(data.head_ids))
    prompt = pa.DictionaryArray.from_arrays(np.tile(np.arange(p, dtype=np.int32), h), pa.array(data.prompt_ids))
    return {"head": head, "prompt": prompt}


def _write_table(path: Path, columns: dict[str, pa.Array | np.ndarray] | pa.Table) -> None:
    table = columns if isinstance(columns, pa.Table) else pa.table(columns)
    # dictionary-encode the id columns only: for float columns it costs time and saves nothing
    ids = [c for c in ("head", "prompt") if c in table.column_names]
    pq.write_table(table, path, compression="zstd", use_dictionary=ids)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------- save
def _is_ours(entry: Path) -> bool:
    name = entry.name
    return name == MANIFEST or name.startswith(f"{MANIFEST}.tmp-") or name.startswith("g-") or (
        name.startswith(".g-") and name.endswith(".partial")
    ) or name in LEGACY_FILES


def save_atlas(data: AtlasData, path: str | Path, config: dict | None = None, overwrite: bool = True) -> Path:
    """Write `data` (and the Atlas config) to the folder `path`, atomically.

    Args:
        overwrite: replace an atlas already saved there (atomically; the default). With
            False an existing atlas raises FileExistsError. A folder holding anything that
            is not an atlas is always refused (ValueError), so nothing of the user's is lost.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"cannot save an atlas to {path}: it is a file, expected a folder")
    entries = list(path.iterdir()) if path.exists() else []
    foreign = [e.name for e in entries if not _is_ours(e)]
    is_atlas = (path / MANIFEST).exists() or all((path / f).exists() for f in LEGACY_FILES)
    if entries and not is_atlas:
        raise ValueError(
            f"cannot save an atlas to {path}: the folder holds other files ({', '.join(sorted(foreign)[:5]) or 'no atlas'}); "
            "choose an empty or new folder"
        )
    if is_atlas and not overwrite:
        raise FileExistsError(f"{path} already holds an atlas; pass overwrite=True to replace it")
    path.mkdir(parents=True, exist_ok=True)

    generation = f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
    partial = path / f".g-{generation}.partial"
    partial.mkdir()
    files: dict[str, str] = {}

    doc = _meta_doc(data, config or {})
    _write_bytes(partial / "meta.json", _canonical(doc))
    files["meta"] = "meta.json"
    for k, name in enumerate(data.features):
        f = data.features[name]
        columns = _long_index(data)
        columns.update({col: f[:, :, j].reshape(-1) for j, col in enumerate(data.feature_names[name])})
        _write_table(partial / f"features.{k}.parquet", columns)
        files[f"features.{k}"] = f"features.{k}.parquet"
    scores = _long_index(data)
    for j, s in enumerate(SCORE_NAMES):
        scores[f"sum.{s}"] = data.score_sums[:, :, j].reshape(-1)
        scores[f"rows.{s}"] = data.score_rows[:, :, j].reshape(-1)
    _write_table(partial / "scores.parquet", scores)
    files["scores"] = "scores.parquet"
    _write_table(partial / "thumbnails.parquet", {"value": data.thumbnails.reshape(-1)})
    files["thumbnails"] = "thumbnails.parquet"
    if data.head_stats is not None:
        stats = data.head_stats.reset_index()
        _write_table(partial / "head_stats.parquet", pa.Table.from_pandas(stats, preserve_index=False))
        files["head_stats"] = "head_stats.parquet"
    _fsync_dir(partial)

    final = path / f"g-{generation}"
    os.replace(partial, final)
    _fsync_dir(path)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generation": generation,
        "files": {
            part: {"path": f"{final.name}/{name}", "bytes": (final / name).stat().st_size, "sha256": _sha256(final / name)}
            for part, name in files.items()
        },
    }
    manifest["checksum"] = hashlib.sha256(_canonical(manifest)).hexdigest()
    tmp = path / f"{MANIFEST}.tmp-{generation}"
    _write_bytes(tmp, _canonical(manifest))
    os.replace(tmp, path / MANIFEST)  # the one step that switches old -> new
    _fsync_dir(path)
    _remove_stale(path, keep=final.name)
    return path


def _remove_stale(path: Path, keep: str) -> None:
    """Remove earlier generations, partial writes and format-1 files (best effort)."""
    for entry in path.iterdir():
        if entry.name in (MANIFEST, keep) or not _is_ours(entry):
            continue
        try:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        except OSError:
            pass


def _meta_doc(data: AtlasData, config: dict) -> dict:
    return {
        "motif_widgets_version": __version__,
        "config": config,
        "meta": data.meta,
        "heads": {c: data.heads[c].tolist() for c in data.heads.columns},
        "head_columns": list(data.heads.columns),  # JSON objects are stored with sorted keys
        "model_order": list(data.models),
        "prompts": [asdict(p) for p in data.prompts],
        "models": {
            n: {
                "n_layers": m.n_layers, "n_heads": m.n_heads, "lengths": m.lengths.tolist(),
                "token_ids": m.token_ids, "token_strs": m.token_strs,
                "has_bos": m.has_bos.tolist(), "truncated": m.truncated.tolist(),
            }
            for n, m in data.models.items()
        },
        "feature_sets": list(data.features),
        "feature_names": {k: list(v) for k, v in data.feature_names.items()},
        "feature_revisions": data.feature_revisions,
        "thumbnail_prompts": data.thumbnail_prompts.tolist(),
        "thumbnail_shape": list(data.thumbnails.shape),
        "score_names": list(SCORE_NAMES),
    }


# ---------------------------------------------------------------------------- load
def load_atlas(path: str | Path) -> tuple[AtlasData, dict]:
    """(data, config dict) of an atlas folder; AtlasFileError if it is none or is damaged."""
    path = Path(path)
    if (path / MANIFEST).exists():
        return _load_v2(path)
    if all((path / f).exists() for f in LEGACY_FILES):
        warnings.warn(
            f"{path} was saved by motif-widgets 0.1 without checksums; save it again to protect it", stacklevel=3
        )
        return _load_v1(path)
    raise AtlasFileError(f"{path} is not a saved atlas (no {MANIFEST}; an interrupted first save leaves only partial files)")


def _damaged(path: Path, part: str, why: str) -> AtlasFileError:
    return AtlasFileError(f"atlas {path} is damaged: {part} {why}")


def _load_v2(path: Path) -> tuple[AtlasData, dict]:
    try:
        manifest = json.loads((path / MANIFEST).read_bytes())
        stated = manifest.pop("checksum")
        ok = isinstance(manifest, dict) and hashlib.sha256(_canonical(manifest)).hexdigest() == stated
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise _damaged(path, MANIFEST, f"cannot be read ({type(e).__name__})") from None
    if not ok:
        raise _damaged(path, MANIFEST, "fails its checksum")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise AtlasFileError(
            f"{path}: atlas format {manifest.get('format')!r} v{manifest.get('format_version')} is not "
            f"{FORMAT!r} v{FORMAT_VERSION}; a newer motif-widgets may read it"
        )
    blobs: dict[str, Path] = {}
    for part, entry in manifest["files"].items():
        file = path / entry["path"]
        if not file.is_file():
            raise _damaged(path, part, f"is missing ({entry['path']})")
        if file.stat().st_size != entry["bytes"] or _sha256(file) != entry["sha256"]:
            raise _damaged(path, part, f"fails its checksum ({entry['path']})")
        blobs[part] = file
    try:
        doc = json.loads(blobs["meta"].read_bytes())
        data = _decode(doc, lambda k: _read_features(blobs[f"features.{k}"], doc), _read_scores(blobs["scores"], doc),
                       _read_thumbnails(blobs["thumbnails"], doc))
        if "head_stats" in blobs:
            data = replace(data, head_stats=pq.read_table(blobs["head_stats"]).to_pandas().set_index("head"))
        return data, doc["config"]
    except (KeyError, ValueError, TypeError, pa.ArrowException) as e:
        # checksums matched, so this is a file written inconsistently, not bit rot
        raise AtlasFileError(f"atlas {path} is inconsistent: {e}") from e


def _read_features(file: Path, doc: dict) -> tuple[np.ndarray, list[str]]:
    table = pq.read_table(file)
    names = [c for c in table.column_names if c not in ("head", "prompt")]
    h, p = len(doc["heads"]["head"]), len(doc["prompts"])
    cols = [table.column(c).to_numpy().astype(np.float64, copy=False) for c in names]
    return np.stack(cols, axis=-1).reshape(h, p, len(names)), names


def _read_scores(file: Path, doc: dict) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(file)
    h, p = len(doc["heads"]["head"]), len(doc["prompts"])
    names = doc["score_names"]
    if list(names) != list(SCORE_NAMES):
        raise ValueError(f"scores {names} differ from this version's {list(SCORE_NAMES)}")

    def stack(kind: str) -> np.ndarray:
        return np.stack([table.column(f"{kind}.{s}").to_numpy() for s in names], axis=-1).reshape(h, p, len(names))

    return stack("sum"), stack("rows")


def _read_thumbnails(file: Path, doc: dict) -> np.ndarray:
    return pq.read_table(file).column("value").to_numpy().astype(np.float16).reshape(doc["thumbnail_shape"])


def _decode(doc: dict, features, scores: tuple[np.ndarray, np.ndarray], thumbnails: np.ndarray) -> AtlasData:
    prompts = [
        Prompt(**{**p, "token_ids": tuple(p["token_ids"]) if p.get("token_ids") is not None else None})
        for p in doc["prompts"]
    ]
    models = {
        n: ModelInfo(n, m["n_layers"], m["n_heads"], m["lengths"], m["token_ids"], m["token_strs"], m["has_bos"], m["truncated"])
        for n, m in ((n, doc["models"][n]) for n in doc.get("model_order", list(doc["models"])))
    }
    sets = doc.get("feature_sets", list(doc["feature_names"]))
    feats, names = {}, {}
    for k, name in enumerate(sets):
        feats[name], stored = features(k)
        if list(stored) != list(doc["feature_names"][name]):
            raise ValueError(f"feature columns of {name!r} differ from the metadata")
        names[name] = tuple(stored)
    return AtlasData(
        heads=pd.DataFrame(doc["heads"])[doc.get("head_columns", list(doc["heads"]))],
        prompts=prompts,
        models=models,
        features=feats,
        feature_names=names,
        score_sums=scores[0],
        score_rows=scores[1],
        thumbnails=thumbnails,
        thumbnail_prompts=np.array(doc["thumbnail_prompts"], dtype=np.int64),
        meta=doc["meta"],
        feature_revisions={k: str(v) for k, v in doc.get("feature_revisions", {}).items()},
    )


def _load_v1(path: Path) -> tuple[AtlasData, dict]:
    """Format 1: atlas.json + arrays.npz (motif-widgets 0.1)."""
    try:
        doc = json.loads((path / "atlas.json").read_text(encoding="utf-8"))
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        sets = list(doc["feature_names"])
        h = len(doc["heads"]["head"])
        rows = arrays["score_rows"]
        if rows.ndim == 2:
            rows = np.broadcast_to(rows[None], (h,) + rows.shape).copy()
        data = _decode(
            doc, lambda k: (arrays[f"features.{sets[k]}"], doc["feature_names"][sets[k]]),
            (arrays["score_sums"], rows), arrays["thumbnails"],
        )
        return data, doc["config"]
    except Exception as e:  # format 1 has no checksums: any decoding failure is damage
        raise AtlasFileError(f"atlas {path} (format 1) is damaged or unreadable: {type(e).__name__}: {e}") from None
