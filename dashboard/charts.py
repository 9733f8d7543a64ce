"""Every chart kind as a pair: the data it plots (one queries.py call) and the figure drawn from it.

The page cards and the `/download/<kind>.csv` route both go through `data()`, so the CSV a user
downloads holds exactly the rows the chart plotted (CONVENTIONS C12). `title()` writes the chart
title from the registry and the view (indicator, area, month, group) so each chart says what it
shows.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from _plotly_utils.utils import convert_to_base64

from dashboard import figures, queries
from dashboard.context import Context
from dashboard.state import DIMENSION_LABELS, REFERENCE_GROUP, group_label

KINDS = ("area-bar", "trend", "groups", "gap-trend", "slope", "funnel", "wait-bands", "spine")


def _group(ctx: Context) -> tuple[str, str]:
    s = ctx.state
    return (s.dim, s.group) if s.dim and s.group else ("all", "all")


def _group_suffix(ctx: Context) -> str:
    s = ctx.state
    return f" — {DIMENSION_LABELS[s.dim]}: {group_label(s.dim, s.group)}" if s.dim and s.group else ""


def equity_dimension(ctx: Context) -> str:
    return ctx.state.dim or "ethnicity_group"


def data(kind: str, ctx: Context, ids: tuple[str, ...]) -> pd.DataFrame:
    """The rows chart `kind` plots for `ids` in this view."""
    s, first = ctx.state, ids[0]
    if kind in ("area-bar", "funnel", "spine"):
        breakdown, value = _group(ctx)
        return queries.area_values(ids, ctx.period, ctx.children_level, ctx.children, breakdown, value)
    if kind == "trend":
        if s.dim and not s.group and len(ids) == 1:
            return queries.series(ids, ctx.level, ctx.code, ctx.trend_from, ctx.period, s.dim, None)
        breakdown, value = _group(ctx)
        return queries.series(ids, ctx.level, ctx.code, ctx.trend_from, ctx.period, breakdown, value)
    if kind == "groups":
        return queries.group_values(first, ctx.period, ctx.level, ctx.code, equity_dimension(ctx))
    if kind == "gap-trend":
        df = queries.inequality(first, ctx.level, ctx.code, equity_dimension(ctx), ctx.trend_from, ctx.period)
        return df[df["measure"] == "gap_abs"].reset_index(drop=True)
    if kind == "slope":
        groups = queries.group_values(first, ctx.period, ctx.level, ctx.code, "imd_quintile")
        ineq = queries.inequality(first, ctx.level, ctx.code, "imd_quintile", ctx.period, ctx.period)
        quint = groups[groups["breakdown"] == "imd_quintile"].assign(measure="value")
        return pd.concat([quint, ineq[ineq["measure"].isin(["sii", "rii"])]], ignore_index=True)
    if kind == "wait-bands":
        return queries.series(ids, ctx.level, ctx.code, ctx.trend_from, ctx.period, "wait_band", None)
    raise KeyError(kind)


def title(kind: str, ctx: Context, ids: tuple[str, ...]) -> str:
    meta = ctx.meta(ids[0])
    name = meta.get("title", ids[0])
    under = "provider" if ctx.children_level == "provider" else "PCN"
    span = f"{dt.date.fromisoformat(ctx.trend_from):%b %Y} to {dt.date.fromisoformat(ctx.period):%b %Y}"
    dim = DIMENSION_LABELS.get(equity_dimension(ctx), "")
    dim_text = dim[:1].lower() + dim[1:]  # "deprivation quintile (IMD)", keeping the acronym
    return {
        "area-bar": f"{name}: by {under}, {ctx.month}{_group_suffix(ctx)}",
        "trend": (f"{name}: {ctx.area_name}, {span}" if len(ids) == 1 else
                  f"{' and '.join(ctx.meta(i).get('short_title', i) for i in ids)}: {ctx.area_name}, {span}")
        + _group_suffix(ctx),
        "groups": f"{name} by {dim_text}: {ctx.area_name}, {ctx.month}",
        "gap-trend": f"Gap to the reference group by {dim_text}: {meta.get('short_title')}, {ctx.area_name}, {span}",
        "slope": f"{meta.get('short_title')} across deprivation quintiles (SII/RII): {ctx.area_name}, {ctx.month}",
        "funnel": f"Funnel plot of {under}s: {meta.get('short_title')}, {ctx.month}{_group_suffix(ctx)}",
        "wait-bands": f"{name} by wait band: {ctx.area_name}, {span}",
        "spine": f"{under}s compared with the ICB, {ctx.month}",
    }[kind]  # fmt: skip


def figure(kind: str, ctx: Context, ids: tuple[str, ...], df: pd.DataFrame) -> dict:
    meta, t = ctx.meta(ids[0]), title(kind, ctx, ids)
    dim = equity_dimension(ctx)
    if kind == "area-bar":
        return figures.area_bars(df, meta, ctx.names, t, highlight=ctx.code)
    if kind == "trend":
        series_col = (
            "breakdown_value" if ctx.state.dim and not ctx.state.group and len(ids) == 1 else "indicator_id"
        )
        return figures.trend(df, {i: ctx.meta(i) for i in ids}, series_col, t, ctx.state.dim)
    if kind == "groups":
        return figures.group_bars(df, meta, dim, REFERENCE_GROUP.get(dim), t)
    if kind == "gap-trend":
        return figures.gap_trend(df, meta, dim, t)
    if kind == "slope":
        quint = df[df["measure"] == "value"]
        return figures.slope_chart(quint, df[df["measure"] != "value"], meta, t)
    if kind == "funnel":
        return figures.funnel(df, meta, ctx.names, t)
    if kind == "wait-bands":
        return figures.wait_bands(df, meta, t)
    raise KeyError(kind)


def to_wire(fig: dict) -> dict:
    """`fig` as sent to the browser: numeric arrays as plotly's typed base64 arrays (compact, and NaN
    survives), as `go.Figure.to_plotly_json()` would have sent them. The shared template holds no
    arrays and is the biggest part of the dict, so it is set aside rather than walked."""
    template = fig["layout"].pop("template", None)
    convert_to_base64(fig)
    if template is not None:
        fig["layout"]["template"] = template
    return fig


def figure_json(kind: str, ctx: Context, ids: tuple[str, ...], df: pd.DataFrame) -> dict:
    return to_wire(figure(kind, ctx, ids, df))


# Columns of a download / table view, in order; those absent from a frame are skipped.
TABLE_COLUMNS = (
    "indicator_id", "period_end", "geography_level", "geography_code", "breakdown", "breakdown_value",
    "measure", "dimension", "group_value", "numerator", "denominator", "value", "lower_95", "upper_95",
    "lower_998", "upper_998", "method", "suppressed", "significance_95", "benchmark_value",
)  # fmt: skip


def table_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The plotted rows with the published columns only (the same frame on screen and in the CSV)."""
    present = [c for c in TABLE_COLUMNS if c in df.columns]
    filled = df[present].notna().any()  # one pass: a column that is all missing is left out
    out = df[[c for c in present if filled[c] or c in ("value", "suppressed")]].copy()
    if "period_end" in out.columns:
        out["period_end"] = pd.to_datetime(out["period_end"]).dt.strftime("%Y-%m-%d")
    return out
