"""The explorer in a real browser: JupyterLab on 127.0.0.1 with a token, Debian's Chromium driven
by Playwright; run notebook 07, drag the gamma slider, and check that the heatmap changed.

The screenshot goes to a temporary folder, or with VTBENCH_UPDATE_FIGURES=1 to the README's
figures/explorer.png. Skipped only when /usr/bin/chromium is missing (CI installs it in .ci/run).
"""
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import NOTEBOOK_DIR, ROOT

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = "07_alignment_explorer.ipynb"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a temporary root holding a copy of notebook 07 (its outputs, figures
    and runs pointed into the temporary folder); yields (url, root); stopped afterwards."""
    import papermill.parameterize

    root = tmp_path / "root"
    root.mkdir()
    nb = papermill.parameterize.parameterize_notebook(
        papermill.iorw.load_notebook_node(str(NOTEBOOK_DIR / NOTEBOOK)),
        {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures"), "results_dir": str(tmp_path / "out"),
         "max_videos": 4, "train_if_missing": True})  # the first model offered is a quick VT-TWINS run
    papermill.iorw.write_ipynb(nb, str(root / NOTEBOOK))
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # no news toast
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "IPYTHONDIR": str(tmp_path / "ipython"), "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"),
           "JUPYTER_PLATFORM_DIRS": "1"}
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as response:
                    json.load(response)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield f"{url}/lab/tree/{NOTEBOOK}?token={token}", root
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """Stop the server and the kernels it started (its own process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


KERNEL_IDLE = """() => {
    const app = window.jupyterapp, widget = app && app.shell.currentWidget;
    const context = widget && widget.sessionContext;
    return !!(context && context.isReady && context.session && context.session.kernel
              && context.session.kernel.status === 'idle' && app.commands.hasCommand('notebook:run-all-cells'));
}"""
ALL_CELLS_RAN = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .every(p => /\\[\\d+\\]/.test(p.textContent))"""
HEATMAP_DATA = """() => {
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    if (!plots.length || !plots[0].data || plots[0].data.length < 3) return null;
    return JSON.stringify(plots[0].data[1].z);
}"""


@pytest.mark.timeout(480)
def test_explorer_gamma_slider_changes_the_heatmap(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, _ = lab
    figures = ROOT / "figures" if os.environ.get("VTBENCH_UPDATE_FIGURES") == "1" else tmp_path / "shots"
    with sync_playwright() as p:
        # launch() starts from a fresh temporary profile (user-data dir) every time
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_selector(".jp-Notebook")
            page.wait_for_function(KERNEL_IDLE, timeout=120_000, polling=500)
            # Run > Run All Cells, as a user would (not awaited: the cells are watched below)
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }")
            page.wait_for_function(f"() => ({HEATMAP_DATA})() !== null", timeout=180_000, polling=500)
            page.wait_for_function(ALL_CELLS_RAN, timeout=180_000, polling=500)
            page.wait_for_timeout(1000)
            before = page.evaluate(HEATMAP_DATA)
            plot = page.locator(".js-plotly-plot").first
            plot.scroll_into_view_if_needed()
            shot_before = plot.screenshot()

            slider = page.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text="gamma")).filter(
                has_not=page.locator(".widget-label", has_text="smoothing")).first
            readout = slider.locator(".widget-readout")
            value_before = readout.inner_text()
            handle = slider.locator(".noUi-handle")
            handle.scroll_into_view_if_needed()
            box, track = handle.bounding_box(), slider.locator(".noUi-target").bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(track["x"] + 0.85 * track["width"], y, steps=12)
            page.mouse.up()
            page.wait_for_function(f"() => ({HEATMAP_DATA})() !== {json.dumps(before)}", timeout=60_000, polling=250)
            page.wait_for_timeout(1500)  # let plotly finish redrawing before the screenshots
            assert readout.inner_text() != value_before, "the slider did not move"
            plot.scroll_into_view_if_needed()
            assert plot.screenshot() != shot_before, "the heatmap looks the same after moving gamma"

            figures.mkdir(parents=True, exist_ok=True)
            widget = page.locator(".jp-OutputArea-output").filter(has=page.locator(".js-plotly-plot")).first
            widget.screenshot(path=str(figures / "explorer.png"))
        finally:
            browser.close()
    assert (figures / "explorer.png").stat().st_size > 10_000
