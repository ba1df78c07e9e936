"""Pattern features: batched torch kernels over padded [B, N, N] pattern batches."""

from .batch import PatternBatch, check_patterns, pad_patterns
from .motifs import MOTIF_FEATURE_DOCS, MOTIF_FEATURE_NAMES, motif_features
from .paper import PAPER_DROPPED_92, PAPER_FEATURE_NAMES, paper_features
from .registry import (
    FeatureSet,
    available_feature_sets,
    compute_features,
    get_feature_set,
    register_feature_set,
)

__all__ = [
    "FeatureSet", "MOTIF_FEATURE_DOCS", "MOTIF_FEATURE_NAMES", "PAPER_DROPPED_92", "PAPER_FEATURE_NAMES",
    "PatternBatch", "available_feature_sets", "check_patterns", "compute_features", "get_feature_set",
    "motif_features", "pad_patterns", "paper_features", "register_feature_set",
]
