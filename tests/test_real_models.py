"""One real run on SmolLM2-135M (the embedded default model), and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import requires_smollm2
from motif_widgets import Atlas, load_hf_model, load_model
from motif_widgets.cli import main
from motif_widgets.prompts import default_texts, repeated_token_probes

pytestmark = [pytest.mark.slow, requires_smollm2]
KNOWN_INDUCTION = {"L18H6", "L17H3", "L17H4", "L17H5", "L18H7"}  # found by probing, environment.md


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m")


@pytest.fixture(scope="module")
def smol_atlas(smollm2):
    prompts = default_texts()[:6] + repeated_token_probes(3, 25)
    return Atlas.from_model(smollm2, prompts, progress=False)


def test_smollm2_atlas_finds_induction_heads(smol_atlas):
    assert len(smol_atlas.head_ids) == 30 * 9 and smol_atlas.head_ids[0] == "smollm2-135m:L0H0"
    assert np.isfinite(smol_atlas.features).all() and np.isfinite(smol_atlas.distances).all()
    model = smol_atlas.data.models["smollm2-135m"]
    assert model.has_bos.all() and all(ids[0] == 1 for ids in model.token_ids)  # <|im_start|> as BOS
    scores = smol_atlas.head_scores()
    top = scores["induction"].sort_values(ascending=False).index[:3]
    assert {h.split(":")[1] for h in top} <= KNOWN_INDUCTION and scores["induction"].max() > 0.7
    near = smol_atlas.similar_heads("L18H6", k=5)
    assert len({h.split(":")[1] for h in near["head"]} & KNOWN_INDUCTION) >= 2


def test_smollm2_families_are_named_and_none_holds_most_heads(smol_atlas):
    families = smol_atlas.families()
    assert families.value_counts(normalize=True).max() <= 0.4  # issue 10: no family above 40% of the heads
    assert families.nunique() == smol_atlas.clusters().max() >= 4
    assert all(name for name in families)


def test_hugging_face_adapter_matches_the_bridge(smollm2, smol_atlas):
    hf, tok = load_hf_model("smollm2-135m")
    prompts = smol_atlas.prompts[:2] + smol_atlas.prompts[-1:]
    via_hf = Atlas.from_model(hf, prompts, tokenizer=tok, model_name="smollm2-135m", progress=False)
    via_bridge = Atlas.from_model(smollm2, prompts, progress=False)
    assert np.allclose(via_hf.features, via_bridge.features, atol=1e-5)


def test_command_line_main_job(tmp_path, capsys):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({"text": p.text}) for p in default_texts()[:3]) + "\n")
    assert main(["atlas", "--prompts", str(docs), "--n-prompts", "3", "--probes", "2", "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Top 5 heads by induction" in out and "smollm2-135m:L" in out
    assert (tmp_path / "o" / "summary.csv").exists() and (tmp_path / "o" / "head_table.csv").exists()
    back = Atlas.load(tmp_path / "o" / "atlas")
    assert len(back.prompts) == 5
    assert main(["models"]) == 0 and "toy-induction" in capsys.readouterr().out
