"""Does the build depend on the order the loader's rows are stored in? A diagnostic, not a test.

Loads an inbox once per run into an in-memory connection, shuffles the stored order of every
load_<table> in the second run (then remakes the latest versions, which choose by month, submission,
file and line, not by storage order), builds every layer on both, and prints, for every table the
build made, how many rows each side has that the other lacks (EXCEPT ALL). Tables of sums of
non-integer values (agg_indicator_groups' SDs and quantiles, indicator_values_raw's means) differ in
their last bits between any two runs; everything else should print 0 / 0.

Why: appending the loader's batches without preserve_insertion_order once made the demo build differ
from run to run (benchmarks/RESULTS.md §2b, 19:26). In four runs of this script on the demo inbox,
the first showed fct_indicator_units with 6 rows more in the shuffled build (3,748,025 against
3,748,019; which earlier tables differed was not kept); three, one with the same seed, found no
difference before the float sums (a parallel ORDER BY random() is not the same shuffle twice). So
the dependence is intermittent and is not found.

    .venv/bin/python benchmarks/order_check.py INBOX [--seed 0.42]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import duckdb

from pipelines import load_mhs
from pipelines.contract import TABLES
from pipelines.load import _build_latest, load_inbox
from pipelines.registry import load_registry
from pipelines.sql_runner import build_indicators


def build(inbox: Path, seed: float | None) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    load_inbox(con, inbox)
    if seed is not None:
        con.execute("select setseed($s)", {"s": seed})
        for name in TABLES:
            t = load_mhs.load_table(name)
            con.execute(f"create table work._shuffled as select * from {t} order by random()")
            con.execute(f"delete from {t}")
            con.execute(f"insert into {t} select * from work._shuffled")
            con.execute("drop table work._shuffled")
        _build_latest(con)
    runs = build_indicators(con, load_registry())
    return con, list(dict.fromkeys(r.table for r in runs if r.table))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("inbox", type=Path)
    ap.add_argument("--seed", type=float, default=0.42)
    args = ap.parse_args()
    a, tables = build(args.inbox, None)
    b, _ = build(args.inbox, args.seed)
    cmp = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        for table in tables:
            pa, pb = Path(tmp) / f"a_{table}.parquet", Path(tmp) / f"b_{table}.parquet"
            a.execute(f"copy (select * from \"{table}\") to '{pa}'")
            b.execute(f"copy (select * from \"{table}\") to '{pb}'")
            only = [
                cmp.execute(f"select count(*) from (from '{x}' except all from '{y}')").fetchone()[0]
                for x, y in ((pa, pb), (pb, pa))
            ]
            print(
                f"{table:32s} only in loaded order {only[0]:>8,}  only in shuffled {only[1]:>8,}", flush=True
            )


if __name__ == "__main__":
    main()
