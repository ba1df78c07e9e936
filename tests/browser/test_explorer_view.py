"""HeadExplorer's ES module in a plain page on a fake model: the views are linked through the
one selection state, whichever view (or the kernel) changes it."""

from __future__ import annotations

from motif_widgets.widgets import HeadExplorer


def text_of(page, selector: str) -> str | None:
    found = page.locator(selector)
    return found.inner_text() if found.count() else None


def panels(page) -> dict:
    """What each panel shows as 'the selected head' right now."""
    return {
        "card": text_of(page, ".mw-card-title b"),
        "similar": text_of(page, ".mw-similar-target"),
        "grid": text_of(page, ".mw-grid-rowhead.mw-is-selected"),
        "large": text_of(page, ".mw-pattern-title b"),
        "cloud": page.evaluate(
            "() => document.querySelector('.mw-cloud-canvas').mwCloud.renderer.highlights[1].indices.length"
        ),
    }


def test_a_click_in_one_view_updates_the_others(render, toy_view_atlas, artifacts):
    explorer = HeadExplorer(toy_view_atlas)
    view = render(explorer, "explorer")
    page = view.page
    p = len(toy_view_atlas.prompts)
    assert panels(page) == {"card": None, "similar": None, "grid": None, "large": "L0H0", "cloud": 0}
    # grid -> everything
    head = toy_view_atlas.head_index("L0H2")
    page.locator(f'.mw-grid canvas[data-head="{head}"][data-thumb="0"]').click()
    page.wait_for_timeout(50)
    assert panels(page) == {"card": "L0H2", "similar": "L0H2", "grid": "L0H2", "large": "L0H2", "cloud": p}
    # similar-heads panel -> everything (the grid follows to the neighbour's layer)
    neighbour = toy_view_atlas.similar_heads("L0H2", k=10)["head"].tolist()[-1].split(":")[1]
    page.locator(".mw-neighbor", has_text=neighbour).first.click()
    page.wait_for_timeout(50)
    assert panels(page) == {"card": neighbour, "similar": neighbour, "grid": neighbour, "large": neighbour, "cloud": p}
    # cloud -> everything
    target = toy_view_atlas.head_index("L1H3")
    local = page.evaluate("(h) => document.querySelector('.mw-cloud-canvas').mwCloud.pointOfHead(h)", target)
    box = page.locator(".mw-cloud-canvas").bounding_box()
    page.mouse.click(box["x"] + local[0], box["y"] + local[1])
    page.wait_for_timeout(50)
    assert panels(page)["card"] == "L1H3" and panels(page)["grid"] == "L1H3"
    assert view.sets("selected_head") == [f"toy-induction:{h}" for h in ("L0H2", neighbour, "L1H3")]
    assert "1 head selected" in page.locator(".mw-selection-count").inner_text()
    view.screenshot(artifacts, "fast_explorer.png")


def test_kernel_updates_reach_every_view(render, toy_view_atlas):
    explorer = HeadExplorer(toy_view_atlas, selected_head="L1H1")
    view = render(explorer, "explorer")
    page = view.page
    assert panels(page)["card"] == "L1H1"
    assert page.locator(".mw-selection-count").inner_text() == "1 head selected"  # the selected head counts
    view.update("selection", ["toy-induction:L0H1", "toy-induction:L0H3"])
    view.update("selected_head", "toy-induction:L0H3")
    shown = panels(page)
    assert shown["card"] == shown["similar"] == shown["grid"] == shown["large"] == "L0H3"
    assert page.locator(".mw-grid-rowhead.mw-in-selection").all_inner_texts() == ["L0H1", "L0H3"]
    assert "2 heads selected" in page.locator(".mw-selection-count").inner_text()
    page.locator(".mw-selection-line button", has_text="clear").click()
    assert view.sets("selection") == [[]] and view.sets("selected_head") == [None]
    page.wait_for_timeout(50)
    assert panels(page)["card"] is None
