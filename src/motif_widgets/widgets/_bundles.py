"""Where the views' prebuilt ES modules live (a leaf module: base.py, the views and export.py
import it, and it imports nothing of the package)."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"


def bundle_path(name: str) -> Path:
    """Path of a built ES module in motif_widgets/static (see js/build.mjs)."""
    path = STATIC / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(f"widget bundle {path} is missing; build it with `cd js && npm ci && node build.mjs`")
    return path
