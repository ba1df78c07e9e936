"""Helpers of the browser tests (a module with a unique name, importable from any test file;
pytest's conftest modules are not)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "src" / "motif_widgets" / "static"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
#: Launch flags: no sandbox (root in CI), no network chatter, SwiftShader WebGL2 without a GPU.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-gl=angle", "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
ORIGIN = "http://widgets.test"


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    return None


HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title></head>
<body style="margin: 10px; font-family: sans-serif">
<div id="root" style="width: 1240px"></div>
<script type="application/json" id="state">__STATE__</script>
<script type="module">
import widget from "/static/__BUNDLE__.js";
// Binary parts travel base64-encoded; put each back into the state at its path, as a DataView.
window.placeBuffers = (state, buffers) => {
  for (const { path, data } of buffers) {
    let node = state;
    for (const key of path.slice(0, -1)) node = node[key];
    const bin = atob(data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    node[path[path.length - 1]] = new DataView(bytes.buffer);
  }
};
const doc = JSON.parse(document.getElementById("state").textContent);
const state = doc.state;
window.placeBuffers(state, doc.buffers);
// The fake anywidget model: records every set / save_changes; update() plays a kernel message.
const calls = [];
const handlers = new Map();
const emit = (event) => (handlers.get(event) || []).slice().forEach((cb) => cb());
const values = { ...state };
const model = {
  get: (key) => values[key],
  set(key, value) { calls.push({ op: "set", key, value }); values[key] = value; emit(`change:${key}`); },
  save_changes() { calls.push({ op: "save_changes" }); },
  send(message) { calls.push({ op: "send", message }); },
  on(event, cb) { handlers.set(event, [...(handlers.get(event) || []), cb]); },
  off(event, cb) { handlers.set(event, (handlers.get(event) || []).filter((f) => f !== cb)); },
};
const el = document.getElementById("root");
const cleanup = await widget.render({ model, el });
window.fake = {
  model, calls, cleanup,
  update(key, value) { values[key] = value; emit(`change:${key}`); },
  sets(key) { return calls.filter((c) => c.op === "set" && c.key === key).map((c) => c.value); },
  clear() { calls.length = 0; },
};
document.body.dataset.ready = "true";
</script>
</body></html>
"""


class WidgetPage:
    """A widget rendered on the fake model in a plain page."""

    def __init__(self, page, widget, bundle: str):
        from motif_widgets.widgets._serialization import embeddable_state

        doc = embeddable_state(widget)
        doc["state"].pop("_esm", None)  # the page imports the bundle file itself
        html = HARNESS.replace("__STATE__", json.dumps(doc).replace("</", "<\\/")).replace("__BUNDLE__", bundle)

        def handle(route):
            path = route.request.url[len(ORIGIN):]
            if path.startswith("/static/"):
                route.fulfill(path=str(STATIC / path[len("/static/"):]), content_type="text/javascript")
            else:
                route.fulfill(body=html, content_type="text/html")

        self.page = page
        self.widget = widget
        page.route(f"{ORIGIN}/**", handle)
        page.goto(f"{ORIGIN}/index.html")
        page.wait_for_selector("body[data-ready=true]", state="attached", timeout=15000)
        assert not page.errors, page.errors

    def sets(self, key: str) -> list:
        """Values the view set on the model for `key`, in order."""
        return self.page.evaluate("(k) => window.fake.sets(k)", key)

    def saved(self) -> int:
        return self.page.evaluate("() => window.fake.calls.filter((c) => c.op === 'save_changes').length")

    def update(self, key: str, value) -> None:
        """A change arriving from the kernel; waits for the views' coalesced redraw."""
        self.page.evaluate("([k, v]) => window.fake.update(k, v)", [key, value])
        self.page.wait_for_timeout(50)

    def push(self, *keys: str) -> None:
        """Send the widget's current values of `keys` to the page, binary parts included (as
        the kernel does after a change), in order; waits for the coalesced redraw."""
        from motif_widgets.widgets._serialization import split_buffers

        state, paths, buffers = split_buffers(self.widget.get_state(list(keys)))
        encoded = [{"path": p, "data": base64.b64encode(bytes(b)).decode("ascii")} for p, b in zip(paths, buffers)]
        self.page.evaluate(
            """([state, buffers, keys]) => {
                 window.placeBuffers(state, buffers);
                 for (const k of keys) window.fake.update(k, state[k]);
               }""",
            [state, encoded, list(keys)],
        )
        self.page.wait_for_timeout(50)

    def kernel(self) -> list[dict]:
        """Play the kernel once: deliver the messages the view sent (model.send) since the last
        call to the widget's message handler, then push every synced trait they changed back
        to the page. Returns the delivered messages."""
        messages = self.page.evaluate(
            """() => { const out = window.fake.calls.filter((c) => c.op === 'send' && !c.delivered);
                       out.forEach((c) => { c.delivered = true; }); return out.map((c) => c.message); }"""
        )
        changed: list[str] = []

        def record(change):
            if change["name"] in self.widget.keys and change["name"] not in changed:
                changed.append(change["name"])

        self.widget.observe(record)
        try:
            for message in messages:
                self.widget._on_message(self.widget, message, [])
        finally:
            self.widget.unobserve(record)
        if changed:
            self.push(*changed)
        return messages

    def clear(self) -> None:
        self.page.evaluate("() => window.fake.clear()")

    def screenshot(self, folder: Path, name: str) -> Path:
        path = folder / name
        self.page.screenshot(path=str(path), full_page=True)
        return path
