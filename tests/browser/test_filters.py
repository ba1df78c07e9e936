"""pattern-lens style head filters in the grid (layer range, head-type score, family), set
from Python or in the browser, and the same heads on both sides."""

from __future__ import annotations

import pytest

from motif_widgets.widgets import HeadExplorer
from motif_widgets.widgets.grid import filtered_heads


def row_labels(page) -> list[str]:
    return page.locator(".mw-grid-rowhead").all_inner_texts()


def short(ids) -> list[str]:
    return [h.split(":")[1] for h in ids]


def test_filter_heads_from_python_and_the_browser(render, gpt2_like_atlas, artifacts):
    atlas = gpt2_like_atlas
    explorer = HeadExplorer(atlas)
    view = render(explorer, "explorer")
    page = view.page
    # Python: layers 1-2 with a previous-token score >= 0.2, strongest first
    heads = explorer.filter_heads(layers=(1, 2), score="previous_token", min_score=0.2)
    scores = atlas.head_scores()["previous_token"]
    want = sorted((h for h in atlas.head_ids if atlas.heads.loc[atlas.head_index(h), "layer"] >= 1 and scores[h] >= 0.2),
                  key=lambda h: -scores[h])
    assert heads == want and 0 < len(heads) < 24
    view.push("grid_filter", "grid_rows")
    assert row_labels(page) == short(heads)
    # browser: a family narrows it; Python hears the same filter and lists the same heads
    family = explorer.cluster_names[explorer.clusters[atlas.head_index(heads[0])] - 1]
    page.locator('select[aria-label="filter family"]').select_option(family)
    proposed = view.sets("grid_filter")[-1]
    assert proposed == {"layers": [1, 2], "score": "previous_token", "min_score": 0.2, "family": family}
    explorer.grid_filter = proposed  # what the kernel does with the browser's change
    page.wait_for_timeout(50)
    expected = filtered_heads(atlas, explorer.grid_filter, explorer.clusters, explorer.cluster_names)
    assert row_labels(page) == short(expected) and heads[0] in expected
    # the layer range boxes: layer 2 only
    page.locator('input[aria-label="first layer"]').fill("2")
    page.locator('input[aria-label="first layer"]').dispatch_event("change")
    assert view.sets("grid_filter")[-1]["layers"] == [2, 2]
    page.wait_for_timeout(50)
    assert all(label.startswith("L2") for label in row_labels(page))
    view.screenshot(artifacts, "fast_filters.png")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"layers": [2, 1]}, "0 <= first <= last"),
        ({"layers": [0, 9]}, "0 <= first <= last <= 2"),
        ({"score": "copying"}, "not a head-type score"),
        ({"score": "induction", "min_score": "high"}, "min_score must be a finite number"),
        ({"family": "nope"}, "not a family of this atlas"),
        ({"heads": 3}, "unknown keys"),
    ],
)
def test_bad_filters_are_refused(gpt2_like_atlas, spec, message):
    explorer = HeadExplorer(gpt2_like_atlas)
    with pytest.raises(ValueError, match=message):
        explorer.grid_filter = spec
