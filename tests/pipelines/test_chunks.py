"""Statistics and disclosure run over a few indicators at a time (pipelines.run.CHUNK_ROWS) so that a
national build does not hold ~30 million rows in pandas at once. Every rule works within one
indicator, so any chunking must publish exactly what one pass over everything publishes."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from pipelines import run, sql_runner
from pipelines.config import load_config
from pipelines.load import load_inbox
from pipelines.registry import load_registry

# the columns the SQL build gives indicator_values_raw, before statistics add limits and benchmarks
BUILT = "indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value, numerator, denominator, value, sd, n"


def test_chunks_keep_each_ratio_with_its_source_and_respect_the_size():
    registry = load_registry()
    ids = [i.id for i in registry if i.kind != "ratio"]
    counts = dict.fromkeys(ids, 1000)
    ratios = [i for i in registry if i.kind == "ratio" and i.derived_from]
    assert ratios, "the registry has a representation ratio to keep with its rate"
    for ind in ratios:  # a source bigger than a chunk: its ratio (no raw rows) must still join it
        counts[ind.derived_from] = 10_000
    chunks = run.indicator_chunks(counts, registry, max_rows=2500)
    flat = [i for c in chunks for i in c]
    assert flat == sorted(i.id for i in registry)  # every indicator once, in id order (SORT_KEYS)
    where = {i: n for n, c in enumerate(chunks) for i in c}
    for ind in ratios:
        assert where[ind.id] == where[ind.derived_from]
    for c in chunks:
        assert sum(counts.get(i, 0) for i in c) <= 2500 or len({i for i in c if counts.get(i)}) == 1
    # an indicator bigger than a chunk is a chunk of its own; an unregistered id is not dropped
    sizes = {**dict.fromkeys(ids, 1000), ids[0]: 10_000, "not_in_registry": 5}
    big = run.indicator_chunks(sizes, registry, max_rows=2500)
    alone = next(c for c in big if ids[0] in c)
    assert [i for i in alone if sizes.get(i)] == [ids[0]]
    assert any("not_in_registry" in c for c in big)
    assert [i for c in big for i in c] == sorted({*sizes, *(i.id for i in registry)})


def test_a_family_is_one_chunk_even_when_other_ids_sort_between_its_members():
    class Ind:
        def __init__(self, id, derived_from=None):
            self.id, self.derived_from = id, derived_from
            self.kind = "ratio" if derived_from else "rate"

    registry = [Ind("a_rate"), Ind("b_other"), Ind("c_ratio", derived_from="a_rate"), Ind("d_last")]
    counts = {"a_rate": 10, "b_other": 10, "d_last": 10}
    assert run.indicator_chunks(counts, registry, max_rows=10) == [
        ["a_rate", "b_other", "c_ratio"],
        ["d_last"],
    ]


def _staged(source: duckdb.DuckDBPyConnection, tmp_path, name: str) -> duckdb.DuckDBPyConnection:
    """A fresh database holding the demo build's raw counts, after statistics and disclosure."""
    con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
    con.register(
        "_src", source.execute(f"select {BUILT} from indicator_values_raw where method <> 'ratio'").df()
    )
    con.execute("create table indicator_values_raw as select * from _src")
    con.unregister("_src")
    geography = source.execute(
        "select geography_code as pcn_code, parent_code as place_code, icb_code from geography "
        "where geography_level = 'pcn' and geography_code not in ('UNMAPPED', 'UNKNOWN')"
    ).df()
    prog = run._Progress(False, tmp_path / f"{name}.jsonl")
    run._statistics_and_disclosure(con, load_registry(), geography, load_config(env={}), prog)
    return con


def test_chunked_statistics_and_disclosure_publish_what_one_pass_does(demo_warehouse, tmp_path, monkeypatch):
    src = duckdb.connect(str(demo_warehouse / "current.duckdb"), read_only=True)
    (n_geo,) = src.execute("select count(*) from geography where geography_level = 'pcn'").fetchone()
    if not n_geo:
        pytest.fail("the demo build has no PCN geography to test with")
    whole = _staged(src, tmp_path, "whole")
    monkeypatch.setattr(run, "CHUNK_ROWS", 40_000)
    chunked = _staged(src, tmp_path, "chunked")
    logged = [json.loads(line) for line in (tmp_path / "chunked.jsonl").read_text().splitlines()]
    assert [e["chunks"] for e in logged if e["stage"] == "statistics"][0] > 3, (
        "the small size must give several chunks"
    )
    for name, cols in run.STAGED.items():
        key = ", ".join(f'"{c}"' for c, _ in cols)  # every column: a total order on the rows
        a = whole.execute(f"select * from _staged_{name} order by {key}").df()
        b = chunked.execute(f"select * from _staged_{name} order by {key}").df()
        assert len(a) > 1000, name
        # exact: the same rows with the same values, suppression flags and all
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
        # stored in the published order, chunk after chunk: a full run writes them without a sort
        stored = chunked.execute(f"select {run.SORT_KEYS[name]} from _staged_{name}").df()
        ordered = chunked.execute(f"select {run.SORT_KEYS[name]} from _staged_{name} order by all").df()
        pd.testing.assert_frame_equal(stored, ordered, check_exact=True, obj=f"{name} order")


def test_a_full_build_publishes_its_tables_in_key_order(demo_warehouse):
    con = duckdb.connect(str(demo_warehouse / "current.duckdb"), read_only=True)
    for name, keys in run.SORT_KEYS.items():
        stored = con.execute(f"select {keys} from {name}").df()
        ordered = con.execute(f"select {keys} from {name} order by all").df()
        assert len(stored) > 1000, name
        pd.testing.assert_frame_equal(stored, ordered, check_exact=True, obj=name)


# ---------------------------------------------------------------------------------------------
# The build's facts and aggregates, a few periods at a time (sql_runner.PERIOD_LAYERS)


def test_period_chunks_group_consecutive_months_up_to_the_size():
    con = duckdb.connect()
    con.execute("create temp table stg_months as select range::integer as umid from range(1500, 1506)")
    # units per month: 1500: 3, 1501: 3, 1502: 10 (bigger than a chunk), 1503: 1, 1504: 1, 1505: 0
    con.execute(
        "create temp table int_units__a as select unnest([1500, 1500, 1501, 1502, 1503, 1504]) as umid"
    )
    con.execute(
        "create temp table int_people_in_contact as "
        "select unnest([1500, 1501, 1501] || list_value(1502, 1502, 1502, 1502, 1502, 1502, 1502, 1502, 1502)) as umid"
    )
    con.execute("create temp table int_other as select 1505 as umid from range(100)")  # not a units table
    assert sql_runner.period_chunks(con, 6) == [[1500, 1501], [1502], [1503, 1504, 1505]]
    assert sql_runner.period_chunks(con, 0) == [[1500, 1501, 1502, 1503, 1504, 1505]]  # 0 = never
    assert sql_runner.period_chunks(con, 18) == [[1500, 1501, 1502, 1503, 1504, 1505]]  # all fit
    con.execute("delete from stg_months where umid < 1503")  # an incremental run's periods only
    assert sql_runner.period_chunks(con, 1) == [[1503], [1504, 1505]]  # an empty month costs nothing


@pytest.mark.slow
def test_a_build_made_a_few_periods_at_a_time_gives_what_one_pass_gives(demo_inbox, demo_warehouse, tmp_path):
    """The demo inbox built with the facts and aggregates in groups of months, on disk as a national
    inbox is, against the published build of the same inbox made in one pass."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    load_inbox(con, demo_inbox)
    con.execute("attach $p as scratch", {"p": str(tmp_path / "scratch.duckdb")})
    con.execute("set search_path = 'main,work,scratch'")
    runs = sql_runner.build_indicators(con, load_registry(), on_disk="scratch", period_chunk_rows=1_000_000)
    chunked = [r.file for r in runs if r.file.startswith("fct_indicator_units.sql[")]
    assert len(chunked) >= 3, chunked  # ~3.7 million units: several groups of months
    # the facts of the last group alone must not outlive the build: nothing may read a partial table
    assert not con.execute(
        "select count(*) from duckdb_tables() where table_name = 'fct_indicator_units'"
    ).fetchone()[0]
    whole = duckdb.connect(str(demo_warehouse / "current.duckdb"), read_only=True)
    key = "indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value"
    a = whole.execute(f"select {BUILT} from indicator_values_raw where method <> 'ratio' order by {key}").df()
    b = con.execute(f"select {BUILT} from indicator_values_raw order by {key}").df()
    assert len(a) > 300_000
    # sums of non-integer values move in their last bit from run to run (DuckDB sums in parallel)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, obj="indicator_values_raw")
    pairs = "select provider_code, pcn_code from provider_pcns order by all"
    assert whole.execute(pairs).fetchall() == con.execute(pairs).fetchall()
    # stg_months holds every period again for what follows the period layers
    assert con.execute("select count(*) from stg_months").fetchone() == (24,)
