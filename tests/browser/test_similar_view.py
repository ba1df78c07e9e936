"""SimilarHeads' ES module in a plain page on a fake model: neighbours, badges, classes,
model filter, click and search."""

from __future__ import annotations

import numpy as np
import pytest

from motif_widgets.widgets import SimilarHeads


def listed(page) -> list[tuple[str, float]]:
    """(head label, shown distance) of every neighbour row, in order."""
    rows = page.locator(".mw-neighbor")
    out = []
    for i in range(rows.count()):
        row = rows.nth(i)
        out.append((row.locator(".mw-neighbor-name b").inner_text(), float(row.locator(".mw-distance-value").inner_text())))
    return out


def test_neighbours_match_atlas_similar_heads(render, toy_view_atlas, artifacts):
    panel = SimilarHeads(toy_view_atlas, selected_head="L1H0", top_k=5)
    view = render(panel, "similar")
    page = view.page
    expected = toy_view_atlas.similar_heads("L1H0", k=5)
    got = listed(page)
    assert [g[0] for g in got] == [h.split(":")[1] for h in expected["head"]]
    assert [g[1] for g in got] == pytest.approx(expected["distance"].round(2).tolist(), abs=0.006)
    # three thumbnails per neighbour, and induction badges on the layer-1 neighbours
    assert page.locator(".mw-neighbor").first.locator("canvas.mw-thumb").count() == 3
    for row, (_, r) in zip(page.locator(".mw-neighbor").all(), expected.iterrows()):
        badges = row.locator(".mw-badge").all_inner_texts()
        strong = sorted(s for s in toy_view_atlas.head_scores().columns if r[s] >= 0.4)
        assert sorted(b.rsplit(" ", 1)[0] for b in badges) == sorted(
            s.replace("_", " ") for s in strong  # the card's names: "previous token", "first token", ...
        )
    # each distance with its percentile among all head pairs
    d = toy_view_atlas.distances
    pairs = d[np.triu_indices(len(d), 1)]
    first = page.locator(".mw-percentile").first.inner_text()
    d0 = expected["distance"][0]
    lo, hi = 100 * (pairs < d0 - 1e-6).mean(), 100 * (pairs <= d0 + 1e-6).mean()  # the empirical CDF around d0
    assert first == "<0.1%" or lo - 0.1 <= float(first.rstrip("%")) <= hi + 0.1
    assert "induction" in page.locator(".mw-neighbor").first.inner_text()
    view.screenshot(artifacts, "fast_similar.png")


def test_clicking_a_neighbour_selects_it(render, toy_view_atlas):
    panel = SimilarHeads(toy_view_atlas, selected_head="L0H0")
    view = render(panel, "similar")
    page = view.page
    first = toy_view_atlas.similar_heads("L0H0", k=1)["head"][0]
    page.locator(".mw-neighbor").first.click()
    assert view.sets("selected_head") == [first]
    assert view.sets("selection") == [[first]]
    # the panel follows at once (no kernel round trip): now the neighbours of the new head
    page.wait_for_timeout(30)
    assert page.locator(".mw-similar-target").inner_text() == first.split(":")[1]
    assert [g[0] for g in listed(page)] == [h.split(":")[1] for h in toy_view_atlas.similar_heads(first, k=7)["head"]]


def test_model_filter(render, multi_atlas):
    panel = SimilarHeads(multi_atlas, selected_head="model0:L1H1", top_k=5)
    view = render(panel, "similar")
    page = view.page
    page.locator('select[aria-label="model of the neighbours"]').select_option("model1")
    assert view.sets("neighbor_model") == ["model1"]
    page.wait_for_timeout(30)
    expected = multi_atlas.similar_heads("model0:L1H1", k=5, models=["model1"])
    rows = page.locator(".mw-neighbor")
    names = [r.locator(".mw-neighbor-name").inner_text().replace("\n", " ") for r in rows.all()]
    assert names == [f"{h.split(':')[1]} model1" for h in expected["head"]]


def test_known_class_chips(render, gpt2_like_atlas):
    # a head whose 10 nearest include gpt2-small L0H1, a known duplicate-token head
    target = next(h for h in gpt2_like_atlas.head_ids if "gpt2-small:L0H1" in set(gpt2_like_atlas.similar_heads(h, k=10)["head"]))
    panel = SimilarHeads(gpt2_like_atlas, selected_head=target, top_k=10)
    page = render(panel, "similar").page
    classes = gpt2_like_atlas.known_classes()
    row = page.locator('.mw-neighbor[data-head="1"]')
    chips = row.locator(".mw-chip").all_inner_texts()
    assert chips == classes["gpt2-small:L0H1"]
    assert "IOI:Duplicate Token" in chips


def test_search_box_selects_a_head(render, multi_atlas):
    panel = SimilarHeads(multi_atlas)
    view = render(panel, "similar")
    page = view.page
    assert "Select a head" in page.locator(".mw-similar-title").inner_text()
    box = page.locator('input[aria-label="go to head"]')
    box.fill("model1:L2H0")
    box.press("Enter")
    assert view.sets("selected_head") == ["model1:L2H0"]
    box.fill("L9H9")
    box.press("Enter")
    assert view.sets("selected_head") == ["model1:L2H0"]  # unknown: nothing selected
    assert "mw-invalid" in box.get_attribute("class")


def test_panel_says_what_the_thumbnail_colours_mean(render, toy_view_atlas):
    view = render(SimilarHeads(toy_view_atlas, selected_head="L1H0"), "similar")
    note = view.page.locator(".mw-scale-note")
    assert "relative" in note.inner_text() and "first token" in note.get_attribute("title")
    view.update("color_scale", "log")
    assert view.page.locator(".mw-scale-note").inner_text() == "thumbnails: log scale"
