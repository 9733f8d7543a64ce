"""Access: access rate by PCN and over time, referral routes, DNA rate, contacts per person and
contact mode (spec/06 §2)."""

from __future__ import annotations

import dash

from dashboard.components import chart_card
from dashboard.context import Context
from dashboard.layout import page

dash.register_page(__name__, path="/access", name="Access", title="Access", order=1)

ROUTES = ("referral_route_gp_pct", "referral_route_self_pct", "referral_route_vcse_pct",
          "referral_route_emergency_justice_pct")  # fmt: skip
MODES = ("contact_mode_face_to_face_pct", "contact_mode_telephone_pct", "contact_mode_video_pct")


def body(ctx: Context) -> list:
    return [
        chart_card("area-bar", ctx, ("access_2plus_contacts",)),
        chart_card("trend", ctx, ("access_2plus_contacts",)),
        chart_card("trend", ctx, ROUTES),
        chart_card("area-bar", ctx, ("dna_rate_pct",)),
        chart_card("area-bar", ctx, ("contacts_per_person",)),
        chart_card("trend", ctx, MODES),
    ]


def layout(**query):
    return page("Access", query, body, "Who reaches community mental health care, and how.")
