"""Data quality: the dq_* indicators by PCN and by provider, and the load report of the live build
(details for admins only; spec/06 §6)."""

from __future__ import annotations

import dash
from dash import html

from dashboard import components, queries
from dashboard.app import current_role
from dashboard.context import Context
from dashboard.layout import page

dash.register_page(__name__, path="/data-quality", name="Data quality", title="Data quality", order=5)


def _spine(ctx: Context, dq: tuple[str, ...], level: str, codes: tuple[str, ...] | None, label: str):
    df = queries.area_values(dq, ctx.period, level, codes)
    caption = f"Data quality by {label}, {ctx.month} (against the ICB at 95%)"
    return html.Section(
        [html.H2(caption), html.Div(components.spine_table(df, ctx, dq, caption), className="table-scroll")],
        className="card",
    )


def body(ctx: Context) -> list:
    dq = tuple(i for i, m in ctx.metas.items() if m.get("domain") == "data_quality" or i.startswith("dq_"))
    info = queries.build_info().iloc[0]
    sections = [
        _spine(ctx, dq, "pcn", ctx.children if ctx.children_level == "pcn" else None, "PCN"),
        _spine(ctx, dq, "provider", None, "provider"),
        html.Section(
            [
                html.H2("Rows in this build"),
                html.P(
                    f"{int(info['rows_loaded']):,} rows loaded, {int(info['rows_rejected']):,} rejected "
                    f"(kept for the data team), {int(info['rows_superseded']):,} superseded by a later submission."
                ),
            ],  # fmt: skip
            className="card",
        ),
    ]
    if current_role() == "admin":
        report = queries.load_report_summary()
        sections.append(
            html.Section(
                [
                    html.H2("Load report (admin)"),
                    html.Div(
                        components.data_table(report, "Load report by month and table", list(report.columns)),
                        className="table-scroll",
                    ),
                ],  # fmt: skip
                className="card",
            )
        )
    return sections


def layout(**query):
    return page("Data quality", query, body, "How complete and usable the submitted data are.")
