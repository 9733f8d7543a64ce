"""benchmarks/compare_builds.py is the guard for performance work, so it must catch a changed figure.

Two tiny warehouse files are written by hand; each case changes one thing and expects the verdict
(exit code) a reviewer would give: a moved last bit passes, a changed value, a missing row, a
changed type or another data hash fails.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import duckdb
import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_builds.py"
_spec = importlib.util.spec_from_file_location("compare_builds", _PATH)
compare_builds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_builds)


def _build(path: Path, *, value: float = 12.5, extra_row: bool = False, hash_: str = "abc", line: int = 7):
    con = duckdb.connect(str(path))
    con.execute("create table indicator_values (indicator_id varchar, period_end date, value double)")
    con.execute(
        "insert into indicator_values values ('a', date '2025-01-31', $v), ('b', null, 0.1)", {"v": value}
    )
    if extra_row:
        con.execute("insert into indicator_values values ('c', date '2025-01-31', 1.0)")
    con.execute("create table quarantine (file varchar, line_number bigint, reason varchar)")
    con.execute("insert into quarantine values ('x.csv', $l, 'bad')", {"l": line})
    con.execute("create table build_info as select $h as data_hash", {"h": hash_})
    con.close()
    return path


def _verdict(tmp_path: Path, a: dict, b: dict, **kwargs) -> tuple[bool, str]:
    out = io.StringIO()
    same = compare_builds.compare(
        _build(tmp_path / "a.duckdb", **a), _build(tmp_path / "b.duckdb", **b), out=out, **kwargs
    )
    return same, out.getvalue()


def test_the_same_build_is_identical(tmp_path):
    same, text = _verdict(tmp_path, {}, {})
    assert same and "indicator_values: identical (2 rows)" in text


def test_a_last_bit_difference_is_within_tolerance(tmp_path):
    same, text = _verdict(tmp_path, {"value": 12.5}, {"value": 12.5 * (1 + 1e-15)})
    assert same and "within tolerance" in text


@pytest.mark.parametrize(
    ("b", "why"),
    [
        ({"value": 12.5001}, "value"),
        ({"extra_row": True}, "A 2 rows, B 3 rows"),
        ({"hash_": "abd"}, "data_hash: DIFFERENT"),
        ({"line": 8}, "quarantine: DIFFERENT"),
    ],
)
def test_a_changed_figure_is_reported(tmp_path, b, why):
    same, text = _verdict(tmp_path, {}, b)
    assert not same and why in text


def test_an_ignored_column_is_left_out(tmp_path):
    same, _ = _verdict(tmp_path, {}, {"line": 8}, ignore=("quarantine.line_number",))
    assert same


def test_main_exits_nonzero_on_a_difference(tmp_path, capsys):
    a, b = _build(tmp_path / "a.duckdb"), _build(tmp_path / "b.duckdb", value=13.0)
    assert compare_builds.main([str(a), str(a)]) == 0
    assert compare_builds.main([str(a), str(b)]) == 1
    assert "DIFFERENT" in capsys.readouterr().out
