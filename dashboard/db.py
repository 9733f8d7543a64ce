"""The dashboard's only door to DuckDB: a lazily opened, per-process, read-only connection to the
live build, reopened when the pipeline publishes a new one.

DuckDB allows many read-only processes on one file, so every gunicorn worker opens the live build
itself, on first use and never at import (so `--preload` forks no connection). Publishing switches
`<warehouse>/current.duckdb` to a new immutable file; each request reads the symlink once (a
`readlink`, no I/O on the database), and when its target changed the worker retires the old
connection and opens the new file. The resolved *file* is opened, not the symlink, so the build a
request reads and the build id it caches under can never disagree even if a publish lands between
the two. DuckDB caches a database instance per path inside a process, so a retired connection is
closed before the new one is used when nothing else holds it; with threaded workers a connection
still serving another request is closed by the last request that releases it. Each request gets
its own cursor (DuckDB connections are not shared across threads), held in `flask.g` so that one
request sees one build from its first query to its last.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
from flask import Flask, current_app, g

CURRENT = "current.duckdb"
_EXT = "cmh_warehouse"


class NoWarehouse(RuntimeError):
    """Nothing has been published yet (or the warehouse folder is wrong)."""


class _Conn:
    def __init__(self, target: Path, memory_limit: str):
        self.target = target
        self.con = duckdb.connect(
            str(target), read_only=True, config={"memory_limit": memory_limit, "threads": 2}
        )
        row = None
        with contextlib.suppress(duckdb.Error):
            row = self.con.execute("SELECT build_id FROM build_info LIMIT 1").fetchone()
        self.build_id = str(row[0]) if row else target.stem
        self.users = 0
        self.retired = False


@dataclass
class Snapshot:
    """One request's view of one build."""

    build_id: str
    cursor: duckdb.DuckDBPyConnection
    _conn: _Conn


class Warehouse:
    """The live build of one warehouse folder, for this process."""

    def __init__(self, directory: str | Path, memory_limit: str | None = None):
        self.directory = Path(directory)
        self.memory_limit = memory_limit or os.environ.get("CMH_DASHBOARD_DUCKDB_MEMORY", "1GB")
        self._lock = threading.Lock()
        self._conn: _Conn | None = None
        self.opens = 0  # how many builds this process has opened (tests read it)

    def live_target(self) -> Path:
        link = self.directory / CURRENT
        try:
            return Path(os.path.realpath(link, strict=True))
        except OSError:
            raise NoWarehouse(f"no published build at {link}") from None

    def acquire(self) -> Snapshot:
        target = self.live_target()
        with self._lock:
            if self._conn is None or self._conn.target != target:
                old, self._conn = self._conn, None
                if old is not None:
                    old.retired = True
                    if old.users == 0:
                        old.con.close()
                self._conn = _Conn(target, self.memory_limit)
                self.opens += 1
            conn = self._conn
            conn.users += 1
            return Snapshot(conn.build_id, conn.con.cursor(), conn)

    def release(self, snap: Snapshot) -> None:
        snap.cursor.close()
        with self._lock:
            snap._conn.users -= 1
            if snap._conn.retired and snap._conn.users == 0:
                snap._conn.con.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._conn.users == 0:
                self._conn.con.close()
            self._conn = None


def init_app(server: Flask, directory: str | Path) -> Warehouse:
    wh = Warehouse(directory)
    server.extensions[_EXT] = wh
    server.config["CMH_WAREHOUSE_DIR"] = str(directory)

    @server.teardown_appcontext
    def _release(_exc=None):
        snap = g.pop("cmh_snapshot", None)
        if snap is not None:
            wh.release(snap)

    return wh


def warehouse() -> Warehouse:
    return current_app.extensions[_EXT]


def snapshot() -> Snapshot:
    """This app context's snapshot of the live build (opened on first use, released at teardown)."""
    snap = g.get("cmh_snapshot")
    if snap is None:
        snap = g.cmh_snapshot = warehouse().acquire()
    return snap


def build_id() -> str:
    return snapshot().build_id
