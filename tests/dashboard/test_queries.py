"""queries.py against the fixture warehouse. The truth is the fixture's own DataFrames
(fixture_warehouse.build_frames), filtered here with pandas, independently of the SQL under test."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import pytest

from dashboard import queries

pytestmark = pytest.mark.usefixtures("request_ctx")
LATEST = "2026-10-31"


def _truth(frames, **eq) -> pd.DataFrame:
    df = frames["indicator_values"]
    for col, val in eq.items():
        df = df[df[col].isin(val)] if isinstance(val, list | tuple) else df[df[col] == val]
    return df


def test_area_values_returns_exactly_the_published_rows(frames):
    got = queries.area_values(("four_week_wait_pct", "dna_rate_pct"), LATEST, "pcn", ("U10001", "U20002"))
    want = _truth(frames, indicator_id=["four_week_wait_pct", "dna_rate_pct"], period_end=pd.Timestamp(LATEST).date(),
                  geography_level="pcn", geography_code=["U10001", "U20002"], breakdown="all")  # fmt: skip
    assert len(got) == len(want) == 4
    merged = got.merge(want, on=["indicator_id", "geography_code"], suffixes=("", "_want"))
    pd.testing.assert_series_equal(merged["value"], merged["value_want"], check_names=False)


def test_area_values_all_codes_of_a_level_when_codes_is_none(frames):
    got = queries.area_values(("four_week_wait_pct",), LATEST, "provider")
    assert sorted(got["geography_code"]) == ["NWV01", "RWE"]


def test_suppressed_rows_carry_no_numbers():
    got = queries.series(
        ("four_week_wait_pct",), "pcn", "U20002", "2025-08-31", LATEST, "ethnicity_group", None
    )
    hidden = got[got["suppressed"].notna()]
    assert len(hidden) > 0, "the fixture has suppressed rows for the small PCN"
    assert hidden[["numerator", "denominator", "value", "lower_95", "upper_95"]].isna().all().all()
    assert set(hidden["suppressed"]) <= {"primary", "secondary"}


def test_series_by_group_returns_every_group_in_month_order(frames):
    got = queries.series(("dna_rate_pct",), "icb", "QWU", "2026-01-31", LATEST, "age_band", None)
    assert set(got["breakdown_value"]) == {"18-25", "26-64", "65+"}
    assert len(got) == 3 * 10  # ten month ends Jan-Oct 2026
    for _, g in got.groupby("breakdown_value"):
        assert g["period_end"].is_monotonic_increasing


def test_user_input_is_bound_not_formatted():
    evil = "U10001' OR '1'='1"
    assert queries.area_values(("four_week_wait_pct",), LATEST, "pcn", (evil,)).empty
    assert queries.series(("four_week_wait_pct",), "pcn", evil, "2025-01-31", LATEST).empty


def test_group_values_has_overall_row_first():
    got = queries.group_values("four_week_wait_pct", LATEST, "place", "WST", "gender")
    assert got["breakdown"].iloc[0] == "all"
    assert set(got["breakdown_value"][1:]) == {"Male", "Female", "Non-binary or other", "Not known"}


def test_inequality_rows_for_a_dimension():
    got = queries.inequality("four_week_wait_pct", "icb", "QWU", "imd_quintile", LATEST, LATEST)
    assert {"sii", "rii", "gap_abs", "gap_ratio"} <= set(got["measure"])
    assert got.loc[got["measure"] == "sii", "group_value"].isna().all()


def test_geographies_use_the_lookup_for_parents():
    geo = queries.geographies()
    pcn = geo[(geo["geography_level"] == "pcn") & (geo["geography_code"] == "U10003")].iloc[0]
    assert (pcn["parent_level"], pcn["parent_code"], pcn["geography_name"]) == (
        "place",
        "WST",
        "Fourie Hill PCN",
    )


def test_registry_metadata_comes_from_the_published_indicators_table():
    from pipelines.registry import load_registry

    meta = queries.indicator_meta()
    assert list(meta["indicator_id"]) == list(load_registry().ids)
    assert set(meta.columns) >= {"title", "definition", "unit", "polarity", "method", "caveats"}


def test_results_are_memoised_per_build(monkeypatch):
    first = queries.periods()
    monkeypatch.setattr(queries, "_df", lambda *a, **k: pytest.fail("cache miss: the query ran again"))
    pd.testing.assert_frame_equal(queries.periods(), first)
    assert first["period_end"].iloc[0] == pd.Timestamp(LATEST)


def test_query_layer_reads_only_published_tables():
    """spec/04: the dashboard never queries indicator_values_raw or quarantine. Every SQL string in
    queries.py (the only module that runs SQL) may name only the published tables."""
    tree = ast.parse(Path(queries.__file__).read_text())
    sql = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
           and re.search(r"\bFROM\b", n.value)]  # fmt: skip
    named = {m.group(1) for text in sql for m in re.finditer(r"\bFROM\s+([a-z_.]+)", text)}
    assert named and named <= set(queries.PUBLISHED_TABLES) | {"information_schema.tables"}, named
    assert not any("indicator_values_raw" in t or "quarantine" in t for t in sql)


def test_a_provider_user_never_owns_a_pseudo_pcn_of_any_icb():
    """provider_pcns lists the pseudo-PCNs too (plain with one ICB, per ICB with several); they gather
    people from every provider, so no provider user's scope may include them."""
    import duckdb

    from dashboard.published import Published, provider_pcns

    con = duckdb.connect()
    con.execute("create table provider_pcns (provider_code varchar, pcn_code varchar)")
    con.executemany(
        "insert into provider_pcns values ('RWE', ?)",
        [["U11111"], ["UNMAPPED"], ["UNKNOWN"], ["UNMAPPED-QWE"], ["UNKNOWN-QXX"], ["U22222"]],
    )
    pub = Published(con, "b1", frozenset({"provider_pcns"}))
    assert provider_pcns(pub, "RWE") == {"U11111", "U22222"}
    assert provider_pcns(pub, "NWV01") == frozenset()
