"""Waiting: four-week and second-contact waits over time, the distribution of waits, and the waiting
list by wait band with the longest waits highlighted (spec/06 §3)."""

from __future__ import annotations

import dash

from dashboard.components import chart_card
from dashboard.context import Context
from dashboard.layout import page

dash.register_page(__name__, path="/waiting", name="Waiting", title="Waiting", order=2)


def body(ctx: Context) -> list:
    return [
        chart_card("trend", ctx, ("four_week_wait_pct", "wait_second_contact_28d_pct")),
        chart_card("area-bar", ctx, ("four_week_wait_pct",)),
        chart_card("trend", ctx, ("wait_second_contact_median_days", "wait_second_contact_p90_days")),
        chart_card("wait-bands", ctx, ("waiting_second_contact_count",)),
        chart_card("wait-bands", ctx, ("four_week_waiting_list_count",)),
    ]


def layout(**query):
    return page("Waiting", query, body, "How long people wait for care to start.")
