"""What a head does, in the widgets: circuit numbers, describe texts, similar_by channels with
percentiles, colour by head_stats, and kernel-side ablations (HeadExplorer(atlas, model=...))."""

from __future__ import annotations

import numpy as np
import pytest

from motif_widgets.widgets import HeadExplorer, PatternCloud, SimilarHeads


def test_circuits_reach_the_widget(toy_circuits_atlas):
    e = HeadExplorer(toy_circuits_atlas, selected_head="L1H0")
    atlas = toy_circuits_atlas
    assert e.similar_channels == ["pattern", "circuits", "effects", "combined"]
    assert e.channel_neighbor_index.shape[:2] == (3, len(atlas.head_ids))
    stats = atlas.data.head_stats.reindex(atlas.head_ids)
    assert "ov_copying" in e.stat_names and "effect" in e.stat_names
    col = e.stat_names.index("ov_copying")
    assert np.allclose(e.head_stats[:, col], stats["ov_copying"].to_numpy(np.float32), equal_nan=True)
    partner = stats.loc["toy-induction:L1H0", "k_comp_partner"]
    assert e.comp_partners[atlas.head_index("L1H0"), 1] == atlas.head_index(partner)
    assert e.head_descriptions[atlas.head_index("L1H0")] == atlas.describe("L1H0")
    # the panel's tables are Atlas.similar_heads(by=...)
    for c, by in enumerate(e.similar_channels[1:]):
        want = atlas.similar_heads("L1H0", k=3, by=by)["head"].tolist()
        got = [atlas.head_ids[j] for j in e.channel_neighbor_index[c, atlas.head_index("L1H0"), :3]]
        assert got == want
    e.similar_by = "circuits"
    assert e.similar_heads(k=3)["head"].tolist() == atlas.similar_heads("L1H0", k=3, by="circuits")["head"].tolist()
    # percentiles: quantiles of all head-pair distances per channel
    d = atlas.evidence_distances("effects")
    pairs = d[np.triu_indices(len(d), 1)]
    assert np.isclose(e.distance_quantiles[2, 500], np.median(pairs), rtol=1e-5)
    PatternCloud(atlas, color_by="ov_copying")  # colour by a head_stats column


def test_similar_by_needs_the_evidence(toy_view_atlas):
    panel = SimilarHeads(toy_view_atlas)
    assert panel.similar_channels == ["pattern"] and panel.channel_neighbor_index is None
    assert panel.stat_names == [] and panel.head_stats is None
    with pytest.raises(ValueError, match="add_circuits"):
        panel.similar_by = "circuits"
    with pytest.raises(ValueError, match="color_by"):
        PatternCloud(toy_view_atlas, color_by="ov_copying")


def test_ablate_runs_in_the_kernel(toy_circuits_atlas, toy_model):
    from motif_widgets.circuits import ablate

    e = HeadExplorer(toy_circuits_atlas, model=toy_model, ablate_prompts=4, selected_head="L1H0")
    assert e.can_ablate and not HeadExplorer(toy_circuits_atlas).can_ablate
    # the card's button sends {"type": "ablate", "heads": [...]}; the kernel answers in `ablation`
    e._on_message(e, {"type": "ablate", "heads": ["toy-induction:L1H0", "toy-induction:L0H1"]}, [])
    result = e.ablation
    assert result["status"] == "done" and len(result["prompts"]) == 4
    want = ablate(toy_model, e.ablation_prompts(), ["L1H0", "L0H1"])["delta_loss"]
    assert result["heads"] == pytest.approx({"toy-induction:L1H0": want.iloc[0], "toy-induction:L0H1": want.iloc[1]}, rel=1e-5)
    with pytest.raises(ValueError, match="model="):
        HeadExplorer(toy_circuits_atlas).ablate()


def test_export_has_no_ablate_button(toy_circuits_atlas, toy_model):
    from motif_widgets.widgets.export import pack_state, unpack_state

    e = HeadExplorer(toy_circuits_atlas, model=toy_model)
    doc, _ = unpack_state(pack_state(e))
    assert e.can_ablate and doc["state"]["can_ablate"] is False  # no kernel in the offline page
