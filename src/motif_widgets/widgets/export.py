"""Offline HTML export: one self-contained file that opens in a browser without a kernel or
network, with the same interactions.

The page holds the widget's state (the ES module is part of it) and the small loader
js/src/entries/standalone.js, which builds an anywidget-style model from that state and renders
the widget's own module. Nothing is fetched: no CDN, no kernel.

To keep the file small, the state is packed before it is embedded (the interactions stay the
same; only stored precision drops where the views never show it):

- pattern thumbnails as uint8 square-root codes (``_serialization.encode_patterns``; float16
  thumbnails are converted), 1 byte per weight, cut to EXPORT_THUMBNAIL_BYTES
  (``_packing.thumbnail_plan``: every prompt at fewer tokens first, then fewer prompts; the
  page carries what ``exported_thumbnails`` reports); nothing the kernel computes on demand
  (full-resolution patterns, the user's text) is carried;
- float arrays of plot coordinates and per-pattern scores quantized per column (16 bits for
  points: 1/65535 of each axis's range; 8 bits for per-pattern scores in [0, 1]: +-0.002),
  integer tables narrowed to the smallest integer type that holds them; the loader widens them
  back to the traits' own dtypes before the widget sees them;
- floats in the JSON part rounded to 6 significant digits;
- all of it (JSON + binary buffers) in one gzip stream, base64 text in the page, inflated by
  the browser's built-in ``DecompressionStream("gzip")`` (Chrome 80+, Firefox 113+, Safari
  16.4+).
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import struct
from pathlib import Path

import numpy as np

from ._bundles import bundle_path
from ._packing import thumbnail_plan
from ._serialization import decode_patterns, encode_patterns, split_buffers

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="motif-widgets">
<title>{title}</title>
<style>body {{ margin: 16px; max-width: 1280px; font-family: system-ui, sans-serif; }}</style>
</head>
<body>
<div id="motif-widgets-root"></div>
<script type="application/octet-stream" id="motif-widgets-state" data-encoding="gzip+base64">{state}</script>
<script type="module">{loader}</script>
</body>
</html>
"""

# State keys of the ipywidgets machinery that the views never read.
_DROP = ("layout", "_dom_classes", "tabbable", "tooltip", "_view_count")
#: Arrays quantized in the export: trait -> bits per value (per-column affine code).
QUANTIZED = {"pattern_points": 16, "head_points": 16, "pattern_scores": 8}
#: Arrays whose values are pattern weights (exported as uint8 square-root codes).
PATTERN_TRAITS = ("thumbnails",)
FLOAT_DIGITS = 6
#: Bytes of uint8 thumbnails the page carries at most (before gzip): SmolLM2's 270 heads x 60
#: prompts then keep 16 x 16 tokens of every prompt.
EXPORT_THUMBNAIL_BYTES = 4_500_000
#: Traits of what the kernel computes on demand: empty in the page (no kernel there).
_KERNEL_ONLY = {"can_ablate": False, "can_run_model": False, "full_pattern": {}, "text_patterns": {}}
_ALIGN = 8


def _script_safe(text: str) -> str:
    """Text that cannot close the <script> element it sits in."""
    return text.replace("</", "<\\/")


def _round_floats(node, digits: int = FLOAT_DIGITS):
    """JSON-ready data with every float rounded to `digits` significant digits."""
    if isinstance(node, float):
        return float(f"{node:.{digits}g}")
    if isinstance(node, dict):  # the quantization parameters ("packed") stay exact
        return {k: v if k == "packed" else _round_floats(v, digits) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_round_floats(v, digits) for v in node]
    return node


def _quantize(arr: np.ndarray, bits: int) -> tuple[np.ndarray, dict]:
    """Per-last-axis affine code: value = lo + step * code; NaN -> the top code (nan: true)."""
    a = np.asarray(arr, dtype=np.float32)
    cols = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
    top = (1 << bits) - 1
    nan = bool(np.isnan(cols).any())
    levels = top - 1 if nan else top
    with np.errstate(all="ignore"):
        lo = np.nan_to_num(np.nanmin(cols, axis=0), nan=0.0) if cols.size else np.zeros(cols.shape[1], np.float32)
        hi = np.nan_to_num(np.nanmax(cols, axis=0), nan=0.0) if cols.size else np.zeros(cols.shape[1], np.float32)
    step = np.where(hi > lo, (hi - lo) / levels, 1.0).astype(np.float64)
    code = np.rint((np.nan_to_num(cols, nan=0.0) - lo) / step)
    code = np.clip(code, 0, levels)
    if nan:
        code[np.isnan(cols)] = top
    dtype = np.uint8 if bits <= 8 else np.uint16
    return code.astype(dtype), {"lo": [float(x) for x in lo], "step": [float(x) for x in step], "nan": nan}


def _narrow_int(arr: np.ndarray) -> np.ndarray | None:
    """A smaller integer dtype that holds every value of an integer array, or None."""
    if arr.dtype.kind not in "iu" or arr.size == 0:
        return None
    lo, hi = int(arr.min()), int(arr.max())
    for dtype in (np.uint8, np.int8, np.uint16, np.int16):
        info = np.iinfo(dtype)
        if np.dtype(dtype).itemsize < arr.dtype.itemsize and info.min <= lo and hi <= info.max:
            return arr.astype(dtype)
    return None


def _cut_thumbnails(state: dict, max_bytes: float | None = None) -> None:
    """Cut the state's thumbnails (and their prompt ids, tokens, lengths) to fit `max_bytes`
    (default EXPORT_THUMBNAIL_BYTES) as uint8 (_packing.thumbnail_plan), in place."""
    max_bytes = EXPORT_THUMBNAIL_BYTES if max_bytes is None else max_bytes
    value = state.get("thumbnails")
    if not (isinstance(value, dict) and "shape" in value):
        return
    h, t, k, _ = value["shape"]
    size, slots = thumbnail_plan(h, t, k, 1, max_bytes)
    if size == k and len(slots) == t:
        return
    arr = np.frombuffer(bytes(value["data"]), dtype=np.dtype(value["dtype"]).newbyteorder("<")).reshape(value["shape"])
    arr = np.ascontiguousarray(arr[:, slots, :size, :size])
    state["thumbnails"] = {"dtype": value["dtype"], "shape": list(arr.shape), "data": arr.tobytes()}
    state["thumbnail_prompts"] = [state["thumbnail_prompts"][s] for s in slots]
    state["thumbnail_tokens"] = [[per[s][:size] for s in slots] for per in state.get("thumbnail_tokens", [])]
    lengths = state.get("thumbnail_lengths")
    if isinstance(lengths, dict):
        old = np.frombuffer(bytes(lengths["data"]), dtype=np.dtype(lengths["dtype"]).newbyteorder("<")).reshape(lengths["shape"])
        new = np.minimum(old[:, slots], size).astype(old.dtype)
        state["thumbnail_lengths"] = {"dtype": lengths["dtype"], "shape": list(new.shape), "data": new.tobytes()}
    shown = set(state["thumbnail_prompts"])
    if "grid_prompts" in state:
        state["grid_prompts"] = [p for p in state["grid_prompts"] if p in shown]


def exported_thumbnails(widget) -> dict:
    """What the offline page of `widget` carries of its thumbnails: {"prompts": [ids],
    "tokens": K (each thumbnail is the prompt's first K tokens), "bytes": uint8 bytes}."""
    state = {k: v for k, v in widget.get_state(["thumbnails", "thumbnail_prompts"]).items()}
    if state.get("thumbnails") is None:
        return {"prompts": [], "tokens": 0, "bytes": 0}
    h, t, k, _ = state["thumbnails"]["shape"]
    size, slots = thumbnail_plan(h, t, k, 1, EXPORT_THUMBNAIL_BYTES)
    return {"prompts": [state["thumbnail_prompts"][s] for s in slots], "tokens": size, "bytes": h * len(slots) * size * size}


def pack_state(widget) -> bytes:
    """The widget's state for the page: one binary container, before compression.

    Layout: uint32 little-endian n, then n bytes of UTF-8 JSON ``{"state": ..., "buffers":
    [{"path", "offset", "length"}]}`` (offsets from the start of the binary part, 8-byte
    aligned), then the binary part. An encoded array in the state may carry ``"packed":
    {"dtype", "lo", "step", "nan"}`` (quantized) or ``{"dtype"}`` (narrowed): the loader
    turns its data back into the array's own ``dtype`` (see js/src/entries/standalone.js).
    """
    state = {k: v for k, v in widget.get_state().items() if k not in _DROP}
    if not state.get("_esm"):
        raise ValueError(f"{type(widget).__name__} has no ES module to export")
    for name, empty in _KERNEL_ONLY.items():  # no kernel in the page: no ablate button, no model runs
        if name in state:
            state[name] = empty
    if state.get("focus_prompt") == "@text":  # grid.TEXT_PROMPT: the text's patterns stay in the kernel
        state["focus_prompt"] = ""
    _cut_thumbnails(state)
    for name, value in list(state.items()):
        if not (isinstance(value, dict) and {"dtype", "shape", "data"} <= set(value)):
            continue
        arr = np.frombuffer(bytes(value["data"]), dtype=np.dtype(value["dtype"]).newbyteorder("<")).reshape(value["shape"])
        if name in PATTERN_TRAITS:
            if arr.dtype != np.uint8:
                arr = encode_patterns(decode_patterns(arr.astype(arr.dtype.newbyteorder("="))), "uint8")
            state[name] = {"dtype": "uint8", "shape": list(arr.shape), "data": arr.tobytes()}
        elif name in QUANTIZED and arr.dtype.kind == "f":
            code, info = _quantize(arr, QUANTIZED[name])
            state[name] = {**value, "data": code.tobytes(), "packed": {"dtype": code.dtype.name, **info}}
        else:
            narrow = _narrow_int(arr)
            if narrow is not None:
                state[name] = {**value, "data": narrow.astype(narrow.dtype.newbyteorder("<")).tobytes(), "packed": {"dtype": narrow.dtype.name}}
    plain, paths, buffers = split_buffers(state)
    entries, chunks, offset = [], [], 0
    for path, buf in zip(paths, buffers):
        raw = bytes(buf)
        pad = (-offset) % _ALIGN
        chunks.append(b"\0" * pad)
        offset += pad
        entries.append({"path": path, "offset": offset, "length": len(raw)})
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps({"state": _round_floats(plain), "buffers": entries}, separators=(",", ":"), allow_nan=False).encode("utf-8")
    head += b" " * ((-(4 + len(head))) % _ALIGN)  # the binary part starts 8-byte aligned
    return struct.pack("<I", len(head)) + head + b"".join(chunks)


def unpack_state(packed: bytes) -> tuple[dict, bytes]:
    """(JSON part, binary part) of :func:`pack_state`'s container (tests, debugging)."""
    (n,) = struct.unpack("<I", packed[:4])
    return json.loads(packed[4 : 4 + n].decode("utf-8")), packed[4 + n :]


def export_html(widget, title: str | None = None) -> str:
    """The offline page of a widget, as text."""
    state = base64.b64encode(gzip.compress(pack_state(widget), compresslevel=9, mtime=0)).decode("ascii")
    loader = _script_safe(bundle_path("standalone").read_text(encoding="utf-8"))
    page_title = title or getattr(widget, "title", "") or type(widget).__name__
    return TEMPLATE.format(title=html.escape(page_title), state=state, loader=loader)


def save_html(widget, path: str | Path, title: str | None = None) -> Path:
    """Write :func:`export_html` to `path` (parent folders are created). Returns the path."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"save_html writes an .html file, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(export_html(widget, title), encoding="utf-8")
    return path
