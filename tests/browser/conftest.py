"""Browser fixtures: the app under real gunicorn (2 workers) on a free localhost port, driven by
Playwright with Debian's /usr/bin/chromium and a fresh profile (never a downloaded browser).

Everything the server and the browser write (cache, worker heartbeats, profile, crash reports)
goes under pytest's temporary folder, not $HOME. The server is stopped by its own process id.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _fixture_module():
    name = "cmh_dashboard_fixture_warehouse"
    if name not in sys.modules:
        path = REPO / "tests" / "dashboard" / "fixture_warehouse.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, warehouse: Path, base: Path):
        self.warehouse = warehouse
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        run = base / "run"
        run.mkdir()
        env = {
            **os.environ, "CMH_AUTH": "off", "CMH_PIPELINE_WAREHOUSE": str(warehouse),
            "CMH_DASHBOARD_CACHE_DIR": str(base / "cache"), "TMPDIR": str(run), "HOME": str(base),
        }  # fmt: skip
        from dashboard.serve import gunicorn_argv

        argv = gunicorn_argv(warehouse, "127.0.0.1", self.port, 2, run)
        self.log = open(base / "gunicorn.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/_dash-layout", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not start; see {base / 'gunicorn.log'}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def fixtures_mod():
    """tests/dashboard/fixture_warehouse.py (publish_fixture, build_frames)."""
    return _fixture_module()


@pytest.fixture(scope="session")
def browser_warehouse(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("browser-warehouse")
    _fixture_module().publish_fixture(directory)
    return directory


@pytest.fixture(scope="session")
def server(browser_warehouse, tmp_path_factory):
    srv = Server(browser_warehouse, tmp_path_factory.mktemp("gunicorn"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (make chromium)")
    from playwright.sync_api import sync_playwright

    base = tmp_path_factory.mktemp("chromium")
    env = {**os.environ, "HOME": str(base), "XDG_CONFIG_HOME": str(base / "config"),
           "XDG_CACHE_HOME": str(base / "cache"), "TMPDIR": str(base)}  # fmt: skip
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(base / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS, env=env,
            viewport={"width": 1280, "height": 900}, accept_downloads=True,
        )  # fmt: skip
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser_context):
    """A fresh tab that records console errors, page errors and failed (>= 400) requests."""
    tab = browser_context.new_page()
    tab.set_default_timeout(60_000)  # a shared 2-core machine can be slow to draw plotly charts
    tab.problems = []
    tab.on(
        "console", lambda m: tab.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    tab.on("pageerror", lambda e: tab.problems.append(f"page error: {e}"))
    tab.on("response", lambda r: tab.problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    tab.on("requestfailed", lambda r: tab.problems.append(f"failed {r.url}: {r.failure}"))
    yield tab
    tab.close()
