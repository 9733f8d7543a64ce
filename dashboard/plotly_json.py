"""Building blocks of plotly figure JSON written as plain dicts: what `go.Figure` methods such as
add_hline would have added, and the conversions from pandas that the figure builders share.

figures.py builds every chart from these rather than through `go.Figure`, whose per-property
validation was most of a page's cold render time; tests/dashboard/test_figures.py loads the
results into `go.Figure` to check they are valid.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd


@functools.cache
def template() -> dict:
    """plotly's default template as JSON, which `go.Figure` would have embedded in every figure."""
    import plotly.graph_objects as go

    return go.Figure().to_plotly_json()["layout"]["template"]


def num(values) -> np.ndarray:
    return np.asarray(values, dtype=float)


def strs(values) -> list:
    return [str(v) for v in values]


def hline(y: float, line: dict, text: str | None = None, left: bool = False) -> tuple[dict, dict | None]:
    """A full-width horizontal line and its label, as plotly's add_hline would add them."""
    shape = {
        "type": "line",
        "xref": "x domain",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": y,
        "y1": y,
        "line": line,
    }
    note = None if text is None else {
        "text": text, "showarrow": False, "xref": "x domain", "x": 0 if left else 1,
        "xanchor": "left" if left else "right", "yref": "y", "y": y, "yanchor": "bottom",
    }  # fmt: skip
    return shape, note


def vline(x: float, line: dict, text: str) -> tuple[dict, dict]:
    """A full-height vertical line labelled at the top, as plotly's add_vline would add them."""
    shape = {
        "type": "line",
        "xref": "x",
        "x0": x,
        "x1": x,
        "yref": "y domain",
        "y0": 0,
        "y1": 1,
        "line": line,
    }
    note = {"text": text, "showarrow": False, "xref": "x", "x": x, "xanchor": "center",
            "yref": "y domain", "y": 1, "yanchor": "bottom"}  # fmt: skip
    return shape, note


def records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts of Python values. iterrows() builds a Series per row and to_dict("records")
    goes through itertuples; both were hot spots of a page render, this is one tolist() per column."""
    columns = [df[c].tolist() for c in df.columns]
    return [dict(zip(df.columns, row, strict=True)) for row in zip(*columns, strict=True)]


def months(periods: pd.Series, unique: bool = False) -> list[str]:
    """Month labels for a category axis: a month end plotted as a date would be ticked as the next month."""
    p = pd.to_datetime(pd.Series(periods))
    if unique:
        p = pd.Series(sorted(p.unique()))
    return [f"{d:%b %Y}" for d in p]


def rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
