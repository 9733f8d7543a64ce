"""End to end in Chromium against the app under real gunicorn (2 workers): the controls drive the
charts through the URL, a copied URL restores the view, back/forward work, and a build published
mid-session is picked up with no failed request. (Every page rendering cleanly is checked with the
accessibility audit in test_accessibility.py, in the same walk through the pages.)"""

from __future__ import annotations

import datetime as dt
import re

import pytest

pytestmark = pytest.mark.browser
NAV = [("Access", "/access"), ("Waiting", "/waiting"), ("Outcomes", "/outcomes"), ("Equity explorer", "/equity"),
       ("Data quality", "/data-quality"), ("Definitions", "/definitions"), ("Overview", "/")]  # fmt: skip


def settle(page) -> None:
    """Wait until the page body is drawn, every graph has been plotted and no callback is in flight."""
    page.wait_for_selector("#page-body h1")
    page.wait_for_function(
        """() => document.querySelectorAll('.dash-graph').length ===
                 document.querySelectorAll('.dash-graph .js-plotly-plot').length
              && !document.querySelector('[data-dash-is-loading="true"]')"""
    )


def choose(page, control: str, option: str) -> None:
    page.click(f"#{control}")
    page.get_by_role("option", name=option, exact=True).click()


def titles(page) -> list[str]:
    return [t.text_content() for t in page.locator(".js-plotly-plot .gtitle").all()]


def open_page(page, name: str, path: str) -> None:
    """Follow a navigation link (a client-side route change that keeps the view's query string)."""
    page.get_by_role("link", name=name, exact=True).click()
    page.wait_for_function(f"() => location.pathname === '{path}'")
    settle(page)


def test_geography_and_group_change_the_charts(page, server):
    page.goto(server.url + "/access")
    settle(page)
    page.wait_for_selector(".js-plotly-plot .gtitle")
    before = titles(page)
    choose(page, "ctl-pcn", "Harbour PCN")
    page.wait_for_url(re.compile(r"pcn=U20002"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.gtitle')].some(t => t.textContent.includes('Harbour PCN'))"
    )
    assert page.locator("#ctl-place-value").text_content() == "Eastside"  # the drill-down filled the parent
    choose(page, "ctl-dim", "Ethnicity group")
    page.wait_for_url(re.compile(r"dim=ethnicity_group"))
    settle(page)
    choose(page, "ctl-group", "Asian")
    page.wait_for_url(re.compile(r"group=Asian"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.gtitle')].some(t => t.textContent.includes('Ethnicity group: Asian'))"
    )
    assert titles(page) != before
    assert page.problems == []


def test_a_copied_url_restores_the_view_and_back_forward_work(page, server, browser_context):
    page.goto(server.url + "/waiting?pcn=U10002&dim=age_band&group=65%2B&period=2026-08-31")
    settle(page)
    page.wait_for_selector(".js-plotly-plot .gtitle")
    shown = titles(page)
    assert any("St Christopher PCN" in t and "Age band: 65+" in t for t in shown)
    assert page.locator("#ctl-period-value").text_content() == "August 2026"
    copied = page.url

    other = browser_context.new_page()
    other.set_default_timeout(60_000)
    other.goto(copied)
    settle(other)
    other.wait_for_selector(".js-plotly-plot .gtitle")
    assert titles(other) == shown
    assert other.locator("#ctl-pcn-value").text_content() == "St Christopher PCN"
    other.close()

    choose(page, "ctl-period", "October 2026")
    page.wait_for_url(re.compile(r"period=2026-10-31"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.gtitle')].some(t => t.textContent.includes('Oct 2026'))"
    )
    page.go_back()
    page.wait_for_url(re.compile(r"period=2026-08-31"))
    page.wait_for_function("() => document.querySelector('#ctl-period-value').textContent === 'August 2026'")
    settle(page)
    assert titles(page) == shown
    page.go_forward()
    page.wait_for_url(re.compile(r"period=2026-10-31"))
    page.wait_for_function("() => document.querySelector('#ctl-period-value').textContent === 'October 2026'")
    assert page.problems == []


def test_a_build_published_mid_session_is_picked_up_without_failed_requests(page, server, fixtures_mod):
    page.goto(server.url + "/?pcn=U10001")
    settle(page)
    old = page.locator("#build-id").text_content()
    # keep both workers busy with chart downloads while the new build is published
    page.evaluate(
        """() => { window.__statuses = []; window.__timer = setInterval(() => {
             fetch('/download/trend.csv?ids=four_week_wait_pct&pcn=U10001').then(r => window.__statuses.push(r.status));
           }, 40); }"""
    )
    new = fixtures_mod.publish_fixture(
        server.warehouse, last_period=dt.date(2026, 11, 30), seed=9, built_at=dt.datetime(2026, 12, 1, 8, 0)
    )
    page.wait_for_timeout(800)
    statuses = page.evaluate("() => { clearInterval(window.__timer); return window.__statuses; }")
    assert new != old and len(statuses) > 5 and set(statuses) == {200}

    open_page(page, "Access", "/access")
    assert page.locator("#build-id").text_content() == new
    choose(page, "ctl-pcn", "St Christopher PCN")
    page.wait_for_url(re.compile(r"pcn=U10002"))
    # the new build's latest month is now the default, and the charts show it
    page.wait_for_function(
        "() => document.querySelector('#ctl-period-value').textContent === 'November 2026'"
    )
    settle(page)
    assert any("Nov 2026" in t for t in titles(page))
    assert page.problems == []
