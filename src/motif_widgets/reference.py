"""Head types for any model from a small reference atlas shipped with the package.

The reference (data/reference_heads.parquet, built by scripts/build_reference.py) holds the
heads of the toy model, SmolLM2-135M and Gemma-3-270M with their probe-measured types
(induction / previous_token, scores >= 0.4 on repeated-random-token probes, else "other")
and a profile per head: the mean `motifs` features over text prompts ("text.<feature>")
and over probes ("probe.<feature>"). gpt2-small's literature classes ship as data too
(detect.known_classes). Any atlas that collected `motifs` gets suggestions:

    atlas.suggest_classes()   # head -> suggested type, confidence, nearest reference head

A head takes the type of its nearest reference head (profiles z-scored with the reference's
statistics, Euclidean; the text block, the probe block or both, as the atlas has texts and
probes); confidence = d_other / (d_same + d_other), with d_same the distance to the nearest
reference head of the suggested type and d_other to the nearest of any other type: 0.5 is a
tie, near 1 unambiguous.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

REFERENCE_FILE = "reference_heads.parquet"
FEATURE_SET = "motifs"
TYPES = ("induction", "previous_token")


def head_profiles(atlas) -> pd.DataFrame:
    """[H, 2F] mean `motifs` features of each head over the atlas's text prompts
    ("text.<f>") and over its probes ("probe.<f>"); a block is NaN without such prompts."""
    if FEATURE_SET not in atlas.data.features:
        raise ValueError(
            f"class suggestions compare `{FEATURE_SET}` features; this atlas collected {sorted(atlas.data.features)}"
        )
    f = np.asarray(atlas.data.features[FEATURE_SET])  # reads a lazily loaded table whole
    names = atlas.data.feature_names[FEATURE_SET]
    probe = np.array([p.is_probe for p in atlas.prompts])
    blocks = {}
    for kind, mask in (("text", ~probe), ("probe", probe)):
        mean = f[:, mask].mean(1) if mask.any() else np.full((f.shape[0], f.shape[2]), np.nan)
        blocks.update({f"{kind}.{n}": mean[:, k] for k, n in enumerate(names)})
    return pd.DataFrame(blocks, index=pd.Index(atlas.head_ids, name="head"))


def reference_rows(atlas, thresholds: dict[str, float] | None = None) -> pd.DataFrame:
    """Reference rows of an atlas with probes: model, label, the probe scores and profiles."""
    from .evaluate import label_heads

    labels = label_heads(atlas, thresholds).fillna("other")
    scores = atlas.head_scores(prompts="probes").add_prefix("score.")
    table = atlas.heads.set_index("head")[["model"]].join(labels).join(scores).join(head_profiles(atlas))
    table.attrs["revision"] = atlas.data.feature_revisions[FEATURE_SET]
    return table


@lru_cache(maxsize=1)
def _shipped() -> pd.DataFrame:
    import pyarrow.parquet as pq

    path = resources.files("motif_widgets") / "data" / REFERENCE_FILE
    table = pq.read_table(str(path))
    frame = table.to_pandas().set_index("head")
    frame.attrs["revision"] = (table.schema.metadata or {}).get(b"motifs_revision", b"?").decode()
    return frame


def load_reference() -> pd.DataFrame:
    """The shipped reference heads (a copy): index head id; model, label, score.*, text.*, probe.*."""
    frame = _shipped()
    out = frame.copy()
    out.attrs = dict(frame.attrs)
    return out


def suggest_classes(atlas, reference: pd.DataFrame | None = None, exclude_models=None) -> pd.DataFrame:
    """Each head's likely type from its nearest reference head.

    Args:
        reference: reference rows (default the shipped ones, load_reference()); build your
            own with reference_rows(atlas) and pd.concat.
        exclude_models: reference models to leave out (default: the atlas's own models, so a
            model is never labelled by itself).
    Returns:
        DataFrame indexed by head id: suggested (a type or "other"), confidence (0.5..1),
        nearest (the nearest reference head), distance.
    """
    from .features.registry import get_feature_set

    profiles = head_profiles(atlas)  # refuses atlases without motif features first
    ref = load_reference() if reference is None else reference
    revision = ref.attrs.get("revision")
    current = atlas.data.feature_revisions.get(FEATURE_SET)
    if revision not in (None, current):
        warnings.warn(
            f"the reference profiles were computed under `{FEATURE_SET}` revision {revision}, this atlas under "
            f"{current}; suggestions may be off",
            stacklevel=3,
        )
    if current != get_feature_set(FEATURE_SET).revision:
        warnings.warn("this atlas's motif features are outdated; recompute it for reliable suggestions", stacklevel=3)
    exclude = set(atlas.model_names if exclude_models is None else exclude_models)
    ref = ref[~ref["model"].isin(exclude)]
    if ref.empty or ref["label"].nunique() < 2:
        raise ValueError("the reference has no heads of at least two types once the excluded models are left out")
    columns = [c for c in profiles.columns if profiles[c].notna().all() and c in ref.columns]
    if not columns:
        raise ValueError("the atlas has neither text prompts nor probes to compare with the reference")
    x = ref[columns].to_numpy(np.float64)
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    rz = (x - mean) / std
    tz = (profiles[columns].to_numpy(np.float64) - mean) / std
    d = cdist(tz, rz)  # [H, R]
    labels = ref["label"].to_numpy()
    nearest = d.argmin(1)
    suggested = labels[nearest]
    d_same = d[np.arange(len(d)), nearest]
    d_other = np.where(labels[None, :] != suggested[:, None], d, np.inf).min(1)
    return pd.DataFrame(
        {
            "suggested": suggested,
            "confidence": d_other / np.maximum(d_same + d_other, 1e-300),
            "nearest": ref.index.to_numpy()[nearest],
            "distance": d_same,
        },
        index=profiles.index,
    )
