"""In a real browser (Debian's Chromium via Playwright), a Dash app behind the login works under
our Content-Security-Policy with no violations, its callbacks carry the CSRF token set by
assets/csrf.js, a callback without it is refused, and signing out ends the session. The app runs
under gunicorn with two workers, so a session made by one worker is honoured by the other."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard.auth.store import UserStore

pytestmark = pytest.mark.browser
HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
PASSWORD = "a long enough password 1"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
# Collects CSP violations reported by the page itself.
WATCH_CSP = """window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    UserStore(tmp_path / "users.sqlite", scrypt_n=2**10).add_user("board", "board", "QWE", None, PASSWORD)
    port = _free_port()
    env = {
        **os.environ,
        "CMH_SECRET_KEY": "browser-test-secret-0123456789abcdef",
        "CMH_AUTH_DB": str(tmp_path / "users.sqlite"),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    env.pop("CMH_DEMO", None)
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--preload",
            "--worker-tmp-dir", str(tmp_path), "--control-socket", str(tmp_path / "gunicorn.ctl"),
            "browser_app:create()"]  # fmt: skip
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(argv, env=env, cwd=HERE, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/login", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail((tmp_path / "gunicorn.log").read_text())
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=15)
    log.close()


@pytest.fixture
def short_tmp():
    # Chromium's singleton socket path must stay short (pytest's tmp_path is too deep).
    path = Path(tempfile.mkdtemp(prefix="cmhb-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_dash_app_behind_login_under_strict_csp(server, short_tmp):
    from playwright.sync_api import sync_playwright

    tmp_path = short_tmp
    console_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            env={**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
                 "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_CACHE_HOME": str(tmp_path / "cache")},
        )  # fmt: skip
        context = browser.new_context()
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        page.goto(f"{server}/")
        assert "/login" in page.url
        page.get_by_label("Username").fill("board")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#out:has-text('echo a')", timeout=20000)
        page.wait_for_selector("#graph .main-svg .point", timeout=20000)

        for text in ("hello", "second worker", "third"):  # several callbacks, likely both workers
            page.get_by_label("Text").fill(text)
            page.wait_for_selector(f"#out:has-text('echo {text}')", timeout=10000)
        assert page.evaluate("window.__csp") == []
        assert console_errors == []

        # Without the token (cookie removed) the next callback is refused by the server.
        context.clear_cookies(name="cmh_csrf")
        with page.expect_response(lambda r: "_dash-update-component" in r.url) as refused:
            page.get_by_label("Text").fill("forged")
        assert refused.value.status == 400
        assert page.text_content("#out") == "echo third"

        page.goto(f"{server}/logout")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login?signed_out=1")
        page.goto(f"{server}/")
        assert "/login" in page.url
        browser.close()
