"""Check every quarantined CSV row's `line_number` against the file it names.

For each row of a build's `quarantine` table that has a line number and a raw record, the line of that
number in `<inbox>/<file>` must hold the values of `raw_record` (as the loader read them, every column
as text). Each file is read once, up to its last quarantined line, so a national build (12,895 rows in
288 files of up to 100 MB) took 23 s. Parquet files are skipped (their rows are numbered
by DuckDB's `file_row_number`). Exit status 1 if any line is wrong.

    .venv/bin/python benchmarks/check_quarantine_lines.py BUILD.duckdb INBOX [--shift N]

`--shift N` checks line_number + N instead: with N = 1 every row should be reported wrong, which shows
the check can fail.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import duckdb


def _same(expected: object, got: str | None) -> bool:
    if expected is None:
        return got in (None, "")
    return str(expected) == got


def check(build: Path, inbox: Path, shift: int = 0) -> tuple[int, dict[str, int]]:
    """(rows checked, wrong rows per file)."""
    con = duckdb.connect(str(build), read_only=True)
    rows = con.execute(
        "select file, line_number, raw_record from quarantine "
        "where line_number is not null and raw_record is not null and file ilike '%.csv'"
    ).fetchall()
    wanted: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for file, line, raw in rows:
        wanted[file][line + shift].append(json.loads(raw))
    wrong: dict[str, int] = defaultdict(int)
    for file, lines in sorted(wanted.items()):
        left = set(lines)
        with (inbox / file).open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            for number, record in enumerate(reader, start=2):  # the header is line 1
                if number in left:
                    got = dict(zip(header, record, strict=False))
                    for expected in lines[number]:
                        if not all(_same(v, got.get(k)) for k, v in expected.items() if k in got):
                            wrong[file] += 1
                    left.discard(number)
                    if not left:
                        break
        for number in left:  # past the end of the file
            wrong[file] += len(lines[number])
    return len(rows), dict(wrong)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("inbox", type=Path)
    ap.add_argument("--shift", type=int, default=0)
    args = ap.parse_args()
    checked, wrong = check(args.build, args.inbox, args.shift)
    print(f"{args.build}: {checked:,} quarantined CSV rows checked, {sum(wrong.values()):,} wrong")
    for file, n in sorted(wrong.items()):
        print(f"  {file}: {n:,} wrong")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
