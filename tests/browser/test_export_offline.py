"""The offline HTML export opens in headless Chromium with no network and responds to clicks."""

from __future__ import annotations

from motif_widgets.widgets import HeadExplorer, PatternCloud, PatternGrid


def open_offline(browser, path):
    """Open a saved page with the network off; returns (page, requests made, page errors)."""
    context = browser.new_context(viewport={"width": 1300, "height": 1250}, offline=True)
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    context.route("http*://**", lambda route: route.abort())  # anything not file:/blob:/data: fails
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=20000)
    return page, requests, errors


def test_explorer_export_works_offline(chromium_browser, toy_view_atlas, tmp_path, artifacts):
    explorer = HeadExplorer(toy_view_atlas, selected_head="L1H0", selection=["L1H0"])
    path = explorer.save_html(tmp_path / "explorer.html")
    page, requests, errors = open_offline(chromium_browser, path)
    assert not errors
    assert [u for u in requests if not u.startswith(("file:", "blob:", "data:"))] == []
    assert page.locator(".mw-card-title b").inner_text() == "L1H0"
    # a click on a neighbour moves every panel to it, without a kernel
    first = toy_view_atlas.similar_heads("L1H0", k=1)["head"][0]
    page.locator(".mw-neighbor").first.click()
    page.wait_for_timeout(50)
    assert page.evaluate("() => window.motifWidgetsModel.get('selected_head')") == first
    assert page.locator(".mw-card-title b").inner_text() == first.split(":")[1]
    assert page.locator(".mw-grid-rowhead.mw-is-selected").inner_text() == first.split(":")[1]
    # and a click on a heatmap of a layer-0 head
    page.locator('.mw-grid-rows').select_option("layer:0:0")
    page.locator('.mw-grid canvas[data-head="3"][data-thumb="2"]').click()
    page.wait_for_timeout(50)
    assert page.evaluate("() => window.motifWidgetsModel.get('selection')") == ["toy-induction:L0H3"]
    assert page.locator(".mw-similar-target").inner_text() == "L0H3"
    # no kernel: the page applies the selection rule itself (a head outside the selection replaces it)
    page.evaluate("() => window.motifWidgetsModel.set('selected_head', 'toy-induction:L1H2')")
    assert page.evaluate("() => window.motifWidgetsModel.get('selection')") == ["toy-induction:L1H2"]
    page.screenshot(path=str(artifacts / "export_offline_explorer.png"), full_page=True)
    page.context.close()


def test_single_views_export(chromium_browser, multi_atlas, tmp_path):
    grid_path = PatternGrid(multi_atlas, heads=["model1:L0H0", "model0:L2H3"]).save_html(tmp_path / "grid.html")
    page, _, errors = open_offline(chromium_browser, grid_path)
    assert not errors
    assert page.locator(".mw-grid-rowhead").all_inner_texts() == ["L0H0 model1", "L2H3 model0"]
    page.context.close()
    cloud_path = PatternCloud(multi_atlas, cloud_mode="heads").save_html(tmp_path / "cloud.html")
    page, _, errors = open_offline(chromium_browser, cloud_path)
    assert not errors
    assert page.evaluate("() => document.querySelector('.mw-cloud-canvas').mwCloud.pointCount") == len(multi_atlas.head_ids)
    page.context.close()


def test_export_with_cut_thumbnails_opens_any_point(chromium_browser, toy_view_atlas, toy_model, tmp_path, monkeypatch):
    from motif_widgets.widgets import export

    # a model attached in the kernel; the page carries none of it, and thumbnails cut to a budget
    explorer = HeadExplorer(toy_view_atlas, model=toy_model, selected_head="L1H3")
    h = len(toy_view_atlas.head_ids)
    monkeypatch.setattr(export, "EXPORT_THUMBNAIL_BYTES", h * 6 * 16 * 16)  # 6 of 12 prompts, 16 tokens
    carried = export.exported_thumbnails(explorer)
    assert carried["tokens"] == 16 and len(carried["prompts"]) == 6
    path = explorer.save_html(tmp_path / "explorer.html")
    page, _, errors = open_offline(chromium_browser, path)
    assert not errors
    assert page.locator(".mw-text-input").count() == 0 and page.locator(".mw-ablate").count() == 0
    # a carried prompt: its first 16 tokens; one the page does not carry: it says so
    for prompt in (carried["prompts"][-1], next(p for p in toy_view_atlas.prompt_ids if p not in carried["prompts"])):
        page.locator('.mw-pattern-view select[aria-label="prompt"]').select_option(prompt)
        page.wait_for_timeout(50)
        n = int(toy_view_atlas.data.models["toy-induction"].lengths[toy_view_atlas.prompt_ids.index(prompt)])
        status = page.locator(".mw-pattern-status").inner_text()
        if prompt in carried["prompts"]:
            assert status == f"thumbnail: the first 16 of {n} tokens"
            assert page.locator(".mw-tokens .mw-token-out").count() == n - 16
        else:
            assert status.startswith("no thumbnail of this prompt kept")
        assert page.locator(".mw-tokens .mw-token").count() == n  # the full text travels anyway
    page.context.close()
