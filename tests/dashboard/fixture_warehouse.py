"""A small, realistic published warehouse for the dashboard tests, in the exact spec/04 schema.

The real pipeline is written in parallel, so the dashboard is tested against a file built here: the
same tables and columns as spec/04 (plus the optional `geography` lookup the dashboard uses for the
ICB -> place -> PCN drill-down), the real indicator registry as the `indicators` table, 15 months,
one ICB with two places, five PCNs plus UNMAPPED/UNKNOWN, two providers, every breakdown the
registry declares, and primary and secondary suppression applied the spec/03 way. Values are
random (seeded) but internally consistent: intervals contain the value, significance agrees with
the benchmark and the limits, suppressed rows carry no numbers.

`publish_fixture()` writes a new immutable build file and switches `current.duckdb` the way
pipelines/publish.py does (a relative symlink renamed over the old one), so tests can publish a
second build while the app is serving.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipelines.registry import load_registry

ICB = ("QWU", "Westside and Eastside ICB")
PLACES = {"WST": "Westside", "EST": "Eastside"}
# pcn code -> (name, place, relative size); U20002 is small so that its groups get suppressed
PCNS = {
    "U10001": ("Westside Central PCN", "WST", 1.0),
    "U10002": ("St Christopher PCN", "WST", 0.8),
    "U10003": ("Fourie Hill PCN", "WST", 0.5),
    "U20001": ("Eastside East PCN", "EST", 0.9),
    "U20002": ("Harbour PCN", "EST", 0.12),
    "UNMAPPED": ("Practice not in a PCN", "WST", 0.05),
    "UNKNOWN": ("No usable GP practice", None, 0.04),
}
PROVIDERS = {"RWE": ("Westside and Eastside NHS Trust", 2.5), "NWV01": ("Open Door Wellbeing (VCSE)", 0.6)}
GROUPS = {
    "ethnicity_group": ["White", "Mixed", "Asian", "Black", "Other", "Not known"],
    "age_band": ["18-25", "26-64", "65+"],
    "gender": ["Male", "Female", "Non-binary or other", "Not known"],
    "imd_quintile": ["1", "2", "3", "4", "5", "Not known"],
    "disability": ["Disabled", "Not disabled", "Not known"],
    "sexual_orientation": ["Heterosexual", "Gay or lesbian", "Bisexual", "Other", "Not known"],
    "wait_band": ["0-4 weeks", "4-18 weeks", "18-52 weeks", "52+ weeks"],
}
SHARES = {
    "ethnicity_group": [0.7, 0.04, 0.12, 0.06, 0.03, 0.05],
    "age_band": [0.18, 0.67, 0.15],
    "gender": [0.47, 0.5, 0.01, 0.02],
    "imd_quintile": [0.28, 0.24, 0.2, 0.16, 0.1, 0.02],
    "disability": [0.3, 0.6, 0.1],
    "sexual_orientation": [0.85, 0.03, 0.02, 0.01, 0.09],
    "wait_band": [0.4, 0.35, 0.17, 0.08],
}
Z95, Z998 = 1.959964, 3.090232
VALUE_COLUMNS = [
    "indicator_id", "period_end", "geography_level", "geography_code", "breakdown", "breakdown_value",
    "numerator", "denominator", "value", "lower_95", "upper_95", "lower_998", "upper_998", "method",
    "suppressed", "significance_95", "significance_998", "benchmark_value",
]  # fmt: skip


def month_ends(last: dt.date, n: int) -> list[dt.date]:
    """The `n` month ends up to and including `last` (a month end), oldest first."""
    out, y, m = [], last.year, last.month
    for _ in range(n):
        nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
        out.append(nxt - dt.timedelta(days=1))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def _geographies() -> list[tuple[str, str, float]]:
    geos = [("icb", ICB[0], 5.0)]
    geos += [("place", code, sum(s for _, p, s in PCNS.values() if p == code)) for code in PLACES]
    geos += [("pcn", code, size) for code, (_, _, size) in PCNS.items()]
    geos += [("provider", code, size) for code, (_, size) in PROVIDERS.items()]
    return geos


def _wilson(x, n, z):
    p = x / n
    centre, half = (2 * x + z**2), z * np.sqrt(z**2 + 4 * x * (1 - p))
    return 100 * (centre - half) / (2 * (n + z**2)), 100 * (centre + half) / (2 * (n + z**2))


def _byar(x, z):
    lo = x * (1 - 1 / (9 * np.maximum(x, 1)) - z / (3 * np.sqrt(np.maximum(x, 1)))) ** 3
    hi = (x + 1) * (1 - 1 / (9 * (x + 1)) + z / (3 * np.sqrt(x + 1))) ** 3
    return np.where(x == 0, 0.0, lo), hi


def _raw_rows(rng: np.random.Generator, periods: list[dt.date]) -> pd.DataFrame:
    """Unsuppressed rows for every indicator x breakdown value x geography x period (one cross join)."""
    inds = [(i.id, i.kind, i.polarity, b) for i in load_registry() for b in i.breakdowns]
    cells = pd.DataFrame(inds, columns=["indicator_id", "kind", "polarity", "breakdown"])
    groups = pd.DataFrame(
        [("all", "all", 1.0)]
        + [(d, v, s) for d in GROUPS for v, s in zip(GROUPS[d], SHARES[d], strict=True)],
        columns=["breakdown", "breakdown_value", "share"],
    )
    geos = pd.DataFrame(_geographies(), columns=["geography_level", "geography_code", "size"])
    df = cells.merge(groups, on="breakdown").merge(geos, how="cross")
    df = df.merge(pd.DataFrame({"period_end": periods, "t": np.linspace(-3, 3, len(periods))}), how="cross")
    base = pd.Series(rng.uniform(20, 80, len(cells["indicator_id"].unique())), cells["indicator_id"].unique())
    den = rng.poisson(df["share"] * 400 * df["size"] + 0.5).astype(float)
    p = np.clip((df["indicator_id"].map(base) + df["t"] + rng.normal(0, 4, len(df))) / 100, 0.02, 0.98)
    df["denominator"] = den
    df["numerator"] = rng.binomial(den.astype(int), p).astype(float)
    return df.drop(columns=["share", "size", "t"])


def _values(raw: pd.DataFrame) -> pd.DataFrame:
    """Value, limits and method by kind, from the unrounded counts."""
    df = raw.copy()
    x, n, kind = df["numerator"], df["denominator"], df["kind"]
    safe_n = n.where(n > 0)
    df["value"] = np.nan
    for col in ("lower_95", "upper_95", "lower_998", "upper_998"):
        df[col] = np.nan
    prop = kind == "proportion"
    df.loc[prop, "value"] = 100 * x / safe_n
    for z, lo, hi in ((Z95, "lower_95", "upper_95"), (Z998, "lower_998", "upper_998")):
        wl, wu = _wilson(x, safe_n, z)
        df.loc[prop, lo], df.loc[prop, hi] = wl[prop], wu[prop]
        bl, bu = _byar(x, z)
        cnt = kind == "count"
        df.loc[cnt, lo], df.loc[cnt, hi] = bl[cnt], bu[cnt]
        rate = kind == "rate"
        pop = n * 40
        df.loc[rate, lo], df.loc[rate, hi] = (bl / pop * 10_000)[rate], (bu / pop * 10_000)[rate]
        other = kind.isin(["mean", "quantile", "ratio"])
        spread = z * np.where(kind == "ratio", 0.5, 6.0) / np.sqrt(np.maximum(n, 1))
        centre = np.where(kind == "ratio", x / np.maximum(n, 1) * 2, x / np.maximum(n, 1) * 40)
        df.loc[other, "value"] = centre[other]
        df.loc[other, lo], df.loc[other, hi] = (centre - spread)[other], (centre + spread)[other]
    df.loc[kind == "count", "value"] = x
    df.loc[kind == "count", "denominator"] = np.nan
    df.loc[kind == "rate", "denominator"] = n * 40
    df.loc[kind == "rate", "value"] = x / (n * 40) * 10_000
    df.loc[kind == "quantile", "numerator"] = np.nan
    df["method"] = kind.map(
        {"proportion": "wilson", "count": "byar", "rate": "byar", "mean": "t", "quantile": "quantile_cont"}
    ).fillna("ratio")
    return df


def _significance(df: pd.DataFrame) -> pd.DataFrame:
    """PCN/place/provider vs the ICB, a group vs `all` of the same geography (spec/02)."""
    key = ["indicator_id", "period_end", "breakdown_value", "breakdown"]
    icb = df[df["geography_level"] == "icb"][key + ["value"]].rename(columns={"value": "icb_value"})
    allv = df[df["breakdown"] == "all"][["indicator_id", "period_end", "geography_level", "geography_code"]]
    allv = allv.assign(all_value=df.loc[df["breakdown"] == "all", "value"].to_numpy())
    df = df.merge(icb, on=key, how="left").merge(
        allv, on=["indicator_id", "period_end", "geography_level", "geography_code"], how="left"
    )
    group_row = df["breakdown"] != "all"
    df["benchmark_value"] = np.where(group_row, df["all_value"], df["icb_value"])
    df.loc[(df["geography_level"] == "icb") & ~group_row, "benchmark_value"] = np.nan
    for level, lo, hi in (("95", "lower_95", "upper_95"), ("998", "lower_998", "upper_998")):
        b = df["benchmark_value"]
        sig = np.select([b < df[lo], b > df[hi]], ["higher", "lower"], "similar")
        pol = df["polarity"]
        sig = np.where((pol == "high") & (sig == "higher"), "better", sig)
        sig = np.where((pol == "high") & (sig == "lower"), "worse", sig)
        sig = np.where((pol == "low") & (sig == "higher"), "worse", sig)
        sig = np.where((pol == "low") & (sig == "lower"), "better", sig)
        df[f"significance_{level}"] = np.where(b.isna() | df[lo].isna(), None, sig)
    return df


def _suppress(df: pd.DataFrame) -> pd.DataFrame:
    """Primary (< 5) then secondary (next smallest of a set with exactly one primary), then round to 5."""
    small = (df["numerator"] < 5) | (df["denominator"] < 5)
    df["suppressed"] = np.where(small, "primary", None)
    sets = ["indicator_id", "period_end", "geography_level", "geography_code", "breakdown"]
    groups = df[df["breakdown"] != "all"]
    n_primary = (groups["suppressed"] == "primary").groupby([groups[c] for c in sets]).transform("sum")
    candidates = groups[(n_primary == 1) & groups["suppressed"].isna()]
    size = candidates["numerator"].fillna(candidates["denominator"])
    secondary = size.groupby([candidates[c] for c in sets]).idxmin().dropna().astype(int)
    df.loc[secondary.to_numpy(), "suppressed"] = "secondary"
    hidden = df["suppressed"].notna()
    cols = ["numerator", "denominator", "value", "lower_95", "upper_95", "lower_998", "upper_998"]
    df.loc[hidden, cols] = np.nan
    df.loc[hidden, ["significance_95", "significance_998"]] = None
    for col in ("numerator", "denominator"):
        df[col] = np.sign(df[col]) * np.floor(np.abs(df[col]) / 5 + 0.5) * 5
    return df


def _inequality(values: pd.DataFrame) -> pd.DataFrame:
    """SII/RII across IMD quintiles and reference-group gaps, withheld when an input is suppressed."""
    refs = {"ethnicity_group": "White", "age_band": "26-64", "imd_quintile": "5", "gender": "Female"}
    keys = ["indicator_id", "period_end", "geography_level", "geography_code"]
    g = values[values["breakdown"].isin(list(refs)) & (values["breakdown_value"] != "Not known")]
    g = g.assign(ref=g["breakdown"].map(refs))
    ref = g[g["breakdown_value"] == g["ref"]][[*keys, "breakdown", "value", "lower_95", "upper_95"]]
    m = g[g["breakdown_value"] != g["ref"]].merge(ref, on=[*keys, "breakdown"], suffixes=("", "_ref"))
    bad = m["value"].isna() | m["value_ref"].isna()
    half = (m["upper_95"] - m["lower_95"]) / 2 + (m["upper_95_ref"] - m["lower_95_ref"]) / 2
    base = m[keys].assign(dimension=m["breakdown"], group_value=m["breakdown_value"])
    base["suppressed"] = np.where(bad, "primary", None)
    gap = base.assign(measure="gap_abs", value=m["value"] - m["value_ref"], half=half)
    ratio = base.assign(
        measure="gap_ratio", value=m["value"] / m["value_ref"].where(m["value_ref"] != 0), half=0.1
    )
    q = values[(values["breakdown"] == "imd_quintile") & (values["breakdown_value"] != "Not known")]
    wide = (
        q.set_index([*keys, "breakdown_value"])["value"].unstack().reindex(columns=["1", "2", "3", "4", "5"])
    )
    x = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    y = wide.to_numpy(dtype=float)
    slope = ((y - y.mean(axis=1, keepdims=True)) * (x - x.mean())).sum(axis=1) / ((x - x.mean()) ** 2).sum()
    intercept = y.mean(axis=1) - slope * x.mean()
    idx = wide.index.to_frame(index=False).assign(dimension="imd_quintile", group_value=None)
    idx["suppressed"] = np.where(np.isnan(slope), "primary", None)
    sii = idx.assign(measure="sii", value=slope, half=4.0)
    rii = idx.assign(
        measure="rii", value=(intercept + slope) / np.where(intercept == 0, np.nan, intercept), half=0.1
    )
    out = pd.concat([gap, ratio, sii, rii], ignore_index=True)
    out.loc[out["suppressed"].notna(), "value"] = np.nan
    out["lower_95"], out["upper_95"] = out["value"] - out["half"], out["value"] + out["half"]
    return out[[*keys, "dimension", "measure", "group_value", "value", "lower_95", "upper_95", "suppressed"]]


def build_frames(last_period: dt.date = dt.date(2026, 10, 31), months: int = 15, seed: int = 42):
    """All published tables as DataFrames (exposed so tests can compare against them directly)."""
    rng = np.random.default_rng(seed)
    periods = month_ends(last_period, months)
    values = _suppress(_significance(_values(_raw_rows(rng, periods))))[VALUE_COLUMNS]
    values = values.sort_values(["indicator_id", "geography_level", "geography_code", "period_end"])
    geography = [("icb", ICB[0], ICB[1], None, None)]
    geography += [("place", c, n, "icb", ICB[0]) for c, n in PLACES.items()]
    geography += [("pcn", c, n, "place" if p else "icb", p or ICB[0]) for c, (n, p, _) in PCNS.items()]
    geography += [("provider", c, n, "icb", ICB[0]) for c, (n, _) in PROVIDERS.items()]
    geo = pd.DataFrame(
        geography,
        columns=["geography_level", "geography_code", "geography_name", "parent_level", "parent_code"],
    )
    load_report = pd.DataFrame(
        [
            (1500 + i, t, f"{p:%Y-%m}/{t}.csv", 1000 + i, 990 + i - 3 * (t == "MHS201CareContact"), 3 * (
                t == "MHS201CareContact"), 10, 4, "ok" if t != "MHS201CareContact" else "warning", None)
            for i, p in enumerate(periods)
            for t in ("MHS001MPI", "MHS101Referral", "MHS201CareContact")
        ],
        columns=["month", "table", "file", "rows_read", "rows_loaded", "rows_rejected", "rows_superseded",
                 "rows_out_of_scope", "status", "message"],
    )  # fmt: skip
    return {
        "indicator_values": values,
        "inequality_summary": _inequality(values),
        "indicators": load_registry().to_frame(),
        "geography": geo,
        "load_report": load_report,
        "periods": periods,
    }


def publish_fixture(
    warehouse: str | Path,
    *,
    last_period: dt.date = dt.date(2026, 10, 31),
    months: int = 15,
    seed: int = 42,
    built_at: dt.datetime | None = None,
) -> str:
    """Write a new immutable build under `<warehouse>/builds/`, switch current.duckdb to it; return its id."""
    warehouse = Path(warehouse)
    (warehouse / "builds").mkdir(parents=True, exist_ok=True)
    built_at = built_at or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    frames = build_frames(last_period, months, seed)
    build_id = f"data_{last_period:%Y-%m}_{built_at:%Y%m%dT%H%M%SZ}_s{seed}"
    target = warehouse / "builds" / f"{build_id}.duckdb"
    tmp = target.with_name(f".tmp_{build_id}.duckdb")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for name in ("indicator_values", "inequality_summary", "indicators", "geography", "load_report"):
            con.register("frame", frames[name])
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
        con.execute(
            "CREATE TABLE build_info AS SELECT $build_id AS build_id, $built_at::TIMESTAMP AS built_at, "
            "'sha256:fixture' AS data_hash, 'test' AS code_version, $first::DATE AS first_period, "
            "$last::DATE AS last_period, 123456::BIGINT AS rows_loaded, 42::BIGINT AS rows_rejected, "
            "7::BIGINT AS rows_superseded",
            {"build_id": build_id, "built_at": built_at, "first": frames["periods"][0], "last": last_period},
        )
    finally:
        con.close()
    os.replace(tmp, target)
    link = warehouse / f".current.{os.getpid()}.tmp"
    link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, warehouse), link)
    os.replace(link, warehouse / "current.duckdb")
    return build_id
