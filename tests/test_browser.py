"""A student's view: a lesson with a widget, run in JupyterLab inside a real (headless) browser.

The unit tests drive the widgets from Python, without a front end. This test checks the part
they cannot: that in JupyterLab the lesson runs from top to bottom without an error, that the
explorer really appears as a widget (not as its static fallback, and not as "Error displaying
widget"), and that it answers a person moving its slider.

How: start JupyterLab on 127.0.0.1 (a random free port, a random token, a temporary folder
holding a copy of chapter 05's lesson with its outputs cleared), open the lesson in Debian's
Chromium through Playwright (the browser is the system's; Playwright never downloads one),
choose Run ▸ Run All Cells, save, and read the saved notebook back. Then drag the
learning-rate slider to its right end and watch the verdict and the picture change.
A screenshot goes to tests/artifacts/ (also when the test fails, to see why).

The test skips when Playwright or Chromium is missing (``apt-get install chromium`` and
``pip install playwright``; .ci/run installs both). Every wait is bounded, and the server is
stopped, with its kernel, however the test ends.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)")

REPO = Path(__file__).resolve().parents[1]
LESSON = REPO / "notebooks" / "05_gradient_descent.ipynb"  # the quickest lesson with a widget
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

# Upper bounds, in seconds, generous for a busy 2-core machine; a healthy run needs far less.
SERVER_START_S = 60
PAGE_LOAD_S = 90
RUN_ALL_S = 180
REACT_S = 30


def find_chromium() -> str | None:
    """The system's Chromium (or the one named by SFTLEARN_CHROMIUM), or None."""
    named = os.environ.get("SFTLEARN_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found: apt-get install chromium "
                                                "(or point SFTLEARN_CHROMIUM at a Chromium)"),
    pytest.mark.skipif(os.name != "posix", reason="the server is stopped with POSIX signals"),
]


# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lesson_copy(folder: Path) -> Path:
    """Copy the lesson into ``folder`` with outputs cleared, so every output is from this run."""
    notebook = nbformat.read(LESSON, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    path = folder / LESSON.name
    nbformat.write(notebook, path)
    return path


def private_jupyter_dirs(home: Path) -> dict[str, str]:
    """Environment variables giving this server its own config, data and settings folders.

    A student's own Jupyter settings must not change what the test sees, so everything lives
    under ``home``: no "Jupyter news?" pop-up, and notebooks rendered whole rather than only
    the cells in view (JupyterLab 4 leaves off-screen cells out of the page by default).
    """
    dirs = {name: home / name.lower() for name in
            ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    labconfig = dirs["JUPYTER_CONFIG_DIR"] / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    notebook_settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    return {name: str(folder) for name, folder in dirs.items()}


def kernel_environment(home: Path) -> dict[str, str]:
    """This process's environment, minus what would make the explorer draw a static picture.

    tests/conftest.py sets SFTLEARN_HEADLESS=1 for the notebooks pytest runs itself; here the
    kernel has a browser, so the real widget must be built.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("SFTLEARN_HEADLESS", "MPLBACKEND")}
    env.update(private_jupyter_dirs(home))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@contextmanager
def jupyter_lab(root: Path, home: Path):
    """Run JupyterLab serving ``root``; yield ``(base_url, token)``; always stop it."""
    port, token = free_port(), secrets.token_hex(16)
    log_path = home / "server.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0",  # that port or nothing
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={home / 'settings'}",
               f"--LabApp.workspaces_dir={home / 'workspaces'}",
               "--allow-root"]  # CI containers run as root; harmless otherwise
    with open(log_path, "w") as log:
        # A session of its own, so that stopping it also stops the kernel it started.
        server = subprocess.Popen(command, env=kernel_environment(home), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-3000:]

    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{log_tail()}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log_tail()}")
                time.sleep(0.3)
        yield base, token
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """Ask the server (and its kernel) to shut down; kill them if they have not within 15 s."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


# ----------------------------------------------------------------------------- the browser


def prompts(page) -> list[str]:
    """The execution prompts of every code cell: "[ ]:" not run, "[*]:" queued or running."""
    return [p.strip() for p in page.eval_on_selector_all(
        ".jp-Notebook .jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent)")]


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s} s waiting for {what}")
        time.sleep(0.5)


def run_all_cells(page) -> None:
    """Run ▸ Run All Cells, as a student would, and wait until no cell is queued or running."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # Run-all marks every cell "[*]" at once; the run is over when none is left. A cell that
    # raises stops the run early, which also leaves no "[*]" behind.
    wait_until(lambda: any(p != "[ ]:" for p in prompts(page)), 30, "the run to start")
    wait_until(lambda: "[*]:" not in prompts(page), RUN_ALL_S, "every cell to finish")


def save_and_read(page, path: Path) -> nbformat.NotebookNode:
    """Save the notebook from the browser (Ctrl+S) and read what JupyterLab wrote."""
    before = path.stat().st_mtime_ns
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # focus, command mode
    page.keyboard.press("Control+s")
    wait_until(lambda: path.stat().st_mtime_ns != before, 30, "JupyterLab to save the notebook")
    time.sleep(0.5)  # let the write finish before parsing
    return nbformat.read(path, as_version=4)


@pytest.fixture(scope="module")
def lesson_in_browser(tmp_path_factory):
    """Yield ``(page, saved_notebook)`` after running the lesson in JupyterLab in Chromium."""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "root"
    root.mkdir()
    path = lesson_copy(root)
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyter_lab(root, home) as (base, token), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            try:
                page.goto(f"{base}/lab/tree/{path.name}?token={token}",
                          timeout=PAGE_LOAD_S * 1000)
                page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=PAGE_LOAD_S * 1000)
                # The status bar reads "<kernel name> | Idle" once the kernel has started.
                page.get_by_text(re.compile(r" \| Idle$")).wait_for(timeout=PAGE_LOAD_S * 1000)
                run_all_cells(page)
                saved = save_and_read(page, path)
            except Exception:
                page.screenshot(path=ARTIFACTS / "browser_05_failure.png")
                raise
            yield page, saved
        finally:
            browser.close()


# ----------------------------------------------------------------------------- the tests


def test_every_cell_runs_without_an_error(lesson_in_browser):
    _, saved = lesson_in_browser
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert code, "the saved lesson has no code cells"
    errors = [f"cell {i}: {out.ename}: {out.evalue}"
              for i, cell in enumerate(saved.cells) if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    assert not errors, "the lesson raised in the browser:\n" + "\n".join(errors)
    not_run = [i for i, cell in enumerate(saved.cells)
               if cell.cell_type == "code" and cell.execution_count is None]
    assert not not_run, f"cells {not_run} never ran"
    stderr = [out.text for cell in code for out in cell.outputs
              if out.output_type == "stream" and out.name == "stderr"]
    assert not any("Traceback" in text for text in stderr), stderr


def test_the_explorer_is_a_live_widget_that_follows_its_slider(lesson_in_browser):
    page, saved = lesson_in_browser
    expect = sync_api.expect
    # The kernel built the widget, not the static fallback: its output is a widget view.
    widget_cell = next(cell for cell in saved.cells if "learning_rate_explorer()" in cell.source)
    assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {})
               for out in widget_cell.outputs), widget_cell.outputs

    slider = page.locator(".widget-slider", has_text="learning rate η")
    status = page.locator(".widget-html-content", has_text="η =")
    image = page.locator(".widget-image")
    try:
        expect(slider).to_be_visible()
        slider.scroll_into_view_if_needed()
        expect(status).to_contain_text("η = 0.05: too small")
        assert image.evaluate("img => img.naturalWidth") > 0, "the plot did not render"
        plot_before = image.screenshot()

        # Drag the handle past the right end of the track: the largest rate, which diverges.
        handle = slider.locator(".noUi-handle").bounding_box()
        track = slider.locator(".noUi-target").bounding_box()
        y = handle["y"] + handle["height"] / 2
        page.mouse.move(handle["x"] + handle["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(track["x"] + track["width"] + 40, y, steps=8)
        page.mouse.up()

        expect(status).to_contain_text("diverges", timeout=REACT_S * 1000)
        expect(slider.locator(".widget-readout")).to_have_text("0.316")  # 10**-0.5, the maximum
        wait_until(lambda: image.screenshot() != plot_before, REACT_S, "the plot to be redrawn")
    finally:
        page.screenshot(path=ARTIFACTS / "browser_05_learning_rate.png")
