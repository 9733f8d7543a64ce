"""Reference files (reference/*.csv): their columns, the shape of their codes, and the SQL to load them.

Geography and population lookups decide where every person is counted, so a malformed code here
would silently move people between PCNs. Rows with a missing or malformed code are therefore
rejected to quarantine (unlike extract codes, which are mapped to "not known" later), and every
file gets its own load_report row, like an extract file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.contract import AGE_BANDS, ETHNICITY_GROUPS
from pipelines.load_rows import (
    Col,
    Resolution,
    dup_key_sql,
    dups_join,
    dups_table_sql,
    raw_json,
    soft_columns,
    soft_count,
    validate_query,
)
from pipelines.load_source import Source, batch_select, ident, sql_str

PRACTICE = r"[A-Z][0-9]{5}"
PCN = r"U[0-9]{5}"
ORG = r"[A-Z0-9]{3,9}"  # ODS-style place/sub-ICB/ICB codes (QWE, 15N) or ONS codes (E54000050)
PROVIDER = r"[A-Z0-9]{3,6}"  # ODS trust (RWE) or site/VCSE (NWV01) codes
LSOA = r"[EW]01[0-9]{6}"


def _one_of(values) -> str:
    return "|".join(re.escape(v) for v in values)


@dataclass(frozen=True)
class RefSpec:
    file: str  # name under reference/
    table: str  # loaded table name
    cols: tuple[Col, ...]
    key: tuple[str, ...]
    checks: tuple[str, ...] = ()  # extra reason expressions over typed columns (NULL when fine)


REFERENCE_SPECS = (
    RefSpec(
        "gp_practice_pcn.csv",
        "ref_gp_practice_pcn",
        (
            Col("practice_code", required=True, pattern=PRACTICE),
            Col("practice_name"),
            Col("pcn_code", pattern=PCN, strict=True),  # empty = practice outside any PCN
            Col("pcn_name"),
            Col("place_code", required=True, pattern=ORG),
            Col("place_name"),
            Col("icb_code", required=True, pattern=ORG),
            Col("icb_name"),
            Col("rel_start_date", "date", strict=True),  # empty = no known start
            Col("rel_end_date", "date", strict=True),  # empty = current
        ),
        ("practice_code", "rel_start_date"),
        ("CASE WHEN rel_end_date < rel_start_date THEN 'rel_end_date before rel_start_date' END",),
    ),
    RefSpec(
        "lsoa_imd.csv",
        "ref_lsoa_imd",
        (Col("lsoa_code", required=True, pattern=LSOA), Col("imd_decile", "int", True, lo=1, hi=10)),
        ("lsoa_code",),
    ),
    RefSpec(
        "population.csv",
        "ref_population",
        (
            # UNMAPPED/UNKNOWN are the pseudo-PCNs of spec 02 (practice outside a PCN / no practice)
            Col("pcn_code", required=True, pattern=f"{PCN}|UNMAPPED|UNKNOWN"),
            Col("age_band", required=True, pattern=_one_of(AGE_BANDS)),
            Col("gender", required=True, pattern="male|female"),
            Col("ethnicity_group", required=True, pattern=_one_of(ETHNICITY_GROUPS)),
            Col("imd_quintile", "int", True, lo=1, hi=5),
            Col("population", "bigint", True, lo=0),
        ),
        ("pcn_code", "age_band", "gender", "ethnicity_group", "imd_quintile"),
    ),
    RefSpec(
        "providers.csv",
        "ref_providers",
        (
            Col("provider_code", required=True, pattern=PROVIDER),
            Col("provider_name"),
            Col("provider_type"),
            Col("icb_code", required=True, pattern=ORG),
        ),
        ("provider_code",),
    ),
)


def ref_ddl(spec: RefSpec) -> str:
    cols = ", ".join(f"{ident(c.name)} {c.sql_type}" for c in spec.cols)
    return f"CREATE OR REPLACE TEMP TABLE {ident(spec.table)} ({cols})"


def validate_ref_sql(view: str, spec: RefSpec, src: Source, res: Resolution) -> str:
    # reference files are small: number lines in the scan, it keeps the status view simple
    query = validate_query(batch_select([src], numbered=True), spec.cols, res, err_extra=spec.checks)
    return f"CREATE OR REPLACE TEMP VIEW {ident(view)} AS {query}"


def status_view_sql(sview: str, view: str, spec: RefSpec, dups: str | None) -> str:
    key = ", ".join(spec.key)
    if not dups:
        return (
            f"CREATE OR REPLACE TEMP VIEW {ident(sview)} AS SELECT *, "
            f"CASE WHEN _ok THEN 'loaded' ELSE 'rejected' END AS _status, _err AS _reason FROM {ident(view)}"
        )
    return (
        f"CREATE OR REPLACE TEMP VIEW {ident(sview)} AS SELECT v.*, "
        "CASE WHEN v._ok AND NOT coalesce(d._first < v._line, false) THEN 'loaded' ELSE 'rejected' END AS _status, "
        f"coalesce(v._err, 'duplicate key ({key}) of line ' || d._first) AS _reason "
        f"FROM {ident(view)} v {dups_join('d', dups, spec.key)}"
    )


def agg_sql(sview: str, spec: RefSpec, soft) -> str:
    items = [
        "count(*)",
        "count(*) FILTER (_status = 'loaded')",
        "count(*) FILTER (_status = 'rejected')",
        "count(*) FILTER (_ok)",
        f"count(DISTINCT {dup_key_sql(spec.key)}) FILTER (_ok)",
        *(soft_count(n) for n in soft),
    ]
    return f"SELECT {', '.join(items)} FROM {ident(sview)}"


def insert_ref_sql(sview: str, spec: RefSpec) -> str:
    cols = ", ".join(ident(c.name) for c in spec.cols)
    return f"INSERT INTO {ident(spec.table)} SELECT {cols} FROM {ident(sview)} WHERE _status = 'loaded'"


def quarantine_sql(sview: str, spec: RefSpec, src: Source) -> str:
    return (
        f"INSERT INTO quarantine SELECT NULL, {sql_str(spec.table)}, {sql_str(src.rel)}, _line, _reason, "
        f"{raw_json(src.columns)} FROM {ident(sview)} WHERE _status = 'rejected' ORDER BY _line"
    )


def load_file(con, spec: RefSpec, src: Source, res: Resolution) -> tuple[tuple[int, ...], dict[str, int]]:
    """Load one reference file; return (read, loaded, rejected, 0) and invalid optional values by column."""
    view, sview, dups = "_load_v", "_load_s", "_load_dups"
    soft = soft_columns(spec.cols, res)
    con.execute(validate_ref_sql(view, spec, src, res))
    con.execute(status_view_sql(sview, view, spec, None))
    a = con.execute(agg_sql(sview, spec, soft)).fetchone()
    if a[3] != a[4]:  # valid rows outnumber distinct keys: some key repeats
        con.execute(dups_table_sql(dups, view, spec.key))
        con.execute(status_view_sql(sview, view, spec, dups))
        a = con.execute(agg_sql(sview, spec, soft)).fetchone()
    con.execute(insert_ref_sql(sview, spec))
    if a[2]:
        con.execute(quarantine_sql(sview, spec, src))
    return (a[0], a[1], a[2], 0), {name: n for name, n in zip(soft, a[5:], strict=True) if n}
