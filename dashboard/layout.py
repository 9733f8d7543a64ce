"""The app shell (header, navigation, global controls, page container) and the frame of every page.

The global controls live in the shell, outside the page container, so they keep keyboard focus
while the page below re-renders; their values always come from, and go to, the URL (callbacks.py).
`page()` gives each page the same frame: an h1, the "data as at" banner and a friendly message
instead of a traceback when nothing has been published yet.
"""

from __future__ import annotations

from collections.abc import Callable

import dash
from dash import dcc, html

from dashboard import components, context, ids
from dashboard.db import NoWarehouse
from dashboard.state import DIMENSION_LABELS, ViewState


def page(
    title: str, query: dict, body: Callable[[context.Context], list], intro: str | None = None
) -> html.Div:
    """A page's layout for a URL: h1, banner, then `body(ctx)`; or why there is nothing to show."""
    try:
        ctx = context.build(ViewState.from_query(query))
        content = [components.banner(), *body(ctx)]
    except NoWarehouse:
        content = [
            html.P(
                "No data has been published yet. Run the pipeline, then reload this page.", className="empty"
            )
        ]
    return html.Div(
        [html.H1(title), html.P(intro, className="lede") if intro else "", *content], id=ids.PAGE_CONTENT
    )


def _control(label: str, cid: str, **kw) -> html.Div:
    return html.Div(
        [html.Label(label, htmlFor=cid, id=f"{cid}-label"), dcc.Dropdown(id=cid, **kw)],
        className="control",
    )


def controls() -> html.Div:
    dims = [{"label": "None", "value": ""}] + [{"label": v, "value": k} for k, v in DIMENSION_LABELS.items()]
    return html.Div(
        [
            html.Fieldset(
                [
                    html.Legend("Period"),
                    _control("Month", ids.PERIOD, clearable=False),
                    _control("Trends from", ids.TREND_FROM, clearable=False),
                ]
            ),  # fmt: skip
            html.Fieldset(
                [
                    html.Legend("Area (drill down ICB → place → PCN, or pick a provider)"),
                    _control("ICB", ids.ICB, clearable=False),
                    _control("Place", ids.PLACE, placeholder="All places"),
                    _control("PCN", ids.PCN, placeholder="All PCNs"),
                    _control("Provider", ids.PROVIDER, placeholder="No provider (area view)"),
                ]
            ),  # fmt: skip
            html.Fieldset(
                [
                    html.Legend("Group"),
                    _control("Characteristic", ids.DIM, options=dims, value="", clearable=False),
                    _control("Group within it", ids.GROUP, placeholder="All groups"),
                ]
            ),  # fmt: skip
        ],
        className="controls",
        id="global-controls",
        role="region",
        **{"aria-label": "View settings (kept in the page address)"},
    )


def shell() -> html.Div:
    pages = [p for p in dash.page_registry.values() if not p.get("hidden")]
    nav = html.Nav(
        html.Ul([html.Li(dcc.Link(p["name"], href=p["path"], id=ids.nav(p["path"]))) for p in pages]),
        className="nav", **{"aria-label": "Dashboard pages"},
    )  # fmt: skip
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            html.A("Skip to main content", href="#main", className="skip-link"),
            html.Header(
                html.Div(
                    [
                        html.Span("NHS", className="nhs-logo"),
                        html.Span(
                            "Community mental health: outcomes and inequalities", className="service-name"
                        ),
                    ],
                    className="header-inner",
                ),  # fmt: skip
                className="header",
            ),
            nav,
            html.Div(controls(), className="controls-wrap"),
            html.Main(dash.page_container, id="main", tabIndex="-1"),
            html.Footer(
                html.P("Synthetic data only. Figures are suppressed and rounded to protect confidentiality."),
                className="footer",
            ),  # fmt: skip
        ]
    )
