"""Evidence about heads beyond their patterns, as head distances and plain-language accounts.

Channels of :meth:`Atlas.similar_heads` (``by=``):

- "pattern": the pattern embedding's head distances (the atlas's metric; the default);
- "circuits": Euclidean distance of z-scored weight statistics (CIRCUIT_COLUMNS, from
  :func:`motif_widgets.circuits.weight_stats`);
- "effects": Euclidean distance of z-scored ablation-effect estimates (EFFECT_COLUMNS, from
  :func:`motif_widgets.circuits.head_effects`);
- "combined": the mean of the available channels' distances, each divided by its median
  off-diagonal value (so no channel dominates by scale).

z-scores pool all heads of the atlas; a head without a value in a column (e.g. composition
in layer 0, or a model of a merged atlas without circuits) gets the column mean (z = 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

CHANNELS = ("pattern", "circuits", "effects", "combined")
CIRCUIT_COLUMNS = (
    "ov_copying", "ov_norm", "qk_norm", "ov_rank", "qk_rank", "q_comp_max", "k_comp_max", "v_comp_max",
)
EFFECT_COLUMNS = ("effect", "effect_repeated")


def circuit_stats(
    model, name: str, geometry: tuple[int, int], prompts, *, tokenizer=None, max_prompts: int = 16, max_tokens: int = 64,
) -> pd.DataFrame:
    """Per-head circuit statistics and effect estimates of `model`, indexed by the atlas's
    head ids "name:L{l}H{h}" (see Atlas.add_circuits).

    Args:
        geometry: (n_layers, n_heads) the atlas holds for this model (checked).
        prompts: the atlas's prompts: up to max_prompts texts give ``effect`` (mean-ablation
            attribution on all predictions) and up to max_prompts probes ``effect_repeated``
            (on the repeated tokens); none: weight statistics only.
    """
    from . import circuits

    stats = circuits.weight_stats(model)
    if len(stats) != geometry[0] * geometry[1]:
        raise ValueError(
            f"model has {len(stats)} heads but the atlas's {name!r} has {geometry[0]} x {geometry[1]}; "
            "pass the model the atlas was built from"
        )
    rename = {h: f"{name}:{h.rsplit(':', 1)[1]}" for h in stats.index}
    stats = stats.rename(index=rename).drop(columns=["layer", "head_index"])
    for kind in ("q", "k", "v"):
        column = f"{kind}_comp_partner"
        stats[column] = stats[column].map(lambda h: rename.get(h, h) if isinstance(h, str) else h)
    texts = [p for p in prompts if not p.is_probe][:max_prompts]
    probes = [p for p in prompts if p.is_probe][:max_prompts]
    for column, chosen, loss_on in (("effect", texts, "all"), ("effect_repeated", probes, "repeated")):
        if chosen:
            est = circuits.head_effects(model, chosen, tokenizer=tokenizer, max_tokens=max_tokens, loss_on=loss_on)
            stats[column] = est["delta_loss"].rename(index=rename)
    return stats


def stat_distances(stats: pd.DataFrame | None, columns, channel: str) -> np.ndarray:
    """[H, H] Euclidean distances of the z-scored `columns` of `stats` (those present)."""
    present = [c for c in columns if stats is not None and c in stats.columns and stats[c].notna().any()]
    if not present:
        raise ValueError(
            f"by={channel!r} needs the atlas's {channel} columns ({', '.join(columns)}); "
            "add them with atlas.add_circuits(model) or Atlas.from_model(..., circuits=True)"
        )
    x = stats[present].astype(np.float64)
    std = x.std(ddof=0).replace(0.0, 1.0)
    z = ((x - x.mean()) / std).fillna(0.0).to_numpy()
    return cdist(z, z)


def combined_distances(channels: list[np.ndarray]) -> np.ndarray:
    """Mean of the channels' distances, each scaled by its median off-diagonal value."""
    out = np.zeros_like(channels[0])
    off = ~np.eye(out.shape[0], dtype=bool)
    for d in channels:
        scale = np.median(d[off]) if off.any() else 1.0
        out += d / (scale if scale > 0 else 1.0)
    return out / len(channels)


def describe(atlas, head) -> str:
    """Two or three sentences on what a head looks at, what it moves and whether it matters,
    from the atlas's scores, family, circuits and effects (what is known of it)."""
    i = atlas.head_index(head)
    hid = atlas.head_ids[i]
    scores = atlas.head_scores().iloc[i]
    looks = {
        "induction": "the token after earlier copies of the current token",
        "duplicate_token": "earlier copies of the current token",
        "previous_token": "the previous token",
        "self": "itself",
        "first_token": "the first token (the attention sink)",
        "recent": "the last few tokens",
    }
    strong = [(s, float(scores[s])) for s in looks if s in scores.index and scores[s] >= 0.3]
    strong.sort(key=lambda x: -x[1])
    if strong:
        what = " and ".join(f"{looks[s]} ({v:.2f})" for s, v in strong[:2])
        first = f"{hid} attends to {what}"
    else:
        top = scores.drop("diffuse", errors="ignore").idxmax()
        spread = f"; diffuseness {scores['diffuse']:.2f}" if "diffuse" in scores.index else ""
        first = f"{hid} has no dominant motif (strongest: {top} {scores[top]:.2f}{spread})"
    if len(atlas.head_ids) > 1:
        first += f"; family: {atlas.families().iloc[i]}"
    sentences = [first + "."]
    stats = atlas.data.head_stats
    row = stats.iloc[i] if stats is not None else None
    if row is not None and pd.notna(row.get("ov_copying", np.nan)):
        c = float(row["ov_copying"])
        verb = "copies what it reads" if c >= 0.5 else "suppresses what it reads" if c <= -0.5 else "transforms what it reads"
        parts = [f"{verb} (OV copying {c:.2f})"]
        for kind, word in (("k", "K"), ("q", "Q"), ("v", "V")):
            value, partner = row.get(f"{kind}_comp_max", np.nan), row.get(f"{kind}_comp_partner", None)
            if pd.notna(value) and isinstance(partner, str):
                parts.append(f"strongest {word}-composition with {partner} ({float(value):.2f})")
                break
        sentences.append("It " + "; ".join(parts) + ".")
    if row is not None and pd.notna(row.get("effect", np.nan)):
        effect = float(row["effect"])
        rank = int((stats["effect"].abs() > abs(effect)).sum()) + 1
        text = f"Mean-ablating it changes the loss on text by {effect:+.4f} nats (estimated; rank {rank} of {len(stats)})"
        if pd.notna(row.get("effect_repeated", np.nan)):
            text += f" and on repeated sequences by {float(row['effect_repeated']):+.4f}"
        sentences.append(text + ".")
    return " ".join(sentences)
