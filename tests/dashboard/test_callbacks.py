"""callbacks.sync (URL <-> controls) called directly, and the registered callback through Dash's
own HTTP endpoint."""

from __future__ import annotations

import json

import pytest

from dashboard import callbacks, ids
from dashboard.state import ViewState

pytestmark = pytest.mark.usefixtures("request_ctx")


def _values(**kw):
    base = dict.fromkeys(ids.CONTROLS)
    base.update(kw)
    return base


def test_url_sets_the_controls_and_is_left_alone():
    r = callbacks.sync(ids.URL, "?pcn=U10003&period=2026-05-31&dim=gender&group=Female", _values())
    assert r.search is None
    assert r.values[ids.PCN] == "U10003" and r.values[ids.PLACE] == "WST" and r.values[ids.ICB] == "QWU"
    assert r.values[ids.PERIOD] == "2026-05-31" and r.values[ids.GROUP] == "Female"
    assert {o["value"] for o in r.options[ids.PCN]} == {"U10001", "U10002", "U10003", "UNMAPPED"}
    assert [o["value"] for o in r.options[ids.GROUP]][:2] == ["Male", "Female"]


def test_first_load_without_a_query_shows_the_latest_month_for_the_icb():
    r = callbacks.sync(None, "", _values())
    assert r.search is None and r.values[ids.PERIOD] == "2026-10-31" and r.values[ids.ICB] == "QWU"
    assert r.values[ids.TREND_FROM] == "2025-10-31"  # 13 months for trends by default


def test_choosing_a_pcn_writes_it_and_its_parents_to_the_url():
    r = callbacks.sync(ids.PCN, "", _values(**{ids.PCN: "U20001"}))
    assert ViewState.from_search(r.search).geography == ("pcn", "U20001")
    assert "place=EST" in r.search and "icb=QWU" in r.search


def test_a_new_icb_clears_place_and_pcn_and_a_new_characteristic_clears_the_group():
    r = callbacks.sync(ids.ICB, "?icb=QWU&place=WST&pcn=U10001", _values(**{ids.ICB: "QWU"}))
    s = ViewState.from_search(r.search)
    assert (s.place, s.pcn) == (None, None)
    r = callbacks.sync(ids.DIM, "?dim=gender&group=Male", _values(**{ids.DIM: "age_band"}))
    s = ViewState.from_search(r.search)
    assert (s.dim, s.group) == ("age_band", None)


def test_page_parameters_go_to_the_url_but_not_to_the_nav_links():
    r = callbacks.sync(ids.url_param("ind"), "?pcn=U10001", _values(**{"param:ind": "dna_rate_pct"}))
    assert "ind=dna_rate_pct" in r.search and "ind=" not in r.nav_search and "pcn=U10001" in r.nav_search


def test_unchanged_state_does_not_rewrite_the_url():
    search = ViewState.from_search("?icb=QWU&period=2026-10-31&from=2025-10-31").to_search()
    r = callbacks.sync(ids.PERIOD, search, _values(**{ids.PERIOD: "2026-10-31"}))
    assert r.search is None


def test_unknown_codes_in_a_shared_url_fall_back_to_the_icb():
    r = callbacks.sync(ids.URL, "?pcn=U99999&provider=XX&period=1999-01-31&dim=shoe_size", _values())
    assert r.values[ids.PCN] is None and r.values[ids.PROVIDER] is None
    assert r.values[ids.PERIOD] == "2026-10-31" and r.values[ids.DIM] == ""


def test_registered_callback_answers_over_http(app):
    client = app.server.test_client()
    client.get("/")  # first request registers the pages router
    inputs = [{"id": ids.URL, "property": "search", "value": "?pcn=U10001"}]
    inputs += [{"id": c, "property": "value", "value": None} for c in ids.CONTROLS]
    inputs.append([])
    payload = {
        "output": "..." , "outputs": [], "inputs": inputs, "changedPropIds": [f"{ids.PCN}.value"],
        "state": [[{"id": {"type": "nav", "page": "/access"}, "property": "id", "value": {"type": "nav", "page": "/access"}}]],
    }  # fmt: skip
    deps = json.loads(client.get("/_dash-dependencies").data)
    dep = next(d for d in deps if d["output"].startswith(f"..{ids.URL}.search"))
    payload["output"] = dep["output"]
    payload["outputs"] = [
        {"id": o.split(".")[0], "property": o.split(".")[1]} for o in dep["output"].strip(".").split("...")
    ]
    payload["outputs"][-1] = [{"id": {"type": "nav", "page": "/access"}, "property": "href"}]
    inputs[1 + ids.CONTROLS.index(ids.PCN)]["value"] = "U10002"
    r = client.post("/_dash-update-component", json=payload)
    assert r.status_code == 200, r.data[:500]
    body = json.loads(r.data)["response"]
    assert "pcn=U10002" in body[ids.URL]["search"]
    assert body[ids.PLACE]["value"] == "WST"
