"""Size of the offline explorer (HeadExplorer.save_html) and its load -> interactive time in
headless Chromium, before (the old format: JSON state, float16 thumbnails, base64 buffers) and
after (uint8 thumbnails, quantized points, gzip inflated by the browser's DecompressionStream).

    python benchmarks/export_size.py                    # SmolLM2 (270 heads, 60 prompts; ~1-6 min to build)
    python benchmarks/export_size.py --atlas PATH       # a saved Atlas (Atlas.save) instead
    python benchmarks/export_size.py --synthetic        # the 1,500-head benchmark atlas of widget_latency.py

Goals: SmolLM2 <= 4 MB and load -> interactive < 2 s; 1,500 heads <= 20 MB.
Load -> interactive: from navigation start to the rendered explorer (the loader's
``window.motifWidgetsReadyMs``), then a click on a neighbour must move the panel.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]


def old_format_size(widget) -> int:
    """Bytes of the page in the old format: the JSON state with base64 buffers (float16 thumbnails)."""
    from motif_widgets.widgets._bundles import bundle_path
    from motif_widgets.widgets._serialization import embeddable_state

    doc = embeddable_state(widget)
    doc["state"] = {k: v for k, v in doc["state"].items() if k not in ("layout", "_dom_classes", "tabbable", "tooltip", "_view_count")}
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return len(text.encode()) + bundle_path("standalone").stat().st_size + 600


def load_times(path: Path, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1400, "height": 1300}, offline=True)
            page = context.new_page()
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready=true]", state="attached", timeout=120_000)
            out.append(page.evaluate("() => window.motifWidgetsReadyMs"))
            # interactive: a click on a neighbour moves the panel
            before = page.locator(".mw-similar-target").inner_text()
            page.locator(".mw-neighbor").first.click()
            page.wait_for_function("(b) => document.querySelector('.mw-similar-target').innerText !== b", arg=before, timeout=10_000)
            context.close()
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atlas", help="a saved Atlas (Atlas.save) instead of building SmolLM2's")
    parser.add_argument("--synthetic", action="store_true", help="the 1,500-head atlas of widget_latency.py")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from motif_widgets import Atlas, load_model
    from motif_widgets.widgets import HeadExplorer

    t0 = time.perf_counter()
    if args.synthetic:
        spec = importlib.util.spec_from_file_location("widget_synthetic", REPO / "tests" / "widgets" / "synthetic.py")
        synthetic = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(synthetic)
        atlas = synthetic.feature_atlas(5, 12, 25, 134, n_thumbnail_tokens=64)
    elif args.atlas:
        atlas = Atlas.load(args.atlas)
    else:
        atlas = Atlas.from_model(load_model("smollm2-135m"), None, progress=False)
    explorer = HeadExplorer(atlas, selected_head=atlas.head_ids[0])
    print(f"atlas: {len(atlas.head_ids)} heads, {len(atlas.prompts)} prompts, thumbnails {explorer.thumbnails.shape} "
          f"{explorer.thumbnails.dtype}; atlas + explorer in {time.perf_counter() - t0:.1f} s")
    before = old_format_size(explorer)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = explorer.save_html(Path(tmp) / "explorer.html")
        t_save = time.perf_counter() - t0
        after = path.stat().st_size
        print(f"offline explorer: before {before / 1e6:.2f} MB ({before / 2**20:.2f} MiB)  ->  after {after / 1e6:.2f} MB "
              f"({after / 2**20:.2f} MiB), {before / after:.1f}x smaller; save_html {t_save:.1f} s")
        if Path(CHROMIUM).exists():
            times = load_times(path, args.runs)
            print(f"load -> interactive (navigation start to rendered explorer, headless Chromium): "
                  f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms (n={len(times)})")
        else:
            print(f"{CHROMIUM} not found: load time not measured")


if __name__ == "__main__":
    sys.exit(main())
