"""Component ids shared by the app shell, the pages and the tests (one place, no typos)."""

import json

URL = "url"
PERIOD = "ctl-period"
TREND_FROM = "ctl-from"
ICB = "ctl-icb"
PLACE = "ctl-place"
PCN = "ctl-pcn"
PROVIDER = "ctl-provider"
DIM = "ctl-dim"
GROUP = "ctl-group"
CONTROLS = (PERIOD, TREND_FROM, ICB, PLACE, PCN, PROVIDER, DIM, GROUP)
# the ViewState field each control writes
CONTROL_FIELDS = dict(
    zip(CONTROLS, ("period", "trend_from", "icb", "place", "pcn", "provider", "dim", "group"), strict=True)
)
PAGE_CONTENT = "page-body"


def url_param(key: str) -> dict:
    """A page-level control whose value is kept in the query string under `key`."""
    return {"type": "url-param", "key": key}


def dom_id(component_id: dict) -> str:
    """The DOM id Dash gives a dict id (keys sorted, compact JSON), e.g. for a <label for=...>."""
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


def nav(page: str) -> dict:
    return {"type": "nav", "page": page}
