"""A small published warehouse for the API, extract and access tests, built here and not by the
pipeline, so these tests do not depend on it (or on the dashboard's fixtures).

Two ICBs: QWE (places QWEA/QWEB, PCNs U00001-U00004 and UNMAPPED, providers RWE, NWV01, NEV02) and QXX (place
QXXA, PCN U00009, provider RXX). `PROVIDER_PCNS` is the truth the tests compare with.

Counts are drawn at random (random.Random(42)) and deliberately include 0-4. They go unrounded
into `indicator_values_raw` (as in the real warehouse) and, through an independent
implementation of the spec/03 rules written out below, into `indicator_values`. So an API that
ever read the raw table would return small or unrounded counts and the crawl tests would fail.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path

import duckdb
import pyarrow as pa

ICBS = {"QWE": {"places": ["QWEA", "QWEB"]}, "QXX": {"places": ["QXXA"]}}
# UNMAPPED gathers people whose practice maps to no PCN (spec/04); it serves every provider.
PCNS = {
    "U00001": "QWEA",
    "U00002": "QWEA",
    "U00003": "QWEB",
    "U00004": "QWEB",
    "UNMAPPED": "QWEB",
    "U00009": "QXXA",
}
PROVIDERS = {"RWE": "QWE", "NWV01": "QWE", "NEV02": "QWE", "RXX": "QXX"}
PROVIDER_PCNS = {
    "RWE": {"U00001", "U00002", "U00003", "U00004"},
    "NWV01": {"U00001", "U00002"},
    "NEV02": {"U00004"},
    "RXX": {"U00009"},
}
PERIODS = [dt.date(2025, 1, 31), dt.date(2025, 2, 28), dt.date(2025, 3, 31)]
ETHNICITY = ["White", "Mixed", "Asian", "Black", "Other", "Not known"]
INDICATORS = [
    # id, title, unit, kind
    ("four_week_wait_pct", "Seen within four weeks", "%", "proportion"),
    ("referrals_received", "Referrals received", "count", "count"),
    ("dna_rate_pct", "Did not attend", "%", "proportion"),
]
BUILD_ID = "data_2025-03_20250415T020000Z_abc1234"
THRESHOLD = ROUNDING = 5

VALUE_COLUMNS_DDL = """
    indicator_id varchar, period_end date, geography_level varchar, geography_code varchar,
    breakdown varchar, breakdown_value varchar, numerator double, denominator double, value double,
    lower_95 double, upper_95 double, lower_998 double, upper_998 double, method varchar,
    suppressed varchar, significance_95 varchar, significance_998 varchar, benchmark_value double
"""


def geographies() -> list[tuple[str, str, str]]:
    """(level, code, icb) for every geography."""
    out = [("icb", icb, icb) for icb in ICBS]
    out += [("place", p, icb) for icb, v in ICBS.items() for p in v["places"]]
    out += [("pcn", pcn, place[:3]) for pcn, place in PCNS.items()]
    out += [("provider", prov, icb) for prov, icb in PROVIDERS.items()]
    return out


def round5(x: float) -> float:
    """Nearest multiple of 5, halves away from zero (spec/03)."""
    return math.copysign(ROUNDING * math.floor(abs(x) / ROUNDING + 0.5), x)


def _suppress(cells: list[dict], kind: str) -> None:
    """Primary then secondary suppression over one set of cells adding up to a total (spec/03)."""
    count = "value" if kind == "count" else "numerator"
    for c in cells:
        small = c["numerator"] < THRESHOLD or (kind != "count" and c["denominator"] < THRESHOLD)
        c["suppressed"] = "primary" if small else None
    primary = [c for c in cells if c["suppressed"] == "primary"]
    if len(primary) == 1 and len(cells) > 1:
        rest = sorted((c for c in cells if c["suppressed"] is None), key=lambda c: c[count])
        if rest:
            rest[0]["suppressed"] = "secondary"


def _rows(rng: random.Random) -> tuple[list[tuple], list[tuple]]:
    raw_rows, published = [], []
    for ind, _title, _unit, kind in INDICATORS:
        for period in PERIODS:
            for level, code, _icb in geographies():
                for breakdown, values in (("all", ["all"]), ("ethnicity", ETHNICITY)):
                    cells = []
                    for bv in values:
                        den = rng.choice([0, 1, 3, 4, 6, 9, 12, 17, 23, 48, 101, 250, 480, 1000])
                        num = (
                            rng.randint(0, den) if kind == "proportion" else rng.choice([0, 2, 4, 7, 13, 52])
                        )
                        cells.append({"bv": bv, "numerator": num, "denominator": den})
                    for c in cells:
                        v = (
                            c["numerator"]
                            if kind == "count"
                            else (100 * c["numerator"] / c["denominator"] if c["denominator"] else None)
                        )
                        c["value"] = v
                        raw_rows.append(
                            _row(ind, period, level, code, breakdown, c, v, None, raw=True, kind=kind)
                        )
                    _suppress(cells, kind)
                    for c in cells:
                        published.append(
                            _row(
                                ind,
                                period,
                                level,
                                code,
                                breakdown,
                                c,
                                c["value"],
                                c["suppressed"],
                                raw=False,
                                kind=kind,
                            )
                        )
    return raw_rows, published


def _row(ind, period, level, code, breakdown, c, value, suppressed, *, raw: bool, kind: str) -> tuple:
    num, den = float(c["numerator"]), float(c["denominator"])
    if kind == "count":
        den = None
    if suppressed:
        num = den = value = None
    elif not raw:
        num = round5(num)
        den = None if den is None else round5(den)
        if kind == "count":
            value = num
        elif value is not None:
            value = round(value, 1)
    lo, hi = (None, None) if value is None else (value * 0.9, value * 1.1)
    method = "byar" if kind == "count" else "wilson"
    return (
        ind,
        period,
        level,
        code,
        breakdown,
        c["bv"],
        num,
        den,
        value,
        lo,
        hi,
        lo,
        hi,
        method,
        suppressed,
        None,
        None,
        None,
    )


def build(
    directory: Path, *, built_at: dt.datetime | None = None, breach: bool = False, with_lookups: bool = True
) -> Path:
    """Write `<directory>/builds/<BUILD_ID>.duckdb` and point `current.duckdb` at it.

    `breach=True` publishes one unrounded small count, to test the serving-time disclosure check."""
    builds = directory / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    path = builds / f"{BUILD_ID}.duckdb"
    path.unlink(missing_ok=True)
    raw, pub = _rows(random.Random(42))
    if breach:
        first = list(pub[0])
        first[6], first[14] = 3.0, None  # numerator 3, not suppressed
        pub[0] = tuple(first)
    con = duckdb.connect(str(path))
    con.execute(f"create table indicator_values ({VALUE_COLUMNS_DDL})")
    con.execute(f"create table indicator_values_raw ({VALUE_COLUMNS_DDL})")
    names = [c.split()[0] for c in VALUE_COLUMNS_DDL.replace("\n", " ").split(",")]
    for table, rows in (("indicator_values", pub), ("indicator_values_raw", raw)):
        frame = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])  # noqa: F841
        con.execute(f"insert into {table} select * from frame")
    con.execute(
        "create table indicators (indicator_id varchar, title varchar, definition varchar,"
        " numerator_definition varchar, denominator_definition varchar, unit varchar, polarity varchar,"
        " method varchar, caveats varchar, source_tables varchar)"
    )
    for ind, title, unit, kind in INDICATORS:
        con.execute(
            "insert into indicators values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ind,
                title,
                f"Definition of {title}",
                "num",
                "den",
                unit,
                "high_is_good",
                kind,
                "",
                "MHS101Referral",
            ],
        )
    built_at = built_at or dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=10)
    con.execute(
        "create table build_info as select ?::varchar as build_id, ?::timestamp as built_at,"
        " 'hash'::varchar as data_hash, '0.1.0'::varchar as code_version, ?::date as first_period,"
        " ?::date as last_period, 100::bigint as rows_loaded, 1::bigint as rows_rejected,"
        " 0::bigint as rows_superseded",
        [BUILD_ID, built_at, PERIODS[0], PERIODS[-1]],
    )
    con.execute('create table quarantine (month varchar, "table" varchar, raw_record varchar)')
    if with_lookups:
        con.execute("create table provider_pcns (provider_code varchar, pcn_code varchar)")
        # The pipeline may list UNMAPPED among a provider's PCNs; no provider user may read it.
        pairs = [(p, pcn) for p, pcns in PROVIDER_PCNS.items() for pcn in sorted(pcns)] + [
            ("RWE", "UNMAPPED")
        ]
        con.executemany("insert into provider_pcns values (?, ?)", pairs)
        con.execute(
            "create table geography (geography_level varchar, geography_code varchar, icb_code varchar)"
        )
        con.executemany("insert into geography values (?, ?, ?)", geographies())
    con.close()
    link = directory / "current.duckdb"
    tmp = directory / ".current.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(path)
    tmp.replace(link)
    return path
