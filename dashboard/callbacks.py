"""The one callback that keeps the URL and the controls in step (URL -> controls, controls -> URL).

Dash forbids a cycle across two callbacks, so both directions are one callback: when the URL
changed (first load, back/forward, a pasted link) the controls are set from it and the URL is left
alone; when a control changed, the drill-down rules apply (a new ICB clears place and PCN, a new
characteristic clears the group), the URL is rewritten, and the pages router re-renders the page
from that URL. Pages therefore never read controls, only the URL, so every view is a URL.
`sync()` is plain Python so tests can call it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import dash
from dash import ALL, Input, Output, State, ctx, no_update

from dashboard import context, ids, queries
from dashboard.db import NoWarehouse
from dashboard.state import DIMENSIONS, ViewState, group_label

_RESETS = {"icb": ("place", "pcn"), "place": ("pcn",), "dim": ("group",)}


@dataclass
class SyncResult:
    search: str | None  # None: leave the URL as it is
    values: dict[str, object]  # control id -> value
    options: dict[str, list[dict]]  # control id -> options
    nav_search: str


def _month_label(iso: str) -> str:
    import datetime as dt

    return f"{dt.date.fromisoformat(iso):%B %Y}"


def apply_change(state: ViewState, trigger: object, values: dict[str, object]) -> ViewState:
    """The state after the user changed control `trigger` (a control id or a url-param id)."""
    if isinstance(trigger, dict) and trigger.get("type") == "url-param":
        return state.with_param(trigger["key"], values.get(f"param:{trigger['key']}") or None)
    field = ids.CONTROL_FIELDS.get(trigger)
    if field is None:
        return state
    new = replace(state, **{field: values.get(trigger) or None})
    return replace(new, **{f: None for f in _RESETS.get(field, ())})


def sync(trigger: object, search: str | None, values: dict[str, object]) -> SyncResult:
    """Controls and URL for one event; `values` maps control ids (and 'param:<key>') to values."""
    state = ViewState.from_search(search)
    from_url = trigger is None or trigger == ids.URL
    if not from_url:
        state = apply_change(state, trigger, values)
    try:
        c = context.build(state)
    except NoWarehouse:
        return SyncResult(None, {}, {}, state.to_search(include_page=False))
    s = c.state
    geo = queries.geographies()
    months = [f"{p:%Y-%m-%d}" for p in queries.periods()["period_end"]]

    def opts(level: str, parent: str | None = None) -> list[dict]:
        return [
            {"label": c.names.get(code, code), "value": code} for code in context.codes(geo, level, parent)
        ]

    options = {
        ids.PERIOD: [{"label": _month_label(m), "value": m} for m in months],
        ids.TREND_FROM: [{"label": _month_label(m), "value": m} for m in months if m <= c.period],
        ids.ICB: opts("icb"),
        ids.PLACE: opts("place", s.icb),
        ids.PCN: opts("pcn", s.place) if s.place else opts("pcn"),
        ids.PROVIDER: opts("provider"),
        ids.GROUP: [{"label": group_label(s.dim, g), "value": g} for g in DIMENSIONS.get(s.dim or "", ())],
    }
    control_values = {
        ids.PERIOD: c.period, ids.TREND_FROM: c.trend_from, ids.ICB: s.icb, ids.PLACE: s.place,
        ids.PCN: s.pcn, ids.PROVIDER: s.provider, ids.DIM: s.dim or "", ids.GROUP: s.group,
    }  # fmt: skip
    new_search = None
    if not from_url:
        written = s.to_search()
        new_search = written if written != (search or "") else None
    return SyncResult(new_search, control_values, options, s.to_search(include_page=False))


def register(app: dash.Dash) -> None:
    option_controls = (ids.PERIOD, ids.TREND_FROM, ids.ICB, ids.PLACE, ids.PCN, ids.PROVIDER, ids.GROUP)

    @app.callback(
        Output(ids.URL, "search"),
        [Output(c, "value") for c in ids.CONTROLS],
        [Output(c, "options") for c in option_controls],
        Output(ids.nav(ALL), "href"),
        Input(ids.URL, "search"),
        [Input(c, "value") for c in ids.CONTROLS],
        Input(ids.url_param(ALL), "value"),
        State(ids.nav(ALL), "id"),
    )
    def url_and_controls(search, *args):
        control_values, params, nav_ids = args[: len(ids.CONTROLS)], args[-2], args[-1]
        values = dict(zip(ids.CONTROLS, control_values, strict=True))
        for item, value in zip(ctx.inputs_list[-1], params, strict=False):
            values[f"param:{item['id']['key']}"] = value
        r = sync(ctx.triggered_id, search, values)
        hrefs = [n["page"] + r.nav_search for n in nav_ids]
        if not r.values:
            return no_update, *[no_update] * len(ids.CONTROLS), *[no_update] * len(option_controls), hrefs
        return (
            r.search if r.search is not None else no_update,
            *[r.values[c] for c in ids.CONTROLS],
            *[r.options[c] for c in option_controls],
            hrefs,
        )
