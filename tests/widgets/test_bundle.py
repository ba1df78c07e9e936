"""The committed JS bundles: present, small, self-contained, and equal to a fresh build of js/.

The rebuild check needs Node and js/node_modules (`cd js && npm ci`); without them it skips
and says so. CI runs it to prove src/motif_widgets/static matches its sources.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "js"
STATIC = REPO / "src" / "motif_widgets" / "static"
BUNDLES = ("grid", "cloud", "similar", "explorer", "standalone")
#: Every widget instance carries its bundle (and the offline export inlines it): budgets in KiB.
BUDGET_KIB = {"grid": 44, "cloud": 48, "similar": 28, "explorer": 80, "standalone": 4}  # + any-prompt large view, token text, your text, filters, cloud legend toggles, zoom, PNG


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_is_a_small_self_contained_module(name):
    path = STATIC / f"{name}.js"
    assert path.is_file(), f"{path} missing: cd js && npm ci && node build.mjs"
    text = path.read_text(encoding="utf-8")
    size_kib = len(text.encode()) / 1024
    assert size_kib < BUDGET_KIB[name], f"{name}.js is {size_kib:.1f} KiB, budget {BUDGET_KIB[name]} KiB"
    assert text.count("\n") < 40, "bundles are minified (only the GLSL shaders keep their lines)"
    # no CDN, no network: nothing is imported or fetched from a URL
    assert not re.search(r"https?://", text)
    assert not re.search(r"\bimport\s*[\"']|\bfrom\s*[\"']", text), "bundles have no static imports left"
    if name == "standalone":  # the export's loader imports the widget module from its embedded text
        assert re.findall(r"\bimport\(", text) == ["import("] and "createObjectURL" in text
    else:
        assert not re.search(r"\bimport\(", text)
    assert "</script" not in text.lower()
    if name != "standalone":
        assert re.search(r"export\s*\{[^}]*\bas default\b", text), "anywidget needs a default export"


def test_package_json_pins_exact_versions():
    package = json.loads((JS / "package.json").read_text())
    lock = json.loads((JS / "package-lock.json").read_text())
    for name, version in package["devDependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_bundles_match_their_sources(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot rebuild the bundles to compare them")
    if not (JS / "node_modules" / "esbuild").is_dir():
        pytest.skip("js/node_modules is missing (run `cd js && npm ci`): cannot rebuild the bundles to compare them")
    subprocess.run([node, str(JS / "build.mjs"), "--outdir", str(tmp_path)], check=True, cwd=JS, capture_output=True, timeout=120)
    built = sorted(p.name for p in tmp_path.glob("*.js"))
    committed = sorted(p.name for p in STATIC.glob("*.js"))
    assert built == committed == sorted(f"{b}.js" for b in BUNDLES)
    stale = [name for name in built if (tmp_path / name).read_bytes() != (STATIC / name).read_bytes()]
    assert not stale, f"{stale} differ from a fresh build of js/src: run `cd js && node build.mjs` and commit the result"
