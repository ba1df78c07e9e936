"""Widget latency in headless Chromium, measured in one run on a 1,500-head atlas with 201,000
(head, prompt) pattern points:

1. click -> similar-heads panel: a real mouse click on a neighbour row until the panel shows
   the new head's neighbours (DOM updated) and until the next frame is drawn; in the full
   HeadExplorer (every view updates on the same click) and in a SimilarHeads panel alone.
   Goal: < 100 ms to the updated panel.
2. PatternCloud frame time with ~200k points: a synchronous draw of all points (forced to
   finish with a 1-pixel readPixels), a selection redraw over the cached base layer, and the
   interval between frames while the cloud rotates every frame (requestAnimationFrame, as a drag
   does); plus the cost of a hover pick over all points.

    python benchmarks/widget_latency.py [--clicks 30] [--prompts 134] [--thumbnail-tokens 64]

Pages are the offline HTML exports (save_html), opened from file:// with the network off.
Chromium is /usr/bin/chromium; without a GPU, WebGL runs on SwiftShader (software, on the
CPU), so frame times here are an upper bound of what a GPU gives.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def load_synthetic():
    """tests/widgets/synthetic.py (shared with the tests), imported by path."""
    spec = importlib.util.spec_from_file_location("widget_synthetic", REPO / "tests" / "widgets" / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_page(browser, path: Path):
    context = browser.new_context(viewport={"width": 1400, "height": 1300}, offline=True)
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=120_000)
    return page, time.perf_counter() - t0


# Resolves with {dom, frame}: ms from the click event (its timeStamp) to the similar-heads panel
# showing the new head (a MutationObserver fires once the panel's redraw is done) and to the end
# of the next frame (requestAnimationFrame, then a task after it).
ARM_CLICK = """() => {
  window.__latency = new Promise((resolve) => {
    document.addEventListener("click", (event) => {
      const start = event.timeStamp;
      const target = document.querySelector(".mw-similar-title");
      const observer = new MutationObserver(() => {
        observer.disconnect();
        const dom = performance.now() - start;
        requestAnimationFrame(() => setTimeout(() => resolve({ dom, frame: performance.now() - start }), 0));
      });
      observer.observe(target, { childList: true, subtree: true, characterData: true });
    }, { capture: true, once: true });
  });
}"""


def click_latencies(page, clicks: int) -> tuple[list[float], list[float]]:
    """Click the last listed neighbour `clicks` times (each click selects a new head)."""
    dom, frame = [], []
    for k in range(clicks):
        page.evaluate(ARM_CLICK)
        before = page.locator(".mw-similar-target").inner_text()
        row = page.locator(".mw-neighbor").nth(3 + k % 5)
        row.scroll_into_view_if_needed()
        box = row.bounding_box()
        page.mouse.click(box["x"] + 30, box["y"] + box["height"] / 2)
        result = page.evaluate("() => window.__latency")
        assert page.locator(".mw-similar-target").inner_text() != before
        dom.append(result["dom"])
        frame.append(result["frame"])
    return dom, frame


def cloud_frames(page, frames: int, seconds: float) -> dict:
    """Full frames (all points, forced to finish), then `seconds` of rotation one step per frame
    as a drag does (frame intervals and the points each moving frame drew), then hover picks."""
    return page.evaluate(
        """([frames, seconds]) => new Promise((resolve) => {
          const api = document.querySelector('.mw-cloud-canvas').mwCloud;
          const r = api.renderer;
          const gl = r.gl;
          const full = [];
          for (let i = 0; i < frames + 2; i++) {
            r.setCamera({ yaw: r.camera.yaw + 0.02 });
            full.push(r.measureFullFrame());  // render every point, then readPixels waits for it
          }
          // a selection change: the cached base layer is copied, the highlights drawn on top
          const cached = [];
          const pixel = new Uint8Array(4);
          for (let i = 0; i < frames; i++) {
            const t0 = performance.now();
            r.render();
            gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
            cached.push(performance.now() - t0);
          }
          const rect = r.canvas.getBoundingClientRect();
          const picks = [];
          for (let i = 0; i < 10; i++) {
            r.setCamera({ yaw: r.camera.yaw + 0.01 });  // a new camera: projection not cached
            const t0 = performance.now();
            r.pick(rect.width * (0.3 + 0.04 * i), rect.height * 0.5);
            picks.push(performance.now() - t0);
          }
          const stamps = [];
          const drawn = [];
          const end = performance.now() + seconds * 1000;
          const step = (now) => {
            stamps.push(now);
            if (now > end) {
              const gaps = stamps.slice(1).map((t, i) => t - stamps[i]);
              resolve({ points: api.pointCount, full: full.slice(2), cached, gaps: gaps.slice(3), drawn: drawn.slice(3), picks });
              return;
            }
            drawn.push(api.rotate(0.02));
            requestAnimationFrame(step);
          };
          requestAnimationFrame(step);
        })""",
        [frames, seconds],
    )


def summary(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return f"median {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms   max {values[-1]:7.1f} ms   (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=25)
    parser.add_argument("--prompts", type=int, default=134, help="per head: points = heads x prompts")
    parser.add_argument("--thumbnail-tokens", type=int, default=64)
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--only", choices=["clicks", "cloud"], help="run one of the two measurements")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} not found: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    from motif_widgets.widgets import HeadExplorer, PatternCloud, SimilarHeads

    synthetic = load_synthetic()
    t0 = time.perf_counter()
    atlas = synthetic.feature_atlas(args.models, args.layers, args.heads, args.prompts, n_thumbnail_tokens=args.thumbnail_tokens)
    atlas.distances, atlas.head_map()
    n_heads = len(atlas.head_ids)
    print(f"atlas: {n_heads} heads of {len(atlas.model_names)} models, {len(atlas.prompts)} prompts, "
          f"{n_heads * len(atlas.prompts):,} pattern points; features -> distances -> head map {time.perf_counter() - t0:.1f} s")
    first = atlas.head_ids[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        explorer = HeadExplorer(atlas, selected_head=first)
        t_build = time.perf_counter() - t0
        paths = {
            "explorer": explorer.save_html(Path(tmp) / "explorer.html"),
            "similar": SimilarHeads(atlas, selected_head=first).save_html(Path(tmp) / "similar.html"),
            "cloud": PatternCloud(atlas).save_html(Path(tmp) / "cloud.html"),
        }
        print(f"HeadExplorer: built in {t_build:.2f} s; offline pages: "
              + ", ".join(f"{k} {p.stat().st_size / 2**20:.1f} MiB" for k, p in paths.items()))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            print(f"\nclick -> similar-heads panel, {n_heads} heads (goal < 100 ms to the updated panel)")
            for name in ("similar", "explorer") if args.only != "cloud" else ():
                page, t_open = open_page(browser, paths[name])
                dom, frame = click_latencies(page, args.clicks)
                label = "SimilarHeads alone" if name == "similar" else "HeadExplorer (all views redraw)"
                print(f"  {label:32s} panel updated: {summary(dom)}")
                print(f"  {'':32s} next frame:    {summary(frame)}   (page opened in {t_open:.1f} s)")
                page.context.close()
            if args.only == "clicks":
                return
            page, _ = open_page(browser, paths["cloud"])
            result = cloud_frames(page, args.frames, 3.0)
            print(f"\nPatternCloud, {result['points']:,} points (WebGL2 on SwiftShader, no GPU)")
            print(f"  full frame, all points (draw + readPixels): {summary(result['full'])}")
            print(f"  selection redraw (cached base + highlights): {summary(result['cached'])}")
            print(f"  frame interval while rotating:              {summary(result['gaps'])}"
                  f"   = {1000 / statistics.median(result['gaps']):.1f} frames/s,"
                  f" drawing a random {statistics.median(result['drawn']):,.0f} of {result['points']:,} points per frame"
                  " (all points again 200 ms after the view stops)")
            print(f"  hover pick (project + scan all points):     {summary(result['picks'])}")
            page.context.close()
            browser.close()


if __name__ == "__main__":
    main()
