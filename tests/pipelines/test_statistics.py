"""Wiring of the statistical methods into indicator rows (limits, benchmarks, ratios, inequality)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from pipelines.disclosure import apply_disclosure_control, suppress_derived
from pipelines.registry import load_registry
from pipelines.statistics import apply_statistics, inequality_summary

PE = dt.date(2026, 10, 31)
GEO = pd.DataFrame(
    {"pcn_code": ["U00001", "U00002"], "place_code": ["WEA", "WEA"], "icb_code": ["QWE", "QWE"]}
)


def row(ind, level, code, num, den, value=None, breakdown="all", group="all", **kw):
    if value is None and den:
        value = num / den * (100 if ind.endswith("_pct") else 10_000)
    return {
        "indicator_id": ind,
        "period_end": PE,
        "geography_level": level,
        "geography_code": code,
        "breakdown": breakdown,
        "breakdown_value": group,
        "numerator": num,
        "denominator": den,
        "value": value,
        **kw,
    }


@pytest.fixture(scope="module")
def reg():
    return load_registry()


def test_proportion_limits_are_wilson_in_percent_and_pcn_is_compared_with_its_icb(reg):
    raw = pd.DataFrame(
        [row("dna_rate_pct", "icb", "QWE", 100, 1000), row("dna_rate_pct", "pcn", "U00001", 30, 100)]
    )
    out, _ = apply_statistics(raw, reg, GEO, draws=1000)
    pcn = out[out.geography_code == "U00001"].iloc[0]
    lo, up = proportion_confint(30, 100, alpha=0.05, method="wilson")  # independent implementation
    assert pcn.lower_95 == pytest.approx(lo * 100, abs=1e-6) and pcn.upper_95 == pytest.approx(
        up * 100, abs=1e-6
    )
    assert pcn.method == "wilson"
    assert pcn.benchmark_value == pytest.approx(10.0)
    # ICB 10% lies below the PCN's interval (about 21.9-39.9%); DNA polarity is low, so "worse"
    assert pcn.significance_95 == "worse"
    icb = out[out.geography_level == "icb"].iloc[0]
    assert np.isnan(icb.benchmark_value) and pd.isna(icb.significance_95)


def test_rate_limits_scale_the_count_limits_and_small_counts_are_exact_poisson(reg):
    raw = pd.DataFrame(
        [
            row("access_2plus_contacts", "icb", "QWE", 400, 100_000),
            row("access_2plus_contacts", "pcn", "U00001", 4, 10_000),
        ]
    )
    out, _ = apply_statistics(raw, reg, GEO, draws=1000)
    small = out[out.geography_code == "U00001"].iloc[0]
    assert small.method == "exact_poisson"
    # exact Poisson 95% limits for 4 events: 1.0899 and 10.2416 (Garwood), per 10,000 of 10,000
    assert small.lower_95 == pytest.approx(1.0899, abs=1e-3) and small.upper_95 == pytest.approx(
        10.2416, abs=1e-3
    )
    big = out[out.geography_code == "QWE"].iloc[0]
    assert big.method == "byar" and big.lower_95 < 40 < big.upper_95


def test_groups_compared_with_all_and_representation_ratio_derived(reg):
    raw = pd.DataFrame(
        [
            row("access_2plus_contacts", "icb", "QWE", 400, 100_000),
            row(
                "access_2plus_contacts", "icb", "QWE", 20, 20_000, breakdown="ethnicity_group", group="Other"
            ),
            row(
                "access_2plus_contacts", "icb", "QWE", 300, 60_000, breakdown="ethnicity_group", group="White"
            ),
        ]
    )
    out, ineq = apply_statistics(raw, reg, GEO, draws=1000)
    other = out[(out.indicator_id == "access_2plus_contacts") & (out.breakdown_value == "Other")].iloc[0]
    assert other.benchmark_value == pytest.approx(40.0)
    assert other.significance_95 == "worse"  # 10 per 10,000 vs 40 overall; higher is better
    ratio = out[(out.indicator_id == "access_representation_ratio") & (out.breakdown_value == "Other")].iloc[
        0
    ]
    assert ratio.value == pytest.approx(10 / 40)
    assert ratio.lower_95 == pytest.approx(other.lower_95 / 40)
    assert ratio.benchmark_value == 1.0 and ratio.method == "ratio"
    gap = ineq[(ineq.measure == "gap_abs") & (ineq.group_value == "Other")].iloc[0]
    assert gap.value == pytest.approx(10 - 50)
    ratio_gap = ineq[(ineq.measure == "gap_ratio") & (ineq.group_value == "Other")].iloc[0]
    assert ratio_gap.value == pytest.approx(10 / 50)


def test_sii_only_when_all_five_quintiles_have_a_denominator_of_ten(reg):
    rows = [row("referrals_rejected_pct", "icb", "QWE", 50, 500)]
    for q, (x, n) in enumerate([(20, 100), (15, 100), (10, 100), (8, 100), (5, 100)], start=1):
        rows.append(row("referrals_rejected_pct", "icb", "QWE", x, n, breakdown="imd_quintile", group=str(q)))
    for q in range(1, 6):  # a PCN with one tiny quintile: no SII
        rows.append(
            row(
                "referrals_rejected_pct",
                "pcn",
                "U00001",
                1,
                9 if q == 3 else 50,
                breakdown="imd_quintile",
                group=str(q),
            )
        )
    _, ineq = apply_statistics(pd.DataFrame(rows), reg, GEO, draws=2000)
    sii = ineq[(ineq.measure == "sii")]
    assert list(sii.geography_code) == ["QWE"]
    # falling from 20% (most deprived) to 5% (least): the slope across the ranks is negative
    assert sii.iloc[0].value < -10 and sii.iloc[0].upper_95 < 0


def test_sii_limits_skipped_only_where_disclosure_withholds_them(reg):
    # The pipeline simulates SII/RII limits only for measures whose five quintiles are all shown,
    # and withholds measures that use a figure not shown without suppress_derived's key lookups:
    # the summary must be the one suppress_derived makes of the summary of every group.
    geo = pd.concat([GEO, pd.DataFrame({"pcn_code": ["U00003"], "place_code": ["WEA"], "icb_code": ["QWE"]})])
    rows = []
    # U00002's 4th quintile is below 5 (primary); secondary suppression then takes its smallest other
    # quintile and, in the place, U00003's (the smaller) cells of the same quintiles; U00001 stays shown
    for code, level, values in (
        ("QWE", "icb", [90, 75, 60, 30, 40]),
        ("U00001", "pcn", [30, 25, 20, 15, 18]),
        ("U00002", "pcn", [30, 25, 20, 3, 12]),
        ("U00003", "pcn", [30, 25, 20, 12, 10]),
    ):
        rows.append(row("referrals_rejected_pct", level, code, 60, 600))
        for q, x in enumerate(values, start=1):
            rows.append(
                row("referrals_rejected_pct", level, code, x, 120, breakdown="imd_quintile", group=str(q))
            )
    raw, full = apply_statistics(pd.DataFrame(rows), reg, geo, draws=2000)
    units = {i.id: i.unit for i in reg}
    published = apply_disclosure_control(raw, units, geo)
    shown = published["suppressed"].isna().to_numpy()
    assert not shown.all(), "the PCN with a small quintile must have a suppressed row"
    lean = inequality_summary(raw, reg, draws=2000, shown=shown)
    sii = lean[lean.measure == "sii"].set_index("geography_code")
    for code in ("U00002", "U00003"):
        assert sii.loc[code, ["lower_95", "upper_95"]].isna().all(), code  # not simulated
    assert sii.loc["U00001", ["lower_95", "upper_95"]].notna().all()
    # withheld as suppress_derived withholds them (which looks each used figure up by its key)
    pd.testing.assert_frame_equal(lean, suppress_derived(full, published))
    withheld = lean[lean["suppressed"] == "derived"]
    assert set(withheld.loc[withheld.measure == "sii", "geography_code"]) == {"U00002", "U00003"}
