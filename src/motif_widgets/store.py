"""Saving and loading atlases: atomic replacement, checksums, columnar files, no pickle.

An atlas folder holds one ``manifest.json`` and one generation folder ``g-<id>/``:

- ``g-<id>/meta.json``: heads, prompts, models, feature names and revisions, config, run facts;
- ``g-<id>/features.<k>.parquet``: feature set k, one row per (head, prompt), head-major,
  columns ``head``, ``prompt`` and the set's features (float64), in row groups of whole
  heads (about ROW_GROUP_ROWS rows), so that a range of heads is read without the rest;
- ``g-<id>/scores.parquet``: ``head``, ``prompt``, ``sum.<score>`` and ``rows.<score>``;
- ``g-<id>/thumbnails.parquet``: one row per head (column ``head``) and one column per kept
  prompt (``prompt:<id>``, in slot order), each cell that head's K x K thumbnail as K*K float16
  little-endian bytes, row-major (``fixed_size_binary``), in row groups of whole heads (about
  THUMBNAIL_GROUP_BYTES each): a range of heads, or some prompts of every head, is read without
  the rest (format 3; format 2 stored one flattened float16 column ``value``, still read);
- ``g-<id>/head_stats.parquet`` (when present): ``head`` and the per-head circuit / effect columns.

Parquet (zstd) makes every table readable from pandas, polars, DuckDB, R or Arrow without
this package. The manifest names each file with its size and SHA-256 and carries a
checksum of itself. A save writes a complete new generation beside the old one, then
replaces the manifest in one atomic ``os.replace``, and only then removes the old
generation: a process killed at any moment leaves the old atlas or the new one, whole.
Every byte that load reads is covered by a checksum, so damage raises
:class:`AtlasFileError` naming the folder and the damaged part. Writers are assumed to
be one process at a time per folder.

``load_atlas(path, lazy=True)`` (the default above LARGE_ATLAS_HEADS heads) leaves the
feature tables on disk: each set is a :class:`LazyFeatures`, an [H, P, F] array-like that
reads row groups of heads when asked (``read_heads``, ``iter_heads``; ``np.asarray``
reads all), and the thumbnails a :class:`LazyThumbnails` [H, T, K, K] that reads the row groups
of the heads and the columns of the prompts asked for. The files are checksummed when the atlas
is loaded; a later read refuses a file whose size or modification time has changed since
(AtlasFileError).
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
from .atlas_data import LARGE_ATLAS_HEADS, AtlasData, ModelInfo, is_lazy
from .detect import SCORE_NAMES
from .prompts import Prompt

FORMAT = "motif-widgets-atlas"
FORMAT_VERSION = 3  # 3: thumbnails one column per prompt, row groups of heads (2: one flat column)
READABLE_VERSIONS = (2, 3)
MANIFEST = "manifest.json"
LEGACY_FILES = ("atlas.json", "arrays.npz")  # format 1 (motif-widgets 0.1): no checksums
#: Rows per row group of the long (head, prompt) tables, rounded down to whole heads.
ROW_GROUP_ROWS = 1 << 18
#: Bytes of float16 thumbnails per row group of the thumbnail table, rounded down to whole heads.
THUMBNAIL_GROUP_BYTES = 32 << 20


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


def _long_index(data: AtlasData, start: int = 0, stop: int | None = None) -> dict[str, pa.Array]:
    """head / prompt columns of the head-major table rows of heads start..stop, dictionary-encoded."""
    stop = data.n_heads if stop is None else stop
    p = data.n_prompts
    head = pa.DictionaryArray.from_arrays(np.repeat(np.arange(start, stop, dtype=np.int32), p), pa.array(data.head_ids))
    prompt = pa.DictionaryArray.from_arrays(np.tile(np.arange(p, dtype=np.int32), stop - start), pa.array(data.prompt_ids))
    return {"head": head, "prompt": prompt}


def _heads_per_group(n_prompts: int) -> int:
    return max(1, ROW_GROUP_ROWS // n_prompts)


def _long_groups(data: AtlasData, columns_of):
    """Row groups of a head-major (head, prompt) table, whole heads each: columns_of(start,
    stop) -> {column: [(stop - start) * P] array} for those heads; one group of heads is in
    memory at a time (so lazily loaded features stream through a save)."""
    step = _heads_per_group(data.n_prompts)
    for start in range(0, data.n_heads, step):
        stop = min(data.n_heads, start + step)
        columns = _long_index(data, start, stop)
        columns.update(columns_of(start, stop))
        yield pa.table(columns)


def _write_table(path: Path, columns, statistics: bool | list[str] = True) -> None:
    """Write a table (columns dict or pa.Table) or an iterator of tables (one row group each);
    statistics: min/max in the footer for every column, or only for these columns."""
    whole = isinstance(columns, (dict, pa.Table))
    groups = [columns] if whole else columns
    writer = None
    try:
        for group in groups:
            table = group if isinstance(group, pa.Table) else pa.table(group)
            if writer is None:
                # dictionary-encode the id columns only: for float columns it costs time and saves nothing
                ids = [c for c in ("head", "prompt") if c in table.column_names]
                writer = pq.ParquetWriter(path, table.schema, compression="zstd", use_dictionary=ids,
                                          write_statistics=statistics)
            writer.write_table(table, row_group_size=None if whole else max(len(table), 1))
    finally:
        if writer is not None:
            writer.close()
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------- save
def _thumbnail_columns(data: AtlasData) -> list[str]:
    """Names of the thumbnail table's prompt columns, in slot order."""
    return [f"prompt:{data.prompt_ids[int(k)]}" for k in data.thumbnail_prompts]


def _thumbnail_groups(data: AtlasData):
    """Row groups of the thumbnail table (one row per head; module docstring): whole heads,
    about THUMBNAIL_GROUP_BYTES each; one group of heads is in memory at a time (lazily loaded
    thumbnails stream through a save)."""
    h, t, k, _ = data.thumbnails.shape
    cell = pa.binary(k * k * 2)
    names = _thumbnail_columns(data)
    step = max(1, THUMBNAIL_GROUP_BYTES // max(1, t * k * k * 2))
    lazy = is_lazy(data.thumbnails)
    for start in range(0, h, step):
        stop = min(h, start + step)
        block = data.thumbnails.read_heads(start, stop) if lazy else data.thumbnails[start:stop]
        columns = {"head": pa.array(data.head_ids[start:stop], pa.string())}  # (a dictionary of all ids would repeat per group)
        for s, name in enumerate(names):
            cells = np.ascontiguousarray(block[:, s], dtype="<f2")  # [n, K, K]
            columns[name] = pa.FixedSizeBinaryArray.from_buffers(cell, stop - start, [None, pa.py_buffer(cells)])
        yield pa.table(columns)


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
        f, cols = data.features[name], data.feature_names[name]

        def feature_columns(start, stop, f=f, cols=cols):
            block = f.read_heads(start, stop) if isinstance(f, LazyFeatures) else f[start:stop]
            return {col: block[:, :, j].reshape(-1) for j, col in enumerate(cols)}

        _write_table(partial / f"features.{k}.parquet", _long_groups(data, feature_columns))
        files[f"features.{k}"] = f"features.{k}.parquet"

    def score_columns(start, stop):
        out = {}
        for j, s in enumerate(SCORE_NAMES):
            out[f"sum.{s}"] = data.score_sums[start:stop, :, j].reshape(-1)
            out[f"rows.{s}"] = data.score_rows[start:stop, :, j].reshape(-1)
        return out

    _write_table(partial / "scores.parquet", _long_groups(data, score_columns))
    files["scores"] = "scores.parquet"
    # min/max of K*K-byte cells would bloat the footer (one per prompt column and row group)
    _write_table(partial / "thumbnails.parquet", _thumbnail_groups(data), statistics=["head"])
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
def load_atlas(path: str | Path, lazy: bool | None = False) -> tuple[AtlasData, dict]:
    """(data, config dict) of an atlas folder; AtlasFileError if it is none or is damaged.

    Args:
        lazy: True leaves the feature tables and the thumbnails on disk (each feature set a
            :class:`LazyFeatures`, the thumbnails a :class:`LazyThumbnails`, read in row groups
            of heads when used); False reads everything (the default); None decides by size:
            lazy above LARGE_ATLAS_HEADS heads. Format-1 atlases are always read whole, and
            format-2 thumbnails (one flat column) too.
    """
    path = Path(path)
    if lazy is not None and not isinstance(lazy, bool):
        raise ValueError(f"lazy must be True, False or None (by size), got {lazy!r}")
    if (path / MANIFEST).exists():
        return _load_v2(path, lazy)
    if all((path / f).exists() for f in LEGACY_FILES):
        warnings.warn(
            f"{path} was saved by motif-widgets 0.1 without checksums; save it again to protect it", stacklevel=3
        )
        return _load_v1(path)
    raise AtlasFileError(f"{path} is not a saved atlas (no {MANIFEST}; an interrupted first save leaves only partial files)")


def _damaged(path: Path, part: str, why: str) -> AtlasFileError:
    return AtlasFileError(f"atlas {path} is damaged: {part} {why}")


def _load_v2(path: Path, lazy: bool | None = False) -> tuple[AtlasData, dict]:
    try:
        manifest = json.loads((path / MANIFEST).read_bytes())
        stated = manifest.pop("checksum")
        ok = isinstance(manifest, dict) and hashlib.sha256(_canonical(manifest)).hexdigest() == stated
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise _damaged(path, MANIFEST, f"cannot be read ({type(e).__name__})") from None
    if not ok:
        raise _damaged(path, MANIFEST, "fails its checksum")
    version = manifest.get("format_version")
    if manifest.get("format") != FORMAT or version not in READABLE_VERSIONS:
        raise AtlasFileError(
            f"{path}: atlas format {manifest.get('format')!r} v{version} is not "
            f"{FORMAT!r} v{' / v'.join(map(str, READABLE_VERSIONS))}; a newer motif-widgets may read it"
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
        if lazy is None:
            lazy = len(doc["heads"]["head"]) > LARGE_ATLAS_HEADS
        read = _lazy_features if lazy else _read_features
        if version == 2:  # one flat float16 column: read whole
            thumbnails = _read_thumbnails_v2(blobs["thumbnails"], doc)
        else:
            thumbnails = LazyThumbnails(blobs["thumbnails"], doc)
            thumbnails = thumbnails if lazy else np.asarray(thumbnails)
        data = _decode(doc, lambda k: read(blobs[f"features.{k}"], doc), _read_scores(blobs["scores"], doc), thumbnails)
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


def _lazy_features(file: Path, doc: dict) -> tuple["LazyFeatures", list[str]]:
    lazy = LazyFeatures(file, len(doc["heads"]["head"]), len(doc["prompts"]))
    return lazy, list(lazy.feature_names)


def _open_unchanged(file: Path, stamp: tuple[int, int], metadata=None) -> pq.ParquetFile:
    """The Parquet file of a lazy array, unless it changed since the atlas was loaded (AtlasFileError)."""
    try:
        stat = file.stat()
    except FileNotFoundError:
        raise AtlasFileError(f"{file} is gone (the atlas was saved again or moved since it was loaded)") from None
    if (stat.st_size, stat.st_mtime_ns) != stamp:
        raise AtlasFileError(f"{file} has changed since the atlas was loaded; load it again")
    return pq.ParquetFile(file, metadata=metadata)


class LazyFeatures:
    """One saved feature set [H, P, F] float64, left on disk and read by heads.

    Made by ``load_atlas(..., lazy=True)``; it stands where AtlasData keeps an array.
    ``read_heads(a, b)`` reads heads a..b-1 (the row groups that hold them);
    ``iter_heads(rows)`` yields (start, [n, P, F]) blocks of about `rows` (head, prompt)
    rows; ``np.asarray(f)`` and indexing (``f[a:b]``, ``f[:, prompts]``) read what they need.
    A file changed since the atlas was loaded (size or modification time) raises
    AtlasFileError rather than being read.
    """

    dtype = np.dtype(np.float64)
    ndim = 3

    def __init__(self, file: Path, n_heads: int, n_prompts: int):
        self.file = Path(file)
        stat = self.file.stat()
        self._stamp = (stat.st_size, stat.st_mtime_ns)
        meta = pq.ParquetFile(self.file).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        self.feature_names = tuple(c for c in names if c not in ("head", "prompt"))
        self.shape = (int(n_heads), int(n_prompts), len(self.feature_names))
        if meta.num_rows != n_heads * n_prompts:
            raise ValueError(f"{self.file.name} has {meta.num_rows} rows, expected {n_heads} x {n_prompts}")
        rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._group_start = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)  # [G + 1] first row of each

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyFeatures({self.file}, shape={self.shape})"

    def _open(self) -> pq.ParquetFile:
        return _open_unchanged(self.file, self._stamp)

    def read_heads(self, start: int, stop: int) -> np.ndarray:
        """[stop - start, P, F] float64 features of heads start..stop-1."""
        h, p, f = self.shape
        start, stop = max(0, int(start)), min(h, int(stop))
        if stop <= start:
            return np.zeros((0, p, f))
        r0, r1 = start * p, stop * p
        first = int(np.searchsorted(self._group_start, r0, side="right")) - 1
        last = int(np.searchsorted(self._group_start, r1, side="left"))  # exclusive
        table = self._open().read_row_groups(list(range(first, last)), columns=list(self.feature_names))
        offset = r0 - int(self._group_start[first])
        out = np.empty((r1 - r0, f))
        for j, name in enumerate(self.feature_names):
            out[:, j] = table.column(name).slice(offset, r1 - r0).to_numpy()
        return out.reshape(stop - start, p, f)

    def iter_heads(self, rows: int = ROW_GROUP_ROWS):
        """Yield (start, [n, P, F] block) over all heads, about `rows` (head, prompt) rows each."""
        step = max(1, int(rows) // max(self.shape[1], 1))
        for start in range(0, self.shape[0], step):
            yield start, self.read_heads(start, start + step)

    def __array__(self, dtype=None, copy=None):
        out = self.read_heads(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, slice) and first.step in (None, 1):
            start, stop, _ = first.indices(self.shape[0])
            block = self.read_heads(start, max(start, stop))
            return block[(slice(None),) + tuple(rest)] if rest else block
        return np.asarray(self)[key]


def _index(key, n: int, axis: str) -> np.ndarray | int:
    """Positions 0..n-1 picked by an int, slice, bool mask or integer sequence along `axis`."""
    picked = np.arange(n)[key]
    if np.ndim(picked) > 1:
        raise IndexError(f"thumbnails: the {axis} index must be an int, a slice or a 1-d sequence")
    return int(picked) if np.ndim(picked) == 0 else picked


class LazyThumbnails:
    """Saved pattern thumbnails [H, T, K, K] float16, left on disk and read by heads and prompts.

    Made by ``load_atlas(..., lazy=True)`` (format 3); it stands where AtlasData keeps the
    thumbnail array. Indexing reads only the row groups that hold the heads asked for and only
    the columns of the prompt slots asked for, and crops to the token window while decoding:
    ``t[a:b]``, ``t[i]``, ``t[:, slots, :k, :k]`` (every head, a few prompts, the first k tokens),
    ``t[heads, slots]``. ``read_heads(a, b)`` is ``t[a:b]``; ``take_slots(slots)`` is a lazy view
    of some slots (AtlasData.take_prompts uses it); ``np.asarray(t)`` reads all. A file changed
    since the atlas was loaded (size or modification time) raises AtlasFileError.
    """

    dtype = np.dtype(np.float16)
    ndim = 4

    def __init__(self, file: Path, doc: dict):
        self.file = Path(file)
        stat = self.file.stat()
        self._stamp = (stat.st_size, stat.st_mtime_ns)
        self._meta = pq.ParquetFile(self.file).metadata  # parsed once, reused by every read
        h, t, k, k2 = (int(x) for x in doc["thumbnail_shape"])
        prompts = [p["id"] for p in doc["prompts"]]
        want = ["head"] + [f"prompt:{prompts[int(j)]}" for j in doc["thumbnail_prompts"]]
        schema = self._meta.schema.to_arrow_schema()
        if schema.names != want or k != k2:
            raise ValueError(f"{self.file.name} has columns {schema.names[:4]}..., expected {want[:4]}... (shape {h, t, k, k2})")
        if any(schema.field(c).type != pa.binary(k * k * 2) for c in want[1:]):
            raise ValueError(f"{self.file.name}: thumbnail cells are not {k * k * 2}-byte float16 blocks")
        if self._meta.num_rows != h:
            raise ValueError(f"{self.file.name} has {self._meta.num_rows} rows, expected one per head ({h})")
        self.columns = want[1:]  # [T] the file's columns of this array's slots
        self.shape = (h, t, k, k)
        rows = [self._meta.row_group(g).num_rows for g in range(self._meta.num_row_groups)]
        self._group_start = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)  # [G + 1] first head of each

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyThumbnails({self.file}, shape={self.shape})"

    def take_slots(self, slots) -> "LazyThumbnails":
        """A lazy view [H, len(slots), K, K] of these slots, in that order (nothing is read)."""
        picked = np.atleast_1d(_index(np.asarray(slots, dtype=np.int64), self.shape[1], "slot"))
        view = object.__new__(LazyThumbnails)
        view.__dict__.update(self.__dict__)
        view.columns = [self.columns[int(s)] for s in picked]
        view.shape = (self.shape[0], len(picked)) + self.shape[2:]
        return view

    def read_heads(self, start: int, stop: int) -> np.ndarray:
        """[stop - start, T, K, K] float16 thumbnails of heads start..stop-1."""
        start, stop = max(0, int(start)), min(self.shape[0], int(stop))
        return self._read(np.arange(start, max(start, stop)), np.arange(self.shape[1]), (slice(None), slice(None)))

    def _read(self, heads: np.ndarray, slots: np.ndarray, window: tuple) -> np.ndarray:
        """[len(heads), len(slots), k, k'] of heads x slots, each cell cut to `window` (two slices)."""
        k = self.shape[-1]
        rows, cols = np.arange(k)[window[0]], np.arange(k)[window[1]]
        out = np.zeros((len(heads), len(slots), len(rows), len(cols)), np.float16)
        if not out.size:
            return out
        names = sorted({self.columns[int(s)] for s in slots})
        where = {name: np.flatnonzero([self.columns[int(s)] == name for s in slots]) for name in names}  # out slots per column
        group_of = np.searchsorted(self._group_start, heads, side="right") - 1  # [n] row group of each head
        file = _open_unchanged(self.file, self._stamp, self._meta)
        for g in np.unique(group_of):
            mine = np.flatnonzero(group_of == g)  # positions in `heads` that this group holds
            local = heads[mine] - self._group_start[g]
            table = file.read_row_group(int(g), columns=names)
            for name in names:
                cells = _cells(table.column(name), k)  # [rows in group, K, K] (a view of Arrow's buffer)
                block = cells[local][:, window[0], window[1]]
                for s in where[name]:
                    out[mine, s] = block
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.read_heads(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > 4 or any(k is Ellipsis or k is None for k in key):
            raise IndexError(f"thumbnails [H, T, K, K]: index with at most 4 ints, slices or sequences, got {key!r}")
        key = key + (slice(None),) * (4 - len(key))
        if not all(isinstance(w, slice) for w in key[2:]):
            raise IndexError(f"thumbnails [H, T, K, K]: the token axes take slices only, got {key[2:]!r}")
        heads, slots = _index(key[0], self.shape[0], "head"), _index(key[1], self.shape[1], "slot")
        if not isinstance(heads, int) and not isinstance(slots, int) and not (isinstance(key[0], slice) or isinstance(key[1], slice)):
            raise IndexError("thumbnails: index heads and slots with at most one sequence (numpy would pair them)")
        block = self._read(np.atleast_1d(heads), np.atleast_1d(slots), key[2:])  # token windows cut while decoding
        return block[(0 if isinstance(heads, int) else slice(None), 0 if isinstance(slots, int) else slice(None))]


def _cells(column: pa.ChunkedArray, k: int) -> np.ndarray:
    """[n, K, K] float16 cells of a fixed_size_binary column (zero-copy for one chunk)."""
    parts = []
    for chunk in column.chunks:
        if chunk.null_count:
            raise ValueError("the thumbnail table holds missing cells")
        data = np.frombuffer(chunk.buffers()[1], dtype="<f2", count=len(chunk) * k * k, offset=chunk.offset * k * k * 2)
        parts.append(data.reshape(len(chunk), k, k))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _read_scores(file: Path, doc: dict) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(file)
    h, p = len(doc["heads"]["head"]), len(doc["prompts"])
    names = doc["score_names"]
    if list(names) != list(SCORE_NAMES):
        raise ValueError(f"scores {names} differ from this version's {list(SCORE_NAMES)}")

    def stack(kind: str) -> np.ndarray:
        return np.stack([table.column(f"{kind}.{s}").to_numpy() for s in names], axis=-1).reshape(h, p, len(names))

    return stack("sum"), stack("rows")


def _read_thumbnails_v2(file: Path, doc: dict) -> np.ndarray:
    """Format 2's thumbnails: one flat float16 column ``value``, [H, T, K, K] when reshaped."""
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
