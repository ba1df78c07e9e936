"""motif-widgets: classify attention heads by the shape of their attention patterns.

Pipeline: prompts -> sources (patterns, one layer at a time) -> features -> Atlas
(embedding, head distances, maps, scores) -> widgets.
"""

__version__ = "0.1.0"

from .atlas import Atlas, AtlasConfig  # noqa: E402
from .embed import PatternEmbedding  # noqa: E402
from .features import (  # noqa: E402
    FeatureSet,
    available_feature_sets,
    compute_features,
    get_feature_set,
    register_feature_set,
)
from .models import available_models, load_hf_model, load_model  # noqa: E402
from .atlas_data import AtlasData  # noqa: E402
from .prompts import Prompt, chunk_texts, default_prompts, load_jsonl, pile_prompts, repeated_token_probes, token_probe  # noqa: E402
from .store import AtlasFileError  # noqa: E402
from . import evaluate  # noqa: E402

#: The notebook views, imported on first use (the compute core needs no widget libraries).
_WIDGETS = ("HeadExplorer", "PatternCloud", "PatternGrid", "SimilarHeads", "link_selection")


def __getattr__(name: str):
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'motif_widgets' has no attribute {name!r}")

__all__ = [
    "Atlas", "AtlasConfig", "AtlasData", "AtlasFileError", "FeatureSet", "HeadExplorer", "PatternCloud", "PatternGrid", "SimilarHeads", "PatternEmbedding", "Prompt", "__version__", "available_feature_sets",
    "available_models", "chunk_texts", "compute_features", "default_prompts", "evaluate", "get_feature_set", "load_hf_model",
    "link_selection", "load_jsonl", "load_model", "pile_prompts", "register_feature_set", "repeated_token_probes", "token_probe",
]
