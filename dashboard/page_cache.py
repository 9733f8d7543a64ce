"""Rendered-page cache: the pages router's whole JSON response, shared by every worker.

Every change of page, period, area or group re-runs Dash's pages router callback, which rebuilds
the page: its queries, figures, tables and component tree, then Dash serialises it all (≈ 50-250
KB). With the query results already cached that still cost 50-200 ms a page, so the response
itself is cached: a repeat view is one cache read. The cached bytes are Dash's own response,
stored after Dash produced it, so a hit is byte-for-byte what a miss would have sent.

The key holds everything a page's output depends on, and nothing a client could use to reach
someone else's output:
- the live build id (builds are immutable, so a publish simply misses: no stale page after a
  publish, as for the query cache);
- the page path and the URL state in its canonical form (state.py: unknown or malformed
  parameters are dropped exactly as the page itself drops them);
- the viewer's access scope (role, ICB, provider), resolved on the server from the session by
  dashboard.auth, never from the request body: a provider user is never served a page rendered
  for another provider or for an admin (the data-quality page shows admins the load report);
- whether the build is older than the freshness limit, and then by how many days, because the
  "data as at" banner says so (components.staleness).

Only the router callback is cached, only for registered page paths and only 200 responses. The
lookup runs as a `before_request` hook after the authentication guard (which always runs first:
dashboard/auth/guard.py), so anonymous or CSRF-less requests are refused before the cache is read.
"""

from __future__ import annotations

import os

import dash
from flask import Flask, Response, g, request

from dashboard import components, db
from dashboard.cache import cache, cache_key
from dashboard.state import ViewState

CONTENT, LOCATION = "_pages_content", "_pages_location"  # ids of Dash's pages router (dash.dash._ID_*)
HEADER = "X-Page-Cache"


def scope() -> str | None:
    """Who the page is rendered for, as far as its output can differ; None: do not cache."""
    if os.environ.get("CMH_AUTH", "on").lower() == "off":
        return "auth-off"  # the viewer is treated as admin (app.current_role)
    from dashboard.auth import current_user

    user = current_user()
    return None if user is None else f"{user.role}|{user.icb_code}|{user.provider_code or '-'}"


def page_key(build_id: str, path: str, search: str | None, viewer: str, stale: tuple | None) -> str:
    state = ViewState.from_search(search).to_search()
    return cache_key("page", build_id, (path, state, viewer, stale), {})


def router_payload(path: str, search: str = "") -> dict:
    """The body Dash's renderer posts when the URL changes: what :func:`router_request` recognises
    (the tests and benchmarks/bench_dashboard.py post it as a browser would)."""
    return {
        "output": f"..{CONTENT}.children..._pages_store.data..",
        "outputs": [{"id": CONTENT, "property": "children"}, {"id": "_pages_store", "property": "data"}],
        "inputs": [
            {"id": LOCATION, "property": "pathname", "value": path},
            {"id": LOCATION, "property": "search", "value": search},
        ],
        "changedPropIds": [f"{LOCATION}.pathname"],
        "state": [],
    }


def router_request(body: object) -> tuple[str, str | None] | None:
    """(pathname, search) when `body` is a call of the pages router and nothing else; else None."""
    if not isinstance(body, dict) or body.get("state"):
        return None
    outputs = body.get("outputs")
    if not isinstance(outputs, list) or {"id": CONTENT, "property": "children"} not in outputs:
        return None
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(
        isinstance(i, dict) and i.get("id") == LOCATION for i in inputs
    ):
        return None
    values = {i.get("property"): i.get("value") for i in inputs}
    path, search = values.get("pathname"), values.get("search")
    if not isinstance(path, str) or not (search is None or isinstance(search, str)):
        return None
    return path, search


def _page_paths() -> set[str]:
    return {p["path"] for p in dash.page_registry.values()}


def install(app: dash.Dash) -> None:
    server: Flask = app.server
    endpoint = app.config.routes_pathname_prefix + "_dash-update-component"

    @server.before_request
    def serve_cached_page():
        if request.method != "POST" or request.path != endpoint:
            return None
        call = router_request(request.get_json(silent=True))
        viewer = scope()
        if call is None or viewer is None or call[0] not in _page_paths():
            return None
        try:
            key = page_key(db.build_id(), call[0], call[1], viewer, components.staleness())
        except db.NoWarehouse:
            return None
        hit = cache.get(key)
        if hit is not None:
            return Response(hit, content_type="application/json", headers={HEADER: "hit"})
        g.cmh_page_key = key
        return None

    @server.after_request
    def store_page(response: Response) -> Response:
        key = g.pop("cmh_page_key", None)
        if key is not None and response.status_code == 200 and not response.direct_passthrough:
            cache.set(key, response.get_data())
            response.headers[HEADER] = "miss"
        return response
