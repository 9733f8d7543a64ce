"""THE query layer: every read the dashboard makes of the warehouse is a named function here.

Callbacks, page layouts and the CSV download routes all call these functions, so a chart and its
download can never disagree (CONVENTIONS C11-C12). Every value reaches SQL as a `$param` (lists as
DuckDB lists); only fixed table and column names are written into the SQL text. The dashboard reads
the published, suppressed tables only (`indicator_values`, `inequality_summary`, `indicators`,
`build_info`, `load_report`, and the optional `geography` lookup); never `indicator_values_raw`
or `quarantine`. Results are memoised per build (dashboard/cache.py), so arguments must be plain
strings, numbers, None or tuples of those.

Grain and units: `indicator_values` rows are one indicator x month end x geography x breakdown
value; `value` is in the indicator's registry unit (percentages 0-100, rates per 10,000, days,
counts); suppressed rows have NULL numbers and `suppressed` = `primary`/`secondary`.
"""

from __future__ import annotations

import pandas as pd

from dashboard import db
from dashboard.cache import memoize

VALUE_COLUMNS = (
    "indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value, numerator, "
    "denominator, value, lower_95, upper_95, lower_998, upper_998, method, suppressed, significance_95, "
    "significance_998, benchmark_value"
)
PUBLISHED_TABLES = (
    "indicator_values",
    "inequality_summary",
    "indicators",
    "build_info",
    "load_report",
    "geography",
)


def _df(sql: str, params: dict | None = None) -> pd.DataFrame:
    df = db.snapshot().cursor.execute(sql, params or {}).df()
    if "period_end" in df.columns:
        df["period_end"] = pd.to_datetime(df["period_end"])
    return df


def _has_table(name: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_name = $name"
    return db.snapshot().cursor.execute(sql, {"name": name}).fetchone()[0] > 0


@memoize(per_process=True)
def build_info() -> pd.DataFrame:
    """One row: build_id, built_at, data_hash, code_version, first/last period, row counts."""
    return _df("SELECT * FROM build_info LIMIT 1")


@memoize(per_process=True)
def indicator_meta() -> pd.DataFrame:
    """The published registry (`indicators`), one row per indicator, in display order when known."""
    df = _df("SELECT * FROM indicators")
    return df.sort_values(
        "display_order" if "display_order" in df.columns else "indicator_id", ignore_index=True
    )


@memoize(per_process=True)
def periods() -> pd.DataFrame:
    """Every month end with published figures, newest first (column `period_end`)."""
    return _df("SELECT DISTINCT period_end FROM indicator_values ORDER BY period_end DESC")


@memoize(per_process=True)
def geographies() -> pd.DataFrame:
    """Areas with figures: geography_level, geography_code, geography_name, parent_level, parent_code.

    Names and parents come from the optional `geography` table; without it every area is listed
    under its code with no parent (the drill-down then offers every place and PCN).
    """
    if _has_table("geography"):
        return _df(
            "SELECT geography_level, geography_code, geography_name, parent_level, parent_code FROM geography "
            "ORDER BY geography_level, geography_code"
        )
    return _df(
        "SELECT DISTINCT geography_level, geography_code, geography_code AS geography_name, "
        "NULL::VARCHAR AS parent_level, NULL::VARCHAR AS parent_code FROM indicator_values "
        "ORDER BY geography_level, geography_code"
    )


@memoize
def month_slab(period: str, level: str, breakdown: str = "all", breakdown_value: str = "all") -> pd.DataFrame:
    """Every indicator's rows for one month, geography level and group (≈ 40 indicators x the
    level's areas): what a page's area charts, funnels and spine tables are cut from, so a page
    costs one query here rather than one per chart."""
    return _df(
        f"SELECT {VALUE_COLUMNS} FROM indicator_values WHERE period_end = $period::DATE "
        "AND geography_level = $level AND breakdown = $breakdown AND breakdown_value = $value "
        "ORDER BY indicator_id, geography_code",
        {"period": period, "level": level, "breakdown": breakdown, "value": breakdown_value},
    )


def _as_queried(df: pd.DataFrame) -> pd.DataFrame:
    """A slice of a larger result typed as if it had been queried alone: DuckDB returns a VARCHAR
    column that is entirely NULL (or has no rows) as object holding None, not as pandas' str."""
    out = df.reset_index(drop=True)
    for c in out.columns:
        if out[c].dtype == "str" and out[c].isna().all():
            out[c] = pd.Series([None] * len(out), dtype=object)
    return out


@memoize
def area_values(
    indicator_ids: tuple[str, ...],
    period: str,
    level: str,
    codes: tuple[str, ...] | None = None,
    breakdown: str = "all",
    breakdown_value: str = "all",
) -> pd.DataFrame:
    """One month's rows for many areas of one level (all areas of the level when `codes` is None)."""
    slab = month_slab(period, level, breakdown, breakdown_value)
    keep = slab["indicator_id"].isin(indicator_ids)
    if codes is not None:
        keep &= slab["geography_code"].isin(codes)
    return _as_queried(slab[keep])


@memoize
def series(
    indicator_ids: tuple[str, ...],
    level: str,
    code: str,
    period_from: str,
    period_to: str,
    breakdown: str = "all",
    breakdown_value: str | None = "all",
) -> pd.DataFrame:
    """Monthly rows of one area between two month ends (every group of `breakdown` if value is None)."""
    return _df(
        f"SELECT {VALUE_COLUMNS} FROM indicator_values WHERE list_contains($ids, indicator_id) "
        "AND geography_level = $level AND geography_code = $code "
        "AND period_end BETWEEN $from::DATE AND $to::DATE AND breakdown = $breakdown "
        "AND ($value IS NULL OR breakdown_value = $value) ORDER BY indicator_id, breakdown_value, period_end",
        {
            "ids": list(indicator_ids), "level": level, "code": code, "from": period_from, "to": period_to,
            "breakdown": breakdown, "value": breakdown_value,
        },
    )  # fmt: skip


@memoize
def group_values(indicator_id: str, period: str, level: str, code: str, dimension: str) -> pd.DataFrame:
    """One area's month: every group of `dimension` plus the overall (`all`) row."""
    return _df(
        f"SELECT {VALUE_COLUMNS} FROM indicator_values WHERE indicator_id = $id AND period_end = $period::DATE "
        "AND geography_level = $level AND geography_code = $code AND breakdown IN ($dim, 'all') "
        "ORDER BY breakdown = 'all' DESC, breakdown_value",
        {"id": indicator_id, "period": period, "level": level, "code": code, "dim": dimension},
    )


@memoize
def inequality(
    indicator_id: str, level: str, code: str, dimension: str, period_from: str, period_to: str
) -> pd.DataFrame:
    """`inequality_summary` rows (sii, rii, gap_abs, gap_ratio) of one area and dimension over months."""
    return _df(
        "SELECT indicator_id, period_end, geography_level, geography_code, dimension, measure, group_value, "
        "value, lower_95, upper_95, suppressed FROM inequality_summary WHERE indicator_id = $id "
        "AND geography_level = $level AND geography_code = $code AND dimension = $dim "
        "AND period_end BETWEEN $from::DATE AND $to::DATE ORDER BY measure, group_value, period_end",
        {
            "id": indicator_id,
            "level": level,
            "code": code,
            "dim": dimension,
            "from": period_from,
            "to": period_to,
        },
    )


@memoize
def load_report_summary() -> pd.DataFrame:
    """Rows read/loaded/rejected/superseded/out of scope per month and table (admin only)."""
    return _df(
        'SELECT month, "table", count(*)::BIGINT AS files, sum(rows_read)::BIGINT AS rows_read, '
        "sum(rows_loaded)::BIGINT AS rows_loaded, sum(rows_rejected)::BIGINT AS rows_rejected, "
        "sum(rows_superseded)::BIGINT AS rows_superseded, sum(rows_out_of_scope)::BIGINT AS rows_out_of_scope, "
        "string_agg(DISTINCT status, ', ') AS status FROM load_report GROUP BY ALL ORDER BY month DESC, \"table\""
    )
