"""Browser tests: the views' ES modules in headless Chromium (Debian's /usr/bin/chromium through
Playwright; never `playwright install`).

Fast tier: a plain page imports one built bundle from motif_widgets/static and renders it on a
fake anywidget model (get / set / on / off / save_changes / send) that records every set; the
widget's real state comes from Python (embeddable_state). Tests skip with a reason when
Chromium or Playwright is missing. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "widgets")]
from atlas_fixtures import gpt2_like_atlas, multi_atlas, toy_circuits_atlas, toy_view_atlas  # noqa: E402,F401  (shared fixtures)
from browser_support import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    WidgetPage,
    chromium_missing_reason,
)


@pytest.fixture(scope="session")
def chromium_browser():
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def browser_page(chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 1300, "height": 1200})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def render(browser_page):
    """render(widget, bundle) -> WidgetPage: the widget's bundle on a fake model in a plain page."""

    def _render(widget, bundle: str) -> WidgetPage:
        return WidgetPage(browser_page, widget, bundle)

    return _render
