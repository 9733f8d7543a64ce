"""The append-only audit log (spec/05): logins, downloads, API calls, admin actions, denied requests.

It lives in the same SQLite file as the users (one file for the data team to back up). SQLite
triggers refuse every UPDATE and DELETE, so no code path of the service can rewrite history, and
each row carries the SHA-256 of the previous row's hash plus its own content: someone editing the
file by hand breaks the chain, which :meth:`AuditLog.verify` reports.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

COLUMNS = (
    "id",
    "at",
    "event",
    "outcome",
    "username",
    "role",
    "method",
    "path",
    "status",
    "ip",
    "build_id",
    "detail",
    "row_hash",
)

SCHEMA = """
create table if not exists audit_log (
    id integer primary key autoincrement,
    at text not null,
    event text not null,
    outcome text not null,
    username text,
    role text,
    method text,
    path text,
    status integer,
    ip text,
    build_id text,
    detail text,
    row_hash text not null
);
create index if not exists audit_log_at on audit_log(at);
create trigger if not exists audit_log_no_update before update on audit_log
begin select raise(abort, 'the audit log is append-only'); end;
create trigger if not exists audit_log_no_delete before delete on audit_log
begin select raise(abort, 'the audit log is append-only'); end;
"""

_GENESIS = "0" * 64


def _row_hash(prev: str, fields: tuple) -> str:
    payload = json.dumps([prev, *fields], separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class AuditLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con:
            con.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("pragma journal_mode=wal")
        return con

    def record(
        self,
        event: str,
        *,
        outcome: str = "ok",
        username: str | None = None,
        role: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        ip: str | None = None,
        build_id: str | None = None,
        detail: dict | None = None,
    ) -> None:
        at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        detail_json = json.dumps(detail, sort_keys=True, default=str) if detail else None
        fields = (at, event, outcome, username, role, method, path, status, ip, build_id, detail_json)
        with closing(self._connect()) as con:
            # IMMEDIATE takes the write lock before reading the last hash, so two workers
            # appending at once cannot both chain onto the same predecessor.
            con.execute("begin immediate")
            try:
                last = con.execute("select row_hash from audit_log order by id desc limit 1").fetchone()
                row_hash = _row_hash(last["row_hash"] if last else _GENESIS, fields)
                con.execute(
                    "insert into audit_log (at, event, outcome, username, role, method, path, status, ip,"
                    " build_id, detail, row_hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*fields, row_hash),
                )
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise

    def rows(
        self, *, limit: int | None = 500, event: str | None = None, username: str | None = None
    ) -> list[dict]:
        """Newest first, optionally filtered; `limit=None` for all rows."""
        sql = (
            "select * from audit_log where (? is null or event = ?) and (? is null or username = ?)"
            " order by id desc limit ?"
        )
        with closing(self._connect()) as con:
            cur = con.execute(sql, (event, event, username, username, -1 if limit is None else limit))
            return [dict(r) for r in cur]

    def verify(self) -> bool:
        """True when every row's hash matches its content and its predecessor's hash."""
        prev = _GENESIS
        with closing(self._connect()) as con:
            for r in con.execute("select * from audit_log order by id"):
                fields = tuple(r[c] for c in COLUMNS[1:-1])
                if _row_hash(prev, fields) != r["row_hash"]:
                    return False
                prev = r["row_hash"]
        return True


def _csv_safe(value: object) -> object:
    # A spreadsheet would run a cell starting with = + - @ as a formula (CSV injection); paths
    # and usernames in the log come from requests, so they are neutralised.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def iter_csv(rows: Iterable[dict]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_safe(row.get(c)) for c in COLUMNS])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()
