"""Saved atlases: round trips, atomic replacement under crashes and SIGKILL, detected damage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motif_widgets import Atlas
from motif_widgets import store
from motif_widgets.store import AtlasFileError


def random_patterns(rng, n_layers: int, n_heads: int, n: int) -> np.ndarray:
    """[layers, heads, n, n] causal softmax patterns."""
    scores = rng.normal(size=(n_layers, n_heads, n, n)) * 2
    scores = np.where(np.tri(n, dtype=bool), scores, -np.inf)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def small_atlas(seed: int, n_prompts: int = 5, **options) -> Atlas:
    rng = np.random.default_rng(seed)
    per_prompt = [random_patterns(rng, 2, 3, int(n)) for n in rng.integers(6, 20, n_prompts)]
    ids = [list(rng.integers(0, 50, p.shape[-1])) for p in per_prompt]
    return Atlas.from_patterns(per_prompt, model_name=f"m{seed}", token_ids=ids, thumbnails=2, **options)


def assert_same(a: Atlas, b: Atlas) -> None:
    assert a.head_ids == b.head_ids and a.prompts == b.prompts and a.config == b.config
    assert set(a.data.features) == set(b.data.features)
    for k in a.data.features:
        assert np.array_equal(a.data.features[k], b.data.features[k])
        assert a.data.feature_names[k] == b.data.feature_names[k]
    for name in ("score_sums", "score_rows", "thumbnails", "thumbnail_prompts"):
        assert np.array_equal(getattr(a.data, name), getattr(b.data, name)), name
    for m in a.model_names:
        x, y = a.data.models[m], b.data.models[m]
        assert (x.token_ids, x.token_strs, x.lengths.tolist()) == (y.token_ids, y.token_strs, y.lengths.tolist())
    pd.testing.assert_frame_equal(a.heads, b.heads)
    assert a.data.meta == b.data.meta and a.data.feature_revisions == b.data.feature_revisions


def test_round_trip_keeps_everything_and_tables_are_plain_parquet(tmp_path):
    atlas = small_atlas(0, extra_feature_sets=["paper"], metric="sliced_wasserstein", n_components=4)
    path = atlas.save(tmp_path / "a")
    back = Atlas.load(path)
    assert_same(atlas, back)
    assert np.allclose(back.distances, atlas.distances)
    # the feature tables are readable without motif-widgets, one row per (head, prompt)
    manifest = json.loads((path / "manifest.json").read_text())
    table = pd.read_parquet(path / manifest["files"]["features.0"]["path"])
    assert list(table.columns[:2]) == ["head", "prompt"] and len(table) == len(atlas.head_ids) * len(atlas.prompts)
    assert table.loc[7, "head"] == atlas.head_ids[7 // 5] and table.loc[7, "prompt"] == atlas.prompt_ids[7 % 5]
    assert table.loc[7, "sink"] == atlas.data.features["motifs"][1, 2, list(atlas.feature_names).index("sink")]


def test_replacing_is_atomic_and_leaves_one_generation(tmp_path):
    first, second = small_atlas(1), small_atlas(2, n_prompts=7)
    path = first.save(tmp_path / "a")
    second.save(path)
    assert_same(Atlas.load(path), second)
    assert sorted(e.name for e in path.iterdir() if not e.name.startswith("g-")) == ["manifest.json"]
    assert len([e for e in path.iterdir() if e.name.startswith("g-")]) == 1
    with pytest.raises(FileExistsError, match="already holds an atlas; pass overwrite=True"):
        first.save(path, overwrite=False)
    assert_same(Atlas.load(path), second)


def test_folders_that_are_not_atlases_are_refused(tmp_path):
    atlas = small_atlas(3)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match=r"holds other files \(thesis.tex\); choose an empty or new folder"):
        atlas.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="it is a file, expected a folder"):
        atlas.save(tmp_path / "file")
    with pytest.raises(AtlasFileError, match="is not a saved atlas"):
        Atlas.load(tmp_path / "notes")
    (tmp_path / "empty-but-existing").mkdir()
    atlas.save(tmp_path / "empty-but-existing")
    assert_same(Atlas.load(tmp_path / "empty-but-existing"), atlas)


@pytest.mark.parametrize("crash_at", range(12))
def test_a_save_that_dies_at_any_step_leaves_the_old_or_the_new_atlas(tmp_path, monkeypatch, crash_at):
    """Every file write, fsync and rename of a save is a place to die; after each, load
    gives one whole atlas."""
    old, new = small_atlas(4), small_atlas(5, n_prompts=6)
    path = old.save(tmp_path / "a")
    steps = {"n": 0}

    def dying(real):
        def step(*args, **kwargs):
            if steps["n"] == crash_at:
                raise KeyboardInterrupt("killed")
            steps["n"] += 1
            return real(*args, **kwargs)

        return step

    monkeypatch.setattr(store, "_write_bytes", dying(store._write_bytes))
    monkeypatch.setattr(store, "_write_table", dying(store._write_table))
    monkeypatch.setattr(store.os, "replace", dying(os.replace))
    monkeypatch.setattr(store, "_fsync_dir", dying(store._fsync_dir))
    try:
        new.save(path)
        died = False
    except KeyboardInterrupt:
        died = True
    monkeypatch.undo()
    # steps: meta, features, scores, thumbnails, fsync, rename, fsync, manifest, switch, fsync
    assert died == (crash_at < 10)
    assert_same(Atlas.load(path), old if died and crash_at <= 8 else new)
    new.save(path)  # the next save clears the debris
    assert len(list(path.iterdir())) == 2


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from motif_widgets import Atlas
    a, b, target = Atlas.load(sys.argv[1]), Atlas.load(sys.argv[2]), sys.argv[3]
    print("ready", flush=True)
    while True:
        a.save(target)
        b.save(target)
    """
)


def test_saves_killed_by_sigkill_at_random_moments_never_leave_a_broken_atlas(tmp_path):
    a, b = small_atlas(6), small_atlas(7, n_prompts=8)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    target = a.save(tmp_path / "target")
    script = tmp_path / "saver.py"
    script.write_text(KILL_SCRIPT)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "a"), str(tmp_path / "b"), str(target)],
            stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 1.0)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = Atlas.load(target)
        assert_same(loaded, a if loaded.data.n_prompts == 5 else b)
        seen.add(loaded.data.n_prompts)
    assert seen <= {5, 8}


def _flip(file: Path, bit: int) -> bytes:
    original = file.read_bytes()
    damaged = bytearray(original)
    damaged[bit // 8] ^= 1 << (bit % 8)
    file.write_bytes(bytes(damaged))
    return original


def test_single_bit_flips_in_every_file_are_caught_or_change_nothing(tmp_path):
    atlas = small_atlas(8, extra_feature_sets=["paper"])
    path = atlas.save(tmp_path / "a")
    files = [f for f in path.rglob("*") if f.is_file()]
    assert len(files) == 6  # manifest, meta, two feature tables, scores, thumbnails
    rng = np.random.default_rng(0)
    caught = unchanged = 0
    for file in files:
        size = file.stat().st_size * 8
        for bit in rng.choice(size, size=min(size, 40), replace=False):
            original = _flip(file, int(bit))
            try:
                loaded = Atlas.load(path)
            except AtlasFileError as e:
                assert str(path) in str(e) and "damaged" in str(e)
                caught += 1
            else:
                assert_same(loaded, atlas)
                unchanged += 1
            finally:
                file.write_bytes(original)
    assert caught > 200
    assert_same(Atlas.load(path), atlas)


def test_damage_messages_name_the_part(tmp_path):
    atlas = small_atlas(9)
    path = atlas.save(tmp_path / "a")
    manifest = json.loads((path / "manifest.json").read_text())
    scores = path / manifest["files"]["scores"]["path"]
    _flip(scores, 100)
    with pytest.raises(AtlasFileError, match=r"is damaged: scores fails its checksum"):
        Atlas.load(path)
    scores.unlink()
    with pytest.raises(AtlasFileError, match=r"is damaged: scores is missing"):
        Atlas.load(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(AtlasFileError, match=r"is damaged: manifest.json cannot be read"):
        Atlas.load(path)


def test_format_1_atlases_still_load_with_a_warning(tmp_path):
    """motif-widgets 0.1 wrote atlas.json + arrays.npz without checksums."""
    atlas = small_atlas(10)
    doc = store._meta_doc(atlas.data, {**atlas.config.__dict__})
    doc["format_version"] = 1
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "atlas.json").write_text(json.dumps(doc))
    d = atlas.data
    np.savez_compressed(
        folder / "arrays.npz", score_sums=d.score_sums, score_rows=d.score_rows, thumbnails=d.thumbnails,
        **{f"features.{k}": v for k, v in d.features.items()},
    )
    with pytest.warns(UserWarning, match="without checksums; save it again"):
        old = Atlas.load(folder)
    assert_same(old, atlas)
    old.save(folder)  # upgrading replaces the old files
    assert not (folder / "atlas.json").exists() and (folder / "manifest.json").exists()
    assert_same(Atlas.load(folder), atlas)


def test_head_stats_are_saved_merged_and_renamed(tmp_path):
    a = small_atlas(11)
    b = Atlas.from_patterns(  # another model on a's prompts
        [random_patterns(np.random.default_rng(5), 2, 3, n) for n in a.data.models["m11"].lengths],
        prompts=a.prompts, model_name="m12",
    )
    stats = pd.DataFrame(
        {"ov_copying": np.linspace(-1, 1, 6), "k_comp_partner": [None] * 3 + ["m11:L0H0"] * 3}, index=a.head_ids
    )
    with_stats = Atlas(a.data.with_head_stats(stats))
    back = Atlas.load(with_stats.save(tmp_path / "a"))
    pd.testing.assert_frame_equal(back.data.head_stats, with_stats.data.head_stats, check_names=False)
    merged = Atlas.merge([with_stats, b])
    assert merged.data.head_stats.loc["m11:L1H2", "ov_copying"] == 1.0
    assert merged.data.head_stats.loc["m12:L0H0"].isna().all()  # b had none
    renamed = with_stats.rename_model("m11", "x")
    assert renamed.data.head_stats.loc["x:L1H2", "k_comp_partner"] == "x:L0H0"
    with pytest.raises(ValueError, match=r"head_stats has rows for heads \['nope'\]"):
        replace(a.data, head_stats=pd.DataFrame({"v": [1.0]}, index=["nope"]))


FIXTURES = Path(__file__).parent / "fixtures"


def test_format_2_atlases_saved_by_main_still_load(tmp_path):
    """tests/fixtures/atlas_v2 was saved by the code before format 3 (thumbnails as one flat
    column; see make_atlas_v2.py); it loads, eagerly and lazily, and saving upgrades it."""
    import runpy

    made = runpy.run_path(str(FIXTURES / "make_atlas_v2.py"))
    manifest = json.loads((FIXTURES / "atlas_v2" / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and store.FORMAT_VERSION == 3
    patterns = made["patterns"]()
    for lazy in (False, True, None):
        old = Atlas.load(FIXTURES / "atlas_v2", lazy=lazy)
        assert old.head_ids == [f"old:L{l}H{h}" for l in range(2) for h in range(3)]
        assert [old.prompt_ids[k] for k in old.data.thumbnail_prompts] == made["THUMBNAILS"]
        t = old.data.thumbnails
        assert isinstance(t, np.ndarray) and t.shape == (6, 3, 8, 8)  # format 2 is read whole
        for s, k in enumerate(old.data.thumbnail_prompts):  # the corners of the patterns, as float16
            p = patterns[k].reshape(6, *patterns[k].shape[2:])
            m = min(8, p.shape[-1])
            assert np.array_equal(t[:, s, :m, :m], p[:, :m, :m].astype(np.float16)) and not t[:, s, m:].any()
    old = Atlas.load(FIXTURES / "atlas_v2")
    upgraded = old.save(tmp_path / "new")
    assert json.loads((upgraded / "manifest.json").read_text())["format_version"] == 3
    assert_same(Atlas.load(upgraded), old)
    assert np.array_equal(np.asarray(Atlas.load(upgraded, lazy=True).data.thumbnails), old.data.thumbnails)
    # a format this code does not know is refused, naming the versions it reads
    doc = dict(json.loads((upgraded / "manifest.json").read_text()), format_version=4)
    doc.pop("checksum")
    doc["checksum"] = store.hashlib.sha256(store._canonical(doc)).hexdigest()
    (upgraded / "manifest.json").write_bytes(store._canonical(doc))
    with pytest.raises(AtlasFileError, match=r"v4 is not 'motif-widgets-atlas' v2 / v3; a newer motif-widgets"):
        Atlas.load(upgraded)


def test_damaged_thumbnails_are_detected(tmp_path):
    atlas = small_atlas(12, n_prompts=6)
    path = atlas.save(tmp_path / "a")
    manifest = json.loads((path / "manifest.json").read_text())
    thumbs = path / manifest["files"]["thumbnails"]["path"]
    good = thumbs.read_bytes()
    lazy = Atlas.load(path, lazy=True)
    _flip(thumbs, 8 * len(good) // 3)
    for how in (True, False):  # every byte is checksummed at load, lazy or not
        with pytest.raises(AtlasFileError, match=r"is damaged: thumbnails fails its checksum"):
            Atlas.load(path, lazy=how)
    with pytest.raises(AtlasFileError, match="has changed since the atlas was loaded"):
        lazy.data.thumbnails[0]  # a lazy read after the load refuses the changed file
    thumbs.write_bytes(good)
    # a table that matches its checksum but not the metadata (written wrongly): a clear error
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"value": np.asarray(atlas.data.thumbnails).reshape(-1)}), thumbs)  # format 2's layout
    doc = {k: v for k, v in manifest.items() if k != "checksum"}
    doc["files"]["thumbnails"].update(bytes=thumbs.stat().st_size, sha256=store._sha256(thumbs))
    doc["checksum"] = store.hashlib.sha256(store._canonical(doc)).hexdigest()
    (path / "manifest.json").write_bytes(store._canonical(doc))
    with pytest.raises(AtlasFileError, match=r"is inconsistent: thumbnails.parquet has columns \['value'\]"):
        Atlas.load(path, lazy=True)
