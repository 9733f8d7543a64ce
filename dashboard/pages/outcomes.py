"""Outcomes: PROM completion, ReQoL-10 reliable change, DIALOG and GBO, by PCN and over time (spec/06 §4)."""

from __future__ import annotations

import dash

from dashboard.components import chart_card
from dashboard.context import Context
from dashboard.layout import page

dash.register_page(__name__, path="/outcomes", name="Outcomes", title="Outcomes", order=3)

TRENDS = (
    ("prom_baseline_pct", "prom_paired_pct"),
    (
        "reqol10_reliable_improvement_pct",
        "reqol10_reliable_deterioration_pct",
        "reqol10_reliable_recovery_pct",
    ),
    ("dialog_sqol_mean_change",),
    ("gbo_reliable_improvement_pct", "dialog_item_reliable_improvement_pct"),
)


def body(ctx: Context) -> list:
    cards = [chart_card("trend", ctx, ids) for ids in TRENDS]
    outcome_ids = [i for i, m in ctx.metas.items() if m.get("domain") == "outcomes"]
    return cards + [chart_card("area-bar", ctx, (i,)) for i in outcome_ids]


def layout(**query):
    return page(
        "Outcomes", query, body, "Whether people's lives improve with care: outcome measures (PROMs)."
    )
