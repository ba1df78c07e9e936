"""CUDA: the kernels run where the input lives and agree with the CPU. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import PATTERN_KINDS, causal_pattern
from motif_widgets import Atlas, compute_features

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("feature_set", ["paper", "motifs"])
def test_features_on_cuda_equal_cpu(feature_set):
    rng = np.random.default_rng(0)
    patterns = [causal_pattern(rng, n, PATTERN_KINDS[n % len(PATTERN_KINDS)]) for n in (1, 5, 40, 128, 200)]
    cpu = compute_features(patterns, feature_set).to_numpy()
    gpu = compute_features([torch.as_tensor(p, device="cuda") for p in patterns], feature_set).to_numpy()
    assert np.allclose(gpu, cpu, rtol=1e-6, atol=1e-12, equal_nan=True)


def test_atlas_on_cuda_hugging_face_model(toy_prompts):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=0,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    cpu = Atlas.from_model(model, toy_prompts, bos_token_id=0, extra_feature_sets=["paper"], progress=False)
    gpu = Atlas.from_model(model.to("cuda"), toy_prompts, bos_token_id=0, extra_feature_sets=["paper"], progress=False)
    assert np.allclose(gpu.features, cpu.features, atol=1e-4)  # float32 attention on two devices
    assert np.allclose(gpu.data.score_sums, cpu.data.score_sums, atol=1e-3)
    assert np.isfinite(gpu.distances).all()


def test_atlas_on_cuda_model(request, toy_prompts):
    pytest.importorskip("transformer_lens")
    toy_model = request.getfixturevalue("toy_model")
    cpu = Atlas.from_model(toy_model, toy_prompts, progress=False)
    gpu = Atlas.from_model(toy_model.to("cuda"), toy_prompts, progress=False)
    toy_model.to("cpu")
    assert np.allclose(gpu.features, cpu.features, atol=1e-4)
