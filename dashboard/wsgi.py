"""WSGI entry point for gunicorn: `gunicorn dashboard.wsgi:server`.

The warehouse folder comes from `CMH_PIPELINE_WAREHOUSE` (default `var/warehouse`); creating the
app opens nothing, so this is safe to import in gunicorn's master with `--preload`.
"""

from __future__ import annotations

import os

from dashboard.app import create_app

app = create_app(os.environ.get("CMH_PIPELINE_WAREHOUSE", "var/warehouse"))
server = app.server
