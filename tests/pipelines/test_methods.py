"""pipelines/methods.py against reference values computed outside our code.

The CSVs in tests/pipelines/data/ hold published PHEindicatormethods figures and values from
statsmodels/scipy; each row names its source. make_methods_reference.py rebuilds them.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import methods

DATA = Path(__file__).parent / "data"


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, comment="#")


SCALAR = _read("methods_reference.csv")
SII_IN = _read("sii_reference_inputs.csv")
SII_OUT = _read("sii_reference_expected.csv")
DSR_IN = _read("dsr_reference_inputs.csv")
DSR_OUT = _read("dsr_reference_expected.csv")


def _close(got: float, want: float, rel: float, abs_: float = 0.0) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


def _compute(row: pd.Series) -> dict[str, float]:
    level = row["level"]
    if row["method"] == "wilson":
        lo, up = methods.wilson(row["x"], row["n"], level)
        return {"expected_lower": lo, "expected_upper": up}
    if row["method"] == "rate":
        value, lo, up = methods.rate_limits(row["x"], row["n"], row["multiplier"], level)
        return {"expected_value": value, "expected_lower": lo, "expected_upper": up}
    if row["method"] == "t":
        lo, up = methods.t_interval(row["mean"], row["sd"], row["n"], level)
        return {"expected_lower": lo, "expected_upper": up}
    if row["method"] == "funnel_proportion":
        lo, up = methods.funnel_proportion_limits(row["pooled"], row["n"], level)
        return {"expected_lower": lo, "expected_upper": up}
    if row["method"] == "funnel_rate":
        lo, up = methods.funnel_rate_limits(row["pooled"], row["n"], row["multiplier"], level)
        return {"expected_lower": lo, "expected_upper": up}
    raise AssertionError(f"unknown method {row['method']}")


@pytest.mark.parametrize("case", SCALAR.to_dict("records"), ids=list(SCALAR["case"]))
def test_against_reference(case):
    row = pd.Series(case)
    got = _compute(row)
    abs_tol = 0.0 if pd.isna(row.get("abs_tol")) else row["abs_tol"]
    for column, value in got.items():
        want = row[column]
        got_f = float(np.asarray(value).item())
        assert _close(got_f, want, row["rel_tol"], abs_tol), f"{column}: {got_f} != {want} ({row['source']})"


def test_reference_covers_every_method_and_edge_case():
    assert set(SCALAR["method"]) == {"wilson", "rate", "t", "funnel_proportion", "funnel_rate"}
    wilson = SCALAR[SCALAR["method"] == "wilson"]
    assert {(0, 10), (10, 10), (0, 0)} <= set(zip(wilson["x"], wilson["n"], strict=True))
    assert set(SCALAR.loc[SCALAR["method"] == "rate", "x"]) >= set(range(10)) | {22, 27, 80}


def test_vectorised_matches_scalar():
    rates = SCALAR[SCALAR["method"] == "rate"]
    for level, part in rates.groupby("level"):
        value, lo, up = methods.rate_limits(part["x"], part["n"], part["multiplier"].to_numpy(), level)
        np.testing.assert_allclose(lo, part["expected_lower"], rtol=2e-6)
        np.testing.assert_allclose(up, part["expected_upper"], rtol=2e-6)


def test_byar_switches_at_ten():
    lo, up = methods.poisson_count_limits([9, 10])
    byar_lo, byar_up = methods.byar([9, 10])
    exact_lo, exact_up = methods.exact_poisson([9, 10])
    assert (lo[0], up[0]) == (exact_lo[0], exact_up[0])
    assert (lo[1], up[1]) == (byar_lo[1], byar_up[1])
    assert list(methods.count_method([9, 10])) == ["exact_poisson", "byar"]


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError, match="need 0 <= x <= n"):
        methods.wilson([5], [4])


def test_z_constants_are_the_specs():
    assert methods.z_for(0.95) == pytest.approx(1.959964, abs=5e-7)
    assert methods.z_for(0.998) == pytest.approx(3.090232, abs=5e-7)


@pytest.mark.parametrize(
    ("benchmark", "lower", "upper", "polarity", "want"),
    [
        (10.0, 11.0, 14.0, "none", "higher"),
        (10.0, 11.0, 14.0, "high", "better"),
        (10.0, 11.0, 14.0, "low", "worse"),
        (15.0, 11.0, 14.0, "high", "worse"),
        (15.0, 11.0, 14.0, "low", "better"),
        (15.0, 11.0, 14.0, "none", "lower"),
        (11.0, 11.0, 14.0, "high", "similar"),  # on the limit is not significant
        (float("nan"), 11.0, 14.0, "high", None),
    ],
)
def test_significance(benchmark, lower, upper, polarity, want):
    assert methods.significance([benchmark], [lower], [upper], polarity)[0] == want


def test_significance_polarity_per_row():
    got = methods.significance(
        [1, 1, 1], [2, 2, 2], [3, 3, 3], np.array(["high", "low", "none"], dtype=object)
    )
    assert list(got) == ["better", "worse", "higher"]


def test_reference_gap():
    gap = methods.reference_gap([30, 12], [25, 8], [35, 16], [20, 10], [18, 7], [22, 13])
    assert list(gap["gap_abs"]) == [10, 2]
    assert list(gap["gap_ratio"]) == [1.5, 1.2]
    assert list(gap["significant"]) == [True, False]
    # MOVER: 10 - sqrt(5² + 2²) and 10 + sqrt(5² + 2²)
    assert gap["gap_abs_lower_95"][0] == pytest.approx(10 - math.sqrt(29))
    assert gap["gap_abs_upper_95"][0] == pytest.approx(10 + math.sqrt(29))


@pytest.mark.parametrize("expected", SII_OUT.to_dict("records"), ids=list(SII_OUT["group"]))
def test_sii(expected):
    data = SII_IN[SII_IN["group"] == expected["group"]]
    transform = None if expected["transform"] == "none" else expected["transform"]
    got = methods.sii(data, ["group"], draws=50_000, transform=transform).iloc[0]
    for column in ("sii", "rii", "intercept"):
        if column in expected and not pd.isna(expected[column]):
            assert got[column] == pytest.approx(expected[column], rel=expected["point_rel_tol"]), column
    if pd.isna(expected["sii"]):
        assert got.drop("group").isna().all()
        return
    for column in [c for c in expected if c.startswith(("sii_", "rii_"))]:
        if pd.isna(expected[column]):
            continue
        point = expected[column.split("_")[0]]
        tolerance = expected["limit_rel_tol"] * abs(expected[column] - point)
        assert got[column] == pytest.approx(expected[column], abs=tolerance), column


def test_sii_rank_zero_is_most_deprived():
    # Values rising from quintile 1 (most deprived) to 5: the least deprived end is higher.
    data = pd.DataFrame({"g": "a", "quintile": ["1", "2", "3", "4", "5", "Not known"],
                         "value": [10, 20, 30, 40, 50, 99], "lower_95": [9, 19, 29, 39, 49, 98],
                         "upper_95": [11, 21, 31, 41, 51, 100], "population": [100] * 6,
                         "denominator": [100] * 6})  # fmt: skip
    got = methods.sii(data, ["g"]).iloc[0]
    assert got["sii"] == pytest.approx(50)  # equal shares: ranks 0.1 … 0.9, slope 10 per 0.2
    assert got["intercept"] == pytest.approx(5)
    assert got["rii"] == pytest.approx(11)
    assert (
        got["sii_lower_998"] < got["sii_lower_95"] < got["sii"] < got["sii_upper_95"] < got["sii_upper_998"]
    )


def test_rii_needs_a_positive_value_at_the_most_deprived_end():
    # Equal shares, ranks 0.1 ... 0.9. "negative": values 0 … 40 fit Y = -5 + 50 b, so Y₀ = -5 and
    # (Y₀ + SII) / Y₀ = -9 would read as a ratio. "near_zero": 5 … 45 fit Y₀ = 0 + … exactly 0.
    # "wide": Y₀ = 5 but each quintile's SE ≈ 10, so many draws put Y₀ below zero. "clear": Y₀ = 5,
    # SE ≈ 0.5, no draw anywhere near zero.
    rows = []
    for group, values, half_width in (
        ("negative", [0, 10, 20, 30, 40], 1),
        ("near_zero", [5, 15, 25, 35, 45], 1),
        ("wide", [10, 20, 30, 40, 50], 20),
        ("clear", [10, 20, 30, 40, 50], 1),
    ):
        for q, v in enumerate(values, start=1):
            rows.append({"g": group, "quintile": str(q), "value": v, "lower_95": v - half_width,
                         "upper_95": v + half_width, "population": 100, "denominator": 100})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero on the way
        got = methods.sii(pd.DataFrame(rows), ["g"]).set_index("g")
    rii_limits = ["rii_lower_95", "rii_upper_95", "rii_lower_998", "rii_upper_998"]
    assert got.loc["negative", "intercept"] == pytest.approx(-5)
    assert got.loc["near_zero", "intercept"] == pytest.approx(0, abs=1e-9)
    for group in ("negative", "near_zero"):
        assert np.isnan(got.loc[group, "rii"]) and got.loc[group, rii_limits].isna().all(), group
        assert got.loc[group, "sii"] == pytest.approx(50), "the SII is defined whatever Y₀"
    assert got.loc["wide", "rii"] == pytest.approx(11) and got.loc["wide", rii_limits].isna().all()
    assert got.loc["wide", ["sii_lower_95", "sii_upper_95"]].notna().all()
    assert got.loc["clear", "rii"] == pytest.approx(11)
    assert got.loc["clear", "rii_lower_95"] < 11 < got.loc["clear", "rii_upper_95"]


def test_sii_is_seeded_and_batch_independent():
    data = SII_IN[SII_IN["transform"] == "none"]
    a = methods.sii(data, ["group"])
    b = methods.sii(data, ["group"], batch=2)
    pd.testing.assert_frame_equal(a, b)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"uint{a.dtype.itemsize * 8}")


@pytest.mark.parametrize("case", ["normal", "skewed", "ties", "nan_inf_constant", "float64", "short_rows"])
def test_order_statistics_are_np_partition_bit_for_bit(case):
    # The tail shortcut must give exactly np.partition's numbers (the published limits are compared
    # byte for byte between builds), including the rows it hands back to a whole-row partition.
    rng = np.random.default_rng(7)
    width = 300 if case == "short_rows" else 10_000
    x = rng.standard_normal((400, width)) * rng.random((400, 1)) * 5 + rng.standard_normal((400, 1))
    if case == "skewed":  # a ratio of draws, like the simulated RII: a long upper tail
        x = x / (0.02 + rng.random(x.shape))
    if case == "ties":
        x = np.round(x, 1)
    if case == "nan_inf_constant":
        x[3, 17] = np.nan
        x[4, : width // 2] = -np.inf
        x[5] = 2.5
        x[6, 5000:] = np.inf
    x = x.astype("float64" if case == "float64" else "float32")
    ks = [k for level in methods.LEVELS for k in methods._order_stat_positions(width, level)]
    np.testing.assert_array_equal(
        _bits(methods.order_statistics(x, ks)), _bits(np.partition(x, ks, axis=1)[:, ks])
    )


def test_sii_simulates_limits_only_for_the_groups_asked():
    data = SII_IN[SII_IN["transform"] == "none"].copy()
    everything = methods.sii(data, ["group"]).set_index("group")
    limits = [c for c in everything.columns if c.startswith(("sii_", "rii_"))]
    points = ["sii", "rii", "intercept"]
    skip = everything.index[everything["sii_lower_95"].notna()][0]  # a group that has limits
    rest = everything.index.drop(skip)
    data["keep"] = data["group"] != skip
    data.loc[data["group"] == skip, "keep"] = [True] * 4 + [False] * (int((data["group"] == skip).sum()) - 4)
    some = methods.sii(data, ["group"], simulate="keep").set_index("group")
    assert not some.loc[skip, "simulated"]
    assert (
        some.loc[rest, "simulated"] == everything.loc[rest, "sii"].notna()
    ).all()  # every group with an SII
    some = some.drop(columns="simulated")
    pd.testing.assert_frame_equal(some.loc[rest], everything.loc[rest])
    pd.testing.assert_series_equal(some.loc[skip, points], everything.loc[skip, points])
    assert some.loc[skip, limits].isna().all()  # one quintile not flagged: no limits


def test_dsr():
    got = methods.dsr(DSR_IN, ["group"]).set_index("group")
    want = DSR_OUT.set_index("group")
    for column in ("total_count", "total_pop", "value", "lower_95", "upper_95", "lower_998", "upper_998"):
        np.testing.assert_allclose(got[column], want.loc[got.index, column], rtol=1e-9, err_msg=column)
    assert np.isnan(got.loc["tiny", "value"])  # PHE: fewer than 10 events, no DSR


def test_esp2013_weights():
    esp = methods.load_esp2013()
    assert len(esp) == 19 and esp.sum() == 100_000
    assert esp["0-4"] == 5000 and esp["90+"] == 1000
