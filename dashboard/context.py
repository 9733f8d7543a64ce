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
from dashboard.cache import memoize
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


@memoize(per_process=True)
def metas() -> dict[str, dict]:
    """Registry rows by indicator id (shared by every request of this worker: never modified)."""
    return {r["indicator_id"]: r for r in queries.indicator_meta().to_dict("records")}


@memoize(per_process=True)
def area_names() -> dict[str, str]:
    geo = queries.geographies()
    return dict(zip(geo["geography_code"], geo["geography_name"].fillna(geo["geography_code"]), strict=True))


# (geographies frame, its rows by level as (code, parent) pairs). The frame is one object per build
# and worker (queries.geographies is kept per process), so the index is built once per build:
# filtering the frame with pandas for every drop-down and parent lookup cost ~50 ms a request.
_INDEX: list = [None, {}]


def _by_level(geo: pd.DataFrame) -> dict[str, list[tuple[str, str | None]]]:
    frame, index = _INDEX
    if frame is not geo:
        index = {}
        for level, code, parent in zip(
            geo["geography_level"].tolist(), geo["geography_code"].tolist(), geo["parent_code"].tolist(),
            strict=True,
        ):  # fmt: skip
            index.setdefault(level, []).append((code, None if pd.isna(parent) else str(parent)))
        _INDEX[:] = [geo, index]
    return index


def _parent(geo: pd.DataFrame, level: str, code: str | None) -> str | None:
    return next((p for c, p in _by_level(geo).get(level, ()) if c == code), None)


def codes(geo: pd.DataFrame, level: str, parent: str | None = None) -> tuple[str, ...]:
    """Codes of one level, under `parent` when given and the lookup knows parents."""
    rows = _by_level(geo).get(level, [])
    if parent is not None and any(p is not None for _, p in rows):
        rows = [r for r in rows if r[1] == parent]
    return tuple(c for c, _ in rows)


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
    names = area_names()
    return Context(
        state=s, period=period, trend_from=trend_from, level=level, code=code,
        area_name=names.get(code, code), children_level=children_level, children=tuple(children),
        names=names, metas=metas(),
    )  # fmt: skip
