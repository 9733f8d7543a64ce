"""Confidence intervals, comparisons and inequality measures for indicator values.

The pipeline computes counts in DuckDB and then applies these functions to whole columns at once,
so every function takes array-likes (numpy arrays, pandas Series or scalars) and returns float
numpy arrays, never loops over rows. The formulae are the UKHSA/OHID Fingertips conventions as
implemented in PHEindicatormethods (shared/spec/02 "Statistical methods", research/domain-anchors
§4); where that package makes a choice (Byar above 9 events, order statistics for simulated
limits, funnel limits by Wilson inversion) we make the same one so figures can be checked against
Fingertips tools. Proportions are handled as fractions (0-1); callers multiply by 100 for %.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

# Quantile functions straight from scipy.special, which is what scipy.stats' norm/chi2/t `.ppf` compute
# for valid arguments (ndtri; 2·gammaincinv(df/2, p); stdtrit), so the figures are the same to the
# last bit; importing scipy.stats costs about a second of every pipeline run and tens of MB.


def _chi2_ppf(p: float, df) -> np.ndarray:
    df = np.asarray(df, dtype="float64")
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, 2 * special.gammaincinv(df / 2, p), np.nan)


def _t_ppf(p: float, df) -> np.ndarray:
    df = np.asarray(df, dtype="float64")
    return np.where(df > 0, special.stdtrit(df, p), np.nan)


# Φ⁻¹(0.975) and Φ⁻¹(0.999): the spec's 1.959964 and 3.090232 before rounding, as R's qnorm() gives
# them to PHEindicatormethods, so our limits agree with its published figures to every printed digit.
Z95 = float(special.ndtri(0.975))
Z998 = float(special.ndtri(0.999))
LEVELS = (0.95, 0.998)
ESP2013_CSV = Path(__file__).resolve().parent / "data" / "esp2013.csv"

# Reference group of each dimension for the reference-group gap (spec/02): gap = group - reference.
REFERENCE_GROUPS = {"ethnicity_group": "White", "age_band": "26-64", "imd_quintile": "5", "gender": "Male"}


def z_for(level: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.959964, 0.998 -> 3.090232)."""
    return float(special.ndtri(0.5 + level / 2))


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype="float64")


def wilson(x, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score limits for x events out of n, as proportions (0-1).

    ``(2x + z² ∓ z√(z² + 4x(1 − x/n))) / (2(n + z²))``. x = 0 and x = n need no special case;
    n = 0 (or missing) gives NaN. Raises ValueError for x < 0 or x > n.
    """
    x, n = np.broadcast_arrays(_arr(x), _arr(n))
    if np.any(x < 0) or np.any(x > n):
        raise ValueError("wilson: need 0 <= x <= n")
    z = z_for(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = z * np.sqrt(z * z + 4 * x * (1 - x / n))
        lower = (2 * x + z * z - root) / (2 * (n + z * z))
        upper = (2 * x + z * z + root) / (2 * (n + z * z))
    bad = ~(n > 0)
    return np.where(bad, np.nan, lower), np.where(bad, np.nan, upper)


def byar(x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Byar's approximate Poisson limits for a count x (used for x >= 10); NaN where x <= 0."""
    x = _arr(x)
    z = z_for(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = x * (1 - 1 / (9 * x) - z / (3 * np.sqrt(x))) ** 3
        upper = (x + 1) * (1 - 1 / (9 * (x + 1)) + z / (3 * np.sqrt(x + 1))) ** 3
    lower = np.where(x > 0, lower, np.nan)
    return lower, upper


def exact_poisson(x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact Poisson limits for a count x: ``χ²(α/2; 2x)/2`` and ``χ²(1 − α/2; 2x + 2)/2``.

    α = 1 − level (0.05 or 0.002); the lower limit of x = 0 is 0.
    Works for non-integer x (the chi-square form is the continuous Poisson generalisation).
    """
    x = _arr(x)
    tail = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        lower = np.where(x > 0, _chi2_ppf(tail, 2 * np.maximum(x, 1e-300)) / 2, 0.0)
        upper = _chi2_ppf(1 - tail, 2 * x + 2) / 2
    lower = np.where(x >= 0, lower, np.nan)
    return lower, upper


def poisson_count_limits(x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Limits for a count: Byar's method when x >= 10, exact Poisson when x < 10 (PHE `phe_rate`)."""
    x = _arr(x)
    if np.any(x < 0):
        raise ValueError("poisson_count_limits: counts must be >= 0")
    flat = np.atleast_1d(x)
    lower, upper = byar(flat, level)
    small = ~(flat >= 10)  # exact below 10; NaN stays NaN either way
    if small.any():
        lower[small], upper[small] = exact_poisson(flat[small], level)
    return lower.reshape(x.shape), upper.reshape(x.shape)


def count_method(x) -> np.ndarray:
    """The `method` label for a count's limits: 'byar' (x >= 10) or 'exact_poisson' (x < 10)."""
    return np.where(_arr(x) >= 10, "byar", "exact_poisson")


def rate_limits(x, denominator, multiplier: float = 10_000, level: float = 0.95):
    """Limits of the crude rate x / denominator × multiplier: the count's limits scaled the same way.

    Returns (value, lower, upper); NaN where the denominator is zero or missing.
    """
    x, d = np.broadcast_arrays(_arr(x), _arr(denominator))
    lo, up = poisson_count_limits(x, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(d > 0, multiplier / d, np.nan)
    return x * scale, lo * scale, up * scale


def t_interval(mean, sd, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Student t limits for a mean: ``mean ± t(1 − α/2, n − 1) × sd / √n``.

    `sd` is the sample standard deviation (ddof = 1) and `n` the number of observations (e.g.
    paired DIALOG scores). n < 2 gives NaN. Units are those of `mean`.
    """
    mean, sd, n = np.broadcast_arrays(_arr(mean), _arr(sd), _arr(n))
    ok = n >= 2
    df = np.where(ok, n - 1, 1)
    half = _t_ppf(0.5 + level / 2, df) * sd / np.sqrt(np.where(ok, n, 1))
    return np.where(ok, mean - half, np.nan), np.where(ok, mean + half, np.nan)


def load_esp2013(path: str | Path = ESP2013_CSV) -> pd.Series:
    """The 2013 European Standard Population: a Series of weights indexed by 5-year age band."""
    frame = pd.read_csv(path, dtype={"age_band": "str"})
    return frame.set_index("age_band")["standard_population"].astype("float64")


def dsr(
    frame: pd.DataFrame,
    by: list[str],
    count: str = "count",
    population: str = "population",
    standard: str = "standard_population",
    multiplier: float = 100_000,
) -> pd.DataFrame:
    """Directly standardised rates with Dobson limits (PHEindicatormethods `calculate_dsr`).

    `frame` has one row per group and stratum (e.g. ESP 2013 age band) with the observed count,
    the local population and the standard population weight. Returns one row per group with
    total_count, total_pop, value (per `multiplier`), lower_95, upper_95, lower_998, upper_998.
    ``DSR = Σ(w·x/n)/Σw``; ``var = Σ(w²·x/n²)/(Σw)²``; limits ``DSR + √(var/O)·(O_L − O)`` with
    O_L, O_U the Byar/exact limits of O = Σx. Following PHE, groups with O < 10 get NaN (the DSR
    is unreliable), and a stratum with population 0 and a non-zero count makes the group NaN.
    """
    x = frame[count].to_numpy("float64")
    n = frame[population].to_numpy("float64")
    w = frame[standard].to_numpy("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        crude = np.where(n > 0, x / n, np.where(x == 0, 0.0, np.nan))
        var_term = np.where(n > 0, w * w * x / (n * n), np.where(x == 0, 0.0, np.nan))
    parts = pd.DataFrame({"x": x, "n": n, "w": w, "wr": w * crude, "v": var_term})
    parts[by] = frame[by].to_numpy()
    g = parts.groupby(by, sort=True, dropna=False).sum(min_count=1)
    total_w = g["w"].to_numpy()
    value = g["wr"].to_numpy() / total_w
    var = g["v"].to_numpy() / total_w**2
    obs = g["x"].to_numpy()
    out = pd.DataFrame({"total_count": obs, "total_pop": g["n"].to_numpy()}, index=g.index)
    out["value"] = value * multiplier
    with np.errstate(invalid="ignore", divide="ignore"):
        for level, tag in zip(LEVELS, ("95", "998"), strict=True):
            o_l, o_u = poisson_count_limits(obs, level)
            sd = np.sqrt(var / obs)
            out[f"lower_{tag}"] = (value + sd * (o_l - obs)) * multiplier
            out[f"upper_{tag}"] = (value + sd * (o_u - obs)) * multiplier
    cols = ["value", "lower_95", "upper_95", "lower_998", "upper_998"]
    out.loc[~(obs >= 10), cols] = np.nan
    return out.reset_index()


def significance(benchmark, lower, upper, polarity="none") -> np.ndarray:
    """Compare a benchmark with a value's interval (one confidence level).

    'higher' when the benchmark is below the lower limit, 'lower' when above the upper limit, else
    'similar'; with polarity 'high' (higher is better) or 'low' these read 'better'/'worse'.
    `polarity` may be a scalar or an array per row. Missing inputs give None.
    """
    b, lo, up = np.broadcast_arrays(_arr(benchmark), _arr(lower), _arr(upper))
    pol = np.broadcast_to(np.asarray(polarity, dtype=object), b.shape)
    out = np.full(b.shape, "similar", dtype=object)
    higher, lower_ = b < lo, b > up
    out[higher] = "higher"
    out[lower_] = "lower"
    good_high, good_low = pol == "high", pol == "low"
    out[higher & good_high] = "better"
    out[lower_ & good_high] = "worse"
    out[higher & good_low] = "worse"
    out[lower_ & good_low] = "better"
    out[np.isnan(b) | np.isnan(lo) | np.isnan(up)] = None
    return out


def reference_gap(value, lower, upper, ref_value, ref_lower, ref_upper) -> pd.DataFrame:
    """Gap between a group and its reference group (spec/02), from their values and 95% limits.

    Returns gap_abs (group − reference), its 95% limits by the MOVER method (Newcombe 1998:
    combine each side's distance to its limit), gap_ratio (group ÷ reference, NaN when the
    reference is 0) and `significant`: True when the two 95% intervals do not overlap.
    """
    v, lo, up, r, rlo, rup = (_arr(a) for a in (value, lower, upper, ref_value, ref_lower, ref_upper))
    gap = v - r
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(r != 0, v / r, np.nan)
    sig = (lo > rup) | (up < rlo)
    unknown = np.isnan(lo) | np.isnan(up) | np.isnan(rlo) | np.isnan(rup)
    return pd.DataFrame(
        {
            "gap_abs": gap,
            "gap_abs_lower_95": gap - np.sqrt((v - lo) ** 2 + (rup - r) ** 2),
            "gap_abs_upper_95": gap + np.sqrt((up - v) ** 2 + (r - rlo) ** 2),
            "gap_ratio": ratio,
            "significant": pd.array(np.where(unknown, None, sig), dtype="boolean"),
        }
    )


def funnel_proportion_limits(pooled, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Funnel-plot control limits for a proportion at denominator n (PHE `sigma_adjustment`).

    `pooled` is the target line Σnumerators / Σdenominators (see `pooled_proportion`). The limits
    are the proportions whose Wilson interval at n just reaches the pooled value, clipped to
    [0, 1]; multiply by 100 for %.
    """
    p, n = np.broadcast_arrays(_arr(pooled), _arr(n))
    z2 = z_for(level) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        first = p * (n / z2 + 1)
        disc = (-8 * p * (n / z2 + 1)) ** 2 - 64 * (1 / z2 + 1 / n) * p * (
            n * (p * (n / z2 + 2) - 1) + z2 * (p - 1)
        )
        adj = np.sqrt(np.maximum(disc, 0))
        last = 1 / z2 + 1 / n
        lower = (first - adj / 8) / last / n
        upper = (first + adj / 8) / last / n
    bad = ~(n > 0)
    return np.where(bad, np.nan, np.clip(lower, 0, 1)), np.where(bad, np.nan, np.clip(upper, 0, 1))


def pooled_proportion(numerators, denominators) -> float:
    """The funnel target line: Σnumerators / Σdenominators over the units plotted."""
    return float(np.nansum(_arr(numerators)) / np.nansum(_arr(denominators)))


def funnel_rate_limits(pooled_rate, n, multiplier: float = 10_000, level: float = 0.95):
    """Funnel-plot control limits for a crude rate at denominator n, by exact Poisson.

    The expected count at n is E = pooled_rate × n / multiplier; the limits are the exact
    Poisson (chi-square) limits of E, ``χ²(α/2; 2E)/2`` and ``χ²(1 − α/2; 2E + 2)/2``, divided
    by n and scaled back to the rate's multiplier. `pooled_rate` = Σcounts / Σdenominators ×
    multiplier, in the same units as the rates plotted.
    """
    r, n = np.broadcast_arrays(_arr(pooled_rate), _arr(n))
    expected = r * n / multiplier
    lo, up = exact_poisson(expected, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(n > 0, multiplier / n, np.nan)
    return lo * scale, up * scale


def _order_stat_positions(draws: int, level: float) -> tuple[int, int]:
    """0-based positions PHE's SimulationFunc reads from the sorted draws (round(D·q), 1-based)."""
    cv = level + (1 - level) / 2
    return int(round(draws * (1 - cv))) - 1, int(round(draws * cv)) - 1


_TRANSFORMS = {
    None: (lambda v: v, lambda v: v),
    "log": (np.log, np.exp),
    "logit": (special.logit, special.expit),
}


def sii(
    frame: pd.DataFrame,
    by: list[str],
    quantile: str = "quintile",
    value: str = "value",
    lower: str = "lower_95",
    upper: str = "upper_95",
    population: str = "population",
    denominator: str | None = "denominator",
    n_quantiles: int = 5,
    min_denominator: float = 10,
    draws: int = 10_000,
    seed: int = 20_240_401,
    transform: str | None = None,
    batch: int = 500,
    simulate: str | None = None,
) -> pd.DataFrame:
    """Slope and Relative Index of Inequality across deprivation quantiles (PHE `phe_sii`).

    `frame` is long: one row per group (`by`) and quantile, numbered 1 = most deprived to
    `n_quantiles` = least deprived (labels such as "Not known" are ignored). Each quantile's
    relative rank b is the population share before it plus half its own share a, so the most
    deprived end is rank 0 and the least deprived end rank 1; the fit is the no-intercept
    regression ``y√a ~ √a + b√a``. **SII = fitted(rank 1) − fitted(rank 0)**: positive when the
    value is higher in less deprived areas, in the indicator's units. **RII = (Y₀ + SII) / Y₀**,
    the least- over the most-deprived fitted value. With `transform` 'log' (rates) or 'logit'
    (proportions) the fit is on that scale and SII/RII are back-transformed, as phe_sii does with
    transform=TRUE; the default (None) is the spec's untransformed fit.

    Limits: each quantile's standard error is (upper − lower) / (2 × 1.959964) from its 95%
    limits (on the transformed scale if any); `draws` normal samples of every quantile value are
    refitted and the limits are order statistics of the simulated SII/RII at 95% and 99.8%.
    The fit is linear in y, so one seeded draw matrix serves every group and the refits are
    one matrix product per batch of groups.

    A group gets NaN unless all `n_quantiles` quantiles are present with population > 0, finite
    value and limits, and (if `denominator` is given) denominator >= `min_denominator`.
    RII needs Y₀ > 0 (beyond rounding: 1e-9 of the largest quantile value): it is NaN when the
    fitted Y₀ is not, and its limits are NaN when any simulated Y₀ is not (possible only without a
    transform; the simulated ratio's tails are then unbounded).
    `simulate`: a boolean column; when given, only groups whose `n_quantiles` rows all hold True get
    simulated limits (the others keep their SII, RII and Y₀ with NaN limits), and the result has a
    column `simulated` saying which. The pipeline passes
    "this quintile's figure is published": a measure whose quintiles are not all shown is withheld
    (disclosure.suppress_derived), so its limits would be computed only to be thrown away.
    Returns one row per group: sii, sii_lower_95, sii_upper_95, sii_lower_998, sii_upper_998,
    rii (and its four limits) and intercept (Y₀).
    """
    fwd, back = _TRANSFORMS[transform]
    q = pd.to_numeric(frame[quantile].astype("str"), errors="coerce")
    cols = [value, lower, upper, population] + ([denominator] if denominator else [])
    cols += [simulate] if simulate else []
    data = frame.loc[q.between(1, n_quantiles), by + cols].assign(_q=q.astype("Int64"))
    wide = data.pivot_table(index=by, columns="_q", values=cols, aggfunc="first", dropna=False)
    groups = frame[by].drop_duplicates().set_index(by).index
    wide = wide.reindex(groups)
    qs = list(range(1, n_quantiles + 1))

    def grid(col: str) -> np.ndarray:
        if col not in wide.columns.get_level_values(0):
            return np.full((len(wide), n_quantiles), np.nan)
        return wide[col].reindex(columns=qs).to_numpy("float64")

    pop, y = grid(population), grid(value)
    with np.errstate(invalid="ignore", divide="ignore"):
        yt = fwd(y)
        se = (fwd(grid(upper)) - fwd(grid(lower))) / (2 * Z95)
    ok = np.all((pop > 0) & np.isfinite(yt) & np.isfinite(se) & (se >= 0), axis=1)
    if denominator:
        ok &= np.all(grid(denominator) >= min_denominator, axis=1)

    names = ["sii", "rii"]
    result = {f"{m}{s}": np.full(len(wide), np.nan) for m in names for s in ("", *_limit_suffixes())}
    result["intercept"] = np.full(len(wide), np.nan)
    idx = np.flatnonzero(ok)
    # groups whose limits are simulated: all of `idx`, or those whose quintiles are all `simulate`
    sim_rows = ok & np.all(grid(simulate) == 1, axis=1) if simulate else ok
    if idx.size:
        a = pop[idx] / pop[idx].sum(axis=1, keepdims=True)
        b = np.cumsum(a, axis=1) - a / 2
        x = np.stack([np.sqrt(a), b * np.sqrt(a)], axis=2)  # G × Q × 2
        xtx = np.einsum("gqk,gql->gkl", x, x)
        # coef = C · y with C = (XᵀX)⁻¹ Xᵀ diag(√a): the map from quantile values to (Y₀, slope).
        c = np.einsum("gkl,gql->gkq", np.linalg.inv(xtx), x) * np.sqrt(a)[:, None, :]
        coef = np.einsum("gkq,gq->gk", c, yt[idx])
        z = np.random.default_rng(seed).standard_normal((draws, n_quantiles))
        y0, y1 = back(coef[:, 0]), back(coef[:, 0] + coef[:, 1])
        result["intercept"][idx] = y0
        result["sii"][idx] = y1 - y0
        # RII is a ratio to the most deprived end's fitted value: only defined when that is > 0
        # (an untransformed fit can put Y0 at or below zero; a log or logit fit cannot). "> 0" is
        # beyond rounding: a fit through zero comes out as ±1e-14 or so, and a ratio to that is noise.
        tiny = 1e-9 * np.abs(y[idx]).max(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            result["rii"][idx] = np.where(y0 > tiny, y1 / y0, np.nan)
        # only the groups to simulate from here on (a group's draws do not depend on the others')
        keep = sim_rows[idx]
        idx, coef, c, tiny = idx[keep], coef[keep], c[keep], tiny[keep]
        weights = c * se[idx, None, :]  # G × 2 × Q: how each draw's z-score moves Y₀ and the slope
        ks = [k for level in LEVELS for k in _order_stat_positions(draws, level)]
        keys = [f"{m}{s}" for m in names for s in _limit_suffixes()]
        z32, w32 = z.astype("float32"), weights.astype("float32")

        def run_batch(start: int) -> None:
            sl = slice(start, start + batch)
            # groups × draws, one BLAS product per coefficient, in float32 to halve memory traffic
            s_int = coef[sl, 0, None].astype("float32") + w32[sl, 0, :] @ z32.T
            s_slope = coef[sl, 1, None].astype("float32") + w32[sl, 1, :] @ z32.T
            if transform is None:
                s0, s1 = s_int, s_int + s_slope
                slope = s_slope
            else:
                s0, s1 = back(s_int), back(s_int + s_slope)
                slope = s1 - s0
            # A draw with Y0 <= 0 has no RII; where any draw has one, the simulated ratio's tails are
            # unbounded (a division by values near zero), so that group gets no RII limits (and its
            # ratios are not worked out at all).
            defined = np.all(s0 > tiny[sl, None], axis=1)
            part = order_statistics(slope, ks)
            for j, k in enumerate(keys[:4]):
                result[k][idx[sl]] = part[:, j]
            if defined.any():
                with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # as before: inf/inf
                    ratio = s1[defined] / s0[defined]
                part = order_statistics(ratio, ks)
                for j, k in enumerate(keys[4:]):
                    result[k][idx[sl][defined]] = part[:, j]

        # The order statistics dominate (numpy sorting, which releases the GIL), so batches run on
        # every core; each writes its own groups, and the figures do not depend on the thread count.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(run_batch, range(0, idx.size, batch)))
    if simulate:
        result["simulated"] = sim_rows
    return pd.DataFrame(result, index=wide.index).reset_index()


def order_statistics(sim: np.ndarray, ks: list[int], sample: int = 500) -> np.ndarray:
    """`np.partition(sim, ks, axis=1)[:, ks]`, exactly, for order statistics near both ends of each row.

    The simulated limits need the 10th and 250th values from each end of 10,000 draws. Partitioning
    whole rows for them is most of the SII's cost; instead, a threshold on each side is read off the
    row's first `sample` draws (the draws are independent, so these are a fair sample), and only the
    values beyond it (about 6% of the row) are partitioned. The k-th smallest value of a row is the
    k-th smallest of its values below any threshold that more than k values lie below, so the result
    is the same number. A row where a threshold leaves too few values, with NaN (which
    np.partition places last) or with a zero among the results (see below) is partitioned whole.
    """
    rows, width = sim.shape
    ks = list(ks)
    low = sorted({k for k in ks if k < width // 2})
    high = sorted({width - 1 - k for k in ks if k >= width // 2})  # positions counted from the top
    # sample ranks with a wide margin: 2.4 times the rank needed, so that more than k values fall
    # beyond the threshold in all but a vanishing share of rows (the rest take the slow path)
    m_lo = int(np.ceil((max(low, default=width) + 1) * 2.4 * sample / width))
    m_hi = int(np.ceil((max(high, default=width) + 1) * 2.4 * sample / width))
    if width < 4 * sample or 4 * max(m_lo, m_hi) > sample:  # small rows, or ranks far from the ends
        return np.partition(sim, ks, axis=1)[:, ks]
    head = np.partition(sim[:, :sample], [m_lo, sample - 1 - m_hi], axis=1)
    t_lo, t_hi = head[:, m_lo, None], head[:, sample - 1 - m_hi, None]
    out = np.empty((rows, len(ks)), dtype=sim.dtype)
    below, above = sim < t_lo, sim > t_hi
    n_lo, n_hi = below.sum(axis=1), above.sum(axis=1)
    slow = (n_lo <= max(low)) | (n_hi <= max(high)) | np.isnan(sim).any(axis=1)
    tails = {}
    for name, mask, n, want, sign in (("low", below, n_lo, low, 1), ("high", above, n_hi, high, -1)):
        if slow.any():
            mask &= ~slow[:, None]
            n = np.where(slow, 0, n)
        # each row's values beyond its threshold, left-aligned in a grid padded with +inf
        values = sim[mask]  # row by row, in order
        pos = np.arange(values.size) - np.repeat(np.cumsum(n) - n, n)
        grid_ = np.full((rows, max(int(n.max(initial=0)), max(want) + 1)), np.inf, dtype=sim.dtype)
        grid_[np.repeat(np.arange(rows), n), pos] = sign * values
        part = np.partition(grid_, want, axis=1)
        tails[name] = {k: sign * part[:, k] for k in want}
    for j, k in enumerate(ks):
        out[:, j] = tails["low"][k] if k < width // 2 else tails["high"][width - 1 - k]
    # 0.0 and -0.0 are equal but not the same bits, and which of the two np.partition puts at k
    # depends on where they lie in the row: such a row is done its way too
    slow |= (out == 0).any(axis=1)
    if slow.any():
        out[slow] = np.partition(sim[slow], ks, axis=1)[:, ks]
    return out


def _limit_suffixes(pairs: bool = False):
    pairs_ = [("_lower_95", "_upper_95"), ("_lower_998", "_upper_998")]
    return pairs_ if pairs else [s for p in pairs_ for s in p]
