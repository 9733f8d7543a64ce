"""Append arrow tables to the month folders as CSV or Parquet, region by region.

Files are appended to (CSV) or written in row groups (Parquet) so memory stays bounded by one region
at a time, however many regions a scale has. Output is deterministic: the same tables in the same
order give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines import contract as C
from pipelines.synth.monthly import schema


class MonthWriter:
    def __init__(self, out: Path, fmt: str, mhsds_version: int):
        self.out, self.fmt, self.version = out, fmt, mhsds_version
        self._csv_started: set[Path] = set()
        self._parquet: dict[Path, pq.ParquetWriter] = {}
        self.rows_written = 0

    def _rename(self, t: pa.Table) -> pa.Table:
        if self.version >= 6:
            return t
        names = [C.V5_NAMES.get(n, n) for n in t.column_names]
        if "ServTeamTypeRefToMH" in t.column_names:  # v5 and earlier: eating disorders as legacy C03
            i = t.column_names.index("ServTeamTypeRefToMH")
            col = t.column(i)
            t = t.set_column(i, "ServTeamTypeRefToMH", pc.if_else(pc.equal(col, "C10"), "C03", col))
        return t.rename_columns(names)

    def path(self, month_label: str, table: str) -> Path:
        return self.out / month_label / f"{table}.{self.fmt}"

    def write(self, month_label: str, table: str, t: pa.Table) -> None:
        t = self._rename(t)
        p = self.path(month_label, table)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.rows_written += t.num_rows
        if self.fmt == "parquet":
            w = self._parquet.get(p)
            if w is None:
                w = self._parquet[p] = pq.ParquetWriter(p, t.schema, compression="zstd")
            if t.num_rows:
                w.write_table(t)
            return
        for i, f in enumerate(t.schema):
            if pa.types.is_timestamp(f.type):  # ISO 8601 with a 'T'
                t = t.set_column(i, f.name, pc.strftime(t.column(i), format="%Y-%m-%dT%H:%M:%S"))
        first = p not in self._csv_started
        self._csv_started.add(p)
        with p.open("wb" if first else "ab") as fh:
            if first:  # plain header (pyarrow would quote the names)
                fh.write((",".join(t.column_names) + "\n").encode())
            if t.num_rows:
                opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
                pacsv.write_csv(t, fh, write_options=opts)

    def ensure(self, month_label: str, table: str) -> None:
        """Every table file exists in every month folder (header only when a month has no rows)."""
        p = self.path(month_label, table)
        if p in self._csv_started or p in self._parquet:
            return
        self.write(month_label, table, schema(table).empty_table())

    def close(self) -> None:
        for w in self._parquet.values():
            w.close()
        self._parquet.clear()
