"""The run history and the run lock: what ran, when, with what outcome — and never two at once.

The history lives in SQLite (`<warehouse>/runs.sqlite`, WAL mode), not in the DuckDB warehouse:
each build file is immutable once published, and DuckDB allows no reader while a process writes,
whereas SQLite in WAL mode lets the dashboard's admin page read the history while the scheduler
appends to it. Each write is one short transaction.

The lock is `fcntl.flock` on `<warehouse>/.run.lock`. The kernel drops it when the holding process
dies, however it dies, so a crashed or SIGKILLed run never leaves a lock to clear by hand (a
pid-file check would have to guess about reused pids). The holder writes its pid into the file
only so the refusal can say which process holds it. A run row left `running` by a process that
died is marked `failed` by the next run that takes the lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

DB_NAME = "runs.sqlite"
LOCK_NAME = ".run.lock"
STATUSES = ("running", "success", "failed", "skipped")
TRIGGERS = ("manual", "schedule")

_SCHEMA = f"""
create table if not exists runs (
    run_id integer primary key autoincrement,
    started_at text not null,   -- ISO 8601, UTC
    ended_at text,
    status text not null check (status in {STATUSES!r}),
    trigger text not null check (trigger in {TRIGGERS!r}),
    inbox_hash text,
    build_id text,
    rows_loaded integer,
    rows_rejected integer,
    rows_superseded integer,
    message text,
    pid integer
);
create index if not exists runs_status on runs (status, run_id);
"""


class RunInProgress(RuntimeError):
    """Another process holds the run lock."""

    def __init__(self, pid: int | None):
        self.pid = pid
        super().__init__(f"another run (pid {pid if pid is not None else 'unknown'}) is in progress")


@dataclass(frozen=True)
class RunStats:
    """What a pipeline run reports back; every field optional."""

    build_id: str | None = None
    rows_loaded: int | None = None
    rows_rejected: int | None = None
    rows_superseded: int | None = None
    message: str | None = None
    inbox_hash: str | None = None  # the hash of the inputs actually used, if the run computed it

    @classmethod
    def coerce(cls, value: object) -> RunStats:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in value.items() if k in names})
        raise TypeError(f"a run returned {type(value).__name__}; expected RunStats, a mapping or None")


@dataclass(frozen=True)
class Run:
    run_id: int
    started_at: str
    ended_at: str | None
    status: str
    trigger: str
    inbox_hash: str | None
    build_id: str | None
    rows_loaded: int | None
    rows_rejected: int | None
    rows_superseded: int | None
    message: str | None
    pid: int | None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLog:
    """Append and read run records in `<warehouse>/runs.sqlite`."""

    def __init__(self, warehouse_dir: str | Path):
        self.path = Path(warehouse_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("pragma journal_mode=wal")
            con.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:  # commits, or rolls back on error
                yield con
        finally:
            con.close()

    def start(self, trigger: str, inbox_hash: str | None = None) -> int:
        """Insert a `running` row; call while holding :func:`run_lock`."""
        with self._connect() as con:
            cur = con.execute(
                "insert into runs (started_at, status, trigger, inbox_hash, pid)"
                " values (?, 'running', ?, ?, ?)",
                (_now(), trigger, inbox_hash, os.getpid()),
            )
            return int(cur.lastrowid)

    def finish(
        self, run_id: int, status: str, result: object = None, *, message: str | None = None
    ) -> RunStats:
        stats = RunStats.coerce(result)
        with self._connect() as con:
            con.execute(
                """update runs set ended_at = ?, status = ?, build_id = ?, rows_loaded = ?,
                   rows_rejected = ?, rows_superseded = ?, message = ?,
                   inbox_hash = coalesce(?, inbox_hash)
                   where run_id = ?""",
                (
                    _now(),
                    status,
                    stats.build_id,
                    stats.rows_loaded,
                    stats.rows_rejected,
                    stats.rows_superseded,
                    message if message is not None else stats.message,
                    stats.inbox_hash,
                    run_id,
                ),
            )
        return stats

    def record(self, trigger: str, status: str, *, inbox_hash: str | None = None, message: str = "") -> int:
        """A run that ended as soon as it began (`skipped`, or `failed` before starting)."""
        now = _now()
        with self._connect() as con:
            cur = con.execute(
                "insert into runs (started_at, ended_at, status, trigger, inbox_hash, message, pid)"
                " values (?, ?, ?, ?, ?, ?, ?)",
                (now, now, status, trigger, inbox_hash, message, os.getpid()),
            )
            return int(cur.lastrowid)

    def mark_interrupted(self) -> int:
        """Mark `running` rows whose process has died as failed; returns how many."""
        with self._connect() as con:
            rows = con.execute("select run_id, pid from runs where status = 'running'").fetchall()
            dead = [rid for rid, pid in rows if pid is None or (pid != os.getpid() and not _alive(pid))]
            con.executemany(
                "update runs set status = 'failed', ended_at = ?,"
                " message = 'interrupted: the process ended without recording an outcome' where run_id = ?",
                [(_now(), rid) for rid in dead],
            )
        return len(dead)

    def last_successful(self) -> Run | None:
        runs = self._select("where status = 'success' order by run_id desc limit 1")
        return runs[0] if runs else None

    def get(self, run_id: int) -> Run | None:
        runs = self._select("where run_id = ?", (run_id,))
        return runs[0] if runs else None

    def recent(self, limit: int = 50) -> list[Run]:
        """The latest runs, newest first."""
        return self._select("order by run_id desc limit ?", (limit,))

    def _select(self, tail: str, params: tuple = ()) -> list[Run]:
        with self._connect() as con:
            rows = con.execute(f"select * from runs {tail}", params).fetchall()
        return [Run(*row) for row in rows]


def read_runs(warehouse_dir: str | Path, limit: int = 50) -> list[Run]:
    """The latest runs, newest first, opened read-only (for the dashboard); [] if none yet."""
    path = Path(warehouse_dir) / DB_NAME
    if not path.exists():
        return []
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("select * from runs order by run_id desc limit ?", (limit,)).fetchall()
    finally:
        con.close()
    return [Run(*row) for row in rows]


@contextlib.contextmanager
def run_lock(warehouse_dir: str | Path, *, wait: bool = False) -> Iterator[None]:
    """Hold the warehouse's run lock for the block; raise :class:`RunInProgress` if it is taken.

    With `wait=True`, block until the other run finishes instead.
    """
    path = Path(warehouse_dir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes (PEP 446)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise RunInProgress(int(text) if text.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            # The file is kept, not deleted: unlinking a flock file lets two processes lock two inodes.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
