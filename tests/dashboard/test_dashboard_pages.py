"""Every page for several URL states: layout() called directly (as the pages router does) and the
routes fetched through Flask's test client; the CSV behind every chart is fetched and compared
with the table view drawn from the same rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from urllib.parse import urlsplit

import dash
import pandas as pd
import plotly
import pytest

from dashboard import components
from pipelines.registry import load_registry

STATES = [
    {},
    {"place": "EST", "dim": "ethnicity_group", "group": "Asian", "period": "2026-06-30"},
    {"provider": "RWE", "dim": "imd_quintile", "ind": "prom_paired_pct", "from": "2026-01-31"},
    {"pcn": "U20002", "dim": "gender"},  # the small PCN: many suppressed cells
]
PAGES = ["/", "/access", "/waiting", "/outcomes", "/equity", "/data-quality", "/definitions"]


def walk(node):
    """Every component in a Dash layout tree."""
    if isinstance(node, list | tuple):
        for n in node:
            yield from walk(n)
    elif hasattr(node, "to_plotly_json"):
        yield node
        yield from walk(getattr(node, "children", None))


def text(node) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list | tuple):
        return " ".join(text(n) for n in node)
    return text(getattr(node, "children", "")) if hasattr(node, "to_plotly_json") else ""


def page_layout(path: str):
    return next(p for p in dash.page_registry.values() if p["path"] == path)["layout"]


@pytest.fixture(scope="module")
def rendered(app):
    out = {}
    with app.server.test_request_context("/"):
        for path in PAGES:
            for i, state in enumerate(STATES):
                out[path, i] = page_layout(path)(**state)
    return out


def test_dash_layout_serves_the_shell_with_labelled_controls(client):
    r = client.get("/_dash-layout")
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    for cid in ("ctl-period", "ctl-icb", "ctl-place", "ctl-pcn", "ctl-provider", "ctl-dim", "ctl-group"):
        assert f'"htmlFor": "{cid}"' in body or f'"htmlFor":"{cid}"' in body.replace(" ", "")


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("state", range(len(STATES)))
def test_page_routes_answer_for_every_url_state(client, path, state):
    r = client.get(path, query_string=STATES[state])
    assert r.status_code == 200 and b'lang="en"' in r.data


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_one_h1_a_banner_and_serialises(rendered, path):
    for i in range(len(STATES)):
        layout = rendered[path, i]
        comps = list(walk(layout))
        assert [type(c).__name__ for c in comps].count("H1") == 1
        assert any(getattr(c, "id", None) == "data-banner" for c in comps)
        json.dumps(layout, cls=plotly.utils.PlotlyJSONEncoder)


def _cards(layout):
    return [
        c
        for c in walk(layout)
        if getattr(c, "className", None) == "card" and str(getattr(c, "id", "")).startswith("card-")
    ]


@pytest.mark.parametrize("path", ["/access", "/waiting", "/outcomes", "/equity"])
def test_every_chart_has_a_table_view_and_its_csv_holds_the_same_rows(client, rendered, path):
    for i in (0, 1, 3):
        cards = _cards(rendered[path, i])
        assert cards, f"{path} state {i} has no charts"
        for card in cards:
            comps = list(walk(card))
            table = next(c for c in comps if type(c).__name__ == "Markdown").children
            link = next(c for c in comps if getattr(c, "className", "") == "download")
            url = urlsplit(link.href)
            r = client.get(url.path, query_string=url.query)
            assert r.status_code == 200 and r.headers["X-Build-Id"]
            rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
            body_rows = table.split("<tbody>")[1].count("<tr>")
            assert len(rows) == body_rows, (path, i, link.href)
            assert table.count("<td>*</td>") >= sum(1 for r in rows if r["suppressed"])
            heading = next(c for c in comps if type(c).__name__ == "H2")
            graph = [c for c in comps if type(c).__name__ == "Graph"]
            if graph:
                assert graph[0].figure["layout"]["title"]["text"].replace("<br>", " ") == heading.children


def test_group_view_changes_what_the_access_bars_show(rendered):
    plain = _cards(rendered["/access", 0])[0]
    grouped = _cards(rendered["/access", 1])[0]
    t_plain = next(c for c in walk(plain) if type(c).__name__ == "Graph").figure["layout"]["title"]["text"]
    t_group = next(c for c in walk(grouped) if type(c).__name__ == "Graph").figure["layout"]["title"]["text"]
    assert "Ethnicity group: Asian" in t_group and "Asian" not in t_plain and "June 2026" in t_group


def test_overview_has_a_tile_per_headline_indicator_and_a_pcn_row_each(rendered):
    layout = rendered["/", 0]
    tiles = [c for c in walk(layout) if getattr(c, "className", None) == "tile"]
    assert len(tiles) == len(load_registry().headline())
    tile_text = text(tiles[0])
    assert "95% interval" in tile_text and "Change on 12 months earlier" in tile_text
    spine = next(c for c in walk(layout) if getattr(c, "className", None) == "spine")
    rows = next(c for c in walk(spine) if type(c).__name__ == "Tbody").children
    assert len(rows) == 7  # five PCNs plus UNMAPPED and UNKNOWN under the ICB
    assert any(w in text(spine) for w in ("Better", "Worse", "Similar"))


def test_equity_charts_each_carry_the_completeness_of_the_characteristic(rendered, frames):
    layout = rendered["/equity", 3]  # PCN U20002 by gender
    cards = _cards(layout)
    assert len(cards) >= 4
    iv = frames["indicator_values"]
    known = iv[(iv["indicator_id"] == "dq_gender_known_pct") & (iv["geography_code"] == "U20002")
               & (iv["period_end"] == dt.date(2026, 10, 31))]["value"].iloc[0]  # fmt: skip
    gender_cards = [c for c in cards if "gender" in text(c).lower() or "representation" in str(c.id)]
    for card in gender_cards:
        note = next(c for c in walk(card) if "completeness" in str(getattr(c, "className", "")))
        assert f"{100 - known:.0f}%" in text(note)
        assert ("Treat with caution" in text(note)) == (known < 80)


def test_definitions_list_every_indicator_and_the_suppression_rules(rendered):
    layout = rendered["/definitions", 0]
    ids_shown = {str(c.id) for c in walk(layout) if str(getattr(c, "id", "")).startswith("def-")}
    assert ids_shown == {f"def-{i}" for i in load_registry().ids}
    rules = text(next(c for c in walk(layout) if getattr(c, "id", None) == "suppression-rules"))
    assert "below 5" in rules and "nearest 5" in rules and "next smallest" in rules


def test_data_quality_shows_the_load_report_to_admins(rendered):
    shown = text(rendered["/data-quality", 0])
    assert "Load report (admin)" in shown
    # the table has its columns and one cell per column (it once rendered headless, empty rows)
    for header in ("month", "table", "rows read", "rows loaded", "rows rejected", "rows superseded"):
        assert f'<th scope="col">{header}</th>' in shown, header
    assert "<td>MHS101Referral</td>" in shown


def test_banner_warns_when_the_build_is_older_than_the_freshness_limit(app, monkeypatch):
    with app.server.test_request_context("/"):
        from dashboard import queries

        built = pd.Timestamp(queries.build_info()["built_at"].iloc[0]).to_pydatetime()
        assert "stale-warning" not in str(components.banner(now=built + dt.timedelta(days=45)))
        assert "50 days old" in text(components.banner(now=built + dt.timedelta(days=50)))
        monkeypatch.setenv("CMH_DASHBOARD_FRESHNESS_DAYS", "3")
        assert "older than the 3-day" in text(components.banner(now=built + dt.timedelta(days=4)))


def test_download_rejects_unknown_charts_and_indicators(client):
    assert client.get("/download/pie.csv?ids=four_week_wait_pct").status_code == 400
    r = client.get("/download/trend.csv?ids=not_an_indicator")
    assert r.status_code == 400 and b"ids" in r.data


def test_pages_explain_when_nothing_is_published(tmp_path, monkeypatch):
    monkeypatch.setenv("CMH_AUTH", "off")
    from dashboard.app import create_app

    empty = create_app(tmp_path / "none", cache_dir=tmp_path / "cache")
    with empty.server.test_request_context("/"):
        assert "No data has been published yet" in text(page_layout("/access")())


def test_slope_chart_states_sii_and_rii_in_words(rendered, frames):
    card = next(c for c in _cards(rendered["/equity", 0]) if str(c.id).startswith("card-slope"))
    ineq = frames["inequality_summary"]
    sii = ineq[(ineq["indicator_id"] == "four_week_wait_pct") & (ineq["geography_level"] == "icb")
               & (ineq["measure"] == "sii") & (ineq["period_end"] == dt.date(2026, 10, 31))].iloc[0]  # fmt: skip
    words = text(card)
    assert "Slope index of inequality (SII)" in words and "relative index (RII)" in words
    assert (f"{sii['value']:.2f}" in words) if pd.notna(sii["value"]) else ("SII): *" in words)
