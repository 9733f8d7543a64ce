"""`create_app(warehouse_dir)`: the Dash multi-page app, its cache, its warehouse and its routes.

Everything a worker needs is wired here and nothing touches DuckDB at import or creation time: the
warehouse is opened lazily on the first request of each worker (db.py). Authentication comes from
dashboard.auth unless `CMH_AUTH=off` (tests and local development before auth is configured).
"""

from __future__ import annotations

import os
from pathlib import Path

import dash

from dashboard import callbacks, db, downloads, layout, page_cache
from dashboard.cache import init_cache

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parent


def create_app(
    warehouse_dir: str | Path, *, cache_dir: str | Path | None = None, cache_config: dict | None = None
):
    """A Dash app serving `<warehouse_dir>/current.duckdb` (its Flask server is `app.server`)."""
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PACKAGE / "pages"),
        assets_folder=str(REPO / "assets"),
        title="Community mental health dashboard",
        suppress_callback_exceptions=True,
        serve_locally=True,
        update_title=None,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = layout.shell
    server = app.server
    db.init_app(server, warehouse_dir)
    init_cache(
        server, cache_dir or os.environ.get("CMH_DASHBOARD_CACHE_DIR", REPO / "var" / "cache"), cache_config
    )
    downloads.register(server)
    from dashboard import api, extracts  # the read-only API and provider KPI extracts (spec/04)

    server.register_blueprint(api.bp)
    server.register_blueprint(extracts.bp)
    callbacks.register(app)
    page_cache.install(app)  # before init_auth, whose guard still runs first (it inserts itself at 0)
    if os.environ.get("CMH_AUTH", "on").lower() != "off":
        from dashboard.auth import init_auth

        init_auth(server)
    app.index_string = app.index_string.replace("<html>", '<html lang="en">')
    return app


def current_role() -> str:
    """The viewer's role; with authentication off (development, tests) the viewer is treated as admin."""
    if os.environ.get("CMH_AUTH", "on").lower() == "off":
        return "admin"
    from dashboard.auth import current_user

    user = current_user()
    return user.role if user else "anonymous"
