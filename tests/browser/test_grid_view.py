"""PatternGrid's ES module in a plain page on a fake model: rows, hover, click, scales."""

from __future__ import annotations

import re

import numpy as np
import pytest

from motif_widgets.widgets import PatternGrid


def cell_point(page, head: int, thumb: int, q: int, k: int, m: int, scope: str = ".mw-grid"):
    """Page coordinates of cell (q, k) of the heatmap of (head, thumb) drawn for an m x m pattern."""
    box = page.locator(f'{scope} canvas[data-head="{head}"][data-thumb="{thumb}"]').bounding_box()
    return box["x"] + (k + 0.5) * box["width"] / m, box["y"] + (q + 0.5) * box["height"] / m


def row_labels(page) -> list[str]:
    return page.locator(".mw-grid-rowhead").all_inner_texts()


def test_grid_renders_the_selected_heads_layer(render, toy_view_atlas, artifacts):
    grid = PatternGrid(toy_view_atlas, selected_head="L1H2")
    view = render(grid, "grid")
    page = view.page
    assert row_labels(page) == ["L1H0", "L1H1", "L1H2", "L1H3"]
    prompts = grid.thumbnail_prompts
    assert page.locator(".mw-grid-colhead").all_inner_texts() == prompts
    canvases = page.locator(".mw-grid canvas.mw-heatmap")
    assert canvases.count() == 4 * len(prompts)
    # one canvas pixel per token: a 17-token prompt gives a 17 x 17 canvas, long ones 64 x 64
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('.mw-grid canvas[data-head=\"6\"]')].map((c) => [c.width, c.height])"
    )
    expected = [len(t["tokens"]) for t in toy_view_atlas.thumbnails("L1H2")]
    assert sizes == [[n, n] for n in expected]
    assert page.locator(".mw-grid-rowhead.mw-is-selected").inner_text() == "L1H2"
    view.screenshot(artifacts, "fast_grid.png")


def test_hover_shows_query_key_tokens_and_weight(render, toy_view_atlas):
    grid = PatternGrid(toy_view_atlas, selected_head="L1H1", cell_size=200)  # ~5 px per token
    page = render(grid, "grid").page
    head = toy_view_atlas.head_index("L1H1")
    thumbs = toy_view_atlas.thumbnails("L1H1")
    t = next(i for i, th in enumerate(thumbs) if th["prompt"].startswith("probe"))
    pattern, tokens = thumbs[t]["pattern"], thumbs[t]["tokens"]
    m = len(tokens)
    q = m - 3  # in the repeated half: an induction head looks back one period
    k = int(pattern[q].argmax())
    page.mouse.move(*cell_point(page, head, t, q, k, m))
    tip = page.locator(".mw-grid-view > .mw-tooltip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert f"query {q} \u201c{tokens[q]}\u201d" in text
    assert f"key {k} \u201c{tokens[k]}\u201d" in text
    weight = float(re.search(r"weight ([0-9.]+)", text).group(1))
    assert weight == pytest.approx(float(pattern[q, k]), abs=6e-5)
    assert weight > 0.3  # the toy model's induction heads are sharp
    page.mouse.move(5, 5)
    tip.wait_for(state="hidden")


def test_large_view_has_token_labels_and_hover(render, toy_view_atlas, artifacts):
    grid = PatternGrid(toy_view_atlas, selected_head="L1H3")
    view = render(grid, "grid")
    page = view.page
    thumbs = toy_view_atlas.thumbnails("L1H3")
    t = [th["prompt"] for th in thumbs].index("rand-17")
    page.locator('.mw-pattern-view select[aria-label="prompt"]').select_option("rand-17")
    assert view.sets("focus_prompt") == ["rand-17"]
    page.wait_for_timeout(50)
    m = len(thumbs[t]["tokens"])  # BOS + 17 tokens
    assert "L1H3 on rand-17" in page.locator(".mw-pattern-title").inner_text()
    # the view says at what resolution: the whole prompt fits the thumbnail (no model attached)
    assert page.locator(".mw-pattern-status").inner_text() == f"thumbnail: all {m} tokens"
    canvas = page.locator(".mw-pattern-canvas")
    geometry = page.evaluate(
        "() => { const c = document.querySelector('.mw-pattern-canvas'); return [c.clientWidth, c.clientHeight]; }"
    )
    # 92 px of query labels, 74 px of key labels, m cells of 14 px (the largest), 8 px margin
    assert geometry == [92 + m * 14 + 8, 74 + m * 14 + 8]
    box = canvas.bounding_box()
    q, k = 9, 4
    page.mouse.move(box["x"] + 92 + (k + 0.5) * 14, box["y"] + 74 + (q + 0.5) * 14)
    text = page.locator(".mw-pattern-body .mw-tooltip").inner_text()
    tokens, pattern = thumbs[t]["tokens"], thumbs[t]["pattern"]
    assert f"query {q} \u201c{tokens[q]}\u201d" in text and f"key {k} \u201c{tokens[k]}\u201d" in text
    assert float(re.search(r"weight ([0-9.]+)", text).group(1)) == pytest.approx(float(pattern[q, k]), abs=6e-5)
    # the labels are drawn: the label column left of the heatmap is not blank
    inked = page.evaluate(
        """() => { const c = document.querySelector('.mw-pattern-canvas'); const d = window.devicePixelRatio;
           const px = c.getContext('2d').getImageData(0, 74 * d, 90 * d, 200 * d).data;
           let n = 0; for (let i = 3; i < px.length; i += 4) n += px[i] > 0; return n; }"""
    )
    assert inked > 200
    view.screenshot(artifacts, "fast_grid_large_view.png")


def test_click_selects_the_head_and_focuses_the_prompt(render, toy_view_atlas):
    grid = PatternGrid(toy_view_atlas, heads=0)
    view = render(grid, "grid")
    page = view.page
    assert row_labels(page) == ["L0H0", "L0H1", "L0H2", "L0H3"]
    head = toy_view_atlas.head_index("L0H3")
    page.locator(f'.mw-grid canvas[data-head="{head}"][data-thumb="1"]').click()
    assert view.sets("selected_head") == ["toy-induction:L0H3"]
    assert view.sets("selection") == [["toy-induction:L0H3"]]
    assert view.sets("focus_prompt") == [grid.thumbnail_prompts[1]]
    assert view.saved() >= 1
    # the large view shows the clicked head on the clicked prompt, tokens on both axes
    assert "L0H3" in page.locator(".mw-pattern-title").inner_text()
    assert grid.thumbnail_prompts[1] in page.locator(".mw-pattern-title").inner_text()
    # shift-click on a row label adds a head to the selection
    view.clear()
    page.locator(".mw-grid-rowhead", has_text="L0H1").click(modifiers=["Shift"])
    assert view.sets("selection") == [["toy-induction:L0H3", "toy-induction:L0H1"]]
    assert view.sets("selected_head") == ["toy-induction:L0H1"]


def test_rows_follow_the_selection_from_python(render, toy_view_atlas):
    grid = PatternGrid(toy_view_atlas, selected_head="L1H0")
    view = render(grid, "grid")
    page = view.page
    view.update("selected_head", "toy-induction:L0H2")
    assert row_labels(page) == ["L0H0", "L0H1", "L0H2", "L0H3"]
    assert page.locator(".mw-grid-rowhead.mw-is-selected").inner_text() == "L0H2"
    assert "L0H2" in page.locator(".mw-pattern-title").inner_text()
    view.update("grid_rows", "heads")
    view.update("grid_heads", ["toy-induction:L1H3", "toy-induction:L0H0"])
    assert row_labels(page) == ["L1H3", "L0H0"]


def test_log_scale_lifts_small_weights(render, toy_view_atlas):
    grid = PatternGrid(toy_view_atlas, selected_head="L1H0", colormap="blues", color_scale="linear")
    view = render(grid, "grid")
    page = view.page
    head = toy_view_atlas.head_index("L1H0")
    pattern = toy_view_atlas.thumbnails("L1H0")[0]["pattern"]
    m = pattern.shape[0]
    q, k = divmod(int(((pattern > 0.01) & (pattern < 0.04)).argmax()), m)  # a small weight
    assert 0.01 < pattern[q, k] < 0.04

    def red(q, k):  # blues: the red channel falls from 247 (weight 0) towards 8 (weight 1)
        return page.evaluate(
            """([h, q, k]) => {
                const c = document.querySelector(`.mw-grid canvas[data-head="${h}"][data-thumb="0"]`);
                return c.getContext("2d").getImageData(k, q, 1, 1).data[0];
            }""",
            [head, q, k],
        )

    linear = red(q, k)
    page.locator('select[aria-label="colour scale"]').select_option("log")
    assert view.sets("color_scale") == ["log"]
    page.wait_for_timeout(50)
    log = red(q, k)
    # linear: t <= 0.04, near white; log10 with a 1e-3 floor: t = (log10(w) + 3) / 3 >= 0.33
    assert linear > 235 and log < 200



def test_relative_scale_is_the_default_and_says_so(render, toy_view_atlas):
    """Default colour scale: weight / the pattern's largest weight off the first-token column
    (at least 0.1): that cell gets the darkest colour, and the colour bar says what the scale is."""
    grid = PatternGrid(toy_view_atlas, selected_head="L1H0", colormap="blues")
    assert grid.color_scale == "relative"
    view = render(grid, "grid")
    page = view.page
    head = toy_view_atlas.head_index("L1H0")
    pattern = toy_view_atlas.thumbnails("L1H0")[0]["pattern"]
    off = np.tril(pattern.copy())
    off[:, 0] = 0
    q, k = np.unravel_index(int(off.argmax()), off.shape)
    assert off[q, k] >= 0.1
    red = page.evaluate(
        """([h, q, k]) => document.querySelector(`.mw-grid canvas[data-head="${h}"][data-thumb="0"]`)
            .getContext("2d").getImageData(k, q, 1, 1).data[0]""",
        [head, int(q), int(k)],
    )
    assert red <= 10  # blues at t = 1: #08306b
    assert page.locator(".mw-scale-high").inner_text() == "max*"
    assert "first token" in page.locator(".mw-colorbar").get_attribute("title")
    page.locator('select[aria-label="colour scale"]').select_option("linear")
    page.wait_for_timeout(50)
    assert page.locator(".mw-scale-high").inner_text() == "1"
    assert "0 to 1" in page.locator(".mw-colorbar").get_attribute("title")
