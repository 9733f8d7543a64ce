"""Load and validate: the inbox of monthly MHSDS-style extracts becomes typed staging tables.

This is the pipeline's first stage and its accounting boundary. Every input row ends up in exactly
one place — `stg_<table>` (loaded), `quarantine` (rejected, with a reason) or the superseded count
(an older submission of the same provider-month) — and `load_report` says how many went where for
every file, reconciled before the load commits, so nothing is lost or double-counted (spec 07).

How: all fatal checks that need only file names and headers run over the whole inbox first, so a
broken drop fails in milliseconds. Then, table by table, the months' files are scanned together
by one INSERT that types every value with TRY_CAST, decides each row's fate and writes it once to
`load_<table>` (in the `work` database: the pipeline's scratch file, which becomes the next
incremental run's cache); `stg_<table>` is the view of its loaded rows. (Large CSV files, at
national scale, are instead loaded one per scan, as many side by side as DuckDB has threads:
_insert_files.) Counts, duplicate keys and the quarantine are small aggregates over load_<table>.
Each batch of files is committed once written: a single transaction would keep every numbered CSV
batch (an uncompressed TEMP table, dropped once appended) until the end, 23 GB of spill for a
national inbox. A fatal error rolls back the batch under way and empties every table the load
made, so a failed load still leaves nothing loaded (and the pipeline discards its scratch file
anyway).

Decisions the spec leaves open (for the README):
- A zero-byte file has no header; a header-only file has no rows. Either is fatal for a required
  table (MHS000Header, MHS001MPI, MHS101Referral); otherwise it loads nothing (zero bytes is a
  'warning', header-only is 'ok').
- If every row of a file has a UniqMonthID other than its folder's, the file is fatal (it is in the
  wrong folder); if only some rows do, those rows are rejected with the reason.
- The latest submission of a provider-month is the highest UniqSubmissionID in that month's
  MHS000Header. Rows of lower submissions are superseded (even if they have errors: the provider
  has replaced them); rows of a submission or provider the header does not declare are rejected.
- Duplicate keys (Table.key within a file and submission): the first line is loaded, later lines
  are rejected; their raw_record is the typed row.
- An optional field that cannot be parsed, or is impossible (age over 125, a negative duration, a
  date outside 1900-2099), is loaded as NULL and counted in the load_report message; only required
  fields reject a row (spec 01).
- Absent optional columns load as NULL (noted in the message, status stays 'ok'); unexpected
  columns are ignored with status 'warning'. Column names match case-insensitively.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import load_mhs, load_reference, load_report
from pipelines.contract import REQUIRED_TABLES, TABLES, Table, uniq_month_id
from pipelines.load_report import LoadResult, Report, messages
from pipelines.load_rows import Resolution, known_names, resolve, soft_columns
from pipelines.load_source import (
    FORMATS,
    FatalLoadError,
    Source,
    batch_select,
    count_sql,
    failing_file,
    find_file,
    header_problem,
    ident,
    open_source,
    read_problem,
    sql_str,
)

__all__ = ["FatalLoadError", "LoadResult", "load_inbox"]

_MONTH_DIR = re.compile(r"(\d{4})-(\d{2})")
# Each provider-month's latest submission. In the work database, not TEMP: the connections that
# load large files side by side (_insert_files) must see it too.
_SUBS = f"{load_mhs.WORK}._load_subs"
_DUPS = "_load_dups"
_BATCH = "_load_batch"
# Files of one table are scanned together up to this size, so memory stays bounded at national scale.
_BATCH_BYTES = 1 << 30
# CSV files this large are loaded one at a time, numbered exactly on the scan, several at once.
_SINGLE_FILE_BYTES = 16 << 20
Progress = Callable[[str, int, int], None]  # (what was just done, steps done, steps in all)


@dataclass
class _Planned:
    table: str
    umid: int
    rel: str
    src: Source | None = None  # None = file absent
    res: Resolution | None = None  # None = file absent or zero bytes


def load_inbox(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    *,
    progress: Progress | None = None,
    cached: Collection[int] = (),
) -> LoadResult:
    """Load every `YYYY-MM/` folder and `reference/` under `inbox` into tables on `con`.

    Creates load_<table> in the `work` database (attaching an in-memory one if `con` has none),
    stg_<table> (all months, v6 names, typed, with src_month/src_file/src_line), the stg_<table>_latest
    views of snapshot tables, and TEMP ref_* tables, load_report and quarantine. The data is committed
    batch by batch (so `con` must not have a transaction open): on a FatalLoadError(file, problem)
    every one of these tables is emptied again, so nothing is loaded, and load_report holds just
    the 'fatal' row naming the file.

    `cached`: UniqMonthIDs whose files are unchanged since `work`'s load tables were filled (an
    incremental run's cache). Their rows are kept as they are and their files are not read again;
    every other month's rows are deleted and loaded afresh. Counts, quarantine, load_report and the
    latest snapshots are then made over all months, exactly as in a full load; repeated keys are
    looked for in the re-read months only, since a key can only repeat within one file (the cached
    rows' duplicates were rejected when they were loaded, and the cache keeps that fate).
    """
    inbox = Path(inbox)
    (attached,) = con.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = $w", {"w": load_mhs.WORK}
    ).fetchone()
    if not attached:
        con.execute(f"ATTACH ':memory:' AS {load_mhs.WORK}")
    cached = frozenset(cached)
    _create_tables(con, keep=bool(cached))
    report = Report()
    # Line numbers come from the order rows are written in; that needs DuckDB's default setting.
    (ordered,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    con.execute("SET preserve_insertion_order = true")
    con.execute("BEGIN TRANSACTION")
    try:
        if cached:
            for name in TABLES:
                con.execute(
                    f"DELETE FROM {load_mhs.load_table(name)} WHERE NOT list_contains($c, src_month)",
                    {"c": sorted(cached)},
                )
        months, plans, refs = _load_all(con, inbox, report, progress, cached)
        con.execute("COMMIT")
    except FatalLoadError:
        _rollback(con)
        _create_tables(con, keep=False)  # what earlier batches committed goes too: nothing is loaded
        _drop_temps(con)
        report.write(con, only_fatal=True)
        raise
    except BaseException:
        _rollback(con)
        with suppress(duckdb.Error):  # e.g. the disk is full: the original error is the one to see
            _create_tables(con, keep=False)
            _drop_temps(con)
        raise
    finally:
        con.execute(f"SET preserve_insertion_order = {str(bool(ordered)).lower()}")
    r = report.result
    r.months = [umid for _, umid in months]
    r.files = sum(1 for p in plans if p.src is not None) + len(refs)
    for name in TABLES:
        stg = ident(load_mhs.stg_name(name))
        r.loaded_by_table[name] = con.execute(f"SELECT count(*) FROM {stg}").fetchone()[0]
    return r


def _rollback(con) -> None:
    """Roll back the batch under way. A COMMIT that failed (a full disk) has already ended the
    transaction, and the error to report is the one that got us here, not 'no transaction'."""
    with suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


def _load_all(con, inbox: Path, report: Report, progress: Progress | None, cached: frozenset[int]):
    months = _month_folders(inbox, report)
    plans = [p for folder, umid in months for p in _plan_month(con, inbox, folder, umid, report)]
    refs = _plan_reference(con, inbox, report)
    con.execute(f'CREATE OR REPLACE TABLE {_SUBS} (_month INTEGER, "OrgIDProv" VARCHAR, _sub BIGINT)')
    steps = len(TABLES) + 2
    for i, name in enumerate(TABLES, 1):  # MHS000Header first: it defines the latest submissions
        _load_table(con, name, [p for p in plans if p.table == name], report, cached)
        if progress:
            progress(f"loaded {name}", i, steps)
    for spec, src, res in refs:
        _load_reference_file(con, spec, src, res, report)
    if progress:
        progress("loaded reference files", steps - 1, steps)
    _build_latest(con)
    report.write(con)
    load_report.check_accounting(con, landed_queries())
    _drop_temps(con)
    if progress:
        progress("built latest snapshots", steps, steps)
    return months, plans, refs


def landed_queries() -> list[str]:
    """Queries giving (file, rows loaded) from what is actually in the staging and reference tables."""
    out = [f"SELECT src_file, count(*) FROM {ident(load_mhs.stg_name(t))} GROUP BY ALL" for t in TABLES]
    for spec in load_reference.REFERENCE_SPECS:
        out.append(f"SELECT {sql_str('reference/' + spec.file)}, count(*) FROM {ident(spec.table)}")
    return out


def _create_tables(con, *, keep: bool) -> None:
    for sql in load_report.DDL:
        con.execute(sql)
    for table in TABLES.values():
        for sql in load_mhs.ddl(table, keep=keep):
            con.execute(sql)
    for spec in load_reference.REFERENCE_SPECS:
        con.execute(load_reference.ref_ddl(spec))


def _month_folders(inbox: Path, report: Report) -> list[tuple[Path, int]]:
    if not inbox.is_dir():
        raise report.fatal(None, None, str(inbox), "inbox folder not found")
    months = []
    for entry in sorted(inbox.iterdir()):
        if not entry.is_dir() or entry.name.startswith(".") or entry.name == "reference":
            continue  # loose files (e.g. a generator's notes) are not extract input
        m = _MONTH_DIR.fullmatch(entry.name)
        if m and 1 <= int(m.group(2)) <= 12 and int(m.group(1)) >= 1900:
            months.append((entry, uniq_month_id(int(m.group(1)), int(m.group(2)))))
        else:
            report.add(
                None, None, entry.name, status="warning", messages=["not a YYYY-MM month folder; ignored"]
            )
    if not months:
        raise report.fatal(None, None, str(inbox), "no YYYY-MM month folders in the inbox")
    return months


def _plan_month(con, inbox: Path, folder: Path, umid: int, report: Report) -> list[_Planned]:
    """Find each table's file and check its header; fatal problems surface here, before any load."""
    known = {f"{name}{ext}" for name in TABLES for ext in FORMATS}
    for entry in sorted(folder.iterdir()):
        if not entry.name.startswith(".") and entry.name not in known:
            rel = f"{folder.name}/{entry.name}"
            report.add(umid, None, rel, status="warning", messages=["unrecognised file; ignored"])
    plan = []
    for name in TABLES:
        rel = f"{folder.name}/{name}"
        with report.guard(umid, name):
            path = find_file(folder, name, folder.name)
            if path is None:
                if name in REQUIRED_TABLES:
                    raise FatalLoadError(
                        f"{rel}.csv",
                        "required file missing (a month needs MHS000Header, MHS001MPI and MHS101Referral)",
                    )
                plan.append(_Planned(name, umid, rel))
                continue
            src = open_source(con, path, str(path.relative_to(inbox)))
            if src.empty:
                if name in REQUIRED_TABLES:
                    raise FatalLoadError(src.rel, "required file is empty (0 bytes, no header)")
                plan.append(_Planned(name, umid, src.rel, src))
                continue
            cols = load_mhs.columns(name)
            res = resolve(cols, src.columns)
            if res.missing_required:
                raise FatalLoadError(src.rel, header_problem(src, res.missing_required, known_names(cols)))
            plan.append(_Planned(name, umid, src.rel, src, res))
    return plan


def _plan_reference(con, inbox: Path, report: Report) -> list:
    out = []
    for spec in load_reference.REFERENCE_SPECS:
        rel = f"reference/{spec.file}"
        with report.guard(None, spec.table):
            path = inbox / "reference" / spec.file
            if not path.is_file():
                raise FatalLoadError(rel, "reference file missing")
            src = open_source(con, path, rel)
            if src.empty:
                raise FatalLoadError(rel, "reference file is empty (0 bytes, no header)")
            res = resolve(spec.cols, src.columns)
            if res.missing_required:
                raise FatalLoadError(rel, header_problem(src, res.missing_required, known_names(spec.cols)))
            out.append((spec, src, res))
    return out


def _batches(items: list[_Planned]) -> list[list[_Planned]]:
    """Files of one table that can be scanned together: same format and header, bounded in size."""
    groups: dict[tuple, list[_Planned]] = {}
    for p in items:
        groups.setdefault(p.src.shape, []).append(p)
    out = []
    for group in groups.values():
        batch, size = [], 0
        for p in group:
            n = p.src.path.stat().st_size
            if batch and size + n > _BATCH_BYTES:
                out.append(batch)
                batch, size = [], 0
            batch.append(p)
            size += n
        out.append(batch)
    return out


@contextmanager
def _reading(con, report: Report, month, table, srcs):
    """Turn a reader error inside into a fatal error naming the file (found by re-reading if need be)."""
    try:
        yield
    except (duckdb.InvalidInputException, duckdb.IOException) as e:
        src = failing_file(e, srcs) or (srcs[0] if len(srcs) == 1 else _find_unreadable(con, srcs))
        if src is None:
            raise
        m = month(src) if callable(month) else month
        raise report.fatal(m, table, src.rel, read_problem(src, e)) from None


def _find_unreadable(con, srcs) -> Source | None:
    for src in srcs:
        try:
            if src.fmt == "csv":
                con.execute(count_sql([src])).fetchall()
            else:
                con.execute(f"SELECT count(*) FROM ({batch_select([src])})").fetchall()
        except duckdb.Error:
            return src
    return None


def _load_table(con, name: str, plans: list[_Planned], report: Report, cached: frozenset[int]) -> None:
    table = TABLES[name]
    present = [p for p in plans if p.res is not None]
    todo = [p for p in present if p.umid not in cached]
    # The header always goes in batches: _insert_batch is what fills _SUBS from it.
    single = [p for p in todo if _single(p)] if name != "MHS000Header" else []
    for batch in _batches([p for p in todo if not any(p is q for q in single)]):
        _insert_batch(con, table, batch, report)
        con.execute("COMMIT")  # frees the batch's TEMP copy now, not at the end of the load
        con.execute("BEGIN TRANSACTION")
    if single:
        _insert_files(con, table, single, report)
    soft = sorted({n for p in present for n in soft_columns(load_mhs.columns(name), p.res)})
    counts = {}
    if present:
        fresh = sorted({p.umid for p in todo}) if cached else None  # cached months: checked before
        if fresh != [] and con.execute(load_mhs.dups_check_sql(table, fresh)).fetchone()[0]:
            con.execute(load_mhs.dups_sql(_DUPS, table, fresh))
            con.execute(load_mhs.reject_dups_sql(_DUPS, table))
        counts = {r[0]: r[1:] for r in con.execute(load_mhs.counts_sql(table, soft)).fetchall()}
    for p in plans:
        if p.src is None:
            report.add(p.umid, name, p.rel, status="absent", messages=["file absent; treated as empty"])
            continue
        if p.res is None:
            report.add(p.umid, name, p.rel, status="warning", messages=["empty file (0 bytes, no header)"])
            continue
        a = counts.get(p.rel, (0,) * (7 + len(soft)))
        n_umid, n_match, other = a[4:7]
        if n_umid and not n_match:
            problem = (
                f"UniqMonthID {other} (not {p.umid}) in every row: the file does not belong in its folder"
            )
            raise report.fatal(p.umid, name, p.rel, problem)
        if not a[0] and name in REQUIRED_TABLES:
            raise report.fatal(p.umid, name, p.rel, "required file has no data rows")
        bad = {n: k for n, k in zip(soft, a[7:], strict=True) if k}
        status, parts = messages(p.res, bad, a[:4], load_mhs.columns(name))
        report.add(p.umid, name, p.rel, a[:4], status, parts)
    if any(a[2] for a in counts.values()):
        con.execute(load_mhs.quarantine_sql(table))


def _insert_batch(con, table: Table, batch: list[_Planned], report: Report) -> None:
    srcs = [p.src for p in batch]
    umid_of = {id(p.src): p.umid for p in batch}
    # SQL inlined rather than kept in temp views: binding a view costs as much as a small file
    query = load_mhs.validate_query(table, srcs, batch[0].res, [p.umid for p in batch])
    csv = srcs[0].fmt == "csv"  # CSV lines are numbered in a TEMP copy first (load_mhs.number_lines_sql)
    if csv:
        con.execute(load_mhs.batch_ddl(_BATCH, table))
    with _reading(con, report, lambda s: umid_of[id(s)], table.name, srcs):
        if table.name == "MHS000Header":
            con.execute(load_mhs.subs_sql(_SUBS, query))
        con.execute(
            load_mhs.insert_sql(load_mhs.status_query(query, _SUBS), table, srcs, _BATCH if csv else None)
        )
    if csv:
        con.execute(load_mhs.number_lines_sql(_BATCH))
        # Numbered, so the stored order no longer matters (nothing later depends on it:
        # benchmarks/determinism_check.py --shuffle): without preserve_insertion_order DuckDB
        # compresses and writes row groups in parallel (icb load on disk 20.3 -> 13.9 s).
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"INSERT INTO {load_mhs.load_table(table.name)} SELECT * FROM {_BATCH}")
        con.execute("SET preserve_insertion_order = true")  # load_inbox restores the caller's setting
        con.execute(f"DROP TABLE {_BATCH}")


def _single(p: _Planned) -> bool:
    return p.src.fmt == "csv" and p.src.path.stat().st_size >= _SINGLE_FILE_BYTES


def _insert_files(con, table: Table, plans: list[_Planned], report: Report) -> None:
    """Load large CSV files one per scan, as many scans at a time as DuckDB has threads.

    A scan of one file numbers its records exactly (load_source.batch_select), so the rows go
    straight to load_<table>, with no TEMP copy to renumber (number_lines_sql). That numbering
    keeps the scan on one thread, so files are loaded side by side, each on a connection (cursor)
    of its own, each committed when written: the caller's transaction is committed first, and a
    new one begun after, which sees them. The first file to fail stops the others (the scans under
    way are interrupted, the rest not started) and is the one reported.
    """
    (threads,) = con.execute("SELECT current_setting('threads')").fetchone()
    con.execute("COMMIT")
    running: dict[int, duckdb.DuckDBPyConnection] = {}  # the cursors at work, to interrupt on failure
    lock = threading.Lock()

    def insert(p: _Planned) -> None:
        query = load_mhs.validate_query(table, [p.src], p.res, [p.umid], numbered=True)
        with con.cursor() as cur:
            with lock:
                running[id(p)] = cur
            try:
                cur.execute(load_mhs.insert_sql(load_mhs.status_query(query, _SUBS), table, [p.src]))
            finally:
                with lock:
                    running.pop(id(p))

    # Largest first, so the last file to finish is a small one.
    order = sorted(plans, key=lambda p: -p.src.path.stat().st_size)
    with ThreadPoolExecutor(max(1, min(int(threads), len(plans)))) as pool:
        futures = {pool.submit(insert, p): p for p in order}
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:  # a failure, or Ctrl-C: stop the others before the pool waits for them
            failed = [f for f in futures if f.done() and not f.cancelled() and f.exception()]
            if failed or not all(f.done() for f in futures):
                for f in futures:
                    f.cancel()
                with lock:
                    for cur in running.values():
                        cur.interrupt()
        if failed:
            first = min(failed, key=lambda f: order.index(futures[f]))
            p = futures[first]
            with _reading(con, report, p.umid, table.name, [p.src]):
                first.result()
    con.execute("BEGIN TRANSACTION")


def _load_reference_file(con, spec, src: Source, res: Resolution, report: Report) -> None:
    with _reading(con, report, None, spec.table, [src]):
        counts, bad = load_reference.load_file(con, spec, src, res)
    status, parts = messages(res, bad, counts, spec.cols)
    report.add(None, spec.table, src.rel, counts, status, parts)


def _build_latest(con) -> None:
    for table in TABLES.values():
        if table.kind == "snapshot":
            con.execute(load_mhs.latest_sql(table))


def _drop_temps(con) -> None:
    for view in ("_load_s", "_load_v"):
        con.execute(f"DROP VIEW IF EXISTS {view}")
    for table in (_SUBS, _DUPS):
        con.execute(f"DROP TABLE IF EXISTS {table}")
