"""Check that two warehouse builds publish the same figures: the guard for performance work.

A speed-up must not change a single published number, so before and after a change the lead (or
a helper) builds the same inbox twice and runs

    .venv/bin/python benchmarks/compare_builds.py A.duckdb B.duckdb

which exits 0 when every published table holds the same rows (as multisets: row order is a
storage detail) and build_info.data_hash agrees, and otherwise prints the differing tables and up
to --show rows from each side, exiting 1. Floating-point columns may differ by a relative 1e-12
(--rel) or an absolute 1e-12 (--abs, for limits that cancel to near zero). Two builds of the same
inputs by the same code are byte-identical (`--rel 0 --abs 0`): the build sums non-integer unit
values in fixed point (sql/27_aggregates/agg_indicator_groups.sql). Before that, DuckDB's parallel
double sums moved a mean of non-integer values in its last bit from one run to the next, which is
what the default tolerance was for; it still serves for comparing two versions of the code. Columns (names, order, types) must match exactly. `--ignore table.column` leaves a column
out, e.g. `quarantine.line_number`, which the loader does not yet number reliably for rows of CSV
files scanned together (the same code gives different line numbers run to run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

# Published tables compared row for row; build_info is compared on data_hash only (its build id and
# time differ on every run by design).
TABLES = (
    "indicator_values",
    "indicator_values_raw",
    "inequality_summary",
    "load_report",
    "quarantine",
    "indicators",
    "geography",
    "provider_pcns",
)
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con, db: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_name = ? order by ordinal_position",
        [db, table],
    ).fetchall()


def _exact_diff(con, table: str, cols: list[str]) -> tuple[int, int]:
    sel = ", ".join(_q(c) for c in cols)
    a_only = con.execute(
        f"select count(*) from (select {sel} from a.{_q(table)} except all select {sel} from b.{_q(table)})"
    ).fetchone()[0]
    b_only = con.execute(
        f"select count(*) from (select {sel} from b.{_q(table)} except all select {sel} from a.{_q(table)})"
    ).fetchone()[0]
    return a_only, b_only


def _tolerant_diff(con, table: str, cols: list[tuple[str, str]], rel: float, abs_: float, show: int) -> list:
    """Rows that have no partner within tolerance: pair rows on every non-float column (and their
    rank among equal keys), then compare the float columns relatively. NULL = NULL, NaN = NaN."""
    keys = [c for c, t in cols if t not in FLOAT_TYPES]
    floats = [c for c, t in cols if t in FLOAT_TYPES]
    part = ", ".join(_q(k) for k in keys) or "1"
    order = ", ".join(_q(f) for f in floats) or "1"

    def side(alias: str) -> str:
        return (
            f"select {', '.join(_q(c) for c, _ in cols)}, row_number() over (partition by {part} "
            f"order by {order}) as _rn from {alias}.{_q(table)}"
        )

    on = " and ".join([*(f"x.{_q(k)} is not distinct from y.{_q(k)}" for k in keys), "x._rn = y._rn"])
    close = [
        f"(x.{_q(f)} is not distinct from y.{_q(f)} or abs(x.{_q(f)} - y.{_q(f)}) <= "
        f"greatest({rel!r} * greatest(abs(x.{_q(f)}), abs(y.{_q(f)})), {abs_!r}))"
        for f in floats
    ]
    unmatched = "x._rn is null or y._rn is null"
    where = f"{unmatched} or not ({' and '.join(close)})" if close else unmatched
    shown = ", ".join(f"x.{_q(c)} as {_q('a.' + c)}, y.{_q(c)} as {_q('b.' + c)}" for c, _ in cols)
    sql = (
        f"select {shown} from ({side('a')}) x full outer join ({side('b')}) y on {on} where {where} "
        f"limit {int(show)}"
    )
    count_sql = f"select count(*) from ({side('a')}) x full outer join ({side('b')}) y on {on} where {where}"
    n = con.execute(count_sql).fetchone()[0]
    rows = con.execute(sql).fetchall() if n else []
    return [n, [c for c, _ in cols], rows]


def compare(
    a: Path,
    b: Path,
    *,
    rel: float = 1e-12,
    abs_: float = 1e-12,
    ignore: tuple[str, ...] = (),
    show: int = 5,
    out=sys.stdout,
) -> bool:
    """True when the builds publish the same figures; differences are printed to `out`."""
    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    same = True
    for table in TABLES:
        ca, cb = _columns(con, "a", table), _columns(con, "b", table)
        ca = [c for c in ca if f"{table}.{c[0]}" not in ignore]
        cb = [c for c in cb if f"{table}.{c[0]}" not in ignore]
        if not ca and not cb:
            continue
        if ca != cb:
            same = False
            print(f"{table}: columns differ\n  A: {ca}\n  B: {cb}", file=out)
            continue
        names = [c for c, _ in ca]
        na = con.execute(f"select count(*) from a.{_q(table)}").fetchone()[0]
        nb = con.execute(f"select count(*) from b.{_q(table)}").fetchone()[0]
        a_only, b_only = _exact_diff(con, table, names)
        if not (a_only or b_only) and na == nb:
            print(f"{table}: identical ({na:,} rows)", file=out)
            continue
        n, cols, rows = _tolerant_diff(con, table, ca, rel, abs_, show)
        if n == 0 and na == nb:
            print(
                f"{table}: equal within tolerance ({na:,} rows; {a_only:,} differ in the last bits)", file=out
            )
            continue
        same = False
        print(f"{table}: DIFFERENT — A {na:,} rows, B {nb:,} rows, {n:,} rows without a partner", file=out)
        for row in rows:
            diff = {
                c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(cols) if row[2 * i] != row[2 * i + 1]
            }
            print(f"  {diff}", file=out)
    ha = con.execute("select data_hash from a.build_info").fetchall()
    hb = con.execute("select data_hash from b.build_info").fetchall()
    if ha != hb:
        same = False
        print(f"build_info.data_hash: DIFFERENT ({ha} vs {hb})", file=out)
    else:
        print("build_info.data_hash: identical", file=out)
    con.close()
    return same


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="reference build (.duckdb)")
    ap.add_argument("b", type=Path, help="build to check (.duckdb)")
    ap.add_argument("--rel", type=float, default=1e-12, help="relative tolerance for float columns")
    ap.add_argument("--abs", type=float, default=1e-12, help="absolute tolerance for float columns")
    ap.add_argument("--ignore", nargs="*", default=[], help="table.column to leave out of the comparison")
    ap.add_argument("--show", type=int, default=5, help="differing rows to print per table")
    args = ap.parse_args(argv)
    for p in (args.a, args.b):
        if not p.is_file():
            ap.error(f"{p}: no such file")
    same = compare(
        args.a.resolve(),
        args.b.resolve(),
        rel=args.rel,
        abs_=args.abs,
        ignore=tuple(args.ignore),
        show=args.show,
    )
    print("IDENTICAL" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
