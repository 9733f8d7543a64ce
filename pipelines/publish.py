"""Build each warehouse into a new, immutable DuckDB file and publish it with one atomic switch.

DuckDB allows one writing process *or* many reading ones, so the pipeline never writes the file
the dashboard reads (CONVENTIONS C9; research/stack-notes.md §5). A build goes into a temporary
file in `<warehouse>/builds/`, is filled by the caller's `build_fn`, must pass every data check,
is closed (which checkpoints, so no `.wal` sidecar is left), renamed to its final name
`data_<last period>_<UTC build time>_<short hash>.duckdb`, and only then published by pointing
`<warehouse>/current.duckdb` at it: a new symlink made beside it and `os.replace`d over it, which
readers see either before or after, never half-done. A reader already connected keeps reading the
old file (its inode stays open) until it closes every connection and reopens.

Whatever goes wrong before the switch — a failed check, an exception in `build_fn`, a full disk,
a SIGKILL — the previous build stays live and the new file is deleted (or, after a kill, cleaned
up by the next run). The last `keep_builds` builds are kept for :func:`rollback`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import logging
import os
import re
import shutil
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

CURRENT = "current.duckdb"
BUILDS = "builds"
_TMP_PREFIX = ".tmp_"
_BUILD_RE = re.compile(
    r"^data_(?P<period>[0-9A-Za-z-]+)_(?P<built>\d{8}T\d{6}Z)_(?P<hash>[0-9a-z]+)(?:_(?P<n>\d+))?\.duckdb$"
)
_TMP_RE = re.compile(r"^\.tmp_.*_pid(?P<pid>\d+)(?:\.duckdb(?:\.wal|\.tmp)?)?$")
_CHUNK = 1 << 20


class PublishError(RuntimeError):
    """The build could not be written or switched; the previous build is still live."""


class CheckFailed(PublishError):
    """One or more data checks returned rows; the new build was deleted, not published."""

    def __init__(self, failures: list[tuple[str, list[str], list[tuple]]]):
        self.failures = failures
        self.name = failures[0][0]
        parts = []
        for name, columns, rows in failures:
            shown = "\n".join(f"    {dict(zip(columns, row, strict=False))}" for row in rows[:5])
            parts.append(f"check {name} failed; offending rows (up to 5):\n{shown}")
        super().__init__("\n".join(parts) + "\nthe new build was not published")


@dataclass(frozen=True)
class Build:
    build_id: str  # the file name without .duckdb
    path: Path
    built_at: dt.datetime
    last_period: str
    short_hash: str
    is_current: bool


@dataclass(frozen=True)
class BuildResult:
    build: Build
    previous: Build | None  # the build that was live before, if any
    pruned: tuple[Path, ...]
    value: Any  # whatever build_fn returned


def make_build_id(last_period: str | dt.date, built_at: dt.datetime, data_hash: str) -> str:
    period = last_period.strftime("%Y-%m") if isinstance(last_period, dt.date) else str(last_period)
    if not re.fullmatch(r"[0-9A-Za-z-]+", period):
        raise ValueError(f"last_period {period!r} must be letters, digits and '-' (e.g. 2026-09)")
    stamp = built_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    short = re.sub(r"[^0-9a-z]", "", data_hash.lower())[:8] or "nohash"
    return f"data_{period}_{stamp}_{short}"


def _parse(path: Path, live: Path | None) -> Build | None:
    m = _BUILD_RE.match(path.name)
    if not m:
        return None
    built = dt.datetime.strptime(m["built"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return Build(path.stem, path, built, m["period"], m["hash"], live is not None and path == live)


def _live_path(warehouse: Path) -> Path | None:
    cur = warehouse / CURRENT
    if not cur.is_symlink():
        return None
    return (warehouse / os.readlink(cur)).resolve()


def list_builds(warehouse_dir: str | Path) -> list[Build]:
    """Every build file in `<warehouse>/builds`, newest first."""
    warehouse = Path(warehouse_dir)
    folder = warehouse / BUILDS
    if not folder.is_dir():
        return []
    live = _live_path(warehouse)
    builds = [b for p in folder.iterdir() if (b := _parse(p.resolve(), live))]

    def order(b: Build) -> tuple:
        m = _BUILD_RE.match(b.path.name)
        return (b.built_at, int(m["n"] or 0) if m else 0, b.build_id)

    return sorted(builds, key=order, reverse=True)


def current_build(warehouse_dir: str | Path) -> Build | None:
    return next((b for b in list_builds(warehouse_dir) if b.is_current), None)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_db(path: Path) -> None:
    # X.wal is DuckDB's write-ahead log and X.tmp its spill directory for larger-than-memory work
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(warehouse_dir: str | Path) -> list[Path]:
    """Delete temporary files left by a killed run (their pid is gone, or it is this process)."""
    warehouse = Path(warehouse_dir)
    removed = []
    for folder in (warehouse, warehouse / BUILDS, warehouse / "state"):  # state: the pipeline's scratch
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            m = _TMP_RE.match(p.name)
            if m and (int(m["pid"]) == os.getpid() or not _pid_alive(int(m["pid"]))):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _switch(warehouse: Path, target: Path) -> None:
    """Point current.duckdb at `target` atomically: a new symlink renamed over the old one."""
    tmp = warehouse / f"{_TMP_PREFIX}current_pid{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, warehouse), tmp)
    os.replace(tmp, warehouse / CURRENT)
    _fsync_dir(warehouse)


def prune_builds(warehouse_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` builds; the live build is never deleted."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    removed = []
    for b in list_builds(warehouse_dir)[keep:]:
        if not b.is_current:
            unlink_db(b.path)  # readers still holding it keep their open inode
            removed.append(b.path)
    return removed


def _run_checks(con: duckdb.DuckDBPyConnection, checks: Sequence[tuple[str, str]]) -> None:
    failures = []
    for name, sql in checks:
        try:
            cur = con.execute(sql)
            rows = cur.fetchmany(5)
            columns = [d[0] for d in cur.description or []]
        except duckdb.Error as e:  # a broken check must block the build as surely as a failing one
            failures.append((name, ["error"], [(str(e),)]))
            continue
        if rows:
            failures.append((name, columns, rows))
    if failures:
        raise CheckFailed(failures)


def load_checks(folder: str | Path) -> list[tuple[str, str]]:
    """`(name, sql)` for every `chk_*.sql` in `folder`, sorted by name."""
    return [(p.stem, p.read_text()) for p in sorted(Path(folder).glob("chk_*.sql"))]


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)
_FULL_TEXT = ("No space left", "File too large", "Disk quota")
_DENIED_TEXT = ("Permission denied", "Read-only file system")


def _storage_error(e: BaseException, tmp: Path) -> PublishError | None:
    """A clear error for a full disk or a permission problem; None for anything else."""
    text = str(e)
    if isinstance(e, OSError):
        full, denied = e.errno in _FULL, e.errno in _DENIED
    elif isinstance(e, duckdb.Error):
        full = any(s in text for s in _FULL_TEXT)
        denied = any(s in text for s in _DENIED_TEXT) and tmp.name in text
    else:
        return None
    if full:
        hint = "the disk (or the quota) is full"
    elif denied:
        hint = "permission denied; check the owner and mode of the warehouse directory"
    else:
        return None
    return PublishError(f"build {tmp.name} in {tmp.parent} failed and was not published: {hint} ({text})")


def build_into_new_file(
    warehouse_dir: str | Path,
    build_fn: Callable[[duckdb.DuckDBPyConnection], Any],
    *,
    last_period: str | dt.date,
    data_hash: str,
    checks: Sequence[tuple[str, str]] = (),
    keep_builds: int = 5,
    built_at: dt.datetime | None = None,
    config: dict[str, Any] | None = None,
) -> BuildResult:
    """Build a new warehouse file with `build_fn(con)`, check it, and publish it as current.

    Before `build_fn` runs, the DuckDB variables `build_id` and `built_at` are set on the
    connection (`getvariable('build_id')` in SQL). `config` is passed to `duckdb.connect`
    (e.g. threads, memory_limit). Raises :class:`CheckFailed` or :class:`PublishError`, or
    re-raises what `build_fn` raised; in every such case the previous build stays live.
    """
    warehouse = Path(warehouse_dir)
    folder = warehouse / BUILDS
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        err = _storage_error(e, folder / "(new build)")
        if err is not None:
            raise err from e
        raise
    clean_stale(warehouse)
    built_at = built_at or dt.datetime.now(dt.UTC)
    build_id = make_build_id(last_period, built_at, data_hash)
    final = folder / f"{build_id}.duckdb"
    n = 1
    while final.exists():  # the same inputs built twice within one second
        n += 1
        final = folder / f"{build_id}_{n}.duckdb"
    build_id = final.stem
    tmp = folder / f"{_TMP_PREFIX}{build_id}_pid{os.getpid()}.duckdb"

    con = None
    try:
        con = duckdb.connect(str(tmp), config=config or {})
        con.execute("set variable build_id = $b", {"b": build_id})
        con.execute("set variable built_at = $t", {"t": built_at.astimezone(dt.UTC).replace(tzinfo=None)})
        value = build_fn(con)
        _run_checks(con, checks)
        con.execute("checkpoint")
        con.close()
        con = None
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data must be on disk before any name points at it
        finally:
            os.close(fd)
        os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # published files are never modified
        os.rename(tmp, final)
        previous = current_build(warehouse)
        _switch(warehouse, final)
    except BaseException as e:
        if con is not None:
            with contextlib.suppress(duckdb.Error):
                con.close()
        unlink_db(tmp)
        if final.exists() and _live_path(warehouse) != final.resolve():
            unlink_db(final)  # renamed but never switched to
        err = _storage_error(e, tmp)
        if err is not None:
            raise err from e
        raise
    try:
        pruned = prune_builds(warehouse, keep_builds)
    except OSError as e:  # the new build is live; an old file left behind is not worth failing the run
        log.warning("could not delete old builds: %s", e)
        pruned = []
    build = _parse(final.resolve(), final.resolve())
    return BuildResult(build, previous, tuple(pruned), value)


def rollback(warehouse_dir: str | Path, to: str | None = None) -> Build:
    """Make an earlier build live again: the one before the live one, or the build named `to`."""
    warehouse = Path(warehouse_dir)
    builds = list_builds(warehouse)
    if to is not None:
        name = Path(to).name.removesuffix(".duckdb")
        match = [b for b in builds if b.build_id == name]
        if not match:
            known = ", ".join(b.build_id for b in builds) or "none"
            raise PublishError(f"no build {name!r} in {warehouse / BUILDS}; kept builds: {known}")
        target = match[0]
    else:
        idx = next((i for i, b in enumerate(builds) if b.is_current), None)
        if idx is None or idx + 1 >= len(builds):
            raise PublishError("no earlier build to roll back to")
        target = builds[idx + 1]
    _switch(warehouse, target.path)
    return current_build(warehouse)


def data_hash(inbox_dir: str | Path) -> str:
    """SHA-256 over every file under the inbox: relative path and bytes, in sorted path order.

    Identical inputs give identical hashes wherever they live; renaming, adding, removing or
    changing any file changes it. Hidden files and folders (editor swap files, partial uploads
    named `.something`) are ignored. Files are read in 1 MiB chunks, so memory stays flat.
    """
    return hash_inbox(inbox_dir)[0]


def hash_inbox(inbox_dir: str | Path) -> tuple[str, dict[str, str]]:
    """:func:`data_hash`, plus one SHA-256 per top-level entry (month folder, `reference`, loose file),
    computed in the same single read: incremental runs compare these to find what changed."""
    root = Path(inbox_dir)
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the inbox folder does not exist", str(root))
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        files += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    h = hashlib.sha256()
    per_entry: dict[str, Any] = {}
    # Every byte goes into two digests; hashlib releases the GIL on big updates, so the entry's digest
    # is fed in a second thread while this one feeds the whole inbox's (national: 19 s -> 11 s).
    with ThreadPoolExecutor(max_workers=1) as other:
        for rel, path in sorted((p.relative_to(root).as_posix(), p) for p in files):
            name = rel.encode()
            eh = per_entry.setdefault(rel.split("/", 1)[0], hashlib.sha256())
            # Length prefixes keep the stream unambiguous (no path/content boundary can be faked).
            head = len(name).to_bytes(8, "big") + name + path.stat().st_size.to_bytes(8, "big")
            h.update(head)
            eh.update(head)
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    fed = other.submit(eh.update, chunk)
                    h.update(chunk)
                    fed.result()
    return h.hexdigest(), {k: v.hexdigest() for k, v in per_entry.items()}


def table_hash(db: duckdb.DuckDBPyConnection | str | Path, table: str) -> str:
    """SHA-256 of a table's column names, types and rows in a deterministic order (ORDER BY ALL)."""
    con = duckdb.connect(str(db), read_only=True) if isinstance(db, (str, Path)) else db
    try:
        quoted = '"' + table.replace('"', '""') + '"'
        cur = con.execute(f"select * from {quoted} order by all")
        h = hashlib.sha256(repr([(d[0], str(d[1])) for d in cur.description]).encode())
        while rows := cur.fetchmany(10_000):
            for row in rows:
                h.update(repr(row).encode() + b"\n")
        return h.hexdigest()
    finally:
        if con is not db:
            con.close()
