"""Statistical disclosure control: turn `indicator_values_raw` into the published `indicator_values`.

Suppression happens once, here, and every screen, download and API route reads the result
(shared/spec/03). The rules are the MHSDS producers' (research/domain-anchors §5) plus secondary
suppression, which an interactive dashboard needs because a reader can filter to a total and all
but one of its parts and subtract. Everything is column arithmetic and integer set bookkeeping on
numpy arrays, so two million rows take seconds, not minutes.

What `numerator` and `denominator` mean for each unit (the registry's `unit`), and so which of
them are counts that are tested against the threshold and rounded:

- `%`, `per 10,000` (rates), `ratio`, `contacts per person`: both are counts of people, referrals
  or contacts (for a rate the denominator is the registered population).
- `count`: the numerator is the count and the value is the same count; there is no denominator.
  A rate row with no denominator (dimensions without a population) is a count too.
- `days` (medians, 90th percentiles) and `points` (mean change in a score): the denominator is the
  number of observations summarised (waits, score pairs); the numerator is not a count (a sum of
  scores, or nothing), so it is never tested and never published (NULL).

A row whose size cannot be judged (no count at all) is suppressed: publishing must fail safe.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipelines import methods

COLUMNS = [
    "indicator_id", "period_end", "geography_level", "geography_code", "breakdown", "breakdown_value",
    "numerator", "denominator", "value", "lower_95", "upper_95", "lower_998", "upper_998", "method",
    "significance_95", "significance_998", "benchmark_value",
]  # fmt: skip
LIMITS = ["lower_95", "upper_95", "lower_998", "upper_998"]
ALL = "all"
PRIMARY, SECONDARY, DERIVED = "primary", "secondary", "derived"
# Which of numerator/denominator are counts, per kind of value (see module docstring).
_COUNTS = {
    "percent": (True, True),
    "rate": (True, True),
    "ratio": (True, True),
    "mean": (True, True),
    "count": (True, False),
    "summary": (False, True),
}


def kind_of_unit(unit: str) -> str:
    """Map a registry unit to how it is disclosed: percent, rate, ratio, mean, count or summary."""
    if unit == "%":
        return "percent"
    if unit == "count":
        return "count"
    if unit.startswith("per "):
        return "rate"
    if unit == "ratio":
        return "ratio"
    if unit == "contacts per person":
        return "mean"
    if unit in ("days", "points"):
        return "summary"
    raise ValueError(f"disclosure: no rule for unit {unit!r}")


def round_to_base(x, base: int = 5) -> np.ndarray:
    """``base × round(x / base)`` with halves away from zero (MHSDS rounding)."""
    x = np.asarray(x, dtype="float64")
    return np.sign(x) * np.floor(np.abs(x) / base + 0.5) * base


def round_half_away(x, decimals: int = 1) -> np.ndarray:
    """Round to `decimals` places, halves away from zero (numpy's round is half-to-even)."""
    x = np.asarray(x, dtype="float64")
    scale = 10.0**decimals
    return np.sign(x) * np.floor(np.abs(x) * scale + 0.5) / scale


def apply_disclosure_control(
    raw: pd.DataFrame,
    units: Mapping[str, str] | None = None,
    geography: pd.DataFrame | None = None,
    threshold: int = 5,
    rounding: int = 5,
) -> pd.DataFrame:
    """Primary and secondary suppression and rounding of `indicator_values_raw` rows.

    `units` maps indicator_id to its registry unit; without it `raw` needs a `unit` column.
    `geography` (pcn_code, place_code, icb_code) defines the PCN-in-place, PCN-in-ICB and
    place-in-ICB totals; a code that maps to more than one parent (e.g. `UNMAPPED`) joins none.

    Returns the `indicator_values` columns plus `suppressed` (None, 'primary', 'secondary'):
    - primary: a count below `threshold` (numerator, denominator or count value);
    - secondary: within every set of cells that adds up to a shown total — the groups of one
      breakdown in one geography and month, and the children of a place or ICB in one group —
      when exactly one cell is suppressed, the next smallest (numerator, then denominator, then
      input order) goes too; a one-cell set and its total (the same figure) go together; repeated
      until stable, since a suppression in one set can expose another;
    - suppressed rows lose numerator, denominator, value, limits, significance and benchmark;
    - shown counts are rounded to `rounding`; percentages (and their limits) to 1 dp from the
      unrounded counts; a count's limits are recomputed from the rounded count, since Byar's
      limits of the exact count would give the exact count away;
    - significance and benchmark_value are withheld when the benchmark row (the `all` row of the
      same geography for a group; the ICB for a PCN or place) is suppressed.
    """
    df = raw.reset_index(drop=True)
    # units and kinds are worked out once per distinct indicator (or unit) and spread by code
    codes, uniques = pd.factorize(
        df["indicator_id"] if units is not None else df["unit"], use_na_sentinel=False
    )
    unit = np.array([dict(units).get(u) for u in uniques] if units is not None else uniques, dtype=object)
    lacking = pd.isna(unit)[codes]
    if lacking.any():
        missing = sorted(df.loc[lacking, "indicator_id"].astype("str").unique())
        raise ValueError(f"disclosure: no unit for {missing}")
    kind = np.array([kind_of_unit(u) for u in unit], dtype=object)[codes]
    num = df["numerator"].to_numpy("float64", na_value=np.nan)
    den = df["denominator"].to_numpy("float64", na_value=np.nan)
    val = df["value"].to_numpy("float64", na_value=np.nan)
    # a rate row with no population is published as a count when the build gave it the count as its
    # value (a dimension with no population at all); a group that merely lacks a population in a
    # dimension that has one ("Not known") keeps no value: its count is not a rate
    no_value = (kind == "rate") & np.isnan(den) & np.isnan(val)
    kind[(kind == "rate") & np.isnan(den)] = "count"
    is_count = kind == "count"
    num = np.where(is_count & np.isnan(num), val, num)
    kind_codes, kind_uniques = pd.factorize(kind)
    num_counts = np.array([_COUNTS[k][0] for k in kind_uniques], dtype=bool)[kind_codes]
    den_counts = np.array([_COUNTS[k][1] for k in kind_uniques], dtype=bool)[kind_codes]

    tested_num = num_counts & ~np.isnan(num)
    tested_den = den_counts & ~np.isnan(den)
    primary = (tested_num & (num < threshold)) | (tested_den & (den < threshold)) | ~(tested_num | tested_den)

    keys = _Keys(df)
    suppressed = _secondary(primary, num_counts, num, den, keys, geography)

    out = df[[c for c in COLUMNS if c in df.columns]].copy()
    for col in ["numerator", "denominator", "value", *LIMITS, "benchmark_value"]:
        out[col] = df[col].to_numpy("float64", na_value=np.nan) if col in df.columns else np.nan
    shown = ~suppressed
    out["numerator"] = np.where(shown & num_counts, round_to_base(num, rounding), np.nan)
    out["denominator"] = np.where(shown & den_counts, round_to_base(den, rounding), np.nan)
    pct = kind == "percent"
    out["value"] = np.where(is_count, round_to_base(num, rounding), np.where(pct, round_half_away(val), val))
    out.loc[no_value, "value"] = np.nan
    for col in LIMITS:
        out[col] = np.where(pct, round_half_away(out[col]), out[col])
    if is_count.any():
        rounded = round_to_base(num[is_count], rounding)
        for level, tag in zip(methods.LEVELS, ("95", "998"), strict=True):
            lo, up = methods.poisson_count_limits(rounded, level)
            out.loc[is_count, f"lower_{tag}"] = np.where(no_value[is_count], np.nan, lo)
            out.loc[is_count, f"upper_{tag}"] = np.where(no_value[is_count], np.nan, up)
        if "method" in out.columns:
            out["method"] = out["method"].astype("str")
            out.loc[is_count, "method"] = methods.count_method(rounded)

    bench = keys.benchmark_rows(geography)
    bench_hidden = (bench >= 0) & suppressed[np.maximum(bench, 0)]
    bv = out["benchmark_value"].to_numpy()
    bv = np.where(is_count, round_to_base(bv, rounding), np.where(pct, round_half_away(bv), bv))
    out["benchmark_value"] = np.where(bench_hidden, np.nan, bv)
    for col in ("significance_95", "significance_998"):
        if col in out.columns:
            out[col] = out[col].astype("str").mask(suppressed | bench_hidden)
    out.loc[suppressed, ["value", *LIMITS, "benchmark_value"]] = np.nan
    label = pd.Categorical.from_codes(np.where(primary, 0, np.where(suppressed, 1, -1)), [PRIMARY, SECONDARY])
    out["suppressed"] = pd.Series(label).astype("str").array  # str dtype, NaN where shown
    return out


class _Keys:
    """Integer codes for the row grain, so sets and totals are found by array lookups."""

    def __init__(self, df: pd.DataFrame):
        self.df = df
        cols = [
            "indicator_id",
            "period_end",
            "geography_level",
            "geography_code",
            "breakdown",
            "breakdown_value",
        ]
        self.codes, self.uniques = {}, {}
        for c in cols:
            self.codes[c], uniques = pd.factorize(df[c], sort=False, use_na_sentinel=False)
            self.uniques[c] = pd.Index(uniques).astype("str")
        self.sizes = [len(self.uniques[c]) + 1 for c in cols]  # +1 leaves room for a missing code
        if np.prod(np.array(self.sizes, dtype="float64")) >= 2.0**62:
            raise ValueError("disclosure: too many distinct keys to encode")
        self.full = self.encode(*(self.codes[c] for c in cols))
        self.index = pd.Index(self.full)
        if not self.index.is_unique:
            raise ValueError("disclosure: duplicate rows at the indicator_values grain")

    def encode(self, *parts) -> np.ndarray:
        key = np.zeros(len(self.df), dtype="int64")
        for part, size in zip(parts, self.sizes, strict=False):
            key = key * size + np.asarray(part, dtype="int64")
        return key

    def code_of(self, column: str, values) -> np.ndarray:
        """Codes for arbitrary labels in `column`; labels never seen get a code no row has."""
        uniques = pd.Index(self.uniques[column])
        found = uniques.get_indexer(pd.Index(np.asarray(values, dtype=object).astype("str")))
        return np.where(found >= 0, found, len(uniques))

    def lookup(self, *parts) -> np.ndarray:
        """Row number of each full key built from `parts`, or -1."""
        return self.index.get_indexer(self.encode(*parts))

    def parent(self, geography: pd.DataFrame | None, child: str, parent: str) -> np.ndarray:
        """For each row, the geography_code code of its parent (-1 when none or ambiguous)."""
        out = np.full(len(self.df), -1)
        if geography is None:
            return out
        pairs = geography[[child, parent]].dropna().drop_duplicates().astype("str")
        pairs = pairs[~pairs[child].duplicated(keep=False)]
        lookup = pd.Series(pairs[parent].to_numpy(), index=pairs[child].to_numpy())
        # Resolve once per distinct code, then index by code: no per-row string work.
        mapped = lookup.reindex(pd.Index(self.uniques["geography_code"]).astype("str")).to_numpy(dtype=object)
        known = pd.notna(mapped)
        parent_of = np.full(len(mapped) + 1, -1)
        parent_of[:-1][known] = self.code_of("geography_code", mapped[known])
        level = self.code_of("geography_level", [{"pcn_code": "pcn", "place_code": "place"}[child]])[0]
        rows = self.codes["geography_level"] == level
        out[rows] = parent_of[self.codes["geography_code"][rows]]
        return out

    def benchmark_rows(self, geography: pd.DataFrame | None) -> np.ndarray:
        c = self.codes
        all_code = self.code_of("breakdown", [ALL])[0]
        allv = self.code_of("breakdown_value", [ALL])[0]
        n = len(self.df)
        group_bench = self.lookup(c["indicator_id"], c["period_end"], c["geography_level"], c["geography_code"],
                                  np.full(n, all_code), np.full(n, allv))  # fmt: skip
        icb = np.maximum(
            self.parent(geography, "pcn_code", "icb_code"), self.parent(geography, "place_code", "icb_code")
        )
        icb_level = np.full(n, self.code_of("geography_level", ["icb"])[0])
        geo_bench = self.lookup(c["indicator_id"], c["period_end"], icb_level, np.maximum(icb, 0),
                                c["breakdown"], c["breakdown_value"])  # fmt: skip
        is_all = c["breakdown"] == all_code
        return np.where(~is_all, group_bench, np.where(icb >= 0, geo_bench, -1))


def _secondary(primary, num_counts, num, den, keys: _Keys, geography) -> np.ndarray:
    """Grow `primary` until no set with a shown total has exactly one suppressed member."""
    c, n = keys.codes, len(primary)
    rows = np.arange(n)
    all_code = keys.code_of("breakdown", [ALL])[0]
    allv = keys.code_of("breakdown_value", [ALL])[0]
    members, totals = [], []

    # Groups of one breakdown in one geography and month; their total is the `all` row.
    part = c["breakdown"] != all_code
    set_key = keys.encode(c["indicator_id"], c["period_end"], c["geography_level"], c["geography_code"],
                          c["breakdown"], np.zeros(n))[part]  # fmt: skip
    total = keys.lookup(c["indicator_id"], c["period_end"], c["geography_level"], c["geography_code"],
                        np.full(n, all_code), np.full(n, allv))[part]  # fmt: skip
    members.append((set_key, rows[part]))
    totals.append(total)

    # Children of a place or ICB within one group; their total is the parent's row.
    for child, parent, level in (("pcn_code", "place_code", "place"), ("pcn_code", "icb_code", "icb"),
                                 ("place_code", "icb_code", "icb")):  # fmt: skip
        up = keys.parent(geography, child, parent)
        ok = up >= 0
        lvl = np.full(n, keys.code_of("geography_level", [level])[0])
        key = keys.encode(c["indicator_id"], c["period_end"], lvl, up, c["breakdown"], c["breakdown_value"])
        members.append((key[ok], rows[ok]))
        totals.append(keys.index.get_indexer(key[ok]))

    set_ids, member_rows, set_totals, offset = [], [], [], 0
    for (key, member), total in zip(members, totals, strict=True):
        ids, uniq = pd.factorize(key)
        first = np.zeros(len(uniq), dtype="int64")
        first[ids[::-1]] = np.arange(len(ids))[::-1]
        set_ids.append(ids + offset)
        member_rows.append(member)
        set_totals.append(total[first] if len(ids) else np.array([], dtype="int64"))
        offset += len(uniq)
    set_id = np.concatenate(set_ids)
    member = np.concatenate(member_rows)
    set_total = np.concatenate(set_totals)

    # "Next smallest": numerator (the denominator where the numerator is not a count), then
    # denominator, then row order; members sorted once by set and that rank.
    size = np.where(num_counts, num, den)
    by_den = np.argsort(np.nan_to_num(den, nan=np.inf), kind="stable")
    by_size = by_den[np.argsort(np.nan_to_num(size, nan=np.inf)[by_den], kind="stable")]
    rank = np.empty(n, dtype="int64")
    rank[by_size] = rows
    order = np.argsort(set_id.astype("int64") * n + rank[member])  # np.lexsort is ~10x slower here
    set_id, member = set_id[order], member[order]

    # A set with one member is the same figure as its total (a place with one PCN, a breakdown
    # with one group): the two are suppressed together.
    lone = np.flatnonzero(np.bincount(set_id, minlength=offset) == 1)
    lone_member = member[np.searchsorted(set_id, lone)]
    lone_total = set_total[lone]
    lone_member, lone_total = lone_member[lone_total >= 0], lone_total[lone_total >= 0]

    suppressed = primary.copy()
    while True:
        either = suppressed[lone_member] | suppressed[lone_total]
        changed = either & ~(suppressed[lone_member] & suppressed[lone_total])
        suppressed[lone_member[either]] = True
        suppressed[lone_total[either]] = True
        hit = suppressed[member]
        n_hit = np.bincount(set_id, weights=hit, minlength=offset)
        total_shown = (set_total < 0) | ~suppressed[np.maximum(set_total, 0)]
        exposed = (n_hit == 1) & total_shown
        candidate = exposed[set_id] & ~hit
        if not candidate.any() and not changed.any():
            return suppressed
        _, first = np.unique(set_id[candidate], return_index=True)
        suppressed[member[candidate][first]] = True


def suppress_derived(
    summary: pd.DataFrame,
    published: pd.DataFrame,
    reference_groups: Mapping[str, str] = methods.REFERENCE_GROUPS,
    n_quantiles: int = 5,
) -> pd.DataFrame:
    """Withhold inequality_summary rows that use a suppressed (or missing) published figure.

    SII and RII use the imd_quintile rows 1..n_quantiles of the same indicator, month and
    geography; gap_abs and gap_ratio use the row's group and its dimension's reference group.
    Withheld rows get NULL value and limits and `suppressed` = 'derived'.
    """
    grain = ["indicator_id", "period_end", "geography_level", "geography_code"]
    out = summary.reset_index(drop=True).copy()
    is_index = out["measure"].isin(["sii", "rii"]).to_numpy()
    group = out["group_value"].astype("str")
    reference = out["dimension"].map(dict(reference_groups)).astype("str")
    n_out = len(out)
    # Keys as integers: each column is factorized over both tables at once, so equal values get
    # equal codes (dates compared as dates, labels as text, NaN as its own value), and the codes
    # are combined into one int64 per row. Text MultiIndexes over 400,000 rows cost ten times more.
    cols = [
        [published[c] for c in grain] + [published["breakdown"], published["breakdown_value"]],
        [out[c] for c in grain] + [out["dimension"], None],
    ]
    cols[0][1], cols[1][1] = pd.to_datetime(cols[0][1]), pd.to_datetime(cols[1][1])
    values = [str(q) for q in range(1, n_quantiles + 1)]
    wanted = [pd.Series(np.repeat(values, n_out)), group, reference]
    codes_pub, codes_out, sizes = [], [], []
    for i in range(len(cols[0])):
        parts = [cols[0][i]] + ([cols[1][i]] if cols[1][i] is not None else wanted)
        parts = [p.astype("str") if i != 1 else p for p in parts]
        codes, uniques = pd.factorize(pd.concat(parts, ignore_index=True), use_na_sentinel=False)
        codes_pub.append(codes[: len(published)])
        codes_out.append(codes[len(published) :])
        sizes.append(len(uniques))
    if np.prod(np.array(sizes, dtype="float64")) >= 2.0**62:
        raise ValueError("suppress_derived: too many distinct keys to encode")

    def encode(parts) -> np.ndarray:
        key = np.zeros(len(parts[0]), dtype="int64")
        for part, size in zip(parts, sizes, strict=True):
            key = key * size + part.astype("int64")
        return key

    pub_key = encode(codes_pub)
    first = np.unique(pub_key, return_index=True)[1]  # a repeated key counts by its first row
    flags = pd.Index(pub_key[first])
    flag_hidden = published["suppressed"].notna().to_numpy()[first]

    def hidden_at(value_codes) -> np.ndarray:
        found = flags.get_indexer(encode([*(c for c in codes_out[:5]), value_codes]))
        return np.where(found >= 0, flag_hidden[np.maximum(found, 0)], True)

    hidden = np.zeros(n_out, dtype=bool)
    value_codes = codes_out[5]
    for q in range(n_quantiles):
        hidden |= is_index & hidden_at(value_codes[q * n_out : (q + 1) * n_out])
    is_gap = ~is_index
    for j in (n_quantiles, n_quantiles + 1):  # the group, then the reference group
        hidden |= is_gap & hidden_at(value_codes[j * n_out : (j + 1) * n_out])

    return withhold(out, hidden)


def withhold(summary: pd.DataFrame, hidden: np.ndarray) -> pd.DataFrame:
    """`summary` (inequality_summary rows, index 0..n-1) with the `hidden` rows withheld: NULL value
    and limits, `suppressed` = 'derived'. Modifies and returns `summary`."""
    summary.loc[hidden, ["value", "lower_95", "upper_95"]] = np.nan
    previous = (
        summary["suppressed"] if "suppressed" in summary.columns else pd.Series(None, index=summary.index)
    )
    summary["suppressed"] = pd.array(np.where(hidden, DERIVED, previous.astype(object)), dtype="str")
    return summary
