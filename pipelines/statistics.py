"""Apply the statistical methods to every row of `indicator_values_raw` and build `inequality_summary`.

The SQL build produces counts (numerator, denominator, value; `sd`/`n` for means). This module adds
what spec/02 "Statistical methods" asks of each row — limits by the registry's method, the benchmark
value and significance against it — derives the representation ratio from the access rate, and
computes the inequality measures (SII/RII across IMD quintiles; absolute and ratio gaps against each
dimension's reference group). Everything is column arithmetic over the whole table (pipelines.methods
is vectorised), so the cost grows with rows, not with Python loops.

Benchmarks (spec/02): a group is compared with the `all` row of the same geography; a PCN or place
(breakdown `all`) with its ICB; a provider with the pooled value of all providers in the warehouse
(spec/02's "all-provider value": Σ numerators ÷ Σ denominators). ICB rows have no benchmark. The
pseudo-PCNs UNMAPPED and UNKNOWN are compared with their ICB: with one ICB that is the only one, and
with several each ICB has its own (UNMAPPED-<icb>, UNKNOWN-<icb>, listed in `geography`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import methods
from pipelines.disclosure import withhold
from pipelines.registry import Registry

KEY = ["indicator_id", "period_end", "geography_level", "geography_code"]
LIMITS = ["lower_95", "upper_95", "lower_998", "upper_998"]
SII_INDICATOR_KINDS = ("proportion", "rate")


def _lookup(ids: pd.Series, values: dict) -> np.ndarray:
    """`values[id]` for every row (object array; None for an unknown id).

    Looked up once per distinct id and spread by the factorize codes: mapping ~400,000 pyarrow
    strings through a dict costs a tenth of a second per call, this a hundredth."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=False)
    return np.array([values.get(u) for u in uniques], dtype=object)[codes]


def _meta(raw: pd.DataFrame, registry: Registry, attr: str) -> np.ndarray:
    return _lookup(raw["indicator_id"], {i.id: getattr(i, attr) for i in registry})


def add_limits(raw: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """Limits and the per-row `method` for every row, by the indicator's registry method."""
    df = raw.copy()
    kind = _meta(df, registry, "kind")
    mult = _meta(df, registry, "multiplier").astype("float64")
    num = df["numerator"].astype("float64").to_numpy()
    den = df["denominator"].astype("float64").to_numpy()
    # means with a t interval (registry method t); other means have no limits
    t = (kind == "mean") & (_meta(df, registry, "method") == "t")
    for col in LIMITS:
        df[col] = np.nan
    method = np.full(len(df), None, dtype=object)
    for level, tag in ((0.95, "95"), (0.998, "998")):
        lo, up = np.full(len(df), np.nan), np.full(len(df), np.nan)
        # proportions: Wilson on x of n, scaled to the unit (x 100 for %)
        p = kind == "proportion"
        wl, wu = methods.wilson(num[p], den[p], level)
        lo[p], up[p] = wl * mult[p], wu * mult[p]
        # rates: Byar (exact Poisson below 10) on the count, divided by the population; count-only
        # rows (no population for the group) get limits on the count itself
        r = (kind == "rate") | (kind == "count")
        cl, cu = methods.poisson_count_limits(num[r], level)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where((kind[r] == "rate") & (den[r] > 0), mult[r] / den[r], 1.0)
        scale = np.where((kind[r] == "rate") & ~(den[r] > 0) & ~np.isnan(den[r]), np.nan, scale)
        lo[r], up[r] = cl * scale, cu * scale
        if t.any():
            tl, tu = methods.t_interval(
                df["value"].to_numpy("float64")[t],
                df["sd"].to_numpy("float64")[t],
                df["n"].to_numpy("float64")[t],
                level,
            )
            lo[t], up[t] = tl, tu
        df[f"lower_{tag}"], df[f"upper_{tag}"] = lo, up
    method[kind == "proportion"] = "wilson"
    rc = (kind == "rate") | (kind == "count")
    method[rc] = methods.count_method(num[rc])
    method[kind == "quantile"] = "quantile_cont"
    method[kind == "mean"] = "none"
    method[t] = "t"
    method[kind == "ratio"] = "ratio"
    df["method"] = method
    return df


def add_representation_ratio(df: pd.DataFrame, registry: Registry) -> pd.DataFrame:
    """Rows of every `kind: ratio` indicator derived from its source rate: group ÷ `all` of the
    same geography and month; limits = the group rate's limits ÷ the overall rate."""
    out = [df]
    for ind in registry:
        if ind.kind != "ratio" or not ind.derived_from:
            continue
        src = df[(df["indicator_id"] == ind.derived_from) & df["breakdown"].isin(ind.breakdowns)]
        overall = src[src["breakdown"] == "all"].set_index(KEY)["value"]
        groups = src[(src["breakdown"] != "all") & src["denominator"].gt(0)].copy()
        base = overall.reindex(pd.MultiIndex.from_frame(groups[KEY])).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            for col in ["value", *LIMITS]:
                groups[col] = groups[col].to_numpy("float64") / np.where(base > 0, base, np.nan)
        groups["indicator_id"] = ind.id
        groups["method"] = "ratio"
        out.append(groups)
    return pd.concat(out, ignore_index=True)


def add_benchmarks(df: pd.DataFrame, registry: Registry, geography: pd.DataFrame) -> pd.DataFrame:
    """benchmark_value and significance_95/998 (better/worse with polarity, else higher/lower)."""
    df = df.copy()
    bench = np.full(len(df), np.nan)
    kinds = _meta(df, registry, "kind")
    is_all = (df["breakdown"] == "all").to_numpy()
    # groups vs the `all` row of the same geography
    overall = df[is_all].set_index(KEY)["value"]
    idx = pd.MultiIndex.from_frame(df.loc[~is_all, KEY])
    bench[~is_all] = overall.reindex(idx).to_numpy()
    # PCN and place vs their ICB
    parent = _parent_icb(geography)
    icb_rows = df[is_all & (df["geography_level"] == "icb")].set_index(
        ["indicator_id", "period_end", "geography_code"]
    )["value"]
    for level in ("pcn", "place"):
        sel = is_all & (df["geography_level"] == level).to_numpy()
        icb = df.loc[sel, "geography_code"].map(parent[level])
        key = pd.MultiIndex.from_arrays([df.loc[sel, "indicator_id"], df.loc[sel, "period_end"], icb])
        bench[sel] = icb_rows.reindex(key).to_numpy()
    # providers vs all providers pooled (proportions/rates/counts: sum num / sum den)
    sel = is_all & (df["geography_level"] == "provider").to_numpy()
    if sel.any():
        prov = df[sel]
        mult = _lookup(prov["indicator_id"], {i.id: i.multiplier or 1.0 for i in registry}).astype("float64")
        sums = prov.groupby(["indicator_id", "period_end"])[["numerator", "denominator"]].transform("sum")
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled = np.where(
                np.isin(kinds[sel], ["proportion", "rate"]),
                sums["numerator"] / sums["denominator"] * mult,
                np.nan,
            )
        bench[sel] = pooled
    # a count published in place of a rate (no population for the group) has nothing to compare with
    bench[(kinds == "rate") & df["denominator"].isna().to_numpy()] = np.nan
    # a representation ratio is judged against 1.0 (access in proportion to population)
    bench[kinds == "ratio"] = 1.0
    df["benchmark_value"] = bench
    polarity = _meta(df, registry, "polarity")
    for tag in ("95", "998"):
        df[f"significance_{tag}"] = methods.significance(
            bench, df[f"lower_{tag}"], df[f"upper_{tag}"], polarity
        )
    return df


def _parent_icb(geography: pd.DataFrame) -> dict[str, dict[str, str]]:
    """pcn -> icb and place -> icb. Pseudo-PCNs map to the ICB only when there is just one ICB."""
    out = {}
    icbs = geography["icb_code"].dropna().unique()
    for level, col in (("pcn", "pcn_code"), ("place", "place_code")):
        pairs = geography[[col, "icb_code"]].dropna().drop_duplicates()
        pairs = pairs[~pairs[col].duplicated(keep=False)]
        out[level] = dict(zip(pairs[col], pairs["icb_code"], strict=True))
        if len(icbs) == 1:
            out[level].update({"UNMAPPED": icbs[0], "UNKNOWN": icbs[0]})
    return out


def inequality_summary(
    df: pd.DataFrame, registry: Registry, *, draws: int = 10_000, shown: np.ndarray | None = None
) -> pd.DataFrame:
    """SII/RII across IMD quintiles and reference-group gaps, one row per measure (spec/04).

    `shown` (optional, one flag per row of `df`): whether the row's figure is published unsuppressed.
    With it, the measures that use a figure not shown come out withheld, exactly as
    disclosure.suppress_derived(summary, published) would leave them, but found from the rows they
    were computed from rather than by looking every key up again; and an SII or RII so withheld
    is not simulated at all (its limits are most of this function's cost)."""
    ok = np.isin(_meta(df, registry, "kind"), SII_INDICATOR_KINDS) & df["value"].notna().to_numpy()
    shown = None if shown is None else np.asarray(shown, dtype=bool)[ok]
    # the rows and columns used, once: every selection below then copies 10 columns, not all 20
    df = df.loc[ok, [*KEY, "breakdown", "breakdown_value", "value", "lower_95", "upper_95", "denominator"]]
    parts, hidden = [], []
    sel = (df["breakdown"] == "imd_quintile").to_numpy()
    q = df[sel].copy()
    # quintile weights: the population (rates) or the number of units (proportions) in each quintile
    q["population"] = q["denominator"]
    if shown is not None:
        q["_shown"] = shown[sel]
    if len(q):
        res = methods.sii(
            q,
            by=KEY,
            quantile="breakdown_value",
            draws=draws,
            simulate="_shown" if shown is not None else None,
        )
        for m in ("sii", "rii"):
            part = res[KEY].copy()
            part["dimension"], part["measure"], part["group_value"] = "imd_quintile", m, None
            part["value"], part["lower_95"], part["upper_95"] = (
                res[m],
                res[f"{m}_lower_95"],
                res[f"{m}_upper_95"],
            )
            keep = part["value"].notna().to_numpy()
            parts.append(part[keep])
            if shown is not None:  # withheld: a quintile not shown, so not simulated either
                hidden.append(~res["simulated"].to_numpy(dtype=bool)[keep])
    for dim, ref in methods.REFERENCE_GROUPS.items():
        in_dim = (df["breakdown"] == dim).to_numpy()
        d = df[in_dim]
        if d.empty:
            continue
        is_ref = (d["breakdown_value"] == ref).to_numpy()
        r, g = d[is_ref], d[~is_ref]
        # each group's reference row (position in r, -1 when it has none), looked up once
        pos = pd.MultiIndex.from_frame(r[KEY]).get_indexer(pd.MultiIndex.from_frame(g[KEY]))

        def of_ref(col: str, r=r, pos=pos) -> np.ndarray:
            return np.where(pos >= 0, r[col].to_numpy("float64")[pos], np.nan)

        gap = methods.reference_gap(
            g["value"], g["lower_95"], g["upper_95"], of_ref("value"), of_ref("lower_95"), of_ref("upper_95")
        )
        base = g[KEY].reset_index(drop=True)
        if shown is not None:  # withheld: the group's or its reference group's figure not shown
            rows = np.flatnonzero(in_dim)
            ref_shown = np.where(pos >= 0, shown[rows[is_ref]][np.maximum(pos, 0)], False)
            gap_hidden = ~shown[rows[~is_ref]] | ~ref_shown
        for measure, cols in (
            ("gap_abs", ("gap_abs", "gap_abs_lower_95", "gap_abs_upper_95")),
            ("gap_ratio", ("gap_ratio", None, None)),
        ):
            part = base.copy()
            part["dimension"], part["measure"] = dim, measure
            part["group_value"] = g["breakdown_value"].to_numpy()
            part["value"] = gap[cols[0]].to_numpy()
            part["lower_95"] = gap[cols[1]].to_numpy() if cols[1] else np.nan
            part["upper_95"] = gap[cols[2]].to_numpy() if cols[2] else np.nan
            part["significant"] = gap["significant"].to_numpy()
            keep = part["value"].notna().to_numpy()
            parts.append(part[keep])
            if shown is not None:
                hidden.append(gap_hidden[keep])
    cols = [*KEY, "dimension", "measure", "group_value", "value", "lower_95", "upper_95", "significant"]
    if not parts:
        return pd.DataFrame(columns=cols + (["suppressed"] if shown is not None else []))
    out = pd.concat(parts, ignore_index=True).reindex(columns=cols)
    return out if shown is None else withhold(out, np.concatenate(hidden))


def add_statistics(raw: pd.DataFrame, registry: Registry, geography: pd.DataFrame) -> pd.DataFrame:
    """raw counts -> indicator_values_raw: limits, representation ratios, benchmarks, significance."""
    df = add_limits(raw, registry)
    df = add_representation_ratio(df, registry)
    return add_benchmarks(df, registry, geography)


def apply_statistics(
    raw: pd.DataFrame, registry: Registry, geography: pd.DataFrame, *, draws: int = 10_000
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """raw counts -> (indicator_values_raw with limits/benchmarks, inequality_summary unsuppressed)."""
    df = add_statistics(raw, registry, geography)
    return df, inequality_summary(df, registry, draws=draws)
