"""Opening one extract file (CSV or Parquet) as raw text columns, and the checks that make it fatal.

The loader reads every value as text first so that a bad value becomes a quarantined row rather
than a crash; what cannot be read at all (wrong encoding, malformed CSV, not Parquet, a header
without the required columns) stops the load with a `FatalLoadError` naming the file. The header of
a CSV is read in Python (one line) so DuckDB can skip its sniffer: that is faster for hundreds of
small files and means DuckDB never guesses a delimiter or a type.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

FORMATS = (".csv", ".parquet")
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


class FatalLoadError(Exception):
    """A problem that stops the whole load: the file it concerns and what is wrong with it."""

    def __init__(self, file: str, problem: str):
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


@dataclass(frozen=True)
class Source:
    path: Path
    rel: str  # path relative to the inbox, as written to load_report, quarantine and src_file
    fmt: str  # "csv" | "parquet"
    columns: tuple[str, ...]  # the file's column names, in order; () for a zero-byte file
    types: tuple[str, ...] = ()  # Parquet column types (files are read together only if they agree)

    @property
    def empty(self) -> bool:
        return not self.columns

    @property
    def shape(self) -> tuple:
        return (self.fmt, tuple(c.casefold() for c in self.columns), self.types)


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def find_file(folder: Path, stem: str, rel_folder: str) -> Path | None:
    """The file holding table `stem` in `folder`, or None; two formats of one table is ambiguous."""
    found = [folder / f"{stem}{ext}" for ext in FORMATS if (folder / f"{stem}{ext}").is_file()]
    if len(found) > 1:
        raise FatalLoadError(f"{rel_folder}/{stem}", "both a .csv and a .parquet file; keep one of them")
    return found[0] if found else None


def open_source(con: duckdb.DuckDBPyConnection, path: Path, rel: str) -> Source:
    fmt = path.suffix.lstrip(".")
    columns, types = _csv_header(path, rel) if fmt == "csv" else _parquet_columns(con, path, rel)
    seen: set[str] = set()
    for name in columns:
        if name.casefold() in seen:
            raise FatalLoadError(rel, f"column {name!r} appears twice in the header")
        seen.add(name.casefold())
    return Source(path, rel, fmt, columns, types)


def _csv_header(path: Path, rel: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    with open(path, "rb") as fh:
        first = fh.readline(1 << 20)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FatalLoadError(rel, "not UTF-8 encoded (the header line cannot be decoded)") from None
    if not text.strip():
        return (), ()
    row = next(csv.reader([text.rstrip("\r\n")]))
    return tuple(c.strip() or f"column{i + 1}" for i, c in enumerate(row)), ()


def _parquet_columns(
    con: duckdb.DuckDBPyConnection, path: Path, rel: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_str(str(path))})").fetchall()
    except duckdb.Error as e:
        raise FatalLoadError(rel, f"not a readable Parquet file ({_first_line(e)})") from None
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def header_problem(src: Source, missing: list[str], known: set[str]) -> str:
    """Explain why required columns are missing: wrong delimiter, no header row, or just absent."""
    text = f"header lacks required column(s): {', '.join(missing)}"
    if src.fmt == "parquet":
        return f"Parquet schema lacks required column(s): {', '.join(missing)}"
    if len(src.columns) == 1:
        for sep, label in _OTHER_DELIMITERS.items():
            if sep in src.columns[0]:
                return (
                    f"wrong delimiter: the header is separated by {label} ({sep!r}), expected comma; {text}"
                )
    if not any(c.casefold() in known for c in src.columns):
        return f"no header row (the first line has none of the expected column names); {text}"
    return text


_CSV_OPTIONS = (
    "header=true, auto_detect=false, delim=',', quote='\"', escape='\"', strict_mode=true, encoding='utf-8'"
)


def _paths(srcs: Sequence[Source]) -> str:
    return "[" + ", ".join(sql_str(str(s.path)) for s in srcs) + "]"


def _csv_read(srcs: Sequence[Source]) -> str:
    cols = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(srcs[0].columns)))
    return f"read_csv({_paths(srcs)}, columns={{{cols}}}, {_CSV_OPTIONS})"


def count_sql(srcs: Sequence[Source]) -> str:
    """Rows per file of a CSV batch (file_index order)."""
    return f"SELECT file_index, count(*) FROM {_csv_read(srcs)} GROUP BY ALL ORDER BY 1"


def batch_select(srcs: Sequence[Source], *, numbered: bool = False) -> str:
    """SELECT _line, _fi, c0 … cN over files of one shape: every column as VARCHAR, in file order.

    `_fi` indexes `srcs`. `_line` is the 1-based row number of a Parquet row, or for a CSV record
    its file line (header = line 1; exact unless a quoted field spans lines or blank lines are
    skipped) when `numbered` (one file only). A CSV scan of several files gives instead each
    record's position in the scan (row_number() OVER (), which DuckDB evaluates on the scan in its
    order): increasing within each file, but the files' records interleave, so the loader turns it
    into file lines after writing (load_mhs.number_lines_sql: the rank within the file, plus 1).
    Numbering on the scan, before any join, matters: ranking the rows by the order a later step
    wrote them in gave wrong lines for files of about 100 MB (national scale).
    """
    if srcs[0].fmt == "csv":
        if numbered and len(srcs) != 1:
            raise ValueError("numbered scans are for one file")
        line = "(row_number() OVER () + 1)::BIGINT" if numbered else "(row_number() OVER ())::BIGINT"
        return f"SELECT {line} AS _line, file_index::INTEGER AS _fi, * FROM {_csv_read(srcs)}"
    cols = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS c{i}" for i, c in enumerate(srcs[0].columns))
    return (
        f"SELECT (file_row_number + 1)::BIGINT AS _line, file_index::INTEGER AS _fi, {cols} "
        f"FROM read_parquet({_paths(srcs)}, file_row_number=true)"
    )


def failing_file(error: duckdb.Error, srcs: Sequence[Source]) -> Source | None:
    """The file DuckDB names in a reader error, if it names one of `srcs`."""
    m = re.search(r"^\s*file = (.+)$", str(error), re.MULTILINE)
    if m:
        for src in srcs:
            if str(src.path) == m.group(1).strip():
                return src
    return None


def read_problem(src: Source, error: duckdb.Error) -> str:
    """Turn DuckDB's multi-line reader error into one sentence for load_report."""
    msg = str(error)
    if src.fmt == "parquet":
        return f"not a readable Parquet file ({_first_line(error)})"
    if "unicode" in msg.casefold() or "utf-8" in msg.casefold():
        return "not UTF-8 encoded (invalid byte sequence); save the file as UTF-8"
    line = re.search(r"CSV Error on Line: (\d+)", msg)
    lines = [s.strip() for s in msg.splitlines() if s.strip()]
    detail = next((s for s in lines[1:] if not s.startswith(("Original Line", "Possible"))), lines[0])
    where = f" at line {line.group(1)}" if line else ""
    return f"malformed or truncated CSV{where}: {detail}"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
