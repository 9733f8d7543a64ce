"""Pure figure builders: DataFrame (from queries.py) + registry metadata -> plotly figure dict. No I/O.

Conventions every chart follows (spec/06): a title saying what is shown, axis titles with the
registry's unit, 95% intervals as error bars or bands, suppressed points left as gaps with the
reason in the hover text (spec/03 wording), a colour-blind-safe palette (Okabe-Ito with NHS blue)
and never meaning by colour alone: significance is also a symbol and a word, series also differ
by marker shape.

Figures are built as plain plotly JSON dicts (`{"data": [...], "layout": {...}}`), not
`go.Figure` objects: plotly's object model validates every property on every assignment, which
made figure construction most of a page's cold render time (several hundred ms a page at `icb`
scale). dcc.Graph takes the dict as it is; the tests load each builder's output into `go.Figure`,
so an invalid property still fails a test rather than a page. Numeric arrays stay numpy arrays
(NaN for gaps); charts.py turns them into plotly's typed base64 arrays for the wire.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dashboard import plotly_json as pj
from dashboard.state import DIMENSIONS, group_label

NHS_BLUE = "#005EB8"
PALETTE = ("#005EB8", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#7A6A00")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "hexagon", "cross")
SIGNIFICANCE = {  # word, symbol, colour (text on white >= 4.5:1)
    "better": ("Better", "▲", "#005EB8"),
    "worse": ("Worse", "▼", "#B23C00"),
    "higher": ("Higher", "▲", "#005EB8"),
    "lower": ("Lower", "▼", "#B23C00"),
    "similar": ("Similar", "●", "#425563"),
}
SUPPRESSION_REASON = {
    "primary": "fewer than 5 — suppressed to protect confidentiality",
    "secondary": "suppressed to prevent calculation of another suppressed figure",
}
Z95, Z998 = 1.959964, 3.090232


def axis_title(meta: dict) -> str:
    unit = meta.get("unit") or ""
    return (
        f"{meta.get('short_title') or meta.get('title')} ({unit})" if unit else str(meta.get("short_title"))
    )


def fmt(value: object, unit: str | None) -> str:
    """A published value for text: percentages to 1 dp, counts whole, others to 2 significant places."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "*"
    v = float(value)
    if unit == "%":
        return f"{v:.1f}%"
    if unit == "count":
        return f"{v:,.0f}"
    if unit in ("days", "per 10,000"):
        return f"{v:,.1f}"
    return f"{v:,.2f}"


def significance_text(sig: object) -> str:
    word, symbol, _ = SIGNIFICANCE.get(str(sig), ("Not compared", "–", "#425563"))
    return f"{symbol} {word}"


def reason(suppressed: object) -> str:
    return SUPPRESSION_REASON.get(str(suppressed), "not available")


TITLE_WIDTH = 95


def _wrap(title: str) -> str:
    """Break a long chart title once, at the last ', ' that fits, else ': ' (SVG titles do not wrap)."""
    if len(title) <= TITLE_WIDTH:
        return title
    cut = title.rfind(", ", 0, TITLE_WIDTH)
    cut = cut if cut > 0 else title.rfind(": ", 0, TITLE_WIDTH)
    return title if cut <= 0 else f"{title[: cut + 1]}<br>{title[cut + 2 :]}"


def _figure(data: list[dict], title: str, x_title: str, y_title: str, height: int = 420, **extra) -> dict:
    axis = {"showline": True, "linecolor": "#425563", "gridcolor": "#E8EDEE", "automargin": True}
    layout = {
        "template": pj.template(),
        "title": {"text": _wrap(title), "x": 0, "xanchor": "left", "font": {"size": 17}},
        "font": {"family": "Frutiger, Arial, sans-serif", "color": "#212B32", "size": 13},
        "colorway": list(PALETTE),
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "height": height,
        "margin": {"l": 90, "r": 20, "t": 60 if len(title) <= TITLE_WIDTH else 84, "b": 50},
        "legend": {"orientation": "h", "y": -0.18},
        "hoverlabel": {"font": {"family": "Arial"}},
        "xaxis": {**axis, "title": {"text": x_title}},
        "yaxis": {**axis, "title": {"text": y_title}, "zeroline": False},
        **{k: v for k, v in extra.items() if v is not None and not (isinstance(v, list) and not v)},
    }
    return {"data": data, "layout": layout}


def _err(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    v = df["value"].to_numpy(dtype=float)
    return df["upper_95"].to_numpy(dtype=float) - v, v - df["lower_95"].to_numpy(dtype=float)


def _hover(row: dict, unit: str, label: str) -> str:
    if pd.notna(row.get("suppressed")):
        return f"{label}: * ({reason(row['suppressed'])})"
    ci = f"95% interval {fmt(row['lower_95'], unit)} to {fmt(row['upper_95'], unit)}"
    return f"{label}: {fmt(row['value'], unit)}<br>{ci}" + (
        f"<br>{significance_text(row['significance_95'])}" if pd.notna(row.get("significance_95")) else ""
    )


def area_bars(df: pd.DataFrame, meta: dict, names: dict[str, str], title: str, highlight: str | None = None):
    """Horizontal bars of areas, sorted, with 95% error bars, the benchmark line and significance words."""
    unit = meta.get("unit", "")
    d = df.assign(name=df["geography_code"].map(lambda c: names.get(c, c)))
    d = d.sort_values("value", ascending=True, na_position="first")
    shown, hidden = d[d["value"].notna()], d[d["value"].isna()]
    hi, lo = _err(shown)
    sig = list(shown["significance_95"].astype(object))
    codes = list(shown["geography_code"])
    data = [{
        "type": "bar", "y": pj.strs(shown["name"]), "x": pj.num(shown["value"]), "orientation": "h",
        "error_x": {"type": "data", "array": hi, "arrayminus": lo, "color": "#212B32", "thickness": 1.2},
        "marker": {
            "color": [SIGNIFICANCE.get(str(s), ("", "", "#768692"))[2] for s in sig],
            "line": {"color": ["#FFB81C" if c == highlight else "white" for c in codes],
                     "width": [3 if c == highlight else 0 for c in codes]},
        },
        "text": [significance_text(s) for s in sig], "textposition": "inside", "insidetextanchor": "start",
        "textfont": {"color": "white"}, "hovertext": [_hover(r, unit, r["name"]) for r in pj.records(shown)],
        "hoverinfo": "text", "name": meta.get("short_title", ""), "showlegend": False,
    }]  # fmt: skip
    if len(hidden):
        data.append({
            "type": "scatter", "y": pj.strs(hidden["name"]), "x": [0] * len(hidden), "mode": "text",
            "text": ["* suppressed"] * len(hidden), "textposition": "middle right",
            "hovertext": [_hover(r, unit, r["name"]) for r in pj.records(hidden)], "hoverinfo": "text",
            "showlegend": False, "name": "suppressed",
        })  # fmt: skip
    shapes, notes = [], []
    bench = df["benchmark_value"].dropna()
    if len(bench):
        shape, note = pj.vline(
            float(bench.iloc[0]),
            {"dash": "dash", "color": "#212B32"},
            f"Benchmark {fmt(bench.iloc[0], unit)}",
        )
        shapes, notes = [shape], [note]
    return _figure(
        data, title, axis_title(meta), "", height=max(320, 60 + 38 * len(d)),
        shapes=shapes, annotations=notes,
    )  # fmt: skip


def trend(
    df: pd.DataFrame, metas: dict[str, dict], series_col: str, title: str, dimension: str | None = None
) -> dict:
    """Lines over months with 95% bands; one series per indicator or per group; gaps where suppressed."""
    data, notes = [], []
    first_meta = metas[df["indicator_id"].iloc[0]] if len(df) else next(iter(metas.values()), {})
    unit = first_meta.get("unit", "")
    for i, (key, s) in enumerate(df.groupby(series_col, sort=False)):
        s = s.sort_values("period_end")
        meta = metas.get(s["indicator_id"].iloc[0], first_meta)
        label = (
            meta.get("short_title", key) if series_col == "indicator_id" else group_label(dimension, str(key))
        )
        colour, symbol = PALETTE[i % len(PALETTE)], SYMBOLS[i % len(SYMBOLS)]
        band = s[s["lower_95"].notna()]
        if len(band):
            months = pj.months(band["period_end"])
            data.append({
                "type": "scatter", "x": months + months[::-1],
                "y": np.concatenate([pj.num(band["upper_95"]), pj.num(band["lower_95"])[::-1]]),
                "fill": "toself", "fillcolor": pj.rgba(colour, 0.15), "line": {"width": 0}, "hoverinfo": "skip",
                "showlegend": False, "name": f"{label} 95% interval",
            })  # fmt: skip
        rows = pj.records(s)
        data.append({
            "type": "scatter", "x": pj.months(s["period_end"]), "y": pj.num(s["value"]), "mode": "lines+markers",
            "name": str(label), "connectgaps": False, "line": {"color": colour, "width": 2.5},
            "marker": {"symbol": symbol, "size": 8, "color": colour},
            "hovertext": [_hover(r, unit, f"{label}, {r['period_end']:%b %Y}") for r in rows], "hoverinfo": "text",
        })  # fmt: skip
        notes += [
            {"x": f"{r['period_end']:%b %Y}", "y": 0, "yref": "paper", "yanchor": "bottom", "text": "*", "showarrow": False,
             "hovertext": f"{label}, {r['period_end']:%b %Y}: {reason(r['suppressed'])}", "font": {"size": 16}}
            for r in rows if pd.notna(r["suppressed"])
        ]  # fmt: skip
    units = {m.get("unit") for m in metas.values()}
    y_title = axis_title(first_meta) if len(metas) == 1 or len(units) > 1 else UNIT_TITLE.get(unit, unit)
    fig = _figure(data, title, "Month", y_title, annotations=notes)
    fig["layout"]["xaxis"].update(
        type="category", categoryorder="array", categoryarray=pj.months(df["period_end"], unique=True)
    )
    return fig


UNIT_TITLE = {"%": "Percentage (%)", "days": "Days", "count": "Count", "per 10,000": "Rate per 10,000"}


def group_bars(df: pd.DataFrame, meta: dict, dimension: str, reference: str | None, title: str) -> dict:
    """Each group's value with 95% intervals, against the overall line; the reference group labelled."""
    unit = meta.get("unit", "")
    order = {g: i for i, g in enumerate(DIMENSIONS.get(dimension, ()))}
    groups = df[df["breakdown"] == dimension].sort_values(
        "breakdown_value", key=lambda s: s.map(order).fillna(99)
    )
    overall = df.loc[df["breakdown"] == "all", "value"]
    labels = [
        group_label(dimension, g) + (" (reference)" if g == reference else "")
        for g in groups["breakdown_value"]
    ]
    hi, lo = _err(groups)
    sig = list(groups["significance_95"].astype(object))
    values = pj.num(groups["value"])
    data = [{
        "type": "bar", "x": labels, "y": values,
        "error_y": {"type": "data", "array": hi, "arrayminus": lo, "color": "#212B32", "thickness": 1.2},
        "marker": {"color": [SIGNIFICANCE.get(str(s), ("", "", "#768692"))[2] for s in sig],
                   "pattern": {"shape": ["/" if g == reference else "" for g in groups["breakdown_value"]]}},
        "text": [significance_text(s) if pd.notna(v) else "* suppressed" for s, v in zip(sig, values, strict=True)],
        "textposition": "outside",
        "hovertext": [_hover(r, unit, lab) for lab, r in zip(labels, pj.records(groups), strict=True)],
        "hoverinfo": "text", "showlegend": False,
    }]  # fmt: skip
    shapes, notes = [], []
    if len(overall) and pd.notna(overall.iloc[0]):
        shape, note = pj.hline(
            float(overall.iloc[0]), {"dash": "dash", "color": "#212B32"},
            f"Overall {fmt(overall.iloc[0], unit)}", left=True,
        )  # fmt: skip
        shapes, notes = [shape], [note]
    return _figure(data, title, "", axis_title(meta), shapes=shapes, annotations=notes)


def gap_trend(df: pd.DataFrame, meta: dict, dimension: str, title: str) -> dict:
    """Absolute gap to the reference group over months, one line per group, with 95% bands."""
    gaps = df[df["measure"] == "gap_abs"].rename(columns={"group_value": "breakdown_value"})
    gaps = gaps.assign(significance_95=None)
    fig = trend(gaps, {meta.get("indicator_id", ""): meta}, "breakdown_value", title, dimension)
    shape, _ = pj.hline(0, {"color": "#212B32", "width": 1})
    fig["layout"]["shapes"] = [shape]
    unit = meta.get("unit", "")
    fig["layout"]["yaxis"]["title"] = {
        "text": f"Gap to reference group ({unit})" if unit else "Gap to reference group"
    }
    return fig


QUINTILE_RANK = {"1": 0.1, "2": 0.3, "3": 0.5, "4": 0.7, "5": 0.9}


def slope_chart(groups: pd.DataFrame, ineq: pd.DataFrame, meta: dict, title: str) -> dict:
    """Quintile values at their relative rank with 95% bars, and the SII line through them.

    A quintile's rank is the share of the denominator before it plus half its own, as in the SII fit
    (pipelines/statistics.py weights quintiles by their denominators), so points and line share one
    scale; equal shares (0.1 … 0.9) when a denominator is not published."""
    unit = meta.get("unit", "")
    q = groups[(groups["breakdown"] == "imd_quintile") & groups["breakdown_value"].isin(list(QUINTILE_RANK))]
    q = q.assign(rank=q["breakdown_value"].map(QUINTILE_RANK)).sort_values("rank")
    den = q["denominator"] if "denominator" in q else pd.Series(dtype=float)
    weighted = len(q) == len(QUINTILE_RANK) and bool(den.notna().all()) and bool((den > 0).all())
    if weighted:
        share = den.astype(float) / float(den.sum())
        q = q.assign(rank=(share.cumsum() - share / 2).round(6).to_numpy())
    hi, lo = _err(q)
    data = [{
        "type": "scatter", "x": pj.num(q["rank"]), "y": pj.num(q["value"]), "mode": "markers+text",
        "name": "Quintile value", "error_y": {"type": "data", "array": hi, "arrayminus": lo, "color": "#212B32"},
        "marker": {"size": 11, "color": NHS_BLUE, "symbol": "circle"},
        "text": ["" if pd.notna(v) else "*" for v in q["value"]], "textposition": "top center",
        "hovertext": [_hover(r, unit, group_label("imd_quintile", r["breakdown_value"])) for r in pj.records(q)],
        "hoverinfo": "text",
    }]  # fmt: skip
    sii = ineq.loc[ineq["measure"] == "sii", "value"].dropna()
    rii = ineq.loc[ineq["measure"] == "rii", "value"].dropna()
    y0, words = None, ""
    if len(sii) and len(rii) and float(rii.iloc[-1]) != 1:
        s, r = float(sii.iloc[-1]), float(rii.iloc[-1])
        y0 = s / (r - 1)  # RII = (Y0 + SII) / Y0, Y0 = fitted value at the most deprived end
        words = f"SII {s:+.2f} {unit}; RII {r:.2f}"
    elif len(sii) and len(q) == len(QUINTILE_RANK) and q["value"].notna().all():
        # No RII (the fitted value at the most deprived end is not above zero, or SII = 0): the
        # weighted fit passes through the weighted mean value at the weighted mean rank, which is 1/2.
        s = float(sii.iloc[-1])
        w = q["denominator"].astype(float) if weighted else None
        y0 = float(np.average(q["value"].astype(float), weights=w)) - s / 2
        words = f"SII {s:+.2f} {unit}; no RII (the fitted value at the most deprived end is not above zero)"
    if y0 is not None:
        data.append({
            "type": "scatter", "x": [0, 1], "y": [y0, y0 + s], "mode": "lines", "name": f"Slope index (SII) {s:+.1f}",
            "line": {"dash": "dash", "color": "#D55E00"}, "hovertext": words, "hoverinfo": "text",
        })  # fmt: skip
    how = "share of the denominator" if weighted else "equal shares assumed"
    fig = _figure(data, title, f"Deprivation quintile (relative rank, {how})", axis_title(meta))
    fig["layout"]["xaxis"].update(
        tickvals=[float(x) for x in q["rank"]] if weighted else list(QUINTILE_RANK.values()), range=[0, 1],
        ticktext=["1 most deprived", "2", "3", "4", "5 least deprived"],
    )  # fmt: skip
    return fig


def funnel_limits(pooled: float, n: np.ndarray, unit: str, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Control limits around the pooled value for each denominator n: Wilson for %, Poisson for rates."""
    n = np.asarray(n, dtype=float)
    if unit == "%":
        p = pooled / 100
        centre, half = 2 * n * p + z**2, z * np.sqrt(z**2 + 4 * n * p * (1 - p))
        return 100 * (centre - half) / (2 * (n + z**2)), 100 * (centre + half) / (2 * (n + z**2))
    # Exact Poisson limits: chi2.ppf(q, 2k) / 2 is gammaincinv(k, q). scipy.special rather than
    # scipy.stats, which would add ~65 MiB to every gunicorn worker (spec/07: <= 300 MiB each).
    from scipy.special import gammaincinv

    mult = 10_000 if unit == "per 10,000" else 1
    expected = pooled / mult * n
    alpha = 2 * (1 - _norm_cdf(z))
    lo = np.where(expected > 0, gammaincinv(np.maximum(expected, 1e-300), alpha / 2), 0)
    return lo / n * mult, gammaincinv(expected + 1, 1 - alpha / 2) / n * mult


def _norm_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def funnel(df: pd.DataFrame, meta: dict, names: dict[str, str], title: str) -> dict:
    """Areas' value against their denominator with 95% and 99.8% limits around the pooled value."""
    unit = meta.get("unit", "")
    d = df[df["value"].notna() & (df["denominator"] > 0)]
    data, shapes, notes = [], [], []
    if len(d):
        pooled = (
            100 * d["numerator"].sum() / d["denominator"].sum() if unit == "%" else
            (d["value"] * d["denominator"]).sum() / d["denominator"].sum()
        )  # fmt: skip
        n = np.linspace(max(1.0, d["denominator"].min() * 0.5), d["denominator"].max() * 1.2, 80)
        for z, dash, label in ((Z95, "dash", "95% limits"), (Z998, "dot", "99.8% limits")):
            lo, hi = funnel_limits(pooled, n, unit, z)
            for y, show in ((lo, True), (hi, False)):
                data.append({
                    "type": "scatter", "x": n, "y": pj.num(y), "mode": "lines",
                    "line": {"dash": dash, "color": "#425563", "width": 1.5}, "name": label,
                    "showlegend": show, "legendgroup": label, "hoverinfo": "skip",
                })  # fmt: skip
        shape, note = pj.hline(float(pooled), {"color": "#212B32"}, f"Pooled {fmt(pooled, unit)}")
        shapes, notes = [shape], [note]
        lo95, hi95 = funnel_limits(pooled, d["denominator"].to_numpy(), unit, Z95)
        outside = np.where(d["value"] > hi95, "above", np.where(d["value"] < lo95, "below", "within"))
        symbol = {"above": "triangle-up", "below": "triangle-down", "within": "circle"}
        data.append({
            "type": "scatter", "x": pj.num(d["denominator"]), "y": pj.num(d["value"]), "mode": "markers+text",
            "name": "Areas", "text": [names.get(c, c) for c in d["geography_code"]], "textposition": "top center",
            "marker": {"size": 11, "color": NHS_BLUE, "symbol": [symbol[o] for o in outside]},
            "hovertext": [f"{names.get(r['geography_code'], r['geography_code'])}: {fmt(r['value'], unit)} "
                          f"(n = {r['denominator']:,.0f}); {o} the 95% limits" for r, o in zip(pj.records(d), outside, strict=True)],
            "hoverinfo": "text",
        })  # fmt: skip
    return _figure(
        data, title, "Denominator (people, rounded to 5)", axis_title(meta),
        shapes=shapes, annotations=notes,
    )  # fmt: skip


WAIT_BANDS = ("0-4 weeks", "4-18 weeks", "18-52 weeks", "52+ weeks")


def wait_bands(df: pd.DataFrame, meta: dict, title: str) -> dict:
    """Stacked monthly counts by wait band; the longest waits (52+ weeks) highlighted by colour and hatching."""
    colours = ("#56B4E9", "#005EB8", "#E69F00", "#B23C00")
    data = []
    for band, colour in zip(WAIT_BANDS, colours, strict=True):
        s = df[df["breakdown_value"] == band].sort_values("period_end")
        longest = band == "52+ weeks"
        data.append({
            "type": "bar", "x": pj.months(s["period_end"]), "y": pj.num(s["value"]),
            "name": band + (" (longest waits)" if longest else ""),
            "marker": {"color": colour, "pattern": {"shape": "x" if longest else ""}},
            "hovertext": [_hover(r, "count", f"{band}, {r['period_end']:%b %Y}") for r in pj.records(s)],
            "hoverinfo": "text",
        })  # fmt: skip
    fig = _figure(data, title, "Month", "Referrals waiting (count)", barmode="stack")
    fig["layout"]["xaxis"].update(
        type="category", categoryorder="array", categoryarray=pj.months(df["period_end"], unique=True)
    )
    return fig


def sparkline(df: pd.DataFrame) -> dict:
    """A tiny trend for a headline tile; the tile's text carries the numbers."""
    s = df.sort_values("period_end")
    hidden = {"visible": False}
    return {
        "data": [{"type": "scatter", "x": [f"{d:%Y-%m-%d}" for d in s["period_end"]], "y": pj.num(s["value"]),
                  "mode": "lines", "line": {"color": NHS_BLUE, "width": 2}}],
        "layout": {"template": pj.template(), "height": 60, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
                   "showlegend": False, "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
                   "xaxis": hidden, "yaxis": dict(hidden)},
    }  # fmt: skip


def spine(df: pd.DataFrame, metas: dict[str, dict], names: dict[str, str]) -> pd.DataFrame:
    """The PCN x indicator table model: one row per area, per indicator a value text and significance."""
    rows: dict[str, dict] = {}
    for r in pj.records(df.sort_values("geography_code", kind="stable")):
        code = r["geography_code"]
        row = rows.setdefault(code, {"geography_code": code, "area": names.get(code, code)})
        unit = metas.get(r["indicator_id"], {}).get("unit")
        row[r["indicator_id"]] = fmt(r["value"], unit)
        row[f"{r['indicator_id']}__sig"] = r["significance_95"] if pd.notna(r["significance_95"]) else (
            "suppressed" if pd.notna(r["suppressed"]) else None)  # fmt: skip
    return pd.DataFrame(list(rows.values()))
