"""Readability, layout, theme and keyboard of the views in a plain page on a fake model:
sticky grid headers, scores in cloud tooltips, the explorer stacking when narrow, JupyterLab's
dark theme variables, and arrow keys / Enter in the neighbours, the grid and the cloud."""

from __future__ import annotations

from motif_widgets.widgets import HeadExplorer, PatternCloud, PatternGrid


def test_grid_headers_stay_visible_while_scrolling(render, gpt2_like_atlas):
    grid = PatternGrid(gpt2_like_atlas, heads="L0-L2", cell_size=64)  # 36 rows: the grid scrolls
    view = render(grid, "grid")
    page = view.page
    head = page.locator(".mw-grid-colhead").first
    assert head.evaluate("(e) => getComputedStyle(e).position") == "sticky"
    top = head.bounding_box()["y"]
    page.locator(".mw-grid-scroll").evaluate("(e) => { e.scrollTop = 600; }")
    page.wait_for_timeout(50)
    assert abs(head.bounding_box()["y"] - top) < 1  # still at the top of the scrolled grid
    assert page.locator(".mw-grid-rowhead").first.bounding_box()["y"] < top  # the rows moved under it


def test_cloud_tooltip_shows_the_head_scores(render, toy_view_atlas):
    cloud = PatternCloud(toy_view_atlas, cloud_mode="heads")
    view = render(cloud, "cloud")
    page = view.page
    head = toy_view_atlas.head_index("L1H0")
    local = page.evaluate("(h) => document.querySelector('.mw-cloud-canvas').mwCloud.pointOfHead(h)", head)
    box = page.locator(".mw-cloud-canvas").bounding_box()
    page.mouse.move(box["x"] + local[0], box["y"] + local[1])
    page.wait_for_timeout(50)
    tip = page.locator(".mw-tooltip").inner_text()
    score = float(toy_view_atlas.head_scores().loc["toy-induction:L1H0", "induction"])
    assert f"induction {score:.2f}" in tip


def test_explorer_stacks_when_its_own_width_is_narrow(render, toy_view_atlas):
    view = render(HeadExplorer(toy_view_atlas, selected_head="L1H0"), "explorer")
    page = view.page
    side_of = "() => [document.querySelector('.mw-explorer-cloud').getBoundingClientRect(), document.querySelector('.mw-explorer-side').getBoundingClientRect()].map((r) => [r.left, r.top, r.bottom])"
    (cloud_left, cloud_top, cloud_bottom), (side_left, side_top, _) = page.evaluate(side_of)
    assert side_left > cloud_left and abs(side_top - cloud_top) < 2  # side by side at 1240 px
    # the window stays wide; only the widget's own container narrows
    page.evaluate("() => { document.getElementById('root').style.width = '600px'; }")
    page.wait_for_timeout(150)
    assert "mw-narrow" in page.locator(".mw-explorer").get_attribute("class")
    (cloud_left, cloud_top, cloud_bottom), (side_left, side_top, _) = page.evaluate(side_of)
    assert side_top >= cloud_bottom - 1 and abs(side_left - cloud_left) < 2  # stacked


def test_jupyterlab_dark_theme_variables(render, toy_view_atlas):
    view = render(HeadExplorer(toy_view_atlas, selected_head="L1H0"), "explorer")
    page = view.page
    page.evaluate("""() => { const s = document.documentElement.style;
        s.setProperty('--jp-layout-color0', '#111111'); s.setProperty('--jp-layout-color1', '#222222');
        s.setProperty('--jp-ui-font-color1', '#eeeeee'); s.setProperty('--jp-border-color1', '#444444'); }""")
    root = page.locator(".mw-root")
    assert root.evaluate("(e) => getComputedStyle(e).backgroundColor") == "rgb(17, 17, 17)"
    assert root.evaluate("(e) => getComputedStyle(e).color") == "rgb(238, 238, 238)"
    view.update("selected_head", "toy-induction:L1H1")  # the next redraw follows the theme
    page.wait_for_timeout(100)
    corner = page.evaluate("""() => { const api = document.querySelector('.mw-cloud-canvas').mwCloud; api.renderNow();
        const gl = api.renderer.gl; const px = new Uint8Array(4); gl.readPixels(2, 2, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
        return Array.from(px.slice(0, 3)); }""")
    assert max(corner) < 40  # the cloud's background is the theme's, not white


def test_keyboard_moves_and_selects(render, toy_view_atlas):
    explorer = HeadExplorer(toy_view_atlas, selected_head="L1H0")
    view = render(explorer, "explorer")
    page = view.page
    # neighbours: focus the first, ArrowDown, Enter selects the second
    second = toy_view_atlas.similar_heads("L1H0", k=2)["head"].tolist()[1]
    page.locator(".mw-neighbor").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert view.sets("selected_head")[-1] == second
    page.wait_for_timeout(50)
    assert page.evaluate("() => document.activeElement.classList.contains('mw-neighbor')")  # focus stays in the list
    # grid: a heatmap, ArrowRight to the next prompt, Enter selects its head and enlarges that prompt
    view.update("selected_head", "toy-induction:L0H0")
    cell = page.locator('.mw-grid canvas[data-head="1"][data-thumb="0"]')
    cell.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert view.sets("selected_head")[-1] == "toy-induction:L0H1"
    assert view.sets("focus_prompt")[-1] == explorer.thumbnail_prompts[1]
    # cloud: focus, ArrowRight moves the cursor to the next head, Enter selects it
    view.update("selected_head", "toy-induction:L0H1")
    page.locator(".mw-cloud-canvas").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert view.sets("selected_head")[-1] == toy_view_atlas.head_ids[toy_view_atlas.head_index("L0H1") + 1]
    page.keyboard.press("ArrowDown")  # down: the same head number in the next layer
    page.keyboard.press("Enter")
    assert view.sets("selected_head")[-1] == "toy-induction:L1H2"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    assert view.sets("selected_head")[-1] == "toy-induction:L0H2"
