"""Definitions: every indicator's definition, numerator, denominator, method, polarity and caveats from
the published `indicators` table, and the suppression rules of spec/03 in plain English."""

from __future__ import annotations

import dash
from dash import html

from dashboard.context import Context
from dashboard.layout import page

dash.register_page(__name__, path="/definitions", name="Definitions", title="Definitions", order=6)

POLARITY = {"high": "Higher is better", "low": "Lower is better", "none": "Neither: shown for context"}
SUPPRESSION_RULES = [
    "Any count below 5 (0 to 4) is shown as * — “fewer than 5 — suppressed to protect confidentiality”.",
    "Every other count is rounded to the nearest 5.",
    "A percentage, rate, ratio, median or mean is shown as * when its numerator or denominator is below 5; "
    "otherwise it is calculated from the unrounded counts. Percentages are shown to one decimal place. "
    "Its confidence interval is hidden whenever the value is.",
    "When exactly one figure in a set that adds up to a shown total is hidden (the groups of one "
    "characteristic, or the PCNs of a place or ICB), the next smallest is hidden too — “suppressed to "
    "prevent calculation of another suppressed figure” — so nobody can work it out by subtraction.",
    "Gaps between groups, the slope and relative indices of inequality, funnel limits and better/worse "
    "flags are worked out from unrounded figures but hidden when any figure they use is hidden.",
    "Suppression is applied once, when the data are published, so screens, downloads and the API always agree.",
]


def _text(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    return "; ".join(map(str, v)) if isinstance(v, list | tuple) or hasattr(v, "tolist") else str(v)


def body(ctx: Context) -> list:
    items = []
    for i, m in ctx.metas.items():
        caveats = m.get("caveats")
        caveats = (
            list(caveats)
            if caveats is not None and not isinstance(caveats, str)
            else [caveats]
            if caveats
            else []
        )
        items.append(
            html.Section(
                [
                    html.H3(m.get("title", i), id=f"def-{i}"),
                    html.Dl(
                        [
                            html.Dt("Id"),
                            html.Dd(html.Code(i)),
                            html.Dt("Definition"),
                            html.Dd(_text(m.get("definition"))),
                            html.Dt("Numerator"),
                            html.Dd(_text(m.get("numerator_definition"))),
                            html.Dt("Denominator"),
                            html.Dd(_text(m.get("denominator_definition"))),
                            html.Dt("Unit"),
                            html.Dd(_text(m.get("unit"))),
                            html.Dt("Method"),
                            html.Dd(_text(m.get("method"))),
                            html.Dt("Polarity"),
                            html.Dd(POLARITY.get(str(m.get("polarity")), _text(m.get("polarity")))),
                        ]
                    ),  # fmt: skip
                    html.H4("Caveats") if caveats else "",
                    html.Ul([html.Li(str(c)) for c in caveats]) if caveats else "",
                ],
                className="card definition",
            )
        )
    return [
        html.Section(
            [html.H2("How small numbers are protected"), html.Ol([html.Li(r) for r in SUPPRESSION_RULES])],
            className="card",
            id="suppression-rules",
        ),  # fmt: skip
        html.H2("Indicators"),
        *items,
    ]


def layout(**query):
    return page("Definitions", query, body, "What each figure means and how it is calculated.")
