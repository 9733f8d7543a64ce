"""A minimal Flask app carrying the real auth, API and extract code (not the Dash app, which is
tested on its own), with stand-ins for Dash's routes and one account per role."""

from __future__ import annotations

import re
import shutil
from contextlib import closing
from pathlib import Path

from flask import Flask, jsonify, request

from dashboard import api, extracts
from dashboard.auth import init_auth, require_provider_access
from dashboard.auth.store import UserStore

SECRET = "test-secret-key-0123456789abcdef0123456789"
PASSWORD = "a long enough password 1"
# username -> (role, icb, provider)
ACCOUNTS = {
    "board": ("board", "QWE", None),
    "equality": ("equality_lead", "QWE", None),
    "admin": ("admin", "QWE", None),
    "prov-rwe": ("provider", "QWE", "RWE"),
    "prov-nwv": ("provider", "QWE", "NWV01"),
    "board-qxx": ("board", "QXX", None),
}


def users_template(directory: Path) -> Path:
    """A user store holding ACCOUNTS, made once per session and copied per test (hashing and
    SQLite setup cost more than the tests themselves)."""
    path = directory / "users.sqlite"
    store = UserStore(path, scrypt_n=2**10)
    for username, (role, icb, provider) in ACCOUNTS.items():
        store.add_user(username, role, icb, provider, PASSWORD)
    with closing(store.connect()) as con:
        con.execute("pragma wal_checkpoint(truncate)")
    return path


def make_app(tmp_path: Path, warehouse: Path | None, monkeypatch, template: Path | None = None) -> Flask:
    monkeypatch.setenv("CMH_SECRET_KEY", SECRET)
    monkeypatch.delenv("CMH_DEMO", raising=False)
    app = Flask("cmh_test")
    app.config.update(
        CMH_WAREHOUSE=str(warehouse or tmp_path / "no-warehouse"),
        CMH_DISCLOSURE_THRESHOLD=5,
        CMH_DISCLOSURE_ROUNDING=5,
        CMH_FRESHNESS_DAYS=45,
    )
    if template is None:
        template = users_template(tmp_path / "template")
    shutil.copyfile(template, tmp_path / "users.sqlite")
    store = UserStore(tmp_path / "users.sqlite", scrypt_n=2**10)
    init_auth(app, store=store)
    app.register_blueprint(api.bp)
    app.register_blueprint(extracts.bp)

    @app.get("/")
    def home():
        return "<!doctype html><title>home</title><p>dashboard home</p>"

    @app.get("/equity")
    def equity():
        return "<!doctype html><title>equity</title>"

    @app.get("/_dash-layout")
    def dash_layout():
        return jsonify({"props": {}})

    @app.post("/_dash-update-component")
    def dash_update():
        # Stands in for a Dash callback that takes a provider code from its payload.
        provider = (request.get_json(silent=True) or {}).get("provider")
        if provider:
            require_provider_access(provider)
        return jsonify({"response": {"ok": True}})

    @app.get("/download/<kind>.csv")
    def chart_csv(kind):
        return "a,b\r\n1,2\r\n", 200, {"Content-Type": "text/csv", "X-Build-Id": "build-x"}

    @app.post("/echo")
    def echo():
        return "posted"

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals: password=hunter2")

    return app


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD, next_: str = "/"):
    page = client.get(f"/login?next={next_}")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token, "next": next_}
    )


def session_csrf(client) -> str:
    """The token a logged-in page's script would send (from the readable cookie)."""
    cookie = client.get_cookie("cmh_csrf")
    assert cookie is not None, "no cmh_csrf cookie after login"
    return cookie.value
