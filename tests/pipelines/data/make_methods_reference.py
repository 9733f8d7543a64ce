"""Regenerate the reference values that tests/pipelines/test_methods.py checks pipelines/methods.py against.

Every expected value here comes from outside our code: figures published by PHEindicatormethods
(its vignettes and test data, transcribed below with their source), or computed with statsmodels
and scipy, which implement the same statistics independently. This script never imports
``pipelines``. Run from the repository root:

    .venv/bin/python tests/pipelines/data/make_methods_reference.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

HERE = Path(__file__).parent
ALPHA = {0.95: 0.05, 0.998: 0.002}
VIGNETTE = "PHEindicatormethods Introduction vignette (phe_proportion/phe_rate output, CRAN build)"
FUNNEL = "PHEindicatormethods tests/testthat/testdata_funnel_prop_outputs.csv (baseline 80.642448%)"
SII_VIGNETTE = "PHEindicatormethods WorkedExamples_phe_sii vignette, DSR_data rate example (1e5 reps)"

# (x, n, multiplier, level, value, lower, upper) as printed by phe_rate / phe_proportion.
PHE_RATES = [
    (27, 106, 100_000, 0.95, 25471.70, 16782.04, 37061.41),
    (22, 113, 100_000, 0.95, 19469.03, 12196.90, 29477.68),
    (80, 150, 100_000, 0.95, 53333.33, 42288.58, 66378.77),
    (89, 101, 100_000, 0.95, 88118.81, 70764.64, 108438.96),
    (27, 106, 100, 0.998, 25.47170, 12.926737, 44.59202),
    (22, 113, 100, 0.998, 19.46903, 9.074329, 36.05431),
    (85, 196, 100, 0.998, 43.36735, 30.260955, 59.97329),
]
PHE_PROPORTIONS = [
    (27, 106, 0.95, 0.1813642, 0.3452262),
    (22, 113, 0.95, 0.1322333, 0.2772229),
    (89, 101, 0.95, 0.8037295, 0.9307128),
    (27, 106, 0.998, 0.1481031, 0.4018735),
    (84, 122, 0.998, 0.5493185, 0.8003596),
]
# Population, Lower2s0025limit, Upper2s0025limit, Lower3s0001limit, Upper3s0001limit (percent)
PHE_FUNNEL = [
    (1, 3.204264, 100, 0, 100),
    (3, 35.933491, 100, 10.150815, 100),
    (18, 62.390093, 98.894803, 51.864359, 100),
    (41, 68.548635, 92.73626, 61.574398, 99.710497),
    (539, 77.306949, 83.977947, 75.38344, 85.901456),
    (110000, 80.408963, 80.875933, 80.274317, 81.010578),
]
FUNNEL_BASELINE = 0.80642448
# DSR_data (tests/testthat/DSR_testdata.csv): Period, Quintile, total_pop, value, lowercl, uppercl
PHE_SII_INPUT = """2010,1,1434002,150.2200205,147.3194185,153.1498241
2010,2,1450590,131.0221747,128.3676972,133.7051129
2010,3,1453827,127.4954973,125.0421198,129.975513
2010,4,1440980,130.494241,128.2469515,132.7657553
2010,5,1457780,135.4664241,133.2469515,137.8657553
2011,1,1445258,148.4061234,145.5359227,151.3052827
2011,2,1467772,131.7211691,129.0779928,134.3924424
2011,3,1470806,125.0341288,122.6267941,127.4677057
2011,4,1454888,130.3084574,128.0909634,132.549757
2011,5,1457780,135.4664241,133.2469515,137.8657553
2015,1,1508923,143.8177637,141.0941843,146.568661
2015,2,1538008,127.2058426,124.7351196,129.7026732
2015,3,1538564,122.4106945,120.1654081,124.6801651
2015,4,1509602,126.3922397,124.3450367,128.4613495
2015,5,1457780,135.4664241,133.2469515,137.8657553"""
# Period: sii, rii, sii_lower95, sii_upper95, rii_lower95, rii_upper95 (log transform)
PHE_SII_OUTPUT = {
    2010: (-14.03684, 0.9010655, -17.95990, -10.126662, 0.8752420, 0.9275826),
    2011: (-12.83196, 0.9086641, -16.72001, -8.917710, 0.8827020, 0.9355915),
    2015: (-8.53077, 0.9368534, -12.23824, -4.816133, 0.9106841, 0.9638401),
}


def scalar_cases() -> pd.DataFrame:
    rows = []

    def add(method, level, source, tol, **kw):
        rows.append({"method": method, "level": level, "source": source, "rel_tol": tol, **kw})

    for x, n, level, lo, up in PHE_PROPORTIONS:
        add("wilson", level, VIGNETTE, 2e-6, x=x, n=n, expected_lower=lo, expected_upper=up)
    for x, n in [(0, 10), (10, 10), (1, 1), (3, 7), (0, 1), (250, 1000), (999, 1000), (4, 4000)]:
        for level, alpha in ALPHA.items():
            lo, up = proportion_confint(x, n, alpha=alpha, method="wilson")
            add("wilson", level, "statsmodels proportion_confint(method='wilson')", 1e-9,
                x=x, n=n, expected_lower=lo, expected_upper=up, abs_tol=1e-15)  # fmt: skip
    add("wilson", 0.95, "definition: n = 0 has no interval", 0, x=0, n=0)

    for x, n, mult, level, value, lo, up in PHE_RATES:
        add("rate", level, VIGNETTE, 2e-6, x=x, n=n, multiplier=mult,
            expected_value=value, expected_lower=lo, expected_upper=up)  # fmt: skip
    for x in range(0, 10):  # exact Poisson below 10
        for level, alpha in ALPHA.items():
            lo = stats.chi2.ppf(alpha / 2, 2 * x) / 2 if x else 0.0
            up = stats.chi2.ppf(1 - alpha / 2, 2 * x + 2) / 2
            add("rate", level, "scipy.stats.chi2.ppf exact Poisson", 1e-9, x=x, n=1000, multiplier=1000,
                expected_value=x, expected_lower=lo, expected_upper=up)  # fmt: skip

    rng = np.random.default_rng(7)
    for size in (2, 3, 12, 60):
        sample = rng.normal(0.4, 1.3, size)
        d = DescrStatsW(sample)
        for level, alpha in ALPHA.items():
            lo, up = d.tconfint_mean(alpha=alpha)
            add("t", level, "statsmodels DescrStatsW.tconfint_mean", 1e-7, mean=d.mean, sd=d.std_mean * np.sqrt(size),
                n=size, expected_lower=lo, expected_upper=up)  # fmt: skip
    add("t", 0.95, "definition: n < 2 has no interval", 0, mean=1.0, sd=0.0, n=1)

    for n, lo95, up95, lo998, up998 in PHE_FUNNEL:
        for level, lo, up in ((0.95, lo95, up95), (0.998, lo998, up998)):
            add("funnel_proportion", level, FUNNEL, 0, n=n, pooled=FUNNEL_BASELINE,
                expected_lower=lo / 100, expected_upper=up / 100, abs_tol=1e-8)  # fmt: skip

    for rate, n in [(35.0, 2000), (35.0, 80_000), (2.0, 1500), (120.0, 10_000)]:
        expected = rate * n / 10_000
        for level, alpha in ALPHA.items():
            lo = stats.gamma.ppf(alpha / 2, expected) * 10_000 / n
            up = stats.gamma.ppf(1 - alpha / 2, expected + 1) * 10_000 / n
            add("funnel_rate", level, "scipy.stats.gamma.ppf (Poisson-gamma duality)", 1e-6, n=n, pooled=rate,
                multiplier=10_000, expected_lower=lo, expected_upper=up, abs_tol=1e-8)  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.insert(0, "case", [f"{r.method}-{i:03d}" for i, r in enumerate(frame.itertuples())])
    return frame


def sii_cases() -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = ["group", "quintile", "population", "value", "lower_95", "upper_95"]
    phe = pd.DataFrame([line.split(",") for line in PHE_SII_INPUT.splitlines()], columns=cols).astype(float)
    phe["group"] = "phe_" + phe["group"].astype(int).astype(str)
    phe["denominator"] = phe["population"]
    expected = []
    for period, (s, r, slo, sup, rlo, rup) in PHE_SII_OUTPUT.items():
        expected.append({"group": f"phe_{period}", "transform": "log", "sii": s, "rii": r, "point_rel_tol": 2e-6,
                         "sii_lower_95": slo, "sii_upper_95": sup, "rii_lower_95": rlo, "rii_upper_95": rup,
                         "limit_rel_tol": 0.05, "source": SII_VIGNETTE})  # fmt: skip

    # Untransformed fits: point values by statsmodels WLS (y ~ 1 + rank, weights = population
    # share, equivalent to phe_sii's y√a ~ √a + b√a); the SII is linear in the quantile values, so
    # its simulated limits converge to SII ± z·√Σ(cᵢ·seᵢ)² with c found by refitting.
    plain = phe.assign(group=phe["group"].str.replace("phe_", "plain_"))
    rng = np.random.default_rng(11)
    synth = []
    for g in range(3):
        pop = rng.integers(200, 5000, 5).astype(float)
        value = np.sort(rng.uniform(20, 60, 5))[:: 1 if g % 2 else -1]
        half = rng.uniform(1, 6, 5)
        synth.append(pd.DataFrame({"group": f"synth_{g}", "quintile": range(1, 6), "population": pop, "value": value,
                                   "lower_95": value - half, "upper_95": value + half, "denominator": pop}))  # fmt: skip
    plain = pd.concat([plain, *synth], ignore_index=True)
    for group, d in plain.groupby("group", sort=True):
        d = d.sort_values("quintile")
        a = d["population"].to_numpy() / d["population"].sum()
        b = np.cumsum(a) - a / 2
        design = sm.add_constant(b)

        def fit(y, design=design, a=a):
            return sm.WLS(y, design, weights=a).fit().params

        y = d["value"].to_numpy()
        y0, slope = fit(y)
        se = (d["upper_95"].to_numpy() - d["lower_95"].to_numpy()) / (2 * stats.norm.ppf(0.975))
        c = np.array([fit(y + np.eye(5)[i])[1] - slope for i in range(5)])
        sd = np.sqrt(np.sum((c * se) ** 2))
        expected.append({"group": group, "transform": "none", "sii": slope, "rii": (y0 + slope) / y0, "intercept": y0,
                         "point_rel_tol": 1e-9, "sii_lower_95": slope - stats.norm.ppf(0.975) * sd, "sii_upper_95": slope + stats.norm.ppf(0.975) * sd,
                         "sii_lower_998": slope - stats.norm.ppf(0.999) * sd, "sii_upper_998": slope + stats.norm.ppf(0.999) * sd,
                         "limit_rel_tol": 0.05, "source": "statsmodels WLS; normal limits of a linear estimator"})  # fmt: skip

    # Groups that must not get an SII: a quintile below the denominator floor of 10, a quintile
    # with no population, a missing quintile.
    base = plain[plain["group"] == "synth_0"]
    edge = [
        base.assign(group="edge_small_denominator", denominator=[50, 50, 9, 50, 50]),
        base.assign(group="edge_zero_population", population=[0, 300, 300, 300, 300]),
        base[base["quintile"] != 3].assign(group="edge_missing_quintile"),
    ]
    for e in edge:
        expected.append({"group": e["group"].iloc[0], "transform": "none", "point_rel_tol": 0, "limit_rel_tol": 0,
                         "source": "spec/02: all five quintiles need a denominator of at least 10"})  # fmt: skip
    inputs = pd.concat(
        [
            phe.assign(transform="log"),
            plain.assign(transform="none"),
            *[e.assign(transform="none") for e in edge],
        ]
    )
    return inputs, pd.DataFrame(expected)


def dsr_cases() -> tuple[pd.DataFrame, pd.DataFrame]:
    esp = pd.read_csv(HERE.parents[2] / "pipelines" / "data" / "esp2013.csv")
    rng = np.random.default_rng(3)
    frames = []
    for group, scale in (("large", 1.0), ("medium", 0.05), ("tiny", 0.002)):
        pop = rng.integers(2000, 20000, len(esp)).astype(float)
        count = rng.poisson(pop * 0.004 * scale).astype(float)
        frames.append(pd.DataFrame({"group": group, "age_band": esp["age_band"], "count": count, "population": pop,
                                    "standard_population": esp["standard_population"]}))  # fmt: skip
    inputs = pd.concat(frames, ignore_index=True)
    # A stratum with no population and no events contributes nothing.
    inputs.loc[(inputs["group"] == "medium") & (inputs["age_band"] == "90+"), ["count", "population"]] = 0
    out = []
    for group, d in inputs.groupby("group", sort=True):
        x, n, w = (d[c].to_numpy() for c in ("count", "population", "standard_population"))
        keep = n > 0
        rate = np.sum(w[keep] * x[keep] / n[keep]) / w.sum()
        var = np.sum(w[keep] ** 2 * x[keep] / n[keep] ** 2) / w.sum() ** 2
        obs = x.sum()
        row = {"group": group, "total_count": obs, "total_pop": n.sum(),
               "source": "Dobson et al. 1991 (as in PHEindicatormethods calculate_dsr), evaluated with scipy.stats"}  # fmt: skip
        if obs >= 10:
            row["value"] = rate * 100_000
            for level, tag in ((0.95, "95"), (0.998, "998")):
                z = stats.norm.ppf(0.5 + level / 2)
                o_l = obs * (1 - 1 / (9 * obs) - z / (3 * np.sqrt(obs))) ** 3  # Byar, Breslow & Day 1987
                o_u = (obs + 1) * (1 - 1 / (9 * (obs + 1)) + z / (3 * np.sqrt(obs + 1))) ** 3
                row[f"lower_{tag}"] = (rate + np.sqrt(var / obs) * (o_l - obs)) * 100_000
                row[f"upper_{tag}"] = (rate + np.sqrt(var / obs) * (o_u - obs)) * 100_000
        out.append(row)
    return inputs, pd.DataFrame(out)


def main() -> None:
    header = "# Reference values for tests/pipelines/test_methods.py; written by make_methods_reference.py\n"
    frames = {"methods_reference.csv": scalar_cases()}
    frames["sii_reference_inputs.csv"], frames["sii_reference_expected.csv"] = sii_cases()
    frames["dsr_reference_inputs.csv"], frames["dsr_reference_expected.csv"] = dsr_cases()
    for name, frame in frames.items():
        with open(HERE / name, "w") as fh:
            fh.write(header)
            frame.to_csv(fh, index=False, float_format="%.12g")


if __name__ == "__main__":
    main()
