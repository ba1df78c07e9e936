"""Atlas fixtures shared by tests/widgets and tests/browser (imported into both conftests)."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import synthetic_atlas


@pytest.fixture(scope="session")
def toy_view_atlas(toy_model):
    """8 heads of the toy induction model (layer 0 previous-token, layer 1 induction heads)
    over 8 repeated-token probes and 4 random-token prompts (17 to 64 tokens)."""
    from motif_widgets import Atlas
    from motif_widgets.prompts import repeated_token_probes, token_prompt

    rng = np.random.default_rng(0)
    prompts = repeated_token_probes(8, 20) + [
        token_prompt(rng.integers(1, 1000, size=n).tolist(), id=f"rand-{n}") for n in (17, 33, 48, 64)
    ]
    return Atlas.from_model(toy_model, prompts, progress=False)


@pytest.fixture(scope="session")
def multi_atlas():
    """Two synthetic models x 3 layers x 4 heads (24 heads), 6 prompts of 20 tokens."""
    return synthetic_atlas(n_models=2, n_layers=3, n_heads=4, n_prompts=6, n_tokens=20)


@pytest.fixture(scope="session")
def gpt2_like_atlas():
    """A synthetic 'gpt2-small' (3 layers x 12 heads): its heads get the literature's known
    classes (e.g. L0H1 duplicate token, L2H2 previous token)."""
    return synthetic_atlas(n_models=1, n_layers=3, n_heads=12, n_prompts=5, n_tokens=16, model_names=["gpt2-small"])


@pytest.fixture(scope="session")
def toy_circuits_atlas(toy_model):
    """The toy model's atlas (as toy_view_atlas) with circuits and effect estimates
    (Atlas.add_circuits): every similar_by channel, head_stats columns, describe texts."""
    from motif_widgets import Atlas
    from motif_widgets.prompts import repeated_token_probes, token_prompt

    rng = np.random.default_rng(0)
    prompts = repeated_token_probes(8, 20) + [
        token_prompt(rng.integers(1, 1000, size=n).tolist(), id=f"rand-{n}") for n in (17, 33, 48, 64)
    ]
    return Atlas.from_model(toy_model, prompts, progress=False).add_circuits(toy_model)
