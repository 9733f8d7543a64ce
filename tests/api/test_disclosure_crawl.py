"""Crawl many filter combinations through the API and the extracts, as every kind of user, and
check every figure against spec/03: no count of 1-4, every count a multiple of 5, nothing on a
suppressed row, and every row exactly as published (so nothing is recomputed or read from the raw
table, which holds small unrounded counts).
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import random
import shutil

import duckdb
import pytest
from fixture_warehouse import INDICATORS, PROVIDER_PCNS

UNITS = {i: u for i, _t, u, _k in INDICATORS}
USERS = ("board", "equality", "prov-rwe", "prov-nwv", "board-qxx")
PROVIDER_OF = {"prov-rwe": "RWE", "prov-nwv": "NWV01"}


def _combinations(seed: int, n: int) -> list[str]:
    options = [
        [None, *UNITS],
        [None, "icb", "place", "pcn", "provider"],
        [None, "all", "ethnicity"],
        [None, "2025-02"],
        [None, "2025-02-28", "2025-03"],
    ]
    names = ("indicator_id", "geography_level", "breakdown", "period_from", "period_to")
    combos = list(itertools.product(*options))
    random.Random(seed).shuffle(combos)
    return ["&".join(f"{k}={v}" for k, v in zip(names, c, strict=True) if v) for c in combos[:n]]


@pytest.fixture(scope="module")
def published_rows(warehouse, tmp_path_factory):
    # A copy: this process may already hold the live file open with the dashboard's settings,
    # and DuckDB refuses a second in-process open of one path with different settings.
    copy = tmp_path_factory.mktemp("published") / "copy.duckdb"
    shutil.copyfile(os.path.realpath(warehouse / "current.duckdb"), copy)
    con = duckdb.connect(str(copy), read_only=True)
    cur = con.execute("select * from indicator_values")
    names = [d[0] for d in cur.description]
    rows = {}
    for r in cur.fetchall():
        row = dict(zip(names, r, strict=True))
        key = tuple(
            str(row[k])
            for k in (
                "indicator_id",
                "period_end",
                "geography_level",
                "geography_code",
                "breakdown",
                "breakdown_value",
            )
        )
        rows[key] = row
    con.close()
    return rows


def _is_published_count(x) -> bool:
    return x is None or (x >= 5 and x % 5 == 0)


def _check(row: dict, user: str, published: dict) -> None:
    num = lambda k: None if row[k] in (None, "") else float(row[k])  # noqa: E731 (CSV gives strings)
    for column in ("numerator", "denominator"):
        assert _is_published_count(num(column)), (column, row)
    if UNITS[row["indicator_id"]] == "count":
        assert _is_published_count(num("value")), row
    if row["suppressed"]:
        assert num("numerator") is None and num("value") is None, row
    if user in PROVIDER_OF:
        own = PROVIDER_OF[user]
        assert (row["geography_level"], row["geography_code"]) in {("provider", own)} | {
            ("pcn", p) for p in PROVIDER_PCNS[own]
        }
    key = tuple(
        str(row[k])
        for k in (
            "indicator_id",
            "period_end",
            "geography_level",
            "geography_code",
            "breakdown",
            "breakdown_value",
        )
    )
    source = published[key]  # KeyError = a row that was never published
    for column in ("numerator", "denominator", "value"):
        assert num(column) == source[column], (column, row, source)


@pytest.mark.parametrize("user", USERS)
def test_api_never_returns_an_unpublishable_figure(as_user, published_rows, user):
    client = as_user(user)
    served = 0
    for query in _combinations(seed=len(user), n=24):
        response = client.get(f"/api/v1/values?limit=10000&{query}")
        if response.status_code == 403:  # provider asking for a level it may not read
            assert user in PROVIDER_OF
            continue
        assert response.status_code == 200, (query, response.json)
        for row in response.json["rows"]:
            _check(row, user, published_rows)
            served += 1
    assert served > 500  # the crawl really looked at figures


@pytest.mark.parametrize("user", USERS)
def test_extracts_never_contain_an_unpublishable_figure(as_user, published_rows, user):
    client = as_user(user)
    served = 0
    for query in _combinations(seed=7 * len(user), n=8):
        response = client.get(f"/extracts/kpi.csv?{query}")
        if response.status_code == 403:
            assert user in PROVIDER_OF
            continue
        assert response.status_code == 200, (query, response.get_data(as_text=True))
        for row in csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))):
            _check(row, user, published_rows)
            served += 1
    assert served > 100
