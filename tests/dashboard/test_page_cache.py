"""page_cache.py: the pages router's response is cached per build, per canonical URL state and per
viewer scope, replayed byte for byte, never across scopes and never across builds."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from dashboard import page_cache
from dashboard.auth.store import UserStore

PASSWORD = "a long enough password 1"
SECRET = "test-secret-key-0123456789abcdef0123456789"


def router(path: str, search: str = "") -> dict:
    return page_cache.router_payload(path, search)


def post(client, path: str, search: str = "", headers: dict | None = None):
    return client.post("/_dash-update-component", json=router(path, search), headers=headers or {})


def test_the_key_holds_build_url_state_scope_and_staleness():
    key = lambda build="b1", path="/access", search="?pcn=U1&dim=gender", who="board|QWE|-", stale=None: (
        page_cache.page_key(build, path, search, who, stale)
    )  # fmt: skip
    assert key() == key(search="?dim=gender&pcn=U1&junk=1")  # canonical: order and unknown keys ignored
    assert key() == key(search="?dim=gender&pcn=U1&group=NotAGroup")  # dropped exactly as the page drops it
    assert len({key(), key(build="b2"), key(path="/waiting"), key(search="?pcn=U2&dim=gender")}) == 4
    scopes = ["board|QWE|-", "admin|QWE|-", "provider|QWE|RWE", "provider|QWE|NWV01", "board|QXX|-"]
    assert len({key(who=s) for s in scopes}) == len(scopes)
    assert len({key(), key(stale=(50, 45)), key(stale=(51, 45))}) == 3


def test_only_the_pages_router_is_recognised():
    assert page_cache.router_request(router("/access", "?pcn=U1")) == ("/access", "?pcn=U1")
    other = router("/access")
    other["outputs"] = [{"id": "graph", "property": "figure"}]
    with_state = router("/access") | {"state": [{"id": "x", "property": "value", "value": 1}]}
    extra_input = router("/access")
    extra_input["inputs"].append({"id": "ctl-provider", "property": "value", "value": "RWE"})
    assert [page_cache.router_request(b) for b in (other, with_state, extra_input, [], None)] == [None] * 5


def test_a_repeat_view_is_served_from_the_cache_byte_for_byte(client):
    first = post(client, "/access", "?pcn=U20002&dim=gender")
    assert first.status_code == 200 and first.headers[page_cache.HEADER] == "miss"
    again = post(client, "/access", "?dim=gender&pcn=U20002")  # the same view, written differently
    assert again.headers[page_cache.HEADER] == "hit" and again.data == first.data
    assert again.content_type == first.content_type == "application/json"
    other = post(client, "/access", "?pcn=U20002&dim=age_band")
    assert other.headers[page_cache.HEADER] == "miss" and other.data != first.data


def test_a_cached_page_is_what_rendering_it_again_gives(app, client):
    cached = post(client, "/equity", "?place=EST&dim=ethnicity_group")
    post(client, "/equity", "?place=EST&dim=ethnicity_group")
    from dashboard.cache import cache

    with app.server.app_context():  # the shared cache of this app (the tests create several apps)
        cache.clear()
    fresh = post(client, "/equity", "?place=EST&dim=ethnicity_group")
    assert fresh.headers[page_cache.HEADER] == "miss" and json.loads(fresh.data) == json.loads(cached.data)


def test_unknown_paths_and_failed_renders_are_not_cached(client):
    assert page_cache.HEADER not in post(client, "/no-such-page").headers
    assert page_cache.HEADER not in post(client, "/no-such-page").headers


def test_a_publish_is_never_answered_from_the_old_builds_pages(tmp_path, monkeypatch, fixtures_mod):
    monkeypatch.setenv("CMH_AUTH", "off")
    from dashboard.app import create_app

    first = fixtures_mod.publish_fixture(tmp_path / "wh", months=3, built_at=dt.datetime(2026, 11, 1, 9))
    app = create_app(tmp_path / "wh", cache_dir=tmp_path / "cache")
    client = app.server.test_client()
    assert first.encode() in post(client, "/").data
    assert post(client, "/").headers[page_cache.HEADER] == "hit"
    second = fixtures_mod.publish_fixture(
        tmp_path / "wh",
        months=3,
        last_period=dt.date(2026, 11, 30),
        seed=5,
        built_at=dt.datetime(2026, 12, 1, 9),
    )
    after = post(client, "/")
    assert after.headers[page_cache.HEADER] == "miss"
    assert second.encode() in after.data and first.encode() not in after.data


def test_the_freshness_warning_is_not_frozen_in_the_cache(tmp_path, monkeypatch, fixtures_mod):
    monkeypatch.setenv("CMH_AUTH", "off")
    from dashboard.app import create_app

    ten_days_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=10, hours=1)
    fixtures_mod.publish_fixture(tmp_path / "wh", months=3, built_at=ten_days_ago)
    client = create_app(tmp_path / "wh", cache_dir=tmp_path / "cache").server.test_client()
    assert b"stale-warning" not in post(client, "/waiting").data  # 10 days: within the default 45
    monkeypatch.setenv("CMH_DASHBOARD_FRESHNESS_DAYS", "5")
    stale = post(client, "/waiting")
    assert stale.headers[page_cache.HEADER] == "miss" and b"this data is 10 days old" in stale.data


@pytest.fixture
def auth_client_for(tmp_path, monkeypatch, warehouse):
    """Clients of the real Dash app with authentication on, one per signed-in account."""
    monkeypatch.setenv("CMH_AUTH", "on")
    monkeypatch.setenv("CMH_SECRET_KEY", SECRET)
    monkeypatch.delenv("CMH_DEMO", raising=False)
    monkeypatch.setenv("CMH_AUTH_DB", str(tmp_path / "users.sqlite"))
    store = UserStore(tmp_path / "users.sqlite", scrypt_n=2**10)
    accounts = {"admin": ("admin", None), "board": ("board", None),
                "prov-rwe": ("provider", "RWE"), "prov-nwv": ("provider", "NWV01")}  # fmt: skip
    for username, (role, provider) in accounts.items():
        store.add_user(username, role, "QWE", provider, PASSWORD)
    from dashboard.app import create_app

    app = create_app(warehouse, cache_dir=tmp_path / "cache")

    def signed_in(username: str):
        client = app.server.test_client()
        page = client.get("/login?next=/").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = {"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"}
        assert client.post("/login", data=form).status_code == 302
        client.environ_base["HTTP_X_CSRFTOKEN"] = client.get_cookie("cmh_csrf").value
        return client

    signed_in.app = app
    return signed_in


def test_cached_pages_never_cross_from_one_access_scope_to_another(auth_client_for):
    admin, board = auth_client_for("admin"), auth_client_for("board")
    shown = post(admin, "/data-quality")
    assert shown.headers[page_cache.HEADER] == "miss" and b"Load report (admin)" in shown.data
    assert post(admin, "/data-quality").headers[page_cache.HEADER] == "hit"
    board_view = post(board, "/data-quality")  # same page, same URL, same build: another scope
    assert board_view.headers[page_cache.HEADER] == "miss" and b"Load report (admin)" not in board_view.data

    rwe, nwv = auth_client_for("prov-rwe"), auth_client_for("prov-nwv")
    assert post(rwe, "/access", "?provider=RWE").headers[page_cache.HEADER] == "miss"
    assert post(rwe, "/access", "?provider=RWE").headers[page_cache.HEADER] == "hit"
    assert post(nwv, "/access", "?provider=RWE").headers[page_cache.HEADER] == "miss"  # never RWE's copy


def test_the_sign_in_guard_runs_before_the_cache(auth_client_for):
    admin = auth_client_for("admin")
    assert post(admin, "/data-quality").status_code == 200
    anonymous = auth_client_for.app.server.test_client()
    refused = post(anonymous, "/data-quality")
    assert refused.status_code == 401 and b"Load report" not in refused.data
    no_csrf = auth_client_for("admin")
    del no_csrf.environ_base["HTTP_X_CSRFTOKEN"]
    assert post(no_csrf, "/data-quality").status_code == 400
