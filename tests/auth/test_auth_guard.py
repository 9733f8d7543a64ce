"""Every request is checked (spec/05): anonymous refusal, login, sessions, CSRF, headers, errors."""

from __future__ import annotations

import re

import pytest
from fixture_app import PASSWORD, csrf_from, login, session_csrf

from dashboard.auth import ConfigurationError, init_auth


def _concrete(rule) -> str:
    path = rule.rule
    for arg in rule.arguments:
        path = re.sub(rf"<(?:[^:>]+:)?{arg}>", "csv" if arg == "fmt" else "x.css", path)
    return path


def test_every_route_refuses_anonymous_requests(app):
    client = app.test_client()
    public = {"/login", "/auth/static/x.css"}
    checked = 0
    for rule in app.url_map.iter_rules():
        path = _concrete(rule)
        if path in public:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            checked += 1
            if path.startswith(("/api/", "/_dash-")) or method != "GET":
                assert response.status_code == 401, (method, path)
                assert response.is_json and response.json["error"] == 401
            else:
                assert response.status_code == 302, (method, path)
                assert response.headers["Location"].startswith("/login?next=")
    assert checked >= 10  # pages, API, downloads, callbacks, admin


def test_anonymous_data_requests_are_audited(app, audit):
    client = app.test_client()
    client.get("/api/v1/values")
    client.post("/_dash-update-component", json={})
    rows = audit.rows(event="denied")
    assert {r["path"] for r in rows} >= {"/api/v1/values", "/_dash-update-component"}
    assert all(r["status"] == 401 for r in rows)


def test_login_page_is_an_accessible_form(app):
    html = app.test_client().get("/login").get_data(as_text=True)
    assert '<html lang="en-GB">' in html
    for field in ("username", "password"):
        assert f'<label class="label" for="{field}">' in html and f'id="{field}"' in html
    assert 'autocomplete="current-password"' in html
    assert csrf_from(html)


def test_login_sets_hardened_session_cookie_and_redirects_to_next(app):
    client = app.test_client()
    response = login(client, "board", next_="/equity")
    assert response.status_code == 302 and response.headers["Location"] == "/equity"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("cmh_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/equity").status_code == 200


def test_session_cookie_is_secure_over_https(app):
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost")
    response = client.post(
        "/login",
        base_url="https://localhost",
        data={
            "username": "board",
            "password": PASSWORD,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("cmh_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert "Strict-Transport-Security" in response.headers


def test_login_is_not_an_open_redirect(app):
    response = login(app.test_client(), "board", next_="//evil.example/x")
    assert response.headers["Location"] == "/"


def test_failed_logins_are_audited_and_lock_the_account(app, audit):
    client = app.test_client()
    for _ in range(5):
        response = login(client, "board", password="not the password!")
        assert response.status_code == 200
        assert "There is a problem" in response.get_data(as_text=True)
    # The right password is now refused too, with the same message (no account enumeration).
    response = login(client, "board")
    assert response.status_code == 200 and "locked" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    outcomes = [r["outcome"] for r in audit.rows(event="login")]
    assert outcomes.count("failure:bad_password") == 4 and outcomes.count("failure:locked") == 2
    assert login(client, "nobody").status_code == 200
    assert audit.rows(event="login")[0]["outcome"] == "failure:unknown"


def test_login_requires_csrf_token(app, audit):
    client = app.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": "board", "password": PASSWORD})
    assert response.status_code == 400
    response = client.post("/login", data={"username": "board", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400
    assert audit.rows(event="denied")[0]["outcome"] == "csrf"


def test_state_changing_requests_need_the_csrf_header(app):
    client = app.test_client()
    login(client, "board")
    assert client.post("/_dash-update-component", json={}).status_code == 400
    bad = client.post("/_dash-update-component", json={}, headers={"X-CSRFToken": "nope"})
    assert bad.status_code == 400
    good = client.post("/_dash-update-component", json={}, headers={"X-CSRFToken": session_csrf(client)})
    assert good.status_code == 200 and good.json == {"response": {"ok": True}}
    # Other HTML forms use the hidden field instead of the header.
    assert client.post("/echo", data={"csrf_token": session_csrf(client)}).status_code == 200
    assert client.post("/echo", data={}).status_code == 400


def test_csrf_cookie_is_readable_by_script_but_strict(app):
    client = app.test_client()
    response = login(client, "board")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("cmh_csrf="))
    assert "HttpOnly" not in cookie and "SameSite=Strict" in cookie


def test_logout_ends_the_session_and_a_copied_cookie_stops_working(app):
    client = app.test_client()
    login(client, "board")
    stolen = client.get_cookie("cmh_session").value
    page = client.get("/logout")
    assert page.status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302 and "signed_out=1" in response.headers["Location"]
    assert client.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("cmh_session", stolen)
    assert replay.get("/").status_code == 302


def test_disabling_a_user_ends_their_session_at_once(app, store):
    client = app.test_client()
    login(client, "board")
    assert client.get("/").status_code == 200
    store.set_disabled("board")
    assert client.get("/").status_code == 302
    assert client.get("/api/v1/build").status_code == 401


def test_security_headers(app):
    client = app.test_client()
    login(client, "board")
    response = client.get("/")
    h = response.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin-when-cross-origin")
    assert h["Cache-Control"] == "no-store"
    csp = dict(part.strip().split(" ", 1) for part in h["Content-Security-Policy"].split(";"))
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'self'"
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert not re.search(r"https?:|\*", h["Content-Security-Policy"])  # nothing from elsewhere
    for path in ("/login", "/api/v1/build"):
        assert "frame-ancestors 'none'" in client.get(path).headers["Content-Security-Policy"]


def test_no_stack_traces_reach_users(app):
    client = app.test_client()
    login(client, "board")
    response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in body and "hunter2" not in body and "RuntimeError" not in body
    assert "incident" in body


def test_request_size_is_limited(app):
    client = app.test_client()
    login(client, "board")
    big = "x" * (3 * 1024 * 1024)
    response = client.post(
        "/_dash-update-component",
        data=big,
        content_type="application/json",
        headers={"X-CSRFToken": session_csrf(client)},
    )
    assert response.status_code == 413


def test_tokens_only_work_for_the_api_and_downloads(app, store):
    _, token = store.issue_token("board")
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    assert client.get("/api/v1/build", headers=auth).status_code == 200
    assert client.get("/", headers=auth).status_code == 401
    assert client.get("/admin/users", headers=auth).status_code == 401


def test_refuses_to_start_without_secret_key_outside_demo(tmp_path, monkeypatch):
    from flask import Flask

    monkeypatch.delenv("CMH_SECRET_KEY", raising=False)
    monkeypatch.delenv("CMH_DEMO", raising=False)
    monkeypatch.setenv("CMH_AUTH_DB", str(tmp_path / "u.sqlite"))
    with pytest.raises(ConfigurationError, match="CMH_SECRET_KEY"):
        init_auth(Flask("a"))
    monkeypatch.setenv("CMH_SECRET_KEY", "too short")
    with pytest.raises(ConfigurationError, match="at least 32"):
        init_auth(Flask("b"))


def test_demo_mode_generates_one_shared_key(tmp_path, monkeypatch):
    from flask import Flask

    monkeypatch.delenv("CMH_SECRET_KEY", raising=False)
    monkeypatch.setenv("CMH_DEMO", "1")
    monkeypatch.setenv("CMH_AUTH_DB", str(tmp_path / "u.sqlite"))
    first, second = Flask("a"), Flask("b")
    init_auth(first)
    init_auth(second)  # a second gunicorn worker must sign sessions with the same key
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert (tmp_path / ".demo_secret_key").stat().st_mode & 0o077 == 0


def test_chart_downloads_are_audited_with_the_build(app, audit):
    client = app.test_client()
    login(client, "equality")
    assert client.get("/download/waits.csv?ids=four_week_wait_pct").status_code == 200
    row = audit.rows(event="download")[0]
    assert (row["username"], row["build_id"]) == ("equality", "build-x")
    assert row["path"] == "/download/waits.csv?ids=four_week_wait_pct"


def test_provider_editing_a_callback_payload_gets_403_and_is_audited(app, audit):
    client = app.test_client()
    login(client, "prov-rwe")
    headers = {"X-CSRFToken": session_csrf(client)}
    assert (
        client.post("/_dash-update-component", json={"provider": "RWE"}, headers=headers).status_code == 200
    )
    response = client.post("/_dash-update-component", json={"provider": "NWV01"}, headers=headers)
    assert response.status_code == 403 and response.is_json
    row = audit.rows(event="denied")[0]
    assert (row["username"], row["status"], row["outcome"]) == ("prov-rwe", 403, "scope")
    assert "NWV01" in row["detail"]
    board = app.test_client()
    login(board, "board")  # ICB-wide roles may look at any provider of their ICB
    ok = board.post(
        "/_dash-update-component", json={"provider": "NWV01"}, headers={"X-CSRFToken": session_csrf(board)}
    )
    assert ok.status_code == 200
