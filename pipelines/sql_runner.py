"""Run the layered SQL of sql/ against a loaded DuckDB connection: the pipeline's BUILD stage.

The SQL files hold all indicator logic (CONVENTIONS C4); this module only puts them in order, binds
their ``$params`` and records what each did. Layer folders run in number order (``10_staging``,
``20_intermediate``, ``25_facts``, ``27_aggregates``, ``28_lookups``); inside a layer each file creates
one table named after the file and reads only earlier layers, so file order within a layer does not
matter. Then each typed kind in the registry runs ``sql/templates/<kind>.sql`` once (a SELECT appended to
``indicator_values_raw``), and a ``custom`` indicator runs ``sql/30_indicators/ind_<id>.sql`` (also a
SELECT with the same columns).

Code lists (contract.py) and the registry go into small ``seed_*``/``reg_*`` tables first, so the SQL
reads them as data and nothing but identifiers from the validated registry is ever spliced into SQL
text (C5). Seeds and layer tables are TEMP tables: they hold person-level rows that must never reach a
published file, and not writing them to disk saves a quarter of the build time. What persists in the
connection's database is what may be published: ``indicator_values_raw``, ``indicators`` (the registry
as data, which the checks read) and the lookups ``geography`` and ``provider_pcns``. Trade-off: a
homemade runner instead of SQLMesh/dbt; it stays a straight line of layers, and the day it needs a DAG is the
day to switch (C4).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines import contract
from pipelines.registry import Registry

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
LAYER = re.compile(r"^(\d+)_[a-z0-9_]+$")
PARAM = re.compile(r"(?<![\w$])\$([A-Za-z_]\w*)")
# string literals and comments, matched left to right so a quote in a comment (or -- in a string) is fine
NOT_CODE = re.compile(r"'(?:[^']|'')*'|/\*.*?\*/|--[^\n]*", re.S)
# `ratio` indicators (the representation ratio) are derived from their source rate by
# pipelines.statistics, which also gives them their limits, so SQL builds every other kind.
KIND_ORDER = ("proportion", "rate", "count", "mean", "quantile", "custom")

# Values the SQL binds; spec/02 fixes them, so they are not configuration.
DEFAULT_PARAMS: dict[str, object] = {
    "window_months": 12,  # rolling windows: access, people in contact, outcomes cohort
    "cohort_min_days": 180,  # outcomes cohort: open referrals received at least this long ago
    "spell_gap_days": 5,  # four-week wait: referrals join a spell within end + 5 days
    "wait_days": 28,  # "within four weeks" = 28 days or fewer
    "reqol_cutoff": 25,  # ReQoL-10 clinical cut-off (NHS England CMH PROMs)
}

# spec/04 columns of indicator_values_raw that the build fills, then our additions for later stages.
RAW_COLUMNS = (
    ("indicator_id", "VARCHAR"),
    ("period_end", "DATE"),
    ("geography_level", "VARCHAR"),
    ("geography_code", "VARCHAR"),
    ("breakdown", "VARCHAR"),
    ("breakdown_value", "VARCHAR"),
    ("numerator", "DOUBLE"),
    ("denominator", "DOUBLE"),
    ("value", "DOUBLE"),
    ("method", "VARCHAR"),
    ("sd", "DOUBLE"),  # kind mean, method t: sample SD of the unit values
    ("n", "BIGINT"),  # units behind the value (mean/quantile: values; rate/count: the count)
)

Progress = Callable[[str, int, int], None]

# Layers whose every row belongs to one period of stg_months and depends only on that period's rows of
# the earlier layers (every grouping and join in them is by period). They can therefore be run over a
# few periods at a time, appending, so that the largest table of the build (fct_indicator_units: about
# 250 million rows nationally) never exists whole: see build_indicators' `period_chunk_rows`.
PERIOD_LAYERS = ("25_facts", "27_aggregates")


@dataclass(frozen=True)
class FileRun:
    """One executed SQL file: what it built, how long it took and how many rows it left."""

    file: str
    table: str | None
    seconds: float
    rows: int | None


def layer_dirs(sql_dir: Path = SQL_DIR) -> list[Path]:
    """Numbered layer folders in run order; 30_indicators (custom indicators) is run by kind instead."""
    dirs = [d for d in sql_dir.iterdir() if d.is_dir() and LAYER.match(d.name)]
    return sorted((d for d in dirs if d.name != "30_indicators"), key=lambda d: int(LAYER.match(d.name)[1]))


def params_for(sql: str, params: dict[str, object]) -> dict[str, object]:
    """The subset of ``params`` that ``sql`` uses; a missing one is an error naming it."""
    wanted = set(PARAM.findall(_strip_comments(sql)))
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"SQL needs parameter(s) {sorted(missing)} that were not given")
    return {k: params[k] for k in sorted(wanted)}


def _strip_comments(sql: str) -> str:
    """The SQL without comments and string literals, where a ``$name`` is not a parameter."""
    return NOT_CODE.sub(" ", sql)


_TEMP_TABLE = re.compile(r"\bcreate\s+or\s+replace\s+temp\s+table\s+", re.IGNORECASE)


def run_file(
    con: duckdb.DuckDBPyConnection, path: Path, params: dict[str, object], on_disk: str | None = None
) -> FileRun:
    """Execute one SQL file that creates the table named after it; log its time and row count.

    The files create TEMP tables, which DuckDB keeps uncompressed in memory (spilling past
    memory_limit): the fastest place for them. `on_disk` names an attached database to create the
    table in instead, compressed on disk, for inputs too big for memory (readers find it through
    the connection's search_path)."""
    sql = path.read_text(encoding="utf-8")
    if on_disk:
        sql = _TEMP_TABLE.sub(f"create or replace table {on_disk}.", sql, count=1)
    started = time.perf_counter()
    con.execute(sql, params_for(sql, params))
    seconds = time.perf_counter() - started
    table = path.stem
    (rows,) = con.execute(f'select count(*) from "{table}"').fetchone()
    log.info("%s: %d rows in %.2f s", path.name, rows, seconds)
    return FileRun(path.name, table, seconds, rows)


def create_seeds(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    """Code lists from contract.py and the registry as tables (the SQL's only non-data inputs)."""
    codes: list[tuple[str, str, str | None]] = []

    def add(name: str, values: Iterable[str], label: dict[str, str] | None = None) -> None:
        codes.extend((name, v, (label or {}).get(v)) for v in values)

    add("core_team_type", contract.CORE_TEAM_TYPES)
    add("access_team_type", contract.CORE_TEAM_TYPES + contract.ACCESS_EXTRA_TEAM_TYPES)
    add("attended", contract.ATTENDED)
    add("dna", contract.DNA)
    add("dna_eligible", contract.ATTENDED + contract.DNA)
    add("direct_mechanism", contract.DIRECT_MECHANISM)
    add("ethnicity_group", contract.ETHNICITY_GROUP, contract.ETHNICITY_GROUP)
    add("sexual_orientation", contract.SEXUAL_ORIENTATION, contract.SEXUAL_ORIENTATION)
    add("employ_status_known", [c for c in contract.EMPLOY_STATUS if c != "ZZ"])
    add("unusable_practice", ("V81999", "V81998", "V81997"))
    add("route_emergency_justice", contract.SOURCE_EMERGENCY_JUSTICE)
    add("route_self", contract.SOURCE_SELF)
    add("route_gp", contract.SOURCE_GP)
    add("route_vcse", contract.SOURCE_VCSE)
    _table(con, "seed_code", ("list_name VARCHAR", "code VARCHAR", "label VARCHAR"), codes)

    tools, unit_no = [], {}
    for code, (tool, lo, hi, threshold) in contract.PROM_TOOLS.items():
        unit_no[tool] = unit_no.get(tool, 0) + 1  # DIALOG items 1-11, GBO goals 1-3 in contract order
        tools.append((code, tool, unit_no[tool], lo, hi, threshold))
    _table(
        con,
        "seed_prom_tool",
        ("code VARCHAR", "tool VARCHAR", "unit_no INTEGER", "lo DOUBLE", "hi DOUBLE", "threshold DOUBLE"),
        tools,
    )
    _table(
        con,
        "reg_indicator",
        (
            "indicator_id VARCHAR",
            "kind VARCHAR",
            "method VARCHAR",
            "multiplier DOUBLE",
            "quantile_p DOUBLE",
            "derived_from VARCHAR",
        ),
        [(i.id, i.kind, i.method, i.multiplier, i.quantile_p, i.derived_from) for i in registry],
    )
    _table(
        con,
        "reg_breakdown",
        ("indicator_id VARCHAR", "breakdown VARCHAR"),
        [(i.id, b) for i in registry for b in i.breakdowns],
    )


def _table(con, name: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    con.execute(f"create or replace temp table {name} ({', '.join(columns)})")
    if rows:
        marks = ", ".join("?" * len(columns))
        con.executemany(f"insert into {name} values ({marks})", rows)


def quantiles(registry: Registry) -> list[float]:
    """The distinct quantile_p of the registry: agg_indicator_groups computes them all in one pass."""
    return sorted({i.quantile_p for i in registry if i.quantile_p is not None}) or [0.5]


def build_indicators(
    con: duckdb.DuckDBPyConnection,
    registry: Registry,
    *,
    progress: Progress | None = None,
    sql_dir: Path = SQL_DIR,
    params: dict[str, object] | None = None,
    after_layer: Callable[[str], None] | None = None,
    before_file: Callable[[Path], None] | None = None,
    on_disk: str | None = None,
    period_chunk_rows: int = 0,
) -> list[FileRun]:
    """Staging -> intermediate -> facts -> aggregates -> one template per kind -> ``indicator_values_raw``.

    Expects the loader's ``stg_*``/``ref_*`` tables in ``con``. Leaves every layer table in place as a
    TEMP table of this connection (or in ``on_disk``) (for the checks and debugging) and returns one :class:`FileRun` per
    executed file, in order. ``after_layer(name)`` is called when each layer folder is done and
    ``before_file(path)`` before each layer file runs (an incremental run narrows ``stg_months``).
    ``indicator_values_raw`` has one row per indicator x period x geography x breakdown value with a
    value (columns :data:`RAW_COLUMNS`); limits, significance and suppression are added later.
    ``on_disk``: see :func:`run_file`.
    ``period_chunk_rows``: when the units of all periods number more than this (0 = never), the
    :data:`PERIOD_LAYERS` run over groups of periods of about this many units each; see
    :func:`_run_period_layers`.
    """
    bound = {**DEFAULT_PARAMS, "quantiles": quantiles(registry), **(params or {})}
    layers = [(d.name, sorted(d.glob("*.sql"))) for d in layer_dirs(sql_dir)]
    files = [f for _, fs in layers for f in fs]
    kinds = [k for k in KIND_ORDER if any(i.kind == k for i in registry)]
    runs: list[FileRun] = []
    steps = {"done": 0, "total": len(files) + len(kinds) + 1}

    def step(what: str, more: int = 0) -> None:
        """One step done; `more` adds to the total (a chunked layer's groups replace its files)."""
        steps["done"] += 1
        steps["total"] += more
        if progress is not None:
            progress(what, steps["done"], steps["total"])

    started = time.perf_counter()
    create_seeds(con, registry)
    frame = registry.to_frame()  # the published `indicators` table; the checks reconcile against it
    con.register("_registry_frame", frame)
    con.execute("create or replace table indicators as select * from _registry_frame")
    con.unregister("_registry_frame")
    runs.append(FileRun("seeds", None, time.perf_counter() - started, None))
    step("seeds")
    at = [i for i, (name, _) in enumerate(layers) if name in PERIOD_LAYERS]
    if at and at != list(range(at[0], at[-1] + 1)):
        raise ValueError(f"the period layers {PERIOD_LAYERS} must follow one another")
    period = [layers[i] for i in at]
    for name, layer_files in layers:
        if name in PERIOD_LAYERS:
            if name == period[0][0]:  # all of them at once, chunk by chunk
                runs.extend(
                    _run_period_layers(con, period, bound, on_disk, before_file, period_chunk_rows, step)
                )
                for done, _ in period:
                    if after_layer is not None:
                        after_layer(done)
            continue
        for path in layer_files:
            if before_file is not None:
                before_file(path)
            runs.append(run_file(con, path, bound, on_disk))
            step(path.name)
        if after_layer is not None:
            after_layer(name)
    cols = ", ".join(f"{name} {type_}" for name, type_ in RAW_COLUMNS)
    con.execute(f"create or replace table indicator_values_raw ({cols})")
    for kind in kinds:
        runs.extend(_run_kind(con, kind, registry, sql_dir, bound))
        step(kind)
    # Not sorted here: the statistics stage reads it in key order, and the published table is written
    # sorted for readers (pipelines.run.SORT_KEYS).
    return runs


def period_chunks(con: duckdb.DuckDBPyConnection, max_rows: int) -> list[list[int]]:
    """The periods of stg_months in groups of consecutive months whose units (the rows of every
    ``int_units__*`` table and of int_people_in_contact, which fct_indicator_units is made of) add up
    to at most ``max_rows``; a month bigger than that is a group of its own. One group holding every
    period when ``max_rows`` is 0 or the units fit."""
    months = [u for (u,) in con.execute("select umid from stg_months order by umid").fetchall()]
    found = con.execute(
        "select table_name, estimated_size from duckdb_tables() "
        "where table_name like 'int\\_units\\_\\_%' escape '\\' or table_name = 'int_people_in_contact' "
        "order by 1"
    ).fetchall()
    # the tables' row counts (all their periods) bound the count: most builds stop here, without a scan
    if not max_rows or len(months) < 2 or sum(n for _, n in found) <= max_rows:
        return [months]
    sources = sorted({name for name, _ in found})
    scans = " union all ".join(f'select umid from "{t}"' for t in sources)
    per_month = dict(
        con.execute(
            f"select umid, count(*) from ({scans}) where umid in (select umid from stg_months) group by umid"
        ).fetchall()
    )
    if sum(per_month.values()) <= max_rows:
        return [months]
    chunks: list[list[int]] = []
    size = 0
    for umid in months:
        n = per_month.get(umid, 0)
        if chunks and size + n <= max_rows:
            chunks[-1].append(umid)
            size += n
        else:
            chunks.append([umid])
            size = n
    return chunks


def _run_period_layers(
    con: duckdb.DuckDBPyConnection,
    layers: list[tuple[str, list[Path]]],
    params: dict[str, object],
    on_disk: str | None,
    before_file: Callable[[Path], None] | None,
    max_rows: int,
    step: Callable[..., None],
) -> list[FileRun]:
    """Run the :data:`PERIOD_LAYERS`: in one pass, or over groups of periods (:func:`period_chunks`).

    Chunked, each group of periods is put in stg_months, every file of these layers runs as usual, and
    the tables of the last layer (the aggregates the later steps read) are appended to what the
    earlier groups made; the earlier layers' tables (the facts) are dropped at the end, since they
    would hold the last group alone. Those facts are TEMP tables whatever ``on_disk`` says: one
    group's are bounded by ``max_rows``. stg_months is restored afterwards. The period layers all read
    the same periods (pipelines.incremental.months_for treats them alike), so ``before_file`` is
    called for the first file only when chunking."""
    files = [f for _, fs in layers for f in fs]
    if before_file is not None:
        before_file(files[0])
    chunks = period_chunks(con, max_rows)
    runs: list[FileRun] = []
    if len(chunks) <= 1:
        for path in files:
            if before_file is not None:
                before_file(path)
            runs.append(run_file(con, path, params, on_disk))
            step(path.name)
        return runs
    where = on_disk or "temp"
    kept = [f.stem for f in layers[-1][1]]
    dropped = [f.stem for _, fs in layers[:-1] for f in fs]
    con.execute("create or replace temp table _period_months as select * from stg_months")
    log.info("period layers in %d groups of months: %s", len(chunks), [(c[0], c[-1]) for c in chunks])
    for i, chunk in enumerate(chunks):
        con.execute(
            "create or replace temp table stg_months as "
            "select * from _period_months where list_contains($c, umid) order by umid",
            {"c": chunk},
        )
        for path in files:
            # one group's facts are bounded by max_rows: TEMP (in memory, spilling past memory_limit)
            # is faster than compressing them to disk; the appended aggregates go where on_disk says
            run = run_file(con, path, params, on_disk if path.stem in kept else None)
            runs.append(FileRun(f"{path.name}[{chunk[0]}-{chunk[-1]}]", run.table, run.seconds, run.rows))
        for table in kept:
            if i == 0:
                con.execute(f'alter table {where}."{table}" rename to "_period_{table}"')
            else:
                con.execute(f'insert into {where}."_period_{table}" select * from {where}."{table}"')
                con.execute(f'drop table {where}."{table}"')
        step(
            f"periods {chunk[0]}-{chunk[-1]} ({i + 1} of {len(chunks)})",
            len(chunks) - len(files) if i == 0 else 0,
        )
    for table in kept:
        con.execute(f'alter table {where}."_period_{table}" rename to "{table}"')
    for table in dropped:
        con.execute(f'drop table if exists temp."{table}"')
    con.execute("create or replace temp table stg_months as select * from _period_months order by umid")
    con.execute("drop table _period_months")
    return runs


def _run_kind(con, kind: str, registry: Registry, sql_dir: Path, params: dict) -> list[FileRun]:
    if kind == "custom":
        paths = [sql_dir / "30_indicators" / i.sql for i in registry if i.kind == "custom"]
    else:
        paths = [sql_dir / "templates" / f"{kind}.sql"]
    runs = []
    for path in paths:
        sql = path.read_text(encoding="utf-8")
        started = time.perf_counter()
        before = _count(con, "indicator_values_raw")
        con.execute(f"insert into indicator_values_raw by name ({sql})", params_for(sql, params))
        rows = _count(con, "indicator_values_raw") - before
        seconds = time.perf_counter() - started
        log.info("%s: %d rows in %.2f s", path.name, rows, seconds)
        runs.append(FileRun(path.name, "indicator_values_raw", seconds, rows))
    return runs


def _count(con, table: str) -> int:
    return con.execute(f'select count(*) from "{table}"').fetchone()[0]


REQUIRES = re.compile(r"--\s*requires:\s*(\w+)\(([^)]*)\)")


def run_checks(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> dict[str, int | None]:
    """Run every ``sql/checks/chk_*.sql``; return the number of offending rows per check (0 = pass).

    A check whose header says ``-- requires: table(col, ...)`` is skipped (``None``) while those columns
    do not exist yet, e.g. the limits check before limits are added.
    """
    out: dict[str, int | None] = {}
    for path in sorted((sql_dir / "checks").glob("chk_*.sql")):
        sql = path.read_text(encoding="utf-8")
        needs = REQUIRES.search(sql)
        if needs and not _has_columns(con, needs[1], [c.strip() for c in needs[2].split(",")]):
            out[path.stem] = None
            continue
        out[path.stem] = len(con.execute(sql, params_for(sql, DEFAULT_PARAMS)).fetchall())
    return out


def _has_columns(con, table: str, columns: list[str]) -> bool:
    found = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_name = ?", [table]
        ).fetchall()
    }
    return set(columns) <= found
