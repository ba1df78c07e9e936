"""Your text -> patterns shown, in headless Chromium: HeadExplorer with SmolLM2 attached, a
64-token text typed into the "your text" box, Run clicked, until the large view shows the
selected head's pattern on the text (its "mw-text-shown" event).

    python benchmarks/text_latency.py [--runs 5] [--tokens 64] [--atlas PATH] [--threads N]

(The default atlas has 6 prompts: the page embeds the widget state as JSON, which a
60-prompt atlas with thumbnails of every prompt makes too large for this harness to load.)

The page is the explorer's bundle on the fake anywidget model of the browser tests
(tests/browser/browser_support.py); WidgetPage.kernel stands in for the Jupyter comm: Python
polls the page for the view's message every 5 ms, runs HeadExplorer.run_text (one forward pass
of every head of the model) and sends the text_patterns trait back (base64 through Playwright,
slower than Jupyter's binary websocket). Reported per run: total (click -> shown, page clock),
the forward pass (measured in the kernel) and the rest (messages, transfer, drawing).
Goal: < 1 s for 64 tokens on SmolLM2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PILE = Path("/work/shared/data/pile_100.jsonl")


def load_support():
    """tests/browser/browser_support.py (shared with the tests), imported by path."""
    spec = importlib.util.spec_from_file_location("browser_support", REPO / "tests" / "browser" / "browser_support.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def texts_of(model, n_tokens: int, count: int) -> list[str]:
    """`count` texts of about n_tokens tokens (BOS included): Pile documents (or a fixed
    paragraph) cut at n_tokens - 1 tokens of the model's tokenizer."""
    docs = []
    if PILE.exists():
        docs = [json.loads(line)["text"] for line in PILE.read_text().splitlines()[: count * 3]]
    docs = [d for d in docs if len(d) > 2000][:count] or ["The lighthouse keeper had not spoken to anyone in days. " * 20] * count
    tok = model.tokenizer
    return [tok.decode(tok(d, add_special_tokens=False)["input_ids"][: n_tokens - 1]) for d in docs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--atlas", help="a saved SmolLM2 Atlas (Atlas.save); default: 6 default prompts, built here")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the kernel's forward passes (default: torch's)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    support = load_support()
    reason = support.chromium_missing_reason()
    if reason:
        sys.exit(reason)
    from playwright.sync_api import sync_playwright

    from motif_widgets import Atlas, load_model
    from motif_widgets.prompts import default_prompts
    from motif_widgets.widgets import HeadExplorer

    model = load_model("smollm2-135m")
    if args.atlas:
        atlas = Atlas.load(args.atlas)
    else:
        atlas = Atlas.from_model(model, default_prompts()[:6], max_tokens=64, progress=False)
    explorer = HeadExplorer(atlas, model=model, selection=["L18H6", "L1H6", "L5H0"], selected_head="L18H6")
    texts = texts_of(model, args.tokens, args.runs + 1)
    explorer.run_text(texts[-1])  # warm-up: the model's first forward pass is slower
    explorer.text_patterns = {}
    explorer.focus_prompt = ""
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(support.CHROMIUM), args=support.CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1300, "height": 1200})
        page = context.new_page()
        page.errors = []  # WidgetPage checks the page's errors (as the browser tests' fixture records them)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        view = support.WidgetPage(page, explorer, "explorer")
        view.kernel()  # the large view's first full-pattern request
        page.evaluate("""() => document.addEventListener("mw-text-shown", () => { window.__shown = performance.now(); })""")
        for text in texts[: args.runs]:
            page.evaluate("() => { window.__shown = null; }")
            page.locator(".mw-text-input").fill(text)
            page.locator(".mw-text-run").click()
            deadline = time.perf_counter() + 60
            while page.evaluate("() => window.__shown") is None and time.perf_counter() < deadline:
                view.kernel()
                time.sleep(0.005)
            asked = float(page.evaluate("() => document.querySelector('.mw-pattern-view').dataset.textAskedAt"))
            total = page.evaluate("() => window.__shown") - asked
            forward = explorer.text_patterns["ms"]
            rows.append((explorer.text_patterns["n"], total, forward))
            print(f"  {explorer.text_patterns['n']} tokens: click -> shown {total:.0f} ms (forward pass {forward:.0f} ms, "
                  f"rest {total - forward:.0f} ms)", flush=True)
        browser.close()
    total = statistics.median(r[1] for r in rows)
    forward = statistics.median(r[2] for r in rows)
    print(f"your text ({statistics.median(r[0] for r in rows):.0f} tokens, SmolLM2, {len(explorer.head_ids)} heads' patterns): "
          f"click -> patterns shown median {total:.0f} ms (forward pass {forward:.0f} ms, messages + transfer + drawing "
          f"{total - forward:.0f} ms; {total / 1000:.2f}x the 1 s goal) over {len(rows)} runs; "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    sys.exit(main())
