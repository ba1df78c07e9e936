"""Offline HTML export: one self-contained file that opens in a browser without a kernel or
network, with the same interactions.

The page holds the widget's state (JSON, binary buffers as base64; the ES module is part of
it) and the small loader js/src/entries/standalone.js, which builds an anywidget-style model
from that state and renders the widget's own module. Nothing is fetched: no CDN, no kernel.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ._serialization import embeddable_state
from ._bundles import bundle_path

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="motif-widgets">
<title>{title}</title>
<style>body {{ margin: 16px; max-width: 1280px; font-family: system-ui, sans-serif; }}</style>
</head>
<body>
<div id="motif-widgets-root"></div>
<script type="application/json" id="motif-widgets-state">{state}</script>
<script type="module">{loader}</script>
</body>
</html>
"""

# State keys of the ipywidgets machinery that the views never read.
_DROP = ("layout", "_dom_classes", "tabbable", "tooltip", "_view_count")


def _script_safe(text: str) -> str:
    """Text that cannot close the <script> element it sits in."""
    return text.replace("</", "<\\/")


def export_html(widget, title: str | None = None) -> str:
    """The offline page of a widget, as text."""
    doc = embeddable_state(widget)
    doc["state"] = {k: v for k, v in doc["state"].items() if k not in _DROP}
    if not doc["state"].get("_esm"):
        raise ValueError(f"{type(widget).__name__} has no ES module to export")
    state = _script_safe(json.dumps(doc, separators=(",", ":"), allow_nan=False))
    loader = _script_safe(bundle_path("standalone").read_text(encoding="utf-8"))
    page_title = title or getattr(widget, "title", "") or type(widget).__name__
    return TEMPLATE.format(title=html.escape(page_title), state=state, loader=loader)


def save_html(widget, path: str | Path, title: str | None = None) -> Path:
    """Write :func:`export_html` to `path` (parent folders are created). Returns the path."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"save_html writes an .html file, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(export_html(widget, title), encoding="utf-8")
    return path
