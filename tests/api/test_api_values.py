"""The read-only API (spec/04): validation, pagination, build header, scope and token rules."""

from __future__ import annotations

import sqlite3

import pytest
from fixture_app import make_app
from fixture_warehouse import BUILD_ID, ETHNICITY, INDICATORS, PERIODS, PROVIDER_PCNS, build

ROWS_PER_GEOGRAPHY = len(PERIODS) * (1 + len(ETHNICITY))  # per indicator: breakdown all + ethnicity


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("foo=1", "foo"),
        ("indicator_id=no_such_indicator", "indicator_id"),
        ("geography_level=region", "geography_level"),
        ("geography_code=ZZZ99", "geography_code"),
        ("geography_level=pcn&geography_code=RWE", "geography_code"),
        ("breakdown=shoe_size", "breakdown"),
        ("period_from=2025-13", "period_from"),
        ("period_to=yesterday", "period_to"),
        ("period_from=2025-03&period_to=2025-01", "period_from"),
        ("limit=10001", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("geography_level=icb&geography_level=pcn", "geography_level"),
    ],
)
def test_bad_parameters_get_400_naming_them(as_user, query, param):
    response = as_user("board").get(f"/api/v1/values?{query}")
    assert response.status_code == 400
    assert response.json["parameter"] == param and param in response.json["message"]


@pytest.mark.parametrize("path", ["/api/v1/indicators", "/api/v1/build"])
def test_parameterless_endpoints_refuse_parameters(as_user, path):
    response = as_user("board").get(f"{path}?format=xml")
    assert response.status_code == 400 and response.json["parameter"] == "format"


def test_build_id_header_and_registry(as_user):
    client = as_user("equality")
    for path in ("/api/v1/indicators", "/api/v1/values?limit=1", "/api/v1/build"):
        assert client.get(path).headers["X-Build-Id"] == BUILD_ID
    registry = client.get("/api/v1/indicators").json["indicators"]
    assert {(r["indicator_id"], r["title"], r["unit"]) for r in registry} == {
        (i, t, u) for i, t, u, _ in INDICATORS
    }


def test_build_reports_freshness(as_user):
    body = as_user("board").get("/api/v1/build").json
    assert body["build"]["build_id"] == BUILD_ID
    assert body["build"]["last_period"] == PERIODS[-1].isoformat()
    fresh = body["freshness"]
    assert 9.9 <= fresh["build_age_days"] <= 10.1  # the fixture was built "10 days ago"
    assert fresh["freshness_days"] == 45 and fresh["stale"] is False


def test_pagination_covers_every_row_once(as_user):
    client = as_user("board")
    # Board user of QWE: its ICB, 2 places, 4 PCNs + UNMAPPED and 3 providers (fixture_warehouse).
    expected = 11 * ROWS_PER_GEOGRAPHY
    seen, offset = [], 0
    while offset is not None:
        body = client.get(f"/api/v1/values?indicator_id=four_week_wait_pct&limit=50&offset={offset}").json
        assert body["total"] == expected and body["count"] <= 50
        seen += [
            tuple(r[k] for k in ("period_end", "geography_code", "breakdown_value")) for r in body["rows"]
        ]
        offset = body["next_offset"]
    assert len(seen) == expected == len(set(seen))


def test_limit_defaults_and_maximum(as_user):
    client = as_user("board")
    assert client.get("/api/v1/values").json["limit"] == 1000
    assert client.get("/api/v1/values?limit=10000").status_code == 200


def test_provider_sees_only_own_provider_and_served_pcns(as_user):
    rows = as_user("prov-nwv").get("/api/v1/values?limit=10000").json["rows"]
    allowed = {("provider", "NWV01")} | {("pcn", p) for p in PROVIDER_PCNS["NWV01"]}
    assert {(r["geography_level"], r["geography_code"]) for r in rows} == allowed
    assert len(rows) == len(INDICATORS) * len(allowed) * ROWS_PER_GEOGRAPHY


@pytest.mark.parametrize(
    "query",
    [
        "geography_code=RWE",
        "geography_level=provider&geography_code=NEV02",
        "geography_code=U00004",  # a PCN NWV01 does not serve
        "geography_level=icb",
        "geography_level=place&geography_code=QWEA",
        "geography_code=NWV01,RWE",
    ],
)
def test_provider_asking_for_other_rows_gets_403_and_is_audited(app, as_user, query):
    response = as_user("prov-nwv").get(f"/api/v1/values?{query}")
    assert response.status_code == 403
    denied = app.extensions["cmh_auth"].audit.rows(event="denied")
    assert denied[0]["username"] == "prov-nwv" and denied[0]["status"] == 403
    assert query.split("=")[-1].split(",")[0] in denied[0]["path"]


def test_provider_may_name_own_rows(as_user):
    client = as_user("prov-nwv")
    for query in ("geography_code=NWV01", "geography_level=pcn&geography_code=U00001", "geography_level=pcn"):
        assert client.get(f"/api/v1/values?{query}").status_code == 200


def test_icb_users_stay_in_their_icb(as_user):
    client = as_user("board-qxx")
    assert client.get("/api/v1/values?geography_code=RWE").status_code == 403
    rows = client.get("/api/v1/values?limit=10000").json["rows"]
    assert {r["geography_code"] for r in rows} == {"QXX", "QXXA", "U00009", "RXX"}


def test_api_calls_are_audited_with_build(app, as_user):
    as_user("board").get("/api/v1/values?indicator_id=dna_rate_pct&limit=5")
    row = app.extensions["cmh_auth"].audit.rows(event="api")[0]
    assert row["username"] == "board" and row["build_id"] == BUILD_ID and "dna_rate_pct" in row["detail"]


def test_tokens_authenticate_with_the_same_rules(app, tmp_path):
    store = app.extensions["cmh_auth"].store
    token_id, token = store.issue_token("prov-nwv")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/values?geography_code=NWV01", headers=auth).status_code == 200
    assert client.get("/api/v1/values?geography_code=RWE", headers=auth).status_code == 403
    assert client.get("/extracts/kpi.csv?provider=RWE", headers=auth).status_code == 403
    _, expired = store.issue_token("prov-nwv")
    with sqlite3.connect(store.path) as con:
        con.execute(
            "update api_tokens set expires_at = 0 where token_hash != (select token_hash from api_tokens"
            " where id = ?)",
            (token_id,),
        )
    assert client.get("/api/v1/build", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    store.revoke_token(token_id)
    response = client.get("/api/v1/build", headers=auth)
    assert response.status_code == 401 and response.json["error"] == 401
    assert client.get("/api/v1/build", headers={"Authorization": "Bearer cmh_made_up"}).status_code == 401


def test_published_rows_that_break_disclosure_rules_are_withheld(tmp_path, monkeypatch):
    directory = tmp_path / "bad_warehouse"
    build(directory, breach=True)
    app = make_app(tmp_path, directory, monkeypatch)
    from fixture_app import login

    client = app.test_client()
    login(client, "board")
    response = client.get("/api/v1/values?limit=10000")
    assert response.status_code == 500 and "rows" not in response.json
    assert client.get("/extracts/kpi.csv").status_code == 500
    guard = app.extensions["cmh_auth"].audit.rows(event="disclosure_guard")
    assert len(guard) == 2 and guard[0]["build_id"] == BUILD_ID


def test_no_build_published_is_a_503(tmp_path, monkeypatch):
    app = make_app(tmp_path, tmp_path / "empty", monkeypatch)
    from fixture_app import login

    client = app.test_client()
    login(client, "board")
    assert client.get("/api/v1/values").status_code == 503


def test_works_through_the_dashboards_shared_connection(tmp_path, monkeypatch, warehouse):
    from dashboard import db

    app = make_app(tmp_path, warehouse, monkeypatch)
    db.init_app(app, warehouse)
    from fixture_app import login

    client = app.test_client()
    login(client, "prov-rwe")
    response = client.get("/api/v1/values?geography_code=RWE&limit=3")
    assert response.status_code == 200 and response.headers["X-Build-Id"] == BUILD_ID
    assert client.get("/extracts/kpi.csv").status_code == 200
