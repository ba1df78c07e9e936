"""jupyter-scatter style cloud controls: hide or fade unselected points, zoom to the selection,
legend entries that toggle a category, PNG export of the cloud and of the large view."""

from __future__ import annotations

from motif_widgets.widgets import HeadExplorer


def cloud(page, expression: str):
    return page.evaluate(f"() => {{ const c = document.querySelector('.mw-cloud-canvas').mwCloud; return {expression}; }}")


INK = """(c) => { c.renderNow(); const gl = c.renderer.gl; const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
  const px = new Uint8Array(w * h * 4); gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
  let n = 0; for (let i = 0; i < px.length; i += 4) n += px[i] + px[i + 1] + px[i + 2] < 600; return n; }"""


def ink(page) -> int:
    """Pixels of the cloud canvas clearly darker than the white background."""
    return page.evaluate(f"() => ({INK})(document.querySelector('.mw-cloud-canvas').mwCloud)")


def test_unselected_points_fade_or_hide(render, multi_atlas, artifacts):
    explorer = HeadExplorer(multi_atlas, selected_head="model0:L1H2")
    view = render(explorer, "explorer")
    page = view.page
    assert cloud(page, "c.renderer.dim") == 0.4  # fade, the default
    faded = ink(page)
    page.locator('select[aria-label="unselected points"]').select_option("hide")
    assert view.sets("unselected") == ["hide"]
    explorer.unselected = "hide"  # the kernel accepts it
    page.wait_for_timeout(50)
    assert cloud(page, "c.renderer.dim") == 1
    hidden = ink(page)  # only the selected head's points (and the axes) are left
    page.locator('select[aria-label="unselected points"]').select_option("show")
    page.wait_for_timeout(50)
    shown = ink(page)
    assert hidden < 0.5 * faded and faded <= shown
    view.screenshot(artifacts, "fast_cloud_show_unselected.png")


def test_legend_entries_toggle_categories(render, multi_atlas):
    explorer = HeadExplorer(multi_atlas, color_by="model")
    view = render(explorer, "explorer")
    page = view.page
    n = len(multi_atlas.prompts)
    head = multi_atlas.head_index("model1:L0H0")
    page.wait_for_timeout(50)
    assert cloud(page, f"c.pointOfHead({head}) !== null")
    page.locator(".mw-legend-item", has_text="model1").click()
    assert view.sets("hidden_categories") == [["model1"]]
    explorer.hidden_categories = ["model1"]  # the kernel keeps it
    page.wait_for_timeout(50)
    # model1's points are neither drawn nor picked; model0's still are
    assert cloud(page, f"c.pointOfHead({head})") is None
    assert cloud(page, f"c.pointOfHead({multi_atlas.head_index('model0:L0H0')}) !== null")
    assert cloud(page, "c.renderer.hidden.reduce((a, b) => a + b, 0)") == 12 * n
    assert "mw-legend-off" in page.locator(".mw-legend-item", has_text="model1").get_attribute("class")
    # a click again shows them; a new colouring starts with everything shown
    page.locator(".mw-legend-item", has_text="model1").click()
    assert view.sets("hidden_categories")[-1] == []
    explorer.hidden_categories = ["model1"]
    explorer.color_by = "layer"
    assert explorer.hidden_categories == []


def test_zoom_to_selection_and_png(render, multi_atlas, artifacts):
    explorer = HeadExplorer(multi_atlas, selected_head="model0:L2H3")
    view = render(explorer, "explorer")
    page = view.page
    page.locator(".mw-zoom-selection").click()
    page.wait_for_timeout(80)
    zoom = cloud(page, "c.renderer.camera.zoom")
    assert zoom > 1
    # the selected head's points now span most of the view, centred
    spread = page.evaluate(
        """(h) => { const c = document.querySelector('.mw-cloud-canvas').mwCloud; const r = c.renderer;
             const { x, y } = r.projected(); const { width, height } = r.cssSize(); const p = c.pointCount / %d;
             let x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
             for (let j = 0; j < p; j++) { const i = h * p + j; x0 = Math.min(x0, x[i]); x1 = Math.max(x1, x[i]); y0 = Math.min(y0, y[i]); y1 = Math.max(y1, y[i]); }
             return [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, Math.max((x1 - x0) / width, (y1 - y0) / height)]; }"""
        % len(multi_atlas.head_ids),
        multi_atlas.head_index("model0:L2H3"),
    )
    assert abs(spread[0] - 0.5) < 0.15 and abs(spread[1] - 0.5) < 0.15 and spread[2] > 0.25
    # PNG of the cloud: a real image of the canvas's size
    with page.expect_download() as info:
        page.locator(".mw-cloud-view .mw-png").click()
    download = info.value
    assert download.suggested_filename == "pattern-cloud.png"
    data = open(download.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == tuple(cloud(page, "[c.renderer.canvas.width, c.renderer.canvas.height]"))
    # ... and of the large pattern view
    with page.expect_download() as info:
        page.locator(".mw-pattern-view .mw-png").click()
    assert info.value.suggested_filename == f"L2H3-{explorer.thumbnail_prompts[0]}.png"
    assert open(info.value.path(), "rb").read()[:4] == b"\x89PNG"
    # reset goes back to the whole cloud
    page.locator(".mw-cloud-view button", has_text="reset").click()
    assert cloud(page, "c.renderer.camera.zoom") == 1
    view.screenshot(artifacts, "fast_cloud_zoomed.png")


def test_size_and_opacity_encodings(render, gpt2_like_atlas):
    import numpy as np
    import pytest

    atlas = gpt2_like_atlas
    explorer = HeadExplorer(atlas, cloud_mode="heads")
    view = render(explorer, "explorer")
    page = view.page
    page.locator('select[aria-label="size by"]').select_option("previous_token")
    assert view.sets("size_by") == ["previous_token"]
    explorer.size_by = "previous_token"  # the kernel accepts it
    page.wait_for_timeout(50)
    factors = np.asarray(cloud(page, "Array.from(c.renderer.sizeFactors)"))
    scores = atlas.head_scores()["previous_token"].to_numpy()
    want = 0.5 + 2 * (scores - scores.min()) / (scores.max() - scores.min())
    np.testing.assert_allclose(factors, want, atol=1e-4)  # head mode: one point per head
    # opacity: the strongest head opaque, the weakest at 0.15, the others between
    page.locator('select[aria-label="opacity by"]').select_option("induction")
    page.wait_for_timeout(50)
    assert cloud(page, "c.renderer.translucent") is True
    assert page.evaluate(
        "() => { const c = document.querySelector('.mw-cloud-canvas').mwCloud; c.renderNow(); return c.renderer.gl.getError(); }"
    ) == 0
    page.locator('select[aria-label="size by"]').select_option("")
    page.wait_for_timeout(50)
    assert cloud(page, "c.renderer.sizeFactors") is None
    with pytest.raises(ValueError, match="size_by must be '' \\(none\\) or one of"):
        explorer.size_by = "loudness"
