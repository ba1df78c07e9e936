"""PatternCloud's ES module in a plain page on a fake model: WebGL drawing, hover, click,
shift-click, lasso, modes and colours."""

from __future__ import annotations

import pytest

from motif_widgets.widgets import PatternCloud


def point_of(page, head: int):
    """Page coordinates of a visible point of `head` that picking resolves to it."""
    local = page.evaluate("(h) => document.querySelector('.mw-cloud-canvas').mwCloud.pointOfHead(h)", head)
    assert local is not None, f"no visible point of head {head}"
    box = page.locator(".mw-cloud-canvas").bounding_box()
    return box["x"] + local[0], box["y"] + local[1]


def highlighted(page) -> list[int]:
    """Points in each highlight pass: [selection, selected head]."""
    return page.evaluate(
        "() => document.querySelector('.mw-cloud-canvas').mwCloud.renderer.highlights.map((g) => g.indices.length)"
    )


def drawn_colors(page) -> dict[str, int]:
    """Pixels per non-white colour ("#rrggbb") in the WebGL drawing buffer after a synchronous draw."""
    return page.evaluate(
        """() => {
            const api = document.querySelector('.mw-cloud-canvas').mwCloud;
            api.renderNow();
            const gl = api.renderer.gl;
            const { width, height } = gl.canvas;
            const px = new Uint8Array(4 * width * height);
            gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, px);
            const counts = {};
            for (let i = 0; i < px.length; i += 4) {
                if (px[i] > 249 && px[i + 1] > 249 && px[i + 2] > 249) continue;
                const hex = "#" + [px[i], px[i + 1], px[i + 2]].map((v) => v.toString(16).padStart(2, "0")).join("");
                counts[hex] = (counts[hex] || 0) + 1;
            }
            return counts;
        }"""
    )


def test_cloud_draws_every_pattern_point(render, multi_atlas, artifacts):
    cloud = PatternCloud(multi_atlas, color_by="model")
    view = render(cloud, "cloud")
    page = view.page
    h, p = len(multi_atlas.head_ids), len(multi_atlas.prompts)
    assert page.evaluate("() => document.querySelector('.mw-cloud-canvas').mwCloud.pointCount") == h * p
    assert page.locator(".mw-count").inner_text() == f"{h * p} points"
    colors = drawn_colors(page)
    # both model colours (the Tableau palette's first two), on at least ~10 px per point each
    model0, model1 = colors.get("#4e79a7", 0), colors.get("#f28e2b", 0)
    assert model0 > 10 * h * p / 2 * 0.3 and model1 > 10 * h * p / 2 * 0.3, colors
    assert page.locator(".mw-legend-item").all_inner_texts() == multi_atlas.model_names
    view.screenshot(artifacts, "fast_cloud.png")


def test_hover_names_the_head_and_prompt(render, multi_atlas):
    cloud = PatternCloud(multi_atlas)
    page = render(cloud, "cloud").page
    head = multi_atlas.head_index("model1:L2H3")
    page.mouse.move(*point_of(page, head))
    tip = page.locator(".mw-cloud-stage .mw-tooltip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert "model1:L2H3" in text
    assert "prompt p0" in text and "layer 2" in text


def test_click_selects_a_head_and_highlights_all_its_points(render, multi_atlas):
    cloud = PatternCloud(multi_atlas)
    view = render(cloud, "cloud")
    page = view.page
    head = multi_atlas.head_index("model0:L1H2")
    page.mouse.click(*point_of(page, head))
    assert view.sets("selected_head") == ["model0:L1H2"]
    assert view.sets("selection") == [["model0:L1H2"]]
    page.wait_for_timeout(50)
    # the selected head's P points are drawn again on top, ringed
    counts = highlighted(page)
    assert counts == [0, len(multi_atlas.prompts)]
    # drawn: the selected head's points ringed in pink on top of the washed-out rest
    ring = [c for c in drawn_colors(page) if int(c[1:3], 16) > 220 and int(c[3:5], 16) < 45 and 85 < int(c[5:7], 16) < 115]
    assert ring, "no focus ring drawn"
    other = multi_atlas.head_index("model1:L0H0")
    view.clear()
    page.keyboard.down("Shift")
    page.mouse.click(*point_of(page, other))
    page.keyboard.up("Shift")
    assert view.sets("selection") == [["model0:L1H2", "model1:L0H0"]]
    assert view.sets("selected_head") == ["model1:L0H0"]


def test_lasso_selects_the_heads_inside(render, multi_atlas):
    cloud = PatternCloud(multi_atlas, cloud_mode="heads")
    view = render(cloud, "cloud")
    page = view.page
    assert page.evaluate("() => document.querySelector('.mw-cloud-canvas').mwCloud.pointCount") == len(multi_atlas.head_ids)
    head = multi_atlas.head_index("model0:L0H1")
    x, y = point_of(page, head)
    page.keyboard.down("Shift")
    page.mouse.move(x - 12, y - 12)
    page.mouse.down()
    for dx, dy in [(12, -12), (12, 12), (-12, 12), (-12, -12)]:
        page.mouse.move(x + dx, y + dy, steps=3)
    page.mouse.up()
    page.keyboard.up("Shift")
    chosen = view.sets("selection")[-1]
    assert "model0:L0H1" in chosen
    # exactly the heads whose points lie inside the square
    inside = page.evaluate(
        """([x, y]) => { const c = document.querySelector('.mw-cloud-canvas'); const r = c.getBoundingClientRect();
            const p = c.mwCloud.renderer.projected(); const out = [];
            for (let i = 0; i < p.x.length; i++) {
                if (Math.abs(p.x[i] + r.left - x) < 11.5 && Math.abs(p.y[i] + r.top - y) < 11.5) out.push(i);
            }
            return out; }""",
        [x, y],
    )
    assert sorted(multi_atlas.head_index(h) for h in chosen) == sorted(inside)


def test_lasso_in_pattern_mode_takes_heads_with_half_their_points_inside(render, multi_atlas):
    cloud = PatternCloud(multi_atlas)  # pattern mode: 6 points per head
    view = render(cloud, "cloud")
    page = view.page
    x, y = point_of(page, multi_atlas.head_index("model0:L0H1"))
    r = 60
    page.keyboard.down("Shift")
    page.mouse.move(x - r, y - r)
    page.mouse.down()
    for dx, dy in [(r, -r), (r, r), (-r, r), (-r, -r)]:
        page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    chosen = sorted(multi_atlas.head_index(h) for h in view.sets("selection")[-1])
    # the points inside the same square (the renderer's own point-in-polygon test), counted per head
    share = page.evaluate(
        """([x, y, r]) => { const c = document.querySelector('.mw-cloud-canvas'); const b = c.getBoundingClientRect();
            const lx = x - b.left, ly = y - b.top;
            const inside = c.mwCloud.renderer.inside([[lx - r, ly - r], [lx + r, ly - r], [lx + r, ly + r], [lx - r, ly + r]]);
            const n = {};
            for (const i of inside) { const h = Math.floor(i / 6); n[h] = (n[h] || 0) + 1; }
            return n; }""",
        [x, y, r],
    )
    assert any(n < 3 for n in share.values())  # some heads have a point inside but not half
    assert chosen == sorted(int(h) for h, n in share.items() if n >= 3)  # of 6
    assert "50%" in page.locator("button", has_text="lasso").get_attribute("title")


def test_mode_and_colour_controls(render, multi_atlas):
    cloud = PatternCloud(multi_atlas)
    view = render(cloud, "cloud")
    page = view.page
    page.locator('select[aria-label="cloud mode"]').select_option("heads")
    assert view.sets("cloud_mode") == ["heads"]
    page.wait_for_timeout(50)
    assert page.evaluate("() => document.querySelector('.mw-cloud-canvas').mwCloud.pointCount") == len(multi_atlas.head_ids)
    options = page.locator('select[aria-label="colour by"] option').evaluate_all("(os) => os.map((o) => o.value)")
    assert options[:4] == ["layer", "model", "cluster", "known_class"]
    assert set(options[4:]) == set(multi_atlas.head_scores().columns)
    page.locator('select[aria-label="colour by"]').select_option("previous_token")
    assert view.sets("color_by") == ["previous_token"]
    page.wait_for_timeout(50)
    high = page.locator(".mw-legend .mw-small").all_inner_texts()[-1]
    assert float(high) == pytest.approx(multi_atlas.head_scores()["previous_token"].max(), abs=0.006)
    page.locator('select[aria-label="colour by"]').select_option("cluster")
    page.wait_for_timeout(50)
    legend = page.locator(".mw-legend").inner_text()
    for name in set(multi_atlas.families()):  # clusters are named by their family in the legend
        assert name in legend


def test_selection_from_python_is_drawn(render, multi_atlas):
    cloud = PatternCloud(multi_atlas)
    view = render(cloud, "cloud")
    page = view.page
    view.update("selection", ["model0:L0H0", "model1:L2H1", "model1:L2H2"])
    view.update("selected_head", "model1:L2H1")
    counts = highlighted(page)
    p = len(multi_atlas.prompts)
    assert counts == [2 * p, p]
    assert view.sets("selected_head") == []  # a kernel update is not echoed back
