"""Drive the standalone app in headless Chromium: tabs, Environment panel, no console errors.

Runs in whichever environment pytest runs in (gradio 4.44 standalone or gradio 3.41.2 A1111):
the app subprocess uses the same interpreter and PYTHONPATH. Skips when Chromium or Playwright
is missing; CI installs both.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABS = [
    ("Dataset", "dataset"),
    ("Reg images", "reg"),
    ("Bake", "bake"),
    ("LECO", "leco"),
    ("Compare", "compare"),
]
# gradio's own index.html (3.41.2: 4.3.6, 4.44.1: 4.3.1) loads this script from a CDN; it only
# matters when the page is embedded in an iframe. The network is closed, so the browser would log
# "Failed to load resource". It is gradio's, not ours: serve it an empty script and allow it.
GRADIO_CDN_SCRIPT = re.compile(
    r"^https://cdnjs\.cloudflare\.com/ajax/libs/iframe-resizer/[\d.]+/iframeResizer\.contentWindow\.min\.js$"
)
START_TIMEOUT_S = 180  # two shared CPU cores: importing gradio + torch can take a while
MODEL_TIMEOUT_MS = 180_000  # first "Check model" builds/loads the tiny checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http_ok(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"app not up after {START_TIMEOUT_S}s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    """The standalone app on a free port, started as ``python -m lora_bakery.extension.app``."""
    _skip_without_browser()
    work = tmp_path_factory.mktemp("app")
    port = _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    log = work / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lora_bakery.extension.app", "--port", str(port)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_http_ok(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _by_id(page, elem_id: str):
    """The element with ``elem_id``: gradio 3.41 repeats a Markdown's id on its inner div, so take the outer one."""
    return page.locator(f"#{elem_id}").first


class Watched:
    """What the page did that it should not: console errors, page errors, off-site requests."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.errors: list[str] = []
        self.offsite: list[str] = []

    def attach(self, page) -> None:
        page.route(
            GRADIO_CDN_SCRIPT,
            lambda route: route.fulfill(status=200, content_type="text/javascript", body=""),
        )
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", self._on_request)

    def _on_console(self, msg) -> None:
        if msg.type == "error":  # warnings (gradio logs some) do not count
            self.errors.append(f"console: {msg.text} ({msg.location.get('url')})")

    def _on_request(self, request) -> None:
        url = request.url
        if not url.startswith((self.base_url, "data:", "blob:")) and not GRADIO_CDN_SCRIPT.match(url):
            self.offsite.append(url)

    def assert_clean(self) -> None:
        assert not self.offsite, (
            "the page requested off-site resources (the network is closed):\n" + "\n".join(self.offsite)
        )
        assert not self.errors, "browser console errors:\n" + "\n".join(self.errors)


@contextlib.contextmanager
def _page(url: str, wait_until: str = "networkidle") -> Iterator[tuple[Any, Watched]]:
    """A fresh headless Chromium page on ``url`` (empty profile), watched for errors.

    ``networkidle`` makes sure every resource the page wanted was requested (and so checked);
    a page that polls is never idle, so it waits for ``load`` instead.
    """
    from playwright.sync_api import sync_playwright

    watched = Watched(url)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            watched.attach(page)
            page.goto(url, wait_until=wait_until)
            yield page, watched
        finally:
            browser.close()


def _save_screenshot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("LORA_BAKERY_SCREENSHOT_DIR"):  # to look at it after the run
        dest = Path(os.environ["LORA_BAKERY_SCREENSHOT_DIR"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / name)
    return shot


def test_tabs_environment_and_no_console_errors(app_url, tmp_path):
    from playwright.sync_api import expect

    # "load", not "networkidle": tabs holding gr.State make gradio 4 keep a heartbeat request open.
    with _page(app_url, wait_until="load") as (page, watched):
        expect(page.locator("#lora_bakery_tabs")).to_be_visible(timeout=60_000)

        # 1. every sub-tab button is there, and clicking it shows that tab's content only
        nav = page.locator("#lora_bakery_tabs .tab-nav button")
        for label, key in TABS:
            button = nav.filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
            expect(button).to_be_visible()
            button.click()
            intro = _by_id(page, f"lora_bakery_{key}_intro")
            expect(intro).to_be_visible()
            expect(intro).not_to_be_empty()
            for _, other in TABS:
                if other != key:
                    expect(_by_id(page, f"lora_bakery_{other}_intro")).to_be_hidden()

        # 2. the Environment panel names the host and "Check model" loads the tiny SD1.5 model
        page.locator("#lora_bakery_env").get_by_text("Environment").first.click()
        expect(_by_id(page, "lora_bakery_env_host")).to_contain_text("standalone")
        _by_id(page, "lora_bakery_check_model").click()
        info = _by_id(page, "lora_bakery_model_info")
        expect(info).not_to_contain_text("not checked yet", timeout=MODEL_TIMEOUT_MS)
        expect(info).to_contain_text("sd1")
        expect(info).to_contain_text("Parameters")
        expect(_by_id(page, "lora_bakery_features")).to_contain_text("training")

        page.wait_for_timeout(1500)  # gradio 3 fades an output until its event completes
        _save_screenshot(page, tmp_path, "lora_bakery_app.png")
    watched.assert_clean()


def _skip_without_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")


@contextlib.contextmanager
def _served(demo) -> Iterator[str]:
    """Launch ``demo`` in this process on a free port; ``demo.close()`` must return afterwards."""
    from lora_bakery.extension.ui import compat

    compat.ensure_event_loop()
    demo.queue(**compat.queue_kwargs(2))
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        closer = threading.Thread(target=demo.close, daemon=True)
        closer.start()
        closer.join(30)
        assert not closer.is_alive(), "demo.close() hung: something keeps a connection open"


def _gated_job(jobs, release: threading.Event):
    def work(ctx):
        ctx.begin(3, "baking")
        for i in range(3):
            release.wait(30)
            ctx.step(1, f"step {i + 1}")

    return jobs.submit("Poll demo", work)


def test_follow_job_streams_progress_until_the_job_ends():
    """``compat.follow_job`` from a click handler, in this gradio version; the server shuts down after."""
    _skip_without_browser()
    import gradio as gr
    from playwright.sync_api import expect

    from lora_bakery.extension.jobs import JobQueue
    from lora_bakery.extension.ui import compat

    jobs, release = JobQueue(), threading.Event()

    def start():
        job = _gated_job(jobs, release)
        yield from compat.follow_job(job.snapshot, every=0.2)

    with gr.Blocks(analytics_enabled=False, theme=compat.offline_theme()) as demo:
        button = gr.Button("Start", elem_id="start")
        out = gr.HTML("", elem_id="follow")
        button.click(start, inputs=[], outputs=[out])
    try:
        with _served(demo) as url, _page(url, wait_until="load") as (page, watched):
            _by_id(page, "start").click()
            follow = _by_id(page, "follow")
            expect(follow).to_contain_text("running", timeout=30_000)
            expect(follow).to_contain_text("0/3")
            release.set()  # let the job finish while the handler streams
            expect(follow).to_contain_text("done", timeout=30_000)
            expect(follow).to_contain_text("3/3")
            expect(follow).to_contain_text("step 3")
        watched.assert_clean()
    finally:
        release.set()


def test_job_progress_polls_with_every_on_gradio_4():
    """``compat.job_progress`` (callable value + ``every=``) follows a job without a click."""
    _skip_without_browser()
    import gradio as gr
    from playwright.sync_api import expect

    from lora_bakery.extension.jobs import JobQueue
    from lora_bakery.extension.ui import compat

    if compat.GRADIO_MAJOR < 4:
        pytest.skip(
            "gradio 3.41: every= blocks demo.close() once a page was opened; job_progress renders once there"
        )
    jobs, release = JobQueue(), threading.Event()
    job = _gated_job(jobs, release)
    with gr.Blocks(analytics_enabled=False, theme=compat.offline_theme()) as demo:
        compat.job_progress(job.snapshot, every=0.3, elem_id="poll")
    try:
        with _served(demo) as url, _page(url, wait_until="load") as (page, watched):
            poll = _by_id(page, "poll")
            expect(poll).to_contain_text("running")
            release.set()
            expect(poll).to_contain_text("done", timeout=30_000)
            expect(poll).to_contain_text("3/3")
        watched.assert_clean()
    finally:
        release.set()
