"""Head types suggested from the shipped reference atlas, measured as cross-model transfer:
each real model's heads are labelled from a reference without that model (the toy model and
the other family), on a prompt set the reference was not built on (the package's default
prompts: 48 texts + 12 probes; the reference used Pile documents). Right = the suggestion
equals the head's own probe-measured type (induction / previous_token, score >= 0.4).

    python benchmarks/suggest_classes.py

Goal: share of labelled heads suggested right >= 0.8. Also: unlabelled heads suggested
"other", and the same with texts only (an atlas without probes).
"""

from __future__ import annotations

import warnings

from motif_widgets import Atlas, load_model
from motif_widgets.evaluate import label_heads
from motif_widgets.prompts import default_prompts, default_texts


def main() -> None:
    warnings.simplefilter("ignore")
    for name in ("smollm2-135m", "gemma-3-270m"):
        model = load_model(name)
        full = Atlas.from_model(model, default_prompts(), progress=False)
        truth = label_heads(full).fillna("other")
        for tag, atlas in (("texts + probes", full), ("texts only", Atlas.from_model(model, default_texts(), progress=False))):
            s = atlas.suggest_classes()
            labelled = truth != "other"
            right = (s["suggested"][labelled] == truth[labelled]).mean()
            quiet = (s["suggested"][~labelled] == "other").mean()
            print(f"{name:14s} {tag:15s} labelled heads {int(labelled.sum()):2d}: suggested right {right:.3f} "
                  f"(goal 0.8); unlabelled suggested 'other' {quiet:.3f}; "
                  f"mean confidence right/wrong {s['confidence'][labelled & (s['suggested'] == truth)].mean():.2f}/"
                  f"{s['confidence'][labelled & (s['suggested'] != truth)].mean():.2f}")


if __name__ == "__main__":
    main()
