"""`serve()`: replace this process with gunicorn serving dashboard.wsgi:server (`cmh serve`).

gunicorn 27 would otherwise create a control socket under `~/.gunicorn` and use the system temp
folder for worker heartbeats; both are pointed at `var/run` so nothing is written to $HOME and
several instances (tests, a demo) never collide.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def gunicorn_argv(
    warehouse: str | Path, host: str, port: int, workers: int, run_dir: str | Path
) -> list[str]:
    run_dir = Path(run_dir)
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-tmp-dir", str(run_dir),
        "--no-control-socket",
        "--timeout", "60",
        "--access-logfile", "-",
        "--chdir", str(REPO),
        "dashboard.wsgi:server",
    ]  # fmt: skip


def serve(
    warehouse: str | Path = "var/warehouse", host: str = "127.0.0.1", port: int = 8050, workers: int = 2
):
    """Exec gunicorn; the warehouse folder reaches the workers through CMH_PIPELINE_WAREHOUSE."""
    run_dir = Path(os.environ.get("CMH_RUN_DIR", REPO / "var" / "run"))
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CMH_PIPELINE_WAREHOUSE": str(Path(warehouse).resolve())}
    env.setdefault("CMH_DASHBOARD_CACHE_DIR", str(REPO / "var" / "cache"))
    argv = gunicorn_argv(warehouse, host, port, workers, run_dir)
    os.execve(sys.executable, argv, env)
