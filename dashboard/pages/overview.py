"""Overview (board view): headline tiles and the PCN x headline-indicator spine table (spec/06 §1)."""

from __future__ import annotations

import dash
import pandas as pd
from dash import html

from dashboard import components, queries
from dashboard.context import Context
from dashboard.layout import page

dash.register_page(__name__, path="/", name="Overview", title="Overview", order=0)


def headline_ids(ctx: Context) -> tuple[str, ...]:
    return tuple(i for i, m in ctx.metas.items() if m.get("headline"))


def body(ctx: Context) -> list:
    ids = headline_ids(ctx)
    start = (pd.Timestamp(ctx.period) - pd.DateOffset(months=12) + pd.offsets.MonthEnd(0)).strftime(
        "%Y-%m-%d"
    )
    s = queries.series(ids, ctx.level, ctx.code, start, ctx.period)
    tiles = [components.tile(ctx.meta(i), s[s["indicator_id"] == i], ctx) for i in ids]
    spine = queries.area_values(ids, ctx.period, ctx.children_level, ctx.children)
    under = "Providers" if ctx.children_level == "provider" else "PCNs"
    caption = f"{under} × headline indicators, {ctx.month}: significance against the ICB at 95%"
    return [
        html.Section(
            [
                html.H2(f"Headline indicators: {ctx.area_name}, {ctx.month}"),
                html.Div(tiles, className="tiles"),
            ],
            className="card",
        ),
        html.Section(
            [
                html.H2(f"{under} compared with the ICB"),
                html.P(
                    "▲ better, ▼ worse, ● similar to the ICB (95% intervals); * suppressed.", className="hint"
                ),
                html.Div(components.spine_table(spine, ctx, ids, caption), className="table-scroll"),
                html.A(
                    "Download CSV of this table",
                    className="download",
                    href=components.download_href("spine", ctx, ids),
                ),  # fmt: skip
            ],
            className="card",
            id="card-spine",
        ),
    ]


def layout(**query):
    return page(
        "Overview", query, body, "How the ICB's community mental health services are doing this month."
    )
