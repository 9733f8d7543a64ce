"""pipelines/disclosure.py: the published table never lets a reader see or derive a count below 5.

Property tests build small but complete hierarchies (PCNs in places in an ICB, crossed with an
ethnicity breakdown, totals that really add up) and check spec/03's promises on every one; the
hand-checked examples pin down the exact choices (which cell is secondary, how values round).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import disclosure

PERIOD = pd.Timestamp("2025-04-30")
GROUPS = ["White", "Asian", "Black", "Not known"]
UNITS = {"ind_pct": "%", "ind_count": "count", "ind_rate": "per 10,000", "ind_days": "days"}


def _row(ind, level, code, breakdown, value_label, num, den):
    unit = UNITS[ind]
    value = {"%": 100 * num / den if den else np.nan, "count": num,
             "per 10,000": 10_000 * num / den if den else np.nan, "days": 30.0}[unit]  # fmt: skip
    return {
        "indicator_id": ind, "period_end": PERIOD, "geography_level": level, "geography_code": code,
        "breakdown": breakdown, "breakdown_value": value_label,
        "numerator": np.nan if unit == "days" else float(num),
        "denominator": np.nan if unit == "count" else float(den),
        "value": value, "lower_95": value - 1, "upper_95": value + 1, "lower_998": value - 2,
        "upper_998": value + 2, "method": "wilson", "significance_95": "similar",
        "significance_998": "similar", "benchmark_value": 50.0,
    }  # fmt: skip


@st.composite
def hierarchies(draw):
    """(raw frame, geography frame) for one indicator: leaf cells PCN × group, all totals summed."""
    ind = draw(st.sampled_from(sorted(UNITS)))
    places = [f"P{i}" for i in range(draw(st.integers(1, 3)))]
    pcn_place = {f"U{p}{j}": p for p in places for j in range(draw(st.integers(1, 3)))}
    groups = GROUPS[: draw(st.integers(1, len(GROUPS)))]
    cells = {}
    for pcn in pcn_place:
        for g in groups:
            den = draw(st.integers(0, 40)) if ind != "ind_rate" else draw(st.integers(0, 3000))
            num = draw(st.integers(0, den)) if ind != "ind_count" else draw(st.integers(0, 40))
            cells[pcn, g] = (num, den)

    def total(pcns, gs):
        return tuple(sum(cells[p, g][i] for p in pcns for g in gs) for i in (0, 1))

    areas = [("pcn", p, [p]) for p in pcn_place]
    areas += [("place", pl, [p for p, q in pcn_place.items() if q == pl]) for pl in places]
    areas += [("icb", "Q1", list(pcn_place))]
    rows = []
    for level, code, pcns in areas:
        for breakdown, label, gs in [("all", "all", groups)] + [("ethnicity_group", g, [g]) for g in groups]:
            num, den = total(pcns, gs)
            if ind in ("ind_pct", "ind_rate", "ind_days") and den == 0:
                continue  # nothing to report: the pipeline emits no row without a denominator
            rows.append(_row(ind, level, code, breakdown, label, num, den))
    geography = pd.DataFrame(
        {"pcn_code": list(pcn_place), "place_code": list(pcn_place.values()), "icb_code": "Q1"}
    )
    return pd.DataFrame(rows, columns=disclosure.COLUMNS), geography


def _sets(raw: pd.DataFrame, geography: pd.DataFrame):
    """Yield (total row index, member row indices) for every set of cells that adds to a total."""
    key = raw.set_index(["geography_level", "geography_code", "breakdown", "breakdown_value"]).index
    where = {k: i for i, k in enumerate(key)}
    parts = raw[raw["breakdown"] != "all"]
    for (level, code), part in parts.groupby(["geography_level", "geography_code"]):
        yield where.get((level, code, "all", "all")), list(part.index)
    children = {("place", pl): list(g["pcn_code"]) for pl, g in geography.groupby("place_code")}
    children[("icb", "Q1")] = list(geography["pcn_code"])
    children[("icb", "Q1", "places")] = sorted(set(geography["place_code"]))
    for parent, kids in children.items():
        level = "place" if len(kids) and kids[0].startswith("P") else "pcn"
        for breakdown, label in (
            raw[["breakdown", "breakdown_value"]].drop_duplicates().itertuples(index=False)
        ):
            members = [where[k] for kid in kids if (k := (level, kid, breakdown, label)) in where]
            yield where.get((parent[0], parent[1], breakdown, label)), members


def _published(raw, geography):
    return disclosure.apply_disclosure_control(raw, UNITS, geography)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_published_counts_are_never_small_and_always_multiples_of_five(case):
    raw, geography = case
    out = _published(raw, geography)
    counts = pd.concat(
        [out["numerator"], out["denominator"], out.loc[out["indicator_id"] == "ind_count", "value"]]
    )
    counts = counts.dropna()
    assert not counts.between(1, 4).any()
    assert (counts % 5 == 0).all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_no_shown_total_has_exactly_one_suppressed_part(case):
    raw, geography = case
    out = _published(raw, geography)
    hidden = out["suppressed"].notna().to_numpy()
    for total, members in _sets(raw, geography):
        if total is not None and hidden[total]:
            continue
        assert hidden[members].sum() != 1, (
            total,
            members,
            out.loc[members, ["geography_code", "breakdown_value"]],
        )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_small_numerators_and_denominators_are_suppressed_with_their_limits(case):
    raw, geography = case
    out = _published(raw, geography)
    small = (raw["numerator"] < 5) | (raw["denominator"] < 5)
    assert small.any() or not out["suppressed"].eq("primary").any()
    assert (out.loc[small, "suppressed"] == "primary").all()
    gone = out["suppressed"].notna()
    for col in ["numerator", "denominator", "value", "lower_95", "upper_95", "lower_998", "upper_998",
                "benchmark_value"]:  # fmt: skip
        assert out.loc[gone, col].isna().all(), col
    assert out.loc[gone, "significance_95"].isna().all()
    assert out.loc[~gone, "value"].notna().all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_percentages_are_the_unrounded_ones_to_one_decimal_place(case):
    raw, geography = case
    out = _published(raw, geography)
    shown = (raw["indicator_id"] == "ind_pct") & out["suppressed"].isna()
    for want, got in zip(raw.loc[shown, "value"], out.loc[shown, "value"], strict=True):
        expected = float(Decimal(want).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
        assert got == pytest.approx(expected, abs=1e-9)


def _frame(cells, ind="ind_pct"):
    return pd.DataFrame([_row(ind, *c) for c in cells])


def test_worked_example_breakdown_and_geography():
    raw = _frame([
        ("icb", "Q1", "all", "all", 60, 200),
        ("icb", "Q1", "ethnicity_group", "White", 40, 120),
        ("icb", "Q1", "ethnicity_group", "Black", 3, 30),  # primary: numerator 3
        ("icb", "Q1", "ethnicity_group", "Asian", 10, 30),
        ("icb", "Q1", "ethnicity_group", "Not known", 7, 20),  # next smallest numerator: secondary
        ("place", "P1", "all", "all", 30, 100),
        ("place", "P2", "all", "all", 30, 100),
        ("pcn", "U1", "all", "all", 2, 50),  # primary
        ("pcn", "U2", "all", "all", 28, 50),  # the only other PCN of P1: secondary
        ("pcn", "U3", "all", "all", 30, 100),
    ])  # fmt: skip
    geography = pd.DataFrame(
        {"pcn_code": ["U1", "U2", "U3"], "place_code": ["P1", "P1", "P2"], "icb_code": "Q1"}
    )
    out = _published(raw, geography).set_index(["geography_code", "breakdown_value"])
    hidden = out["suppressed"].dropna().to_dict()
    assert hidden == {("Q1", "Black"): "primary", ("Q1", "Not known"): "secondary",
                      ("U1", "all"): "primary", ("U2", "all"): "secondary"}  # fmt: skip
    white = out.loc[("Q1", "White")]
    assert (white["numerator"], white["denominator"], white["value"]) == (40, 120, 33.3)
    # The Asian row is shown but its benchmark (Q1 all) is shown too, so it keeps its flag.
    assert out.loc[("Q1", "Asian"), "significance_95"] == "similar"


def test_rounding_and_percentages_from_unrounded_counts():
    raw = _frame([
        ("icb", "Q1", "all", "all", 7, 13),
        ("icb", "Q2", "all", "all", 12, 38),
        ("icb", "Q3", "all", "all", 8, 22),
    ])  # fmt: skip
    out = _published(raw, None).set_index("geography_code")
    assert out.loc["Q1", ["numerator", "denominator", "value"]].tolist() == [5, 15, 53.8]  # 7/13 = 53.846%
    assert out.loc["Q2", ["numerator", "denominator", "value"]].tolist() == [10, 40, 31.6]  # 12/38 = 31.579%
    assert out.loc["Q3", ["numerator", "denominator", "value"]].tolist() == [10, 20, 36.4]  # 8/22 = 36.364%
    assert out.loc["Q1", "lower_95"] == pytest.approx(52.8)  # limits rounded like the value


def test_count_limits_come_from_the_rounded_count():
    raw = _frame([("icb", "Q1", "all", "all", 12, 0), ("icb", "Q2", "all", "all", 9, 0)], ind="ind_count")
    out = _published(raw, None).set_index("geography_code")
    assert out.loc["Q1", "value"] == 10 and out.loc["Q2", "value"] == 10
    # Byar's limits of 10 (Breslow & Day), not of the exact 12 or 9
    z = 1.959963984540054
    assert out.loc["Q1", "lower_95"] == pytest.approx(10 * (1 - 1 / 90 - z / (3 * math.sqrt(10))) ** 3)
    assert out.loc["Q1", "upper_95"] == pytest.approx(11 * (1 - 1 / 99 + z / (3 * math.sqrt(11))) ** 3)
    assert out.loc["Q2", "method"] == "byar"
    assert out.loc["Q1", "lower_95"] == out.loc["Q2", "lower_95"]


def test_a_place_with_one_pcn_is_suppressed_with_it():
    raw = _frame([
        ("icb", "Q1", "all", "all", 40, 100),
        ("place", "P1", "all", "all", 38, 90),
        ("place", "P2", "all", "all", 2, 10),  # primary
        ("pcn", "U1", "all", "all", 38, 90),
        ("pcn", "U2", "all", "all", 2, 10),
    ])  # fmt: skip
    geography = pd.DataFrame({"pcn_code": ["U1", "U2"], "place_code": ["P1", "P2"], "icb_code": "Q1"})
    out = _published(raw, geography).set_index("geography_code")["suppressed"].to_dict()
    assert out == {"Q1": out["Q1"], "P1": "secondary", "P2": "primary", "U1": "secondary", "U2": "primary"}
    assert pd.isna(out["Q1"])


def test_significance_withheld_when_the_benchmark_is_suppressed():
    raw = _frame([
        ("place", "P1", "all", "all", 30, 100),
        ("pcn", "U1", "all", "all", 2, 50),  # primary
        ("pcn", "U2", "all", "all", 28, 50),  # secondary (U1 + U2 = P1)
        ("pcn", "U2", "ethnicity_group", "White", 20, 40),  # shown, but its benchmark is U2 all
        ("pcn", "U2", "ethnicity_group", "Asian", 5, 5),  # secondary (next smallest after Black)
        ("pcn", "U2", "ethnicity_group", "Black", 3, 5),  # primary
    ])  # fmt: skip
    geography = pd.DataFrame({"pcn_code": ["U1", "U2"], "place_code": ["P1", "P1"], "icb_code": "Q1"})
    out = _published(raw, geography).set_index(["geography_code", "breakdown_value"])
    white = out.loc[("U2", "White")]
    assert pd.isna(white["suppressed"]) and white["value"] == 50.0
    assert out.loc[("U2", "Asian"), "suppressed"] == "secondary"
    assert pd.isna(white["significance_95"]) and pd.isna(white["benchmark_value"])
    assert out.loc[("P1", "all"), "significance_95"] == "similar"  # no ICB row: nothing to withhold


def test_summary_values_use_the_count_of_observations():
    raw = _frame([("icb", "Q1", "all", "all", 0, 4), ("icb", "Q2", "all", "all", 0, 6)], ind="ind_days")
    out = _published(raw, None).set_index("geography_code")
    assert out.loc["Q1", "suppressed"] == "primary"
    assert pd.isna(out.loc["Q2", "suppressed"])
    assert pd.isna(out.loc["Q2", "numerator"]) and out.loc["Q2", "denominator"] == 5
    assert out.loc["Q2", "value"] == 30.0


def test_rate_without_population_is_a_count():
    raw = _frame([("icb", "Q1", "all", "all", 12, 100)], ind="ind_rate").assign(
        denominator=np.nan, value=12.0
    )
    out = _published(raw, None)
    assert out.loc[0, "value"] == 10


def test_group_without_a_population_publishes_its_count_but_no_rate():
    """ "Not known" ethnicity has no population: the build leaves its value empty, and publishing must
    not turn the count into a figure that reads like a rate beside the others."""
    raw = _frame([("icb", "Q1", "ethnicity_group", "Not known", 1871, 100)], ind="ind_rate").assign(
        denominator=np.nan, value=np.nan
    )
    out = _published(raw, None)
    assert out.loc[0, "numerator"] == 1870
    assert np.isnan(out.loc[0, "value"]) and np.isnan(out.loc[0, "lower_95"])


def test_unknown_unit_and_duplicates_fail_loudly():
    raw = _frame([("icb", "Q1", "all", "all", 10, 20)])
    with pytest.raises(ValueError, match="no rule for unit 'furlongs'"):
        disclosure.apply_disclosure_control(raw, {"ind_pct": "furlongs"})
    with pytest.raises(ValueError, match="no unit for"):
        disclosure.apply_disclosure_control(raw, {})
    with pytest.raises(ValueError, match="duplicate rows"):
        disclosure.apply_disclosure_control(pd.concat([raw, raw]), UNITS)


def test_derived_measures_withheld_when_an_input_is_suppressed():
    cells = [
        ("icb", "Q1", "imd_quintile", str(q), n, 100)
        for q, n in zip(range(1, 6), [30, 3, 30, 30, 30], strict=True)
    ]
    cells += [("icb", "Q2", "imd_quintile", str(q), 30, 100) for q in range(1, 6)]
    cells += [("icb", g, "ethnicity_group", e, n, 100) for g in ("Q1", "Q2")
              for e, n in (("White", 40), ("Black", 20), ("Asian", 2), ("Mixed", 15))]  # fmt: skip
    published = _published(_frame(cells), None)
    summary = pd.DataFrame({
        "indicator_id": "ind_pct", "period_end": PERIOD, "geography_level": "icb",
        "geography_code": ["Q1", "Q2", "Q1", "Q1", "Q2"], "dimension": ["imd_quintile"] * 2 + ["ethnicity_group"] * 3,
        "measure": ["sii", "rii", "gap_abs", "gap_abs", "gap_ratio"], "group_value": [None, None, "Black", "Asian", "Black"],
        "value": 1.0, "lower_95": 0.5, "upper_95": 1.5, "suppressed": None,
    })  # fmt: skip
    out = disclosure.suppress_derived(summary, published)
    # Q1 quintile 2 is suppressed; Asian (2) is primary and Mixed secondary; Black vs White is shown.
    assert list(out["suppressed"].fillna("shown")) == ["derived", "shown", "shown", "derived", "shown"]
    assert out.loc[0, ["value", "lower_95", "upper_95"]].isna().all()
    assert out.loc[1, "value"] == 1.0


def test_round_half_away_from_zero():
    assert list(disclosure.round_to_base([2.5, 7.5, 12.4, 12.5, -12.5])) == [5, 10, 10, 15, -15]
    assert list(disclosure.round_half_away([0.25, 0.35, -0.25, 12.25])) == [0.3, 0.4, -0.3, 12.3]
