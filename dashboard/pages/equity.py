"""Equity explorer: one indicator by one characteristic: groups against the overall value and the
reference group, the gap over time, SII/RII across deprivation quintiles, a funnel plot of PCNs and
the representation ratio, each beside the completeness of that characteristic (spec/06 §5)."""

from __future__ import annotations

import dash
import pandas as pd
from dash import dcc, html

from dashboard import figures, ids, queries
from dashboard.charts import equity_dimension
from dashboard.components import chart_card, completeness_note
from dashboard.context import Context
from dashboard.layout import page
from dashboard.state import DIMENSION_LABELS, REFERENCE_GROUP, group_label

dash.register_page(__name__, path="/equity", name="Equity explorer", title="Equity explorer", order=4)

DEFAULT_INDICATOR = "four_week_wait_pct"


def choices(ctx: Context) -> list[dict]:
    """Indicators published by group (breakdowns beyond `all`), in display order."""
    out = []
    for i, m in ctx.metas.items():
        breakdowns = m.get("breakdowns")
        if breakdowns is None or len([b for b in breakdowns if b not in ("all", "wait_band")]) > 0:
            out.append({"label": m.get("title", i), "value": i})
    return out


def inequality_summary(ctx: Context, ind: str) -> html.P:
    """SII and RII in words with their 95% intervals (the slope chart's numbers, for every reader)."""
    df = queries.inequality(ind, ctx.level, ctx.code, "imd_quintile", ctx.period, ctx.period)
    parts = []
    for measure, label in (("sii", "Slope index of inequality (SII)"), ("rii", "relative index (RII)")):
        row = df[df["measure"] == measure]
        if row.empty or pd.isna(row["value"].iloc[0]):
            reason = figures.reason(row["suppressed"].iloc[0]) if len(row) else "not published"
            parts.append(f"{label}: * ({reason})")
        else:
            r = row.iloc[0]
            interval = (
                f"95% interval {r['lower_95']:.2f} to {r['upper_95']:.2f}"
                if pd.notna(r["lower_95"]) and pd.notna(r["upper_95"])
                # RII: the most deprived end's fitted value may be zero or below within its uncertainty
                else "no 95% interval: the value at the most deprived end is too uncertain"
            )
            parts.append(f"{label}: {r['value']:.2f} ({interval})")
    return html.P("; ".join(parts) + ".", className="hint")


def body(ctx: Context) -> list:
    options = choices(ctx)
    valid = {o["value"] for o in options}
    chosen = ctx.state.param("ind")
    ind = (
        chosen
        if chosen in valid
        else (DEFAULT_INDICATOR if DEFAULT_INDICATOR in valid else options[0]["value"])
    )
    dim = equity_dimension(ctx)
    note = completeness_note(ctx, dim)
    ref = REFERENCE_GROUP.get(dim)
    picker = html.Div(
        [
            html.Label("Indicator", htmlFor=ids.dom_id(ids.url_param("ind")), id="equity-indicator-label"),
            dcc.Dropdown(id=ids.url_param("ind"), options=options, value=ind, clearable=False),
        ],
        className="control page-control",
    )
    explain = f"Characteristic: {DIMENSION_LABELS[dim]} (change it under “Group” above). " + (
        f"Reference group: {group_label(dim, ref)}. " if ref else "No reference group is defined for it. "
    )
    cards = [chart_card("groups", ctx, (ind,), note=note)]
    if ref:
        cards.append(chart_card("gap-trend", ctx, (ind,), note=note))
    slope_note = html.Div([completeness_note(ctx, "imd_quintile"), inequality_summary(ctx, ind)])
    cards.append(chart_card("slope", ctx, (ind,), note=slope_note))
    cards.append(chart_card("funnel", ctx, (ind,), note=note))
    cards.append(
        chart_card("groups", ctx, ("access_representation_ratio",), note=note, card_id="representation")
    )
    return [picker, html.P(explain, className="hint"), *cards]


def layout(**query):
    return page(
        "Equity explorer", query, body, "Differences between groups of people, and how sure we can be."
    )
