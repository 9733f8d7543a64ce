"""The load_report table and the row accounting it proves: read = loaded + rejected + superseded.

Rows are collected in Python while the load runs and written at the end, so that a fatal error
(which rolls the load back) can still leave its one 'fatal' row behind. The final reconciliation
compares every file's counts with what actually landed in staging, reference and quarantine.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from pipelines.load_rows import Resolution
from pipelines.load_source import FatalLoadError

DDL = (
    'CREATE OR REPLACE TEMP TABLE load_report (month INTEGER, "table" VARCHAR, file VARCHAR, '
    "rows_read BIGINT, rows_loaded BIGINT, rows_rejected BIGINT, rows_superseded BIGINT, "
    "rows_out_of_scope BIGINT, status VARCHAR, message VARCHAR)",
    'CREATE OR REPLACE TEMP TABLE quarantine (month INTEGER, "table" VARCHAR, file VARCHAR, '
    "line_number BIGINT, reason VARCHAR, raw_record VARCHAR)",
)


class LoadAccountingError(RuntimeError):
    """Rows went missing or were counted twice: a bug in the loader, never a data problem."""


@dataclass
class LoadResult:
    months: list[int] = field(default_factory=list)  # UniqMonthIDs loaded, ascending
    files: int = 0  # input files read (absent optional files not counted)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_superseded: int = 0
    loaded_by_table: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # "file: message" of every warning row


class Report:
    """Collects load_report rows (written at the end, inside or after the load's transaction)."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.result = LoadResult()

    def add(self, month, table, rel, counts=(0, 0, 0, 0), status="ok", messages=()) -> None:
        read, loaded, rejected, superseded = counts
        if read != loaded + rejected + superseded:
            raise LoadAccountingError(f"{rel}: {read} read != {loaded} + {rejected} + {superseded}")
        message = "; ".join(messages) or None
        self.rows.append((month, table, rel, read, loaded, rejected, superseded, 0, status, message))
        r = self.result
        r.rows_read += read
        r.rows_loaded += loaded
        r.rows_rejected += rejected
        r.rows_superseded += superseded
        if status == "warning":
            r.warnings.append(f"{rel}: {message}")

    def fatal(self, month, table, rel, problem) -> FatalLoadError:
        self.add(month, table, rel, status="fatal", messages=[problem])
        return FatalLoadError(rel, problem)

    @contextmanager
    def guard(self, month, table):
        """Record a FatalLoadError raised inside as a 'fatal' load_report row, then let it through."""
        try:
            yield
        except FatalLoadError as e:
            if not self.rows or self.rows[-1][8] != "fatal":
                self.add(month, table, e.file, status="fatal", messages=[e.problem])
            raise

    def write(self, con, only_fatal: bool = False) -> None:
        rows = [r for r in self.rows if r[8] == "fatal"] if only_fatal else self.rows
        rows = sorted(rows, key=lambda r: (r[0] is None, r[0] or 0, r[2]))
        if rows:
            con.executemany("INSERT INTO load_report VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def messages(res: Resolution, bad: dict[str, int], counts, cols) -> tuple[str, list[str]]:
    """load_report status and message parts: anything that loses information is a warning."""
    read, _, rejected, superseded = counts
    warn, info = [], []
    if rejected:
        warn.append(f"{rejected} row(s) rejected to quarantine")
    for name, n in bad.items():
        warn.append(f"{n} invalid {name} value(s) loaded as NULL")
    if res.unexpected:
        warn.append(f"unexpected column(s) ignored: {', '.join(res.unexpected)}")
    if res.missing_optional:  # optional means it may be absent (spec 01): noted, not a warning
        info.append(f"optional column(s) absent, loaded as NULL: {', '.join(res.missing_optional)}")
    if superseded:
        info.append(f"{superseded} row(s) of superseded submissions")
    aliases = {c.name: c.aliases for c in cols}
    for name in sorted(res.via_alias):
        info.append(f"{name} read from older column name {'/'.join(aliases[name])}")
    if not read:
        info.append("no data rows")
    return ("warning" if warn else "ok"), warn + info


def check_accounting(con, landed: list[str]) -> None:
    """Reconcile load_report with what actually landed; `landed` are queries giving (file, rows)."""
    bad = con.execute(
        f"WITH landed(file, n) AS ({' UNION ALL '.join(landed)}), "
        "q AS (SELECT file, count(*) AS n FROM quarantine GROUP BY ALL) "
        "SELECT r.file FROM load_report r LEFT JOIN landed l USING (file) LEFT JOIN q USING (file) "
        "WHERE r.rows_read <> r.rows_loaded + r.rows_rejected + r.rows_superseded "
        "OR r.rows_loaded <> coalesce(l.n, 0) OR r.rows_rejected <> coalesce(q.n, 0) ORDER BY 1"
    ).fetchall()
    if bad:
        raise LoadAccountingError(f"load_report does not reconcile for: {', '.join(f for (f,) in bad)}")
