"""How widget data crosses to the browser: numpy arrays as binary buffers, never JSON lists.

An array travels as ``{"dtype": "float16", "shape": [H, T, K, K], "data": <bytes>}``; Jupyter's
widget protocol sends ``data`` as a binary message part (the browser sees a DataView) and the
offline HTML export base64-encodes it. Data is little-endian and C-contiguous.

Attention patterns have two encodings: ``float16`` (exact to ~3 significant digits) and
``uint8`` (half the size; a square-root code ``round(255 * sqrt(w))``, so small weights keep
resolution: the step is ~1.5e-5 near 0 and ~0.008 near 1).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

#: dtypes the browser side decodes (js/src/codecs.js).
WIRE_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32", "float64")
PATTERN_ENCODINGS = ("float16", "uint8")


def array_to_json(value: np.ndarray | None, widget: Any = None) -> dict | None:
    """Serialize an array to ``{dtype, shape, data}`` with ``data`` a little-endian memoryview."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype.name not in WIRE_DTYPES:
        raise ValueError(f"arrays cross to the browser as one of {WIRE_DTYPES}, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": memoryview(arr.reshape(-1).view(np.uint8))}


def array_from_json(value: dict | None, widget: Any = None) -> np.ndarray | None:
    """Inverse of :func:`array_to_json` (``data`` may be bytes, a memoryview or base64 text)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not {"dtype", "shape", "data"} <= set(value):
        raise ValueError("expected an encoded array {'dtype', 'shape', 'data'}")
    if value["dtype"] not in WIRE_DTYPES:
        raise ValueError(f"unsupported dtype {value['dtype']!r}; expected one of {WIRE_DTYPES}")
    data = value["data"]
    raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
    dtype = np.dtype(value["dtype"]).newbyteorder("<")
    shape = tuple(int(s) for s in value["shape"])
    if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise ValueError(f"{len(raw)} bytes do not hold a {value['dtype']} array of shape {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def encode_patterns(patterns: np.ndarray, encoding: str = "float16") -> np.ndarray:
    """Attention weights in [0, 1] -> the wire encoding (float16, or uint8 square-root code)."""
    if encoding not in PATTERN_ENCODINGS:
        raise ValueError(f"unknown pattern encoding {encoding!r}; choose one of {PATTERN_ENCODINGS}")
    w = np.asarray(patterns, dtype=np.float32)
    if encoding == "float16":
        return w.astype(np.float16)
    return np.rint(255.0 * np.sqrt(np.clip(w, 0.0, 1.0))).astype(np.uint8)


def decode_patterns(encoded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_patterns` (the encoding is read from the dtype) -> float32."""
    encoded = np.asarray(encoded)
    if encoded.dtype == np.uint8:
        return (encoded.astype(np.float32) / 255.0) ** 2
    if encoded.dtype == np.float16:
        return encoded.astype(np.float32)
    raise ValueError(f"patterns are encoded as float16 or uint8, got {encoded.dtype}")


_BINARY = (bytes, bytearray, memoryview)


def split_buffers(state: dict) -> tuple[dict, list[list], list[memoryview]]:
    """(state without binary values, their paths, the binary values): the Jupyter wire form.

    Binary values inside dicts are removed (lists keep a None in their place); each path lists
    the keys / indices that lead to one, e.g. ["thumbnails", "data"].
    """
    paths: list[list] = []
    buffers: list[memoryview] = []

    def walk(node, path):
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if isinstance(value, _BINARY):
                    paths.append([*path, key])
                    buffers.append(memoryview(value))
                else:
                    out[key] = walk(value, [*path, key])
            return out
        if isinstance(node, (list, tuple)):
            out = []
            for i, value in enumerate(node):
                if isinstance(value, _BINARY):
                    paths.append([*path, i])
                    buffers.append(memoryview(value))
                    out.append(None)
                else:
                    out.append(walk(value, [*path, i]))
            return out
        return node

    return walk(state, []), paths, buffers


def embeddable_state(widget) -> dict:
    """The widget's synced state as JSON-ready data, binary parts as base64 (the offline export).

    Returns {"state": {...}, "buffers": [{"path": [...], "data": base64 text}]}; the ES module is
    in state["_esm"].
    """
    state, paths, buffers = split_buffers(widget.get_state())
    return {
        "state": state,
        "buffers": [{"path": p, "data": base64.b64encode(bytes(b)).decode("ascii")} for p, b in zip(paths, buffers)],
    }
