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


def test_what_a_head_does_in_the_card_and_panel(render, toy_circuits_atlas, toy_model, artifacts):
    atlas = toy_circuits_atlas
    explorer = HeadExplorer(atlas, model=toy_model, ablate_prompts=3, selected_head="L1H0")
    view = render(explorer, "explorer")
    page = view.page
    card = page.locator(".mw-card").inner_text()
    assert "OV copying" in card and "K-composition" in card and "ablation effect" in card
    partner = atlas.data.head_stats.loc["toy-induction:L1H0", "k_comp_partner"].split(":")[1]
    assert page.locator(".mw-circuit .mw-link").inner_text() == partner
    assert page.locator(".mw-description").inner_text() == atlas.describe("L1H0")
    # similar by: the panel switches tables in the browser, and Python hears the choice
    page.locator('select[aria-label="similar by"]').select_option("effects")
    assert view.sets("similar_by") == ["effects"]
    page.wait_for_timeout(50)
    want = [h.split(":")[1] for h in atlas.similar_heads("L1H0", k=5, by="effects")["head"]]
    assert page.locator(".mw-neighbor-name b").all_inner_texts()[:5] == want
    assert page.locator(".mw-percentile").count() >= 5  # each distance with its percentile
    assert "of all head pairs" in page.locator(".mw-distance").first.get_attribute("title")
    # ablate: the button asks the kernel; the answer (the ablation trait) shows in the card
    page.locator(".mw-ablate").click()
    sent = page.evaluate("() => window.fake.calls.filter((c) => c.op === 'send' && c.message.type === 'ablate').map((c) => c.message)")
    assert sent == [{"type": "ablate", "heads": ["toy-induction:L1H0"]}]
    explorer._on_message(explorer, sent[0], [])  # what the kernel does with it
    assert explorer.ablation["status"] == "done"
    view.update("ablation", explorer.ablation)
    delta = explorer.ablation["heads"]["toy-induction:L1H0"]
    assert page.locator(".mw-ablation-delta").inner_text() == f"{delta:+.4f}"
    # colour the cloud by a circuit number
    page.locator('select[aria-label="colour by"]').select_option("ov_copying")
    assert view.sets("color_by") == ["ov_copying"]
    page.wait_for_timeout(50)
    assert "OV copying" in page.locator(".mw-legend").inner_text()
    view.screenshot(artifacts, "fast_explorer_circuits.png")
