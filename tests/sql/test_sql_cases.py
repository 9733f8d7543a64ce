"""Given/expect cases for single SQL files (CONVENTIONS C7), read from tests/sql/<model>.yaml.

Each case creates its `given` tables in a fresh in-memory DuckDB (plus the seed tables every SQL file may
read), runs the one SQL file with the pipeline's parameters, and compares `expect.query` (default: the
whole table the file creates, in `order by all` order) with `expect.rows`. The cases are small
enough to check by hand; each names the edge case it pins down.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from pipelines.registry import load_registry
from pipelines.sql_runner import DEFAULT_PARAMS, SQL_DIR, create_seeds, run_file

CASES_DIR = Path(__file__).parent


def _cases():
    for file in sorted(CASES_DIR.glob("*.yaml")):
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
        for case in spec["cases"]:
            yield pytest.param(spec["model"], case, id=f"{file.stem}::{case['name']}")


def _create(con: duckdb.DuckDBPyConnection, name: str, table: dict) -> None:
    con.execute(f'create table "{name}" ({table["columns"]})')
    rows = table.get("rows") or []
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f'insert into "{name}" values ({marks})', rows)


@pytest.mark.parametrize(("model", "case"), list(_cases()))
def test_sql_case(model: str, case: dict) -> None:
    con = duckdb.connect()
    create_seeds(con, load_registry())
    for name, table in case["given"].items():
        _create(con, name, table)
    path = SQL_DIR / model
    run_file(con, path, {**DEFAULT_PARAMS, "quantiles": [0.5, 0.9], **case.get("params", {})})
    expect = case["expect"]
    # intermediate tables are not sorted (only aggregated later), so the default view is in key order
    got = con.execute(expect.get("query") or f'select * from "{path.stem}" order by all').df()
    want = pd.DataFrame(expect["rows"], columns=list(got.columns))
    got, want = got.astype(object).where(got.notna(), None), want.astype(object).where(want.notna(), None)
    # values are compared as text so a date or float reads the same whichever way it was written
    assert got.map(_text).to_dict("records") == want.map(_text).to_dict("records")


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)[:10] if hasattr(v, "isoformat") else str(v)
