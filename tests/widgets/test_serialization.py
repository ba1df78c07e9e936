"""Binary serialization of widget arrays and the NDArray trait."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import traitlets

from motif_widgets.widgets._serialization import (
    WIRE_DTYPES,
    array_from_json,
    array_to_json,
    decode_patterns,
    embeddable_state,
    encode_patterns,
    split_buffers,
)
from motif_widgets.widgets.traits import NDArray


@pytest.mark.parametrize("dtype", WIRE_DTYPES)
def test_round_trip_every_wire_dtype(dtype):
    rng = np.random.default_rng(0)
    arr = (rng.random((3, 4, 5)) * 100).astype(dtype)
    encoded = array_to_json(arr)
    assert encoded["dtype"] == dtype and encoded["shape"] == [3, 4, 5]
    assert isinstance(encoded["data"], memoryview) and encoded["data"].nbytes == arr.nbytes
    back = array_from_json({**encoded, "data": bytes(encoded["data"])})
    assert back.dtype == arr.dtype and np.array_equal(back, arr)


def test_bytes_are_little_endian_and_c_ordered():
    arr = np.arange(6, dtype=">u2").reshape(2, 3).T  # big-endian, Fortran-ordered view
    raw = bytes(array_to_json(arr)["data"])
    assert raw == np.ascontiguousarray(arr).astype("<u2").tobytes()
    assert array_to_json(arr)["shape"] == [3, 2]


def test_base64_data_decodes_like_the_export():
    arr = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    encoded = array_to_json(arr)
    text = base64.b64encode(bytes(encoded["data"])).decode()
    assert np.array_equal(array_from_json({**encoded, "data": text}), arr)


def test_bad_arrays_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match="cross to the browser"):
        array_to_json(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="do not hold"):
        array_from_json({"dtype": "float32", "shape": [4], "data": b"\0" * 8})
    with pytest.raises(ValueError, match="unsupported dtype"):
        array_from_json({"dtype": "complex64", "shape": [1], "data": b"\0" * 8})
    with pytest.raises(ValueError, match="encoded array"):
        array_from_json([1, 2, 3])


def test_pattern_encodings_keep_weights():
    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(64), size=64).astype(np.float32)
    w[0, :4] = [1e-5, 1e-4, 0.5, 1.0]
    f16 = decode_patterns(encode_patterns(w, "float16"))
    assert np.allclose(f16, w, rtol=1e-3, atol=1e-7)
    u8 = encode_patterns(w, "uint8")
    assert u8.dtype == np.uint8 and u8.nbytes == w.size
    back = decode_patterns(u8)
    # square-root code: |error| <= sqrt(w) / 255 + 1 / 255**2 (step of the code at w)
    assert np.all(np.abs(back - w) <= np.sqrt(w) / 255 + 1 / 255**2 + 1e-7)
    assert back[0, 3] == 1.0 and back[0, 2] == pytest.approx(0.5, abs=0.003)
    assert back[0, 1] > 0  # 1e-4 is not flushed to zero
    with pytest.raises(ValueError, match="pattern encoding"):
        encode_patterns(w, "int4")


class Holder(traitlets.HasTraits):
    counts = NDArray("uint16", 1)
    points = NDArray("float32", 2)
    either = NDArray(("float16", "uint8"), 2)


def test_ndarray_trait_converts_and_freezes():
    h = Holder()
    h.counts = [1, 2, 3]
    assert h.counts.dtype == np.uint16 and h.counts.tolist() == [1, 2, 3]
    h.points = np.ones((2, 3))  # float64 -> float32
    assert h.points.dtype == np.float32
    with pytest.raises(ValueError):
        h.points[0, 0] = 5  # read-only: in-place edits cannot diverge from the browser
    h.either = np.zeros((2, 2), np.uint8)
    assert h.either.dtype == np.uint8  # an allowed dtype is kept
    h.either = np.zeros((2, 2))
    assert h.either.dtype == np.float16  # others go to the first allowed one
    src = np.arange(3, dtype=np.uint16)
    h.counts = src
    src[0] = 9
    assert h.counts[0] == 0  # the trait holds its own copy


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("counts", np.zeros((2, 2)), "1 dimensions"),
        ("counts", [70000], "do not fit uint16"),
        ("counts", [-1], "do not fit uint16"),
        ("counts", [0.5], "must be uint16"),
        ("points", np.array([["a", "b"]]), "must be float32"),
    ],
)
def test_ndarray_trait_refuses_bad_values(name, value, message):
    with pytest.raises(ValueError, match=message):
        setattr(Holder(), name, value)


def test_split_buffers_matches_the_jupyter_protocol():
    from ipywidgets.widgets.widget import _remove_buffers  # what the kernel sends

    state = {"a": 1, "arr": {"dtype": "uint8", "shape": [2], "data": memoryview(b"xy")}, "l": [b"z", {"b": bytearray(b"w")}]}
    ours = split_buffers(state)
    theirs = _remove_buffers(state)
    assert ours[0] == theirs[0] and ours[1] == theirs[1]
    assert [bytes(b) for b in ours[2]] == [bytes(b) for b in theirs[2]]
    assert state["arr"]["data"] == memoryview(b"xy")  # the input is left as it was


def test_widget_state_carries_arrays_as_buffers(multi_atlas):
    from motif_widgets.widgets import HeadExplorer

    explorer = HeadExplorer(multi_atlas)
    state, paths, buffers = split_buffers(explorer.get_state())
    binary = {p[0] for p in paths}
    assert {"thumbnails", "pattern_points", "head_points", "neighbor_index", "neighbor_distance", "head_scores",
            "model_neighbor_index", "pattern_scores", "head_model", "head_layer", "head_number", "clusters"} <= binary
    assert all(p[1] == "data" for p in paths)
    # the JSON part holds no arrays: it stays small however many points there are
    text = json.dumps(state)
    assert len(text) < 90_000 < sum(b.nbytes for b in buffers)  # mostly the ES module (~55 KB)
    assert state["thumbnails"] == {"dtype": "float16", "shape": list(explorer.thumbnails.shape)}
    doc = embeddable_state(explorer)
    assert [b["path"] for b in doc["buffers"]] == paths
    raw = base64.b64decode(doc["buffers"][paths.index(["pattern_points", "data"])]["data"])
    assert np.array_equal(np.frombuffer(raw, np.float32).reshape(-1, 3), explorer.pattern_points)


def test_export_carries_cut_thumbnails_and_nothing_of_the_kernel(toy_view_atlas, toy_model, monkeypatch):
    from motif_widgets.widgets import HeadExplorer, export

    explorer = HeadExplorer(toy_view_atlas, model=toy_model, selected_head="L1H3", focus_prompt="rand-64")
    explorer.show_pattern()
    assert explorer.full_pattern["status"] == "done"
    h, t = explorer.thumbnails.shape[:2]
    monkeypatch.setattr(export, "EXPORT_THUMBNAIL_BYTES", h * 5 * 16 * 16)  # room for 5 prompts of 16 tokens
    carried = export.exported_thumbnails(explorer)
    assert carried["tokens"] == 16 and len(carried["prompts"]) == 5 and carried["prompts"][0] == explorer.thumbnail_prompts[0]
    doc, binary = export.unpack_state(export.pack_state(explorer))
    state = doc["state"]
    assert state["thumbnails"]["shape"] == [h, 5, 16, 16] and state["thumbnail_prompts"] == carried["prompts"]
    assert all(len(tok) <= 16 for tok in state["thumbnail_tokens"][0]) and len(state["thumbnail_tokens"][0]) == 5
    assert state["full_pattern"] == {} and state["text_patterns"] == {} and state["can_run_model"] is False
    # the kept corners are the explorer's own thumbnails (uint8 code)
    entry = next(b for b in doc["buffers"] if b["path"] == ["thumbnails", "data"])
    kept = np.frombuffer(binary[entry["offset"] : entry["offset"] + entry["length"]], np.uint8).reshape(h, 5, 16, 16)
    slots = [explorer.thumbnail_prompts.index(p) for p in carried["prompts"]]
    want = encode_patterns(decode_patterns(explorer.thumbnails[:, slots, :16, :16]), "uint8")
    assert np.array_equal(kept, want)
