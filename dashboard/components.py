"""Building blocks shared by the pages: chart cards (chart + table view + CSV link), the "data as at"
banner, completeness notes, headline tiles and the spine table.

A chart card never draws anything its download would not contain: both come from charts.data().
The table view is a native <details> element, so it works with the keyboard and screen readers and
needs no callback.
"""

from __future__ import annotations

import datetime as dt
import os
from html import escape
from urllib.parse import urlencode

import pandas as pd
from dash import dcc, html

from dashboard import charts, figures, queries
from dashboard import plotly_json as pj
from dashboard.context import Context
from dashboard.state import COMPLETENESS_INDICATOR, DIMENSION_LABELS

GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
CAUTION_BELOW = 80.0


def download_href(kind: str, ctx: Context, ids: tuple[str, ...]) -> str:
    return f"/download/{kind}.csv?" + urlencode({"ids": ",".join(ids), **ctx.state.query()})


def table_html(df: pd.DataFrame, caption: str, columns: list[str] | None = None) -> str:
    """An accessible HTML table of the plotted rows: caption, column headers with scope, '*' with reason.
    `columns` shows a table that is not indicator rows (e.g. the load report) as it is."""
    t = charts.table_frame(df) if columns is None else df
    cols = [c for c in t.columns if c in VIEW_COLUMNS] if columns is None else [c for c in columns if c in t]
    head = "".join(f'<th scope="col">{escape(c.replace("_", " "))}</th>' for c in cols)
    # Formatted column by column (one Python list per column), not row by row: a page draws
    # thousands of cells and per-row pandas access was most of a warm render.
    cells = [[f"<td>{escape(_cell(c, v))}</td>" for v in t[c].tolist()] for c in cols]
    rows = (
        "".join("<tr>" + "".join(r) + "</tr>" for r in zip(*cells, strict=True))
        if cols
        else "<tr></tr>" * len(t)
    )
    return (
        f'<table class="data-table"><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def data_table(df: pd.DataFrame, caption: str, columns: list[str] | None = None) -> dcc.Markdown:
    """The table as one component holding escaped HTML: Dash's renderer slows badly with thousands of
    html.Td components (every new component is checked against the pattern-matching callbacks)."""
    return dcc.Markdown(table_html(df, caption, columns), dangerously_allow_html=True, className="table-html")


# The table view shows what the chart plots; the CSV download carries every published column.
VIEW_COLUMNS = (
    "indicator_id", "period_end", "geography_code", "breakdown_value", "measure", "group_value", "numerator",
    "denominator", "value", "lower_95", "upper_95", "suppressed", "significance_95",
)  # fmt: skip
_NUMERIC = {
    "value",
    "numerator",
    "denominator",
    "lower_95",
    "upper_95",
    "lower_998",
    "upper_998",
    "benchmark_value",
}


def _cell(column: str, v) -> str:
    missing = v is None or v is pd.NA or (isinstance(v, float) and v != v)
    if column in ("numerator", "denominator"):
        return "*" if missing else f"{v:,.0f}"
    if column in _NUMERIC:  # one decimal place as on screen (spec/03); small ratios keep two
        return "*" if missing else f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.2f}"
    if column == "suppressed" and not missing:
        return f"{v}: {figures.reason(v)}"
    return "" if missing else str(v)


def chart_card(
    kind: str, ctx: Context, ids: tuple[str, ...], note=None, card_id: str | None = None
) -> html.Section:
    """One chart with its hidden heading, optional note, table view toggle and CSV download."""
    df = charts.data(kind, ctx, ids)
    title = charts.title(kind, ctx, ids)
    cid = card_id or f"{kind}-{'-'.join(ids)}".replace("_", "-")
    body = (
        dcc.Graph(
            id=f"graph-{cid}",
            figure=charts.figure_json(kind, ctx, ids, df),
            config=GRAPH_CONFIG,
            className="chart",
        )  # fmt: skip
        if len(df)
        else html.P("No published figures for this view.", className="empty")
    )
    return html.Section(
        [
            html.H2(title, className="visually-hidden"),
            note or "",
            body,
            html.Details([html.Summary("Show as table"), data_table(df, title)], className="table-view"),
            html.A(
                "Download CSV of this chart",
                href=download_href(kind, ctx, ids),
                className="download",
                **{"aria-label": f"Download CSV of this chart: {title}"},
            ),  # fmt: skip
        ],
        className="card",
        id=f"card-{cid}",
    )


def freshness_days() -> int:
    try:
        return int(os.environ.get("CMH_DASHBOARD_FRESHNESS_DAYS", "45"))
    except ValueError:
        return 45


def _built_at() -> dt.datetime:
    return pd.Timestamp(queries.build_info()["built_at"].iloc[0]).to_pydatetime().replace(tzinfo=None)


def staleness(now: dt.datetime | None = None) -> tuple[int, int] | None:
    """(age in days, limit) when the live build is older than the freshness limit; else None."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    age, limit = (now - _built_at()).days, freshness_days()
    return (age, limit) if age > limit else None


def banner(now: dt.datetime | None = None) -> html.Div:
    """'Data as at': build id, period covered, built_at; a warning when older than the freshness limit."""
    info = queries.build_info().iloc[0]
    built = _built_at()
    stale = staleness(now)
    parts = [
        html.Strong("Data as at: "),
        f"{pd.Timestamp(info['first_period']):%B %Y} to {pd.Timestamp(info['last_period']):%B %Y}; ",
        f"built {built:%d %B %Y %H:%M} UTC; build ",
        html.Code(str(info["build_id"]), id="build-id"),
    ]
    warning = (
        html.P(
            [
                html.Strong("Warning: "),
                f"this data is {stale[0]} days old, older than the {stale[1]}-day freshness limit.",
            ],
            className="stale-warning",
            role="alert",
        )  # fmt: skip
        if stale
        else None
    )
    return html.Div([html.P(parts), warning], className="banner", id="data-banner")


def completeness_note(ctx: Context, dimension: str) -> html.Div:
    """'Ethnicity not known for 14% of people in X' and a caution flag below 80% known (spec/06)."""
    ind = COMPLETENESS_INDICATOR.get(dimension)
    label = DIMENSION_LABELS.get(dimension, dimension)
    level, code = (ctx.level, ctx.code) if ctx.level != "provider" else ("provider", ctx.code)
    df = queries.series((ind,), level, code, ctx.period, ctx.period) if ind else pd.DataFrame()
    if df.empty or pd.isna(df["value"].iloc[0]):
        return html.Div(
            [html.Strong("Completeness: "), f"{label}: completeness not published for {ctx.area_name}."],
            className="completeness unknown",
        )
    known = float(df["value"].iloc[0])
    text = f"{label} not known for {100 - known:.0f}% of people in {ctx.area_name} ({known:.1f}% known)."
    caution = known < CAUTION_BELOW
    return html.Div(
        [html.Strong("Treat with caution: " if caution else "Completeness: "), text],
        className="completeness caution" if caution else "completeness",
    )


def tile(meta: dict, s: pd.DataFrame, ctx: Context) -> html.Div:
    """Headline tile: latest value, 95% interval, change on 12 months earlier, sparkline, vs ICB."""
    unit = meta.get("unit")
    s = s.sort_values("period_end")
    latest = s[s["period_end"] == pd.Timestamp(ctx.period)]
    row = latest.iloc[0] if len(latest) else None
    year_ago = s[
        s["period_end"] == pd.Timestamp(ctx.period) - pd.DateOffset(months=12) + pd.offsets.MonthEnd(0)
    ]
    value = figures.fmt(row["value"], unit) if row is not None else "*"
    interval = (
        f"95% interval {figures.fmt(row['lower_95'], unit)} to {figures.fmt(row['upper_95'], unit)}"
        if row is not None and pd.notna(row["value"]) and pd.notna(row["lower_95"]) else
        (figures.reason(row["suppressed"]) if row is not None and pd.notna(row["suppressed"]) else "no interval")
    )  # fmt: skip
    change = "Change on 12 months earlier: not available"
    if row is not None and len(year_ago) and pd.notna(row["value"]) and pd.notna(year_ago["value"].iloc[0]):
        diff = float(row["value"]) - float(year_ago["value"].iloc[0])
        change = f"Change on 12 months earlier: {'+' if diff >= 0 else '−'}{figures.fmt(abs(diff), unit)}"
    sig = row["significance_95"] if row is not None else None
    compare = (
        f"{figures.significance_text(sig)} than the ICB" if pd.notna(sig) and ctx.level != "icb" else
        "ICB figure (the benchmark)" if ctx.level == "icb" else "Not compared with the ICB"
    )  # fmt: skip
    word = str(sig) if pd.notna(sig) else "none"
    return html.Div(
        [
            html.H3(meta.get("short_title"), className="tile-title"),
            html.P(value, className="tile-value"),
            html.P(interval, className="tile-interval"),
            html.P(change, className="tile-change"),
            html.Div(
                dcc.Graph(figure=charts.to_wire(figures.sparkline(s)), config={"staticPlot": True}),
                className="sparkline",
                **{"aria-hidden": "true"},
            )
            if len(s)
            else "",  # fmt: skip
            html.P(compare, className=f"tile-sig sig-{word}"),
        ],
        className="tile",
    )


def spine_table(df: pd.DataFrame, ctx: Context, ids: tuple[str, ...], caption: str) -> html.Table:
    """Areas x indicators, each cell coloured by significance and carrying the word and symbol too."""
    model = figures.spine(df, ctx.metas, ctx.names)
    head = html.Tr([html.Th("Area", scope="col")] + [
        html.Th(f"{ctx.meta(i).get('short_title')} ({ctx.meta(i).get('unit')})", scope="col") for i in ids
    ])  # fmt: skip
    rows = []
    for r in pj.records(model):
        cells = [html.Th(r["area"], scope="row")]
        for i in ids:
            sig = r.get(f"{i}__sig")
            sig = None if sig is None or (isinstance(sig, float) and pd.isna(sig)) else str(sig)
            label = "suppressed" if sig == "suppressed" else figures.significance_text(sig) if sig else ""
            cells.append(
                html.Td([html.Span(r.get(i, "*")), html.Br(), html.Small(label)], className=f"sig-{sig}")
            )
        rows.append(html.Tr(cells))
    return html.Table([html.Caption(caption), html.Thead(head), html.Tbody(rows)], className="spine")
