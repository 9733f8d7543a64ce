"""Does the build give the same tables every time? A diagnostic, not a test.

Loads an inbox once, then builds every layer several times on the same connection (with
`--shuffle`, after shuffling the stored order of every load_<table> between builds) and prints,
per build, the tables whose content differs from the first build's: row count and an
order-independent hash of every row over the non-floating-point columns (sums of doubles differ in
their last bits from run to run; compare_builds.py judges those within 1e-9).

It found the one nondeterministic step seen so far: int_units__access merged month intervals with
two windows over an ordering that had ties, and a tie ordered differently in the second window
bridged a gap. Build 5 of 6 at demo scale had 6 extra access units (463,777 against 463,771); the
load cache's different storage order made it show as an incremental build differing from its full
rebuild. Fixed by making the ordering total (sql/20_intermediate/int_units__access.sql); since the
fix, 8 builds in a row agreed on every table. tests/pipelines/test_build.py reproduces the tie at
20,000 people, where the old SQL was wrong in 20 of 20 runs.

    .venv/bin/python benchmarks/determinism_check.py INBOX [--builds 6] [--shuffle]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

from pipelines import load_mhs
from pipelines.contract import TABLES
from pipelines.load import _build_latest, load_inbox
from pipelines.registry import load_registry
from pipelines.sql_runner import build_indicators

FLOATS = ("DOUBLE", "FLOAT", "REAL")


def fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """Per temp table the build made: (rows, sum of row hashes over the non-float columns)."""
    out = {}
    tables = con.execute("select table_name from duckdb_tables() where temporary").fetchall()
    for (table,) in tables:
        if table.startswith("_"):
            continue
        cols = [
            f'"{name}"'
            for name, kind, *_ in con.execute(f'describe "{table}"').fetchall()
            if not kind.startswith(FLOATS)
        ]
        out[table] = con.execute(
            f'select count(*), sum(hash(x)::hugeint) from (select {", ".join(cols) or "1"} from "{table}") as x'
        ).fetchone()
    return out


def shuffle(con: duckdb.DuckDBPyConnection, seed: float) -> None:
    con.execute("select setseed($s)", {"s": seed})
    for name in TABLES:
        t = load_mhs.load_table(name)
        con.execute(f"create table work._shuffled as select * from {t} order by random()")
        con.execute(f"delete from {t}")
        con.execute(f"insert into {t} select * from work._shuffled")
        con.execute("drop table work._shuffled")
    _build_latest(con)  # the latest versions choose by month, submission, file and line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("inbox", type=Path)
    ap.add_argument("--builds", type=int, default=6)
    ap.add_argument("--shuffle", action="store_true", help="shuffle the load tables before each build")
    args = ap.parse_args()
    registry = load_registry()
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    load_inbox(con, args.inbox)
    first: dict[str, tuple[int, int]] = {}
    for i in range(args.builds):
        started = time.perf_counter()
        if args.shuffle and i:
            shuffle(con, i / (args.builds + 1))
        build_indicators(con, registry)
        now = fingerprints(con)
        took = time.perf_counter() - started
        if not first:
            first = now
            print(f"build 0: {len(now)} tables in {took:.0f} s", flush=True)
            continue
        differ = [f"{t} ({first[t][0]:,} -> {now[t][0]:,} rows)" for t in now if now[t] != first.get(t)]
        print(f"build {i}: {took:.0f} s, differing: {', '.join(differ) or 'none'}", flush=True)


if __name__ == "__main__":
    main()
