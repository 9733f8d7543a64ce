"""Resolve a URL's ViewState against the live build: which month, which area, which areas beneath it.

Pages, the control callback and the download routes all turn a ViewState into the same Context, so
a chart on screen and its CSV download are always computed for the same period and areas. Codes
that the build does not know are dropped (a stale shared URL falls back to the whole ICB rather
than erroring), and drill-down parents are filled in from the `geography` lookup when published.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pandas as pd

from dashboard import queries
from dashboard.state import ViewState


@dataclass(frozen=True)
class Context:
    state: ViewState  # resolved: known codes only, parents filled in
    period: str  # ISO month end shown
    trend_from: str  # first month end of trend charts
    level: str  # level of the area in view
    code: str  # code of the area in view
    area_name: str
    children_level: str  # level of the areas compared in bar charts, spine tables and funnels
    children: tuple[str, ...]
    names: dict[str, str]
    metas: dict[str, dict]

    @property
    def month(self) -> str:
        return f"{dt.date.fromisoformat(self.period):%B %Y}"

    def meta(self, indicator_id: str) -> dict:
        return self.metas.get(
            indicator_id, {"indicator_id": indicator_id, "short_title": indicator_id, "unit": ""}
        )


def metas() -> dict[str, dict]:
    return {r["indicator_id"]: r for r in queries.indicator_meta().to_dict("records")}


def _parent(geo: pd.DataFrame, level: str, code: str | None) -> str | None:
    row = geo[(geo["geography_level"] == level) & (geo["geography_code"] == code)]
    return None if row.empty or pd.isna(row["parent_code"].iloc[0]) else str(row["parent_code"].iloc[0])


def codes(geo: pd.DataFrame, level: str, parent: str | None = None) -> tuple[str, ...]:
    """Codes of one level, under `parent` when given and the lookup knows parents."""
    rows = geo[geo["geography_level"] == level]
    if parent is not None and rows["parent_code"].notna().any():
        rows = rows[rows["parent_code"] == parent]
    return tuple(rows["geography_code"])


def resolve(state: ViewState, geo: pd.DataFrame, months: list[str]) -> ViewState:
    """Drop unknown values and fill parents: a PCN implies its place, a place its ICB."""
    known = {lvl: set(codes(geo, lvl)) for lvl in ("icb", "place", "pcn", "provider")}
    s = replace(
        state,
        **{lvl: getattr(state, lvl) if getattr(state, lvl) in known[lvl] else None for lvl in known},
        period=state.period if state.period in months else None,
        trend_from=state.trend_from if state.trend_from in months else None,
    )
    if s.pcn and not s.place:
        parent = _parent(geo, "pcn", s.pcn)
        s = replace(s, place=parent if parent in known["place"] else None)
    if s.place and not s.icb:
        s = replace(s, icb=_parent(geo, "place", s.place))
    if s.pcn and not s.icb:
        s = replace(s, icb=_parent(geo, "pcn", s.pcn))
    if not s.icb and known["icb"]:
        s = replace(s, icb=sorted(known["icb"])[0])
    return s


def build(state: ViewState) -> Context:
    """The Context of `state` for the live build (raises db.NoWarehouse if nothing is published)."""
    geo = queries.geographies()
    months = [f"{p:%Y-%m-%d}" for p in queries.periods()["period_end"]]
    s = resolve(state, geo, months)
    period = s.period or (months[0] if months else dt.date.today().isoformat())
    later = [m for m in months if m <= period]
    trend_from = s.trend_from if s.trend_from and s.trend_from <= period else (later[:13] or [period])[-1]
    level, code = s.geography
    code = code or ""
    if level == "provider":
        children_level, children = "provider", codes(geo, "provider")
    elif level == "icb":
        places = codes(geo, "place", code)
        pcns = tuple(c for p in places for c in codes(geo, "pcn", p)) + codes(geo, "pcn", code)
        children_level, children = "pcn", pcns or codes(geo, "pcn")
    else:
        children_level, children = "pcn", codes(geo, "pcn", s.place) or codes(geo, "pcn")
    names = dict(zip(geo["geography_code"], geo["geography_name"].fillna(geo["geography_code"]), strict=True))
    return Context(
        state=s, period=period, trend_from=trend_from, level=level, code=code,
        area_name=names.get(code, code), children_level=children_level, children=tuple(children),
        names=names, metas=metas(),
    )  # fmt: skip
