"""The MHSDS-specific rules of the load: which columns each table has, and the SQL for its rows.

contract.py says what the fields are; this module adds what the loader needs beyond that — the
SQL type of each field, plausible ranges that turn impossible values into errors, the v5 recodes,
the reporting-month checks on event dates and the PROM score flags — and writes the statements that
move a batch of files into `load_<table>` (every row with its fate; `stg_<table>` is the view of the
loaded rows), number their lines, reject repeated keys, fill `quarantine` and build the
`stg_<table>_latest` snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from pipelines.contract import (
    CONS_MEDIUM_PRE_V5,
    LEGACY_TEAM_TYPE,
    PROM_TOOLS,
    TABLES,
    Table,
    month_end,
    month_from_uniq_month_id,
)
from pipelines.load_rows import Col, Resolution, raw_json, soft_count
from pipelines.load_rows import validate_query as validate_query_generic
from pipelines.load_source import Source, batch_select, ident, sql_str

SUBMISSION = ("OrgIDProv", "UniqSubmissionID", "UniqMonthID")
# Identifiers that outgrow a 32-bit integer in real MHSDS submissions.
_BIGINT = {"UniqSubmissionID", "RecordNumber"}
# Values outside these ranges cannot be right (an age of 250, a 3-day contact): treated as invalid.
_PLAUSIBLE = {
    "AgeRepPeriodEnd": (0, 125),
    "AgeServReferRecDate": (0, 125),
    "ClinContDurOfCareCont": (0, 1440),
}
# Event dates must fall inside the reporting month of the folder.
EVENT_DATES = {"MHS201CareContact": "CareContDate", "MHS606CodedScoreAssessmentRefer": "AssToolCompTimestamp"}
PROM_EXTRA = ("score", "score_valid", "invalid_reason")
_PROM_EXTRA_TYPES = ("DOUBLE", "BOOLEAN", "VARCHAR")
PROVENANCE = (("src_month", "INTEGER"), ("src_file", "VARCHAR"), ("src_line", "BIGINT"))
# For the *_latest views: MPI rows are per person per provider, so the provider is part of the key.
LATEST_KEY = {"MHS001MPI": ("Person_ID", "OrgIDProv")}


@cache
def columns(table_name: str) -> tuple[Col, ...]:
    out = []
    for f in TABLES[table_name].fields:
        kind = "bigint" if f.type == "int" and f.name in _BIGINT else f.type
        lo, hi = _PLAUSIBLE.get(f.name, (None, None))
        recode, always = {}, False
        if f.name == "ConsMechanismMH":
            recode = CONS_MEDIUM_PRE_V5
        elif f.name == "ServTeamTypeRefToMH":
            recode, always = LEGACY_TEAM_TYPE, True
        out.append(
            Col(f.name, kind, f.required, f.aliases, lo=lo, hi=hi, recode=recode, recode_always=always)
        )
    return tuple(out)


def stg_name(table_name: str) -> str:
    return f"stg_{table_name}"


def latest_name(table_name: str) -> str:
    """The TEMP view of a snapshot table's latest rows (:func:`latest_sql`)."""
    return f"{stg_name(table_name)}_latest"


def load_name(table_name: str) -> str:
    return f"load_{table_name}"


# The database load_<table> lives in: a scratch file the pipeline attaches (compressed, so that a
# national load fits; kept beside the builds as the next incremental run's cache), or, when nothing
# is attached under this name, an in-memory database load_inbox attaches itself.
WORK = "work"


def load_table(table_name: str) -> str:
    """load_<table>, qualified with the work database."""
    return f"{WORK}.{ident(load_name(table_name))}"


def out_columns(table: Table) -> list[tuple[str, str]]:
    """(name, SQL type) of stg_<table>: contract fields, PROM flags, provenance."""
    cols = [(c.name, c.sql_type) for c in columns(table.name)]
    if table.name == "MHS606CodedScoreAssessmentRefer":
        cols += list(zip(PROM_EXTRA, _PROM_EXTRA_TYPES, strict=True))
    return cols + list(PROVENANCE)


def ddl(table: Table, *, keep: bool = False) -> list[str]:
    """load_<table> holds every row read with its fate; stg_<table> is the view of the loaded ones.

    Writing each row once (rather than staging it and copying the good rows) halves the cost of
    the load; quarantine and load_report are small aggregates of load_<table>. load_<table> is in
    the WORK database, never in the build file: it holds person-level rows. `keep` leaves an
    existing load_<table> (an incremental run's cached months) as it is.
    """
    names = ", ".join(ident(n) for n, _ in out_columns(table))
    create = "CREATE TABLE IF NOT EXISTS" if keep else "CREATE OR REPLACE TABLE"
    return [
        f"{create} {load_table(table.name)} ({_load_columns(table)})",
        f"CREATE OR REPLACE TEMP VIEW {ident(stg_name(table.name))} AS SELECT {names} "
        f"FROM {load_table(table.name)} WHERE _status = 'loaded'",
    ]


def _load_columns(table: Table) -> str:
    cols = [f"{ident(n)} {t}" for n, t in out_columns(table)]
    return ", ".join([*cols, "_status VARCHAR", "_reason VARCHAR", "_raw VARCHAR", "_warn VARCHAR"])


def batch_ddl(batch: str, table: Table) -> str:
    """A TEMP table shaped like load_<table>. Spelled out, not `CREATE TABLE AS FROM load_<table>
    LIMIT 0`: with DuckDB 2.0.0 a table made that way from one in an attached database, once
    filled, read as empty in `SELECT *` (an INSERT from it silently inserted nothing)."""
    return f"CREATE OR REPLACE TEMP TABLE {ident(batch)} ({_load_columns(table)})"


def _dates(umids: Sequence[int]) -> tuple[str, str]:
    """SQL lists of each file's first and last day of the reporting month, indexed by _fi + 1."""
    firsts, lasts = [], []
    for umid in umids:
        year, month = month_from_uniq_month_id(umid)
        firsts.append(f"DATE '{year:04d}-{month:02d}-01'")
        lasts.append(f"DATE '{month_end(year, month).isoformat()}'")
    return f"[{', '.join(firsts)}]", f"[{', '.join(lasts)}]"


def _prom_layers() -> list[list[str]]:
    by_tool: dict[tuple[str, int, int], list[str]] = {}
    for code, (tool, lo, hi, _) in PROM_TOOLS.items():
        by_tool.setdefault((tool, lo, hi), []).append(code)
    t = ident("CodedAssToolType")

    def case(pick) -> str:
        whens = " ".join(
            f"WHEN {t} IN ({', '.join(map(sql_str, codes))}) THEN {pick(k)}" for k, codes in by_tool.items()
        )
        return f"CASE {whens} END"

    num = 'TRY_CAST("PersScore" AS DOUBLE)'
    return [
        [
            f"CASE WHEN isfinite({num}) THEN {num} END AS score",
            f"{case(lambda k: sql_str(k[0]))} AS _tool",
            f"{case(lambda k: k[1])} AS _lo",
            f"{case(lambda k: k[2])} AS _hi",
        ],
        [
            "(score IS NOT NULL AND (_lo IS NULL OR score BETWEEN _lo AND _hi)) AS score_valid",
            "CASE WHEN \"PersScore\" IS NULL THEN NULL WHEN score IS NULL THEN 'PersScore not a number' "
            "WHEN _lo IS NOT NULL AND score NOT BETWEEN _lo AND _hi THEN 'PersScore outside the valid range '"
            " || _lo || '-' || _hi || ' for ' || _tool END AS invalid_reason",
        ],
    ]


def validate_query(
    table: Table, srcs: Sequence[Source], res: Resolution, umids: Sequence[int], *, numbered: bool = False
) -> str:
    """The validating query over a batch of one table's files (one file per month, same header).
    `numbered`: one CSV file, whose `_line` is then its line in the file, numbered on the scan
    (load_source.batch_select says when the two can differ)."""
    firsts, lasts = _dates(umids)
    context = [
        f"[{', '.join(map(str, umids))}][_fi + 1] AS _month",
        f"{firsts}[_fi + 1] AS _mstart",
        f"{lasts}[_fi + 1] AS _mend",
    ]
    label = "strftime(_mstart, '%Y-%m')"
    kerr_extra = [
        'CASE WHEN "UniqMonthID" <> _month THEN \'UniqMonthID \' || "UniqMonthID" || '
        f"' does not match folder ' || {label} || ' (' || _month || ')' END"
    ]
    err_extra = []
    if table.name in EVENT_DATES:
        name = EVENT_DATES[table.name]
        err_extra.append(
            f"CASE WHEN {ident(name)}::DATE NOT BETWEEN _mstart AND _mend "
            f"THEN '{name} ' || {ident(name)} || ' outside reporting month ' || {label} END"
        )
    if table.name == "MHS000Header":
        for name, want in (("ReportingPeriodStartDate", "_mstart"), ("ReportingPeriodEndDate", "_mend")):
            err_extra.append(
                f"CASE WHEN {ident(name)} <> {want} "
                f"THEN '{name} ' || {ident(name)} || ' is not ' || {want} || ' (folder ' || {label} || ')' END"
            )
    layers = _prom_layers() if table.name == "MHS606CodedScoreAssessmentRefer" else []
    return validate_query_generic(
        batch_select(srcs, numbered=numbered),
        columns(table.name),
        res,
        context=context,
        kerr_cols=SUBMISSION,
        kerr_extra=kerr_extra,
        err_extra=err_extra,
        layers=layers,
    )


def subs_sql(subs: str, query: str) -> str:
    """Record each provider-month's latest submission: the highest UniqSubmissionID in MHS000Header."""
    return (
        f'INSERT INTO {subs} SELECT _month, "OrgIDProv", max("UniqSubmissionID") '
        f"FROM ({query}) WHERE _kerr IS NULL GROUP BY ALL"
    )


def dup_key(table: Table) -> tuple[str, ...]:
    return ("OrgIDProv", "UniqSubmissionID", *table.key)


def status_query(query: str, subs: str) -> str:
    """Each row's fate: rejected, superseded or loaded, with the reason for a rejection.

    Order matters. A row that cannot be tied to a submission of this month is rejected first; a
    row of a superseded submission is then superseded even if it has errors (the provider has
    replaced that data); a row of a submission MHS000Header does not declare is rejected; then
    invalid rows. Repeated keys are found afterwards, among the loaded rows (see dups_sql).
    """
    sub = 'v."UniqSubmissionID"'
    return (
        "SELECT v.*, "
        f"CASE WHEN v._kerr IS NOT NULL OR s._sub IS NULL OR {sub} > s._sub THEN 'rejected' "
        f"WHEN {sub} < s._sub THEN 'superseded' WHEN v._err IS NOT NULL THEN 'rejected' ELSE 'loaded' END "
        "AS _status, "
        "CASE WHEN v._kerr IS NOT NULL THEN concat_ws('; ', v._kerr, v._err) "
        "WHEN s._sub IS NULL THEN 'no MHS000Header row for provider ' || v.\"OrgIDProv\" || ' in this month' "
        f"WHEN {sub} > s._sub THEN 'submission ' || {sub} || ' not in MHS000Header (latest is ' || s._sub || ')' "
        f"ELSE v._err END AS _reason FROM ({query}) v LEFT JOIN {subs} s "
        f'ON s._month = v._month AND s."OrgIDProv" = v."OrgIDProv"'
    )


def insert_sql(query: str, table: Table, srcs: Sequence[Source], target: str | None = None) -> str:
    """Write every row of the batch once, with its fate; raw text is kept only for rejected rows.
    `target` is the table written to (default load_<table>)."""
    cols = [ident(n) for n, _ in out_columns(table)][: -len(PROVENANCE)]
    files = "[" + ", ".join(sql_str(s.rel) for s in srcs) + "]"
    rejected = "_status = 'rejected'"
    return (
        f"INSERT INTO {target or load_table(table.name)} SELECT {', '.join(cols)}, _month, {files}[_fi + 1], _line, "
        f"_status, CASE WHEN {rejected} THEN _reason END, CASE WHEN {rejected} THEN {raw_json(srcs[0].columns)} END, "
        f"_warn FROM ({query})"
    )


def number_lines_sql(batch: str) -> str:
    """Give the rows of CSV files just written to the TEMP table `batch` their line numbers.

    Each row arrives with its position in the scan (load_source.batch_select), which increases
    within a file but is not consecutive when several files are scanned together (DuckDB
    interleaves their chunks): a row's line is its rank among its file's positions, plus 1 (the
    header is line 1). The order rows were written in is no guide: the validating query's joins
    reorder large files.
    Numbered in a TEMP table and then appended to load_<table> (load.py), because an UPDATE of rows
    already written to the on-disk load_<table> goes through DuckDB's write-ahead log, and a window
    over whole rows on the way in buffers every column.
    """
    t = ident(batch)
    return (
        f"UPDATE {t} SET src_line = n._line FROM (SELECT rowid AS _r, row_number() OVER "
        f"(PARTITION BY src_file ORDER BY src_line) + 1 AS _line FROM {t}) n WHERE {t}.rowid = n._r"
    )


def counts_sql(table: Table, soft: Sequence[str]) -> str:
    """Per file: counts by fate, UniqMonthID agreement with the folder, invalid optional values."""
    items = [
        "count(*)",
        "count(*) FILTER (_status = 'loaded')",
        "count(*) FILTER (_status = 'rejected')",
        "count(*) FILTER (_status = 'superseded')",
        'count("UniqMonthID")',
        'count(*) FILTER ("UniqMonthID" = src_month)',
        'min("UniqMonthID") FILTER ("UniqMonthID" <> src_month)',
        *(soft_count(n) for n in soft),
    ]
    return f"SELECT src_file, {', '.join(items)} FROM {load_table(table.name)} GROUP BY ALL"


def _fresh(months: Sequence[int] | None) -> str:
    """Loaded rows of the months re-read by this run (None = every month; never empty). Repeated
    keys are looked for only there: a duplicate is a key repeated within one file, and the rows of an
    incremental run's cached months had theirs rejected when they were loaded (the cache keeps each
    row's fate)."""
    if months is None:
        return "_status = 'loaded'"
    return f"_status = 'loaded' AND src_month IN ({', '.join(str(int(m)) for m in months)})"


def dups_check_sql(table: Table, months: Sequence[int] | None = None) -> str:
    """Cheap test for repeated keys: distinct hashes on one integer column (a collision only costs
    the exact query in dups_sql, which then finds nothing)."""
    key = ", ".join(["src_file", *(ident(k) for k in dup_key(table))])
    return (
        f"SELECT count(*) - count(DISTINCT hash({key})) FROM {load_table(table.name)} WHERE {_fresh(months)}"
    )


def dups_sql(temp: str, table: Table, months: Sequence[int] | None = None) -> str:
    """Keys loaded more than once from one file and submission, with the first line holding each."""
    key = ", ".join(ident(k) for k in dup_key(table))
    return (
        f"CREATE OR REPLACE TEMP TABLE {ident(temp)} AS SELECT src_file, {key}, min(src_line) AS _first "
        f"FROM {load_table(table.name)} WHERE {_fresh(months)} GROUP BY ALL HAVING count(*) > 1"
    )


def reject_dups_sql(temp: str, table: Table) -> str:
    """Reject every line of a repeated key after the first. raw_record is then the typed row."""
    on = " AND ".join(
        [
            "t.src_file = d.src_file",
            *(f"t.{ident(k)} IS NOT DISTINCT FROM d.{ident(k)}" for k in dup_key(table)),
        ]
    )
    pairs = ", ".join(f"{sql_str(n)}, t.{ident(n)}" for n, _ in out_columns(table)[: -len(PROVENANCE)])
    return (
        f"UPDATE {load_table(table.name)} t SET _status = 'rejected', "
        f"_reason = 'duplicate key ({', '.join(table.key)}) of line ' || d._first || ' in the same submission', "
        f"_raw = json_object({pairs})::VARCHAR FROM {ident(temp)} d WHERE {on} AND t.src_line > d._first "
        "AND t._status = 'loaded'"
    )


def quarantine_sql(table: Table) -> str:
    return (
        f"INSERT INTO quarantine SELECT src_month, {sql_str(table.name)}, src_file, src_line, _reason, _raw "
        f"FROM {load_table(table.name)} WHERE _status = 'rejected' ORDER BY src_file, src_line"
    )


def latest_sql(table: Table) -> str:
    """stg_<snapshot>_latest: per key, the row from the latest month (then latest submission).

    A view, not a table: staging reads three of the nine (referrals and care plans), each once, and
    tables held whole rows of every snapshot table in memory (nationally the nine took 29 s to make,
    and held, they left the build short of memory: benchmarks/RESULTS.md §2h, §2i).
    arg_max over row ids is a narrow hash aggregate; a window over whole rows costs several times more.
    """
    key = ", ".join(ident(k) for k in LATEST_KEY.get(table.name, table.key))
    src = load_table(table.name)
    cols = ", ".join(f"t.{ident(n)}" for n, _ in out_columns(table))
    return (
        f"CREATE OR REPLACE TEMP VIEW {ident(latest_name(table.name))} AS SELECT {cols} FROM {src} t "
        f'SEMI JOIN (SELECT arg_max(rowid, (src_month, "UniqSubmissionID", src_file, src_line)) AS r '
        f"FROM {src} WHERE _status = 'loaded' GROUP BY {key}) m ON t.rowid = m.r"
    )
