"""`cmh pipeline run`: load -> build -> statistics -> disclosure -> checks -> publish, in one process.

This process is the only writer of a warehouse. Everything happens inside a new DuckDB file that
pipelines.publish switches live only after every check passed, so a failed or killed run never
touches the live build. Progress goes to the terminal (stage, step, rows/s) and one JSON line per
stage to `<warehouse>/logs/pipeline.jsonl` (the structured log).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
from tqdm import tqdm

from pipelines import incremental, publish
from pipelines.config import Config
from pipelines.disclosure import apply_disclosure_control
from pipelines.load import FatalLoadError, load_inbox
from pipelines.registry import load_registry
from pipelines.runs import RunStats
from pipelines.sql_runner import DEFAULT_PARAMS, RAW_COLUMNS, SQL_DIR, build_indicators
from pipelines.statistics import add_statistics, inequality_summary

if TYPE_CHECKING:
    from pipelines.schedule import Hashed

log = logging.getLogger(__name__)

# What a published build holds (spec/04); staging and intermediate tables are dropped before publish.
PUBLISHED = (
    "indicator_values",
    "indicator_values_raw",
    "inequality_summary",
    "indicators",
    "build_info",
    "load_report",
    "quarantine",
    "geography",
    "provider_pcns",
)
MONTH_DIR = re.compile(r"^(\d{4})-(\d{2})$")
# PCN -> place -> ICB for benchmarks and for the sets secondary suppression protects (a PCN in two
# places over time has no place). The pseudo-PCNs come from the geography lookup, under their ICB and
# no place: the people with no mapped practice are part of the ICB's total, so an ICB's PCNs add up
# to it only with them (without them, a suppressed UNMAPPED could be had by subtraction).
GEOGRAPHY_SQL = """
    select distinct pcn_code, place_code, icb_code from ref_gp_practice_pcn
    where pcn_code is not null and split_part(pcn_code, '-', 1) not in ('UNMAPPED', 'UNKNOWN')
    union all
    select geography_code, null, icb_code from geography
    where geography_level = 'pcn' and split_part(geography_code, '-', 1) in ('UNMAPPED', 'UNKNOWN')
"""


class _Progress:
    """Terminal progress for one stage at a time, plus a JSON-lines log of stage timings."""

    def __init__(self, enabled: bool, logfile: Path):
        self.enabled, self.logfile = enabled, logfile
        self.bar: tqdm | None = None
        self.stage, self.t0 = "", time.perf_counter()
        logfile.parent.mkdir(parents=True, exist_ok=True)

    def start(self, stage: str) -> None:
        self.close()
        self.stage, self.t0 = stage, time.perf_counter()
        if self.enabled:
            self.bar = tqdm(desc=f"{stage:<11}", unit="step", file=sys.stderr, dynamic_ncols=True, leave=True)

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.set_postfix_str(what[-60:], refresh=False)
            self.bar.refresh()

    def done(self, **fields) -> None:
        secs = time.perf_counter() - self.t0
        rows = fields.get("rows")
        if rows and self.bar is not None:
            self.bar.set_postfix_str(f"{rows:,} rows, {rows / max(secs, 1e-9):,.0f} rows/s")
        self.close()
        self.record(self.stage, secs, **fields)

    def record(self, stage: str, secs: float, **fields) -> None:
        """One line of the structured log (a stage whose time was summed over chunks uses this alone)."""
        entry = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "stage": stage,
            "seconds": round(secs, 3),
            **fields,
        }
        with self.logfile.open("a") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
        log.info("%s done in %.1f s %s", stage, secs, fields)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def last_period(inbox: Path) -> dt.date:
    months = sorted(p.name for p in inbox.iterdir() if p.is_dir() and MONTH_DIR.match(p.name))
    if not months:
        raise FatalLoadError(str(inbox), "no month folders (YYYY-MM) in the inbox")
    y, m = (int(x) for x in months[-1].split("-"))
    return dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)


def run_pipeline(
    config: Config, *, progress: bool = True, full: bool = False, hashed: Hashed | None = None
) -> RunStats:
    """Build and publish a new warehouse from `config.pipeline.inbox`. Raises on any failure (the
    live build is untouched); returns the counts recorded in the run history.

    Rebuilds only the periods that changed input can affect when the live build allows it
    (pipelines.incremental); `full=True` or `pipeline.incremental = false` rebuilds everything.
    `hashed`: the inbox's hashes (publish.hash_inbox) when the caller has just made them, as
    schedule.run_once has; otherwise they are made here."""
    inbox, warehouse = Path(config.pipeline.inbox), Path(config.pipeline.warehouse)
    if not inbox.is_dir():
        raise FatalLoadError(str(inbox), "the inbox folder does not exist (generate one with `cmh synth`)")
    warehouse.mkdir(parents=True, exist_ok=True)
    registry = load_registry()
    prog = _Progress(progress, warehouse / "logs" / "pipeline.jsonl")
    prog.start("hash inputs")
    inputs_hash, entries = hashed if hashed is not None else publish.hash_inbox(inbox)
    inbox_bytes = sum(p.stat().st_size for p in inbox.rglob("*") if p.is_file())
    period = last_period(inbox)
    disclosure = {"threshold": config.disclosure.threshold, "rounding": config.disclosure.rounding}
    fp = incremental.fingerprint(disclosure=disclosure, params=DEFAULT_PARAMS)
    live = publish.current_build(warehouse)
    if full or not config.pipeline.incremental:
        plan = incremental.Plan(True, "full rebuild requested")
    else:
        plan = incremental.plan(
            warehouse, live.path if live else None, live.build_id if live else None, entries, fp
        )
    prog.done(data_hash=inputs_hash[:12], last_period=period, full=plan.full, why=plan.reason)
    stats: dict[str, object] = {}
    state: dict[str, Path] = {}

    def build(con: duckdb.DuckDBPyConnection):
        for k, v in config.pipeline.duckdb_config().items():
            con.execute(f"set {k} = '{v}'")  # values come from the validated config, not from users
        # our own bar shows the stage and step; DuckDB's would interleave with it (and --quiet means quiet)
        con.execute("set enable_progress_bar = false")
        prog.start("load")
        # The loader's tables go to a compressed scratch file: the next run's load cache.
        on_disk = inbox_bytes >= config.pipeline.disk_build_from_gb * 1e9
        state["work"], cached = incremental.prepare_work(plan, warehouse)
        if cached:
            # The cached load tables get this run's months appended. A checkpoint would then compact
            # ("vacuum") the partly filled row groups the parallel load left, rewriting much of each
            # table (demo: 0.6 of the load's 1.6 s). The cache may instead keep a partly filled row
            # group more per table and month (and a resubmitted month's deleted rows as dead space)
            # until a full run writes a fresh one. Reset once the cache is detached.
            con.execute("set max_vacuum_tasks = 0")
        con.execute("attach $path as work", {"path": str(state["work"])})
        try:
            loaded = load_inbox(con, inbox, progress=prog, cached=cached)
        except FatalLoadError:
            _save_failed_load_report(con, warehouse)
            raise
        prog.done(
            rows=loaded.rows_read,
            loaded=loaded.rows_loaded,
            rejected=loaded.rows_rejected,
            superseded=loaded.rows_superseded,
            files=loaded.files,
            months_from_cache=len(cached),
        )
        prog.start("build")
        # The working tables: in memory (fast), or for big inputs compressed in a scratch file of their
        # own, deleted after the run (unqualified names find them through the search path).
        if on_disk:
            state["scratch"] = incremental.work_path(warehouse, "build")
            incremental.discard_work(state["scratch"])
            con.execute("attach $path as scratch", {"path": str(state["scratch"])})
        con.execute(f"set search_path = 'main,work{',scratch' if on_disk else ''}'")

        def narrow(layer: str) -> None:
            if layer.startswith("10_"):  # staging done: decide which periods to rebuild
                incremental.refine(con, plan)
                incremental.restrict_months(con, plan)
            elif layer.startswith("20_"):  # units made: the care-plan family only where they changed
                incremental.settle_plan_family(con, plan)

        runs = build_indicators(
            con,
            registry,
            progress=prog,
            after_layer=narrow,
            before_file=lambda path: incremental.months_for(con, plan, path),
            on_disk="scratch" if on_disk else None,
            period_chunk_rows=config.pipeline.period_chunk_rows,
        )
        incremental.indicator_floors(con, plan)
        incremental.trim_raw(con, plan)
        incremental.provider_pcn_periods(con, plan)
        n_raw = con.execute("select count(*) from indicator_values_raw").fetchone()[0]
        prog.done(
            rows=n_raw,
            files=len(runs),
            seconds_by_file={r.file: round(r.seconds, 2) for r in runs},  # where a slow build spends it
            full=plan.full,
            on_disk=on_disk,
            from_umid=plan.from_umid,
            cutoff_umid=plan.cutoff_umid,
            why=plan.reason,
        )
        geography = con.execute(GEOGRAPHY_SQL).df()
        _statistics_and_disclosure(con, registry, geography, config, prog)
        prog.start("write")
        _write_tables(con, registry, plan)
        _write_build_info(con, loaded, inputs_hash)
        (build_id,) = con.execute("select getvariable('build_id')").fetchone()
        con.execute("reset search_path")
        con.execute("detach work")  # checkpointed: the next run's load cache
        con.execute("reset max_vacuum_tasks")
        if on_disk:
            con.execute("detach scratch")
            incremental.discard_work(state["scratch"])
        state["folder"] = incremental.write_state(con, warehouse, build_id, entries, fp, state["work"])
        _drop_working_tables(con)
        prog.done()
        stats.update(
            rows_loaded=loaded.rows_loaded,
            rows_rejected=loaded.rows_rejected,
            rows_superseded=loaded.rows_superseded,
        )
        prog.start("checks")

    try:
        result = publish.build_into_new_file(
            warehouse,
            build,
            last_period=period,
            data_hash=inputs_hash,
            checks=publish.load_checks(SQL_DIR / "checks"),
            keep_builds=config.publish.keep_builds,
        )
    except BaseException:
        incremental.discard_state(state.get("folder"))
        incremental.discard_work(state.get("work"))
        incremental.discard_work(state.get("scratch"))
        raise
    try:
        incremental.commit_state(warehouse, state["folder"])
    except OSError as e:  # the build is live; without its state the next run is simply a full one
        log.warning("could not save the incremental state: %s", e)
    prog.done(build_id=result.build.build_id)
    prog.close()
    how = "full rebuild" if plan.full else f"incremental from UniqMonthID {plan.cutoff_umid}"
    return RunStats(
        build_id=result.build.build_id,
        inbox_hash=inputs_hash,
        message=f"published {result.build.build_id} ({how}: {plan.reason})",
        **stats,
    )


# Published tables are sorted by the keys the dashboard filters on (DuckDB zone maps then prune): a
# full run stores each chunk of the statistics stage sorted, in key order (indicator_chunks), and an
# incremental run sorts this run's rows with the periods it copies. Either way the rows come out in
# this order (rows with equal keys, which only inequality_summary has, in no set order).
SORT_KEYS = {
    # a page reads one indicator, level and breakdown across areas and months: those keys first
    "indicator_values_raw": "indicator_id, geography_level, breakdown, geography_code, breakdown_value, period_end",
    "indicator_values": "indicator_id, geography_level, breakdown, geography_code, breakdown_value, period_end",
    "inequality_summary": "indicator_id, geography_level, geography_code, dimension, period_end",
}


# Statistics and disclosure hold their rows in pandas, so they run over a few indicators at a time:
# every statistic and every suppression rule works within one indicator (a representation ratio
# with the rate it is derived from), so chunks give the same figures as one pass over everything.
# At demo and icb scale one chunk holds everything; nationally (~30 million rows) this bounds memory.
CHUNK_ROWS = 3_000_000

# The stage tables each chunk is appended to, with the published column order and types (spec/04).
_FIGURES = (
    *RAW_COLUMNS[:9],  # indicator_id .. value, as the build made them
    ("lower_95", "DOUBLE"),
    ("upper_95", "DOUBLE"),
    ("lower_998", "DOUBLE"),
    ("upper_998", "DOUBLE"),
    ("method", "VARCHAR"),
    ("significance_95", "VARCHAR"),
    ("significance_998", "VARCHAR"),
    ("benchmark_value", "DOUBLE"),
)
STAGED = {
    "indicator_values_raw": (*_FIGURES, ("sd", "DOUBLE"), ("n", "BIGINT")),
    "indicator_values": (*_FIGURES, ("suppressed", "VARCHAR")),
    "inequality_summary": (
        ("indicator_id", "VARCHAR"),
        ("period_end", "TIMESTAMP"),
        ("geography_level", "VARCHAR"),
        ("geography_code", "VARCHAR"),
        ("dimension", "VARCHAR"),
        ("measure", "VARCHAR"),
        ("group_value", "VARCHAR"),
        ("value", "DOUBLE"),
        ("lower_95", "DOUBLE"),
        ("upper_95", "DOUBLE"),
        ("significant", "BOOLEAN"),
        ("suppressed", "VARCHAR"),
    ),
}


def indicator_chunks(counts: dict[str, int], registry, max_rows: int) -> list[list[str]]:
    """Indicator ids in id order, packed into chunks of about `max_rows` raw rows, each a run of
    consecutive ids; a ratio indicator always shares its chunk with its source, and with any ids
    that sort between the two (so such a run may exceed `max_rows`; the one ratio of the registry
    sorts next to its source). A run larger than `max_rows` is a chunk of its own. Ids in `counts`
    that the registry lacks are kept too.

    Consecutive ids, in order, because the published tables lead their sort keys with indicator_id
    (SORT_KEYS): each chunk is stored sorted, so the chunks one after another are sorted as a whole
    and a full run writes them without sorting again (_write_tables)."""
    family = {}
    for ind in registry:
        family[ind.id] = ind.derived_from if ind.kind == "ratio" and ind.derived_from else ind.id
    ids = sorted({*family, *counts})
    # runs of consecutive ids that no family straddles: a family's members and every id between them
    last = {}
    for n, i in enumerate(ids):
        last[family.get(i, i)] = n
    runs: list[list[str]] = []
    end = -1
    for n, i in enumerate(ids):
        if n > end:
            runs.append([])
        runs[-1].append(i)
        end = max(end, last[family.get(i, i)])
    chunks: list[list[str]] = []
    size = 0
    for run in runs:
        rows = sum(counts.get(i, 0) for i in run)
        if chunks and size + rows <= max_rows:
            chunks[-1] += run
            size += rows
        else:
            chunks.append(list(run))
            size = rows
    return chunks


def _statistics_and_disclosure(
    con, registry, geography: pd.DataFrame, config: Config, prog: _Progress
) -> None:
    """indicator_values_raw -> the stage tables `_staged_<name>` of STAGED, one chunk of indicators at
    a time; logged as the two stages `statistics` and `disclosure`."""
    for name, cols in STAGED.items():
        ddl = ", ".join(f'"{c}" {t}' for c, t in cols)
        con.execute(f"create or replace temp table _staged_{name} ({ddl})")
    counts = dict(
        con.execute("select indicator_id, count(*) from indicator_values_raw group by all").fetchall()
    )
    chunks = indicator_chunks(counts, registry, CHUNK_ROWS)
    units = {i.id: i.unit for i in registry}
    secs = {"statistics": 0.0, "disclosure": 0.0}
    rows = {"statistics": 0, "inequality_rows": 0, "disclosure": 0, "suppressed": 0}

    def read(ids: list[str]) -> pd.DataFrame:
        # In key order, explicitly: disclosure breaks ties between equally small cells by row order,
        # so the order must not depend on how DuckDB happens to scan (or on the other periods present).
        # Through Arrow: the same frame as .df() (period_end as a timestamp gives its datetime64[us]),
        # in about half the time (2.4 against 4.4 s for 2.4 million rows; the strings are not copied).
        # Text as pandas categoricals: every selection of rows then takes integer codes, not Arrow
        # strings (national statistics and disclosure 171 -> 154 s, the same figures).
        return (
            con.sql(
                "select * replace (period_end::timestamp as period_end) from indicator_values_raw "
                "where list_contains($ids, indicator_id) order by "
                "indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value",
                params={"ids": ids},
            )
            .to_arrow_table()
            .to_pandas(strings_to_categorical=True)
        )

    def write(frames: dict[str, pd.DataFrame]) -> None:
        # Each chunk stored in the published order (see indicator_chunks), sorted here, in this
        # thread, while the next chunk is computed. Text columns may arrive as categoricals, which
        # DuckDB sees as ENUMs ordered by category: the keys are sorted as text.
        for name, frame in frames.items():
            names = [c for c, _ in STAGED[name] if c in frame.columns]
            con.register("_frame", frame[names])
            con.execute(
                f"insert into _staged_{name} by name select * from _frame order by {_text_order(name)}"
            )
            con.unregister("_frame")

    prog.start("statistics")
    t_stage = time.perf_counter()
    # DuckDB's reads and writes run in a thread of their own (the only one using `con` meanwhile),
    # so the next chunk is read and the last one written while this one is computed in pandas, which
    # holds the interpreter lock most of the time while DuckDB releases it.
    with ThreadPoolExecutor(max_workers=1) as duck:
        reading, writing = duck.submit(read, chunks[0]) if chunks else None, None
        for done, ids in enumerate(chunks):
            prog(f"{len(ids)} indicators", done, len(chunks))
            raw = reading.result()
            if done + 1 < len(chunks):
                reading = duck.submit(read, chunks[done + 1])
            raw = add_statistics(raw, registry, geography)
            t1 = time.perf_counter()
            published = apply_disclosure_control(
                raw,
                units,
                geography,
                threshold=config.disclosure.threshold,
                rounding=config.disclosure.rounding,
            )
            secs["disclosure"] += time.perf_counter() - t1
            # after disclosure, so that the measures using a suppressed figure come out withheld (as
            # disclosure.suppress_derived would make them) and a withheld SII/RII is not simulated
            ineq = inequality_summary(raw, registry, shown=published["suppressed"].isna().to_numpy())
            if writing is not None:
                writing.result()  # one chunk's frames waiting at most; a failed write stops here
            writing = duck.submit(
                write,
                {"indicator_values_raw": raw, "indicator_values": published, "inequality_summary": ineq},
            )
            rows["statistics"] += len(raw)
            rows["inequality_rows"] += len(ineq)
            rows["disclosure"] += len(published)
            rows["suppressed"] += int(published["suppressed"].notna().sum())
            del raw, ineq, published
        if writing is not None:
            writing.result()
    # reading and writing the chunks count as statistics
    secs["statistics"] = time.perf_counter() - t_stage - secs["disclosure"]
    prog(f"{len(chunks)} chunks", len(chunks), len(chunks))
    prog.record(
        "statistics",
        secs["statistics"],
        rows=rows["statistics"],
        inequality_rows=rows["inequality_rows"],
        chunks=len(chunks),
    )
    prog.record("disclosure", secs["disclosure"], rows=rows["disclosure"], suppressed=rows["suppressed"])


def _text_order(name: str) -> str:
    """SORT_KEYS[name] with each text key cast to VARCHAR."""
    types = dict(STAGED[name])
    keys = [k.strip() for k in SORT_KEYS[name].split(",")]
    return ", ".join(f'"{k}"::varchar' if types[k] == "VARCHAR" else f'"{k}"' for k in keys)


def _write_tables(con, registry, plan: incremental.Plan) -> None:
    """The published tables: this run's periods, then (incremental) the earlier ones copied."""
    # Stored order is kept only with DuckDB's default preserve_insertion_order (a global setting,
    # which the loader switches and restores): without it, sort as an incremental run does.
    (in_order,) = con.execute("select current_setting('preserve_insertion_order')").fetchone()
    with incremental.previous_build(con, plan):
        for name in STAGED:
            if plan.full and in_order:  # the stage tables are already in SORT_KEYS order (indicator_chunks)
                con.execute(f"create or replace table {name} as select * from _staged_{name}")
            else:  # one pass: this run's rows, the earlier periods copied, sorted
                select = (
                    f"select * from (select * from _staged_{name}{incremental.previous_rows(plan, name)})"
                )
                con.execute(f"create or replace table {name} as {select} order by {SORT_KEYS[name]}")
            con.execute(f"drop table _staged_{name}")
        for name in ("load_report", "quarantine"):  # the loader's, kept TEMP while it ran
            con.execute(f"create or replace table main.{name} as select * from temp.main.{name}")
            con.execute(f"drop table temp.main.{name}")
        con.register("_frame", registry.to_frame())
        con.execute("create or replace table indicators as select * from _frame")
        con.unregister("_frame")


def _write_build_info(con, loaded, inputs_hash: str) -> None:
    from importlib.metadata import version

    con.execute(
        """create or replace table build_info as select
             getvariable('build_id') as build_id, getvariable('built_at')::timestamp as built_at,
             $hash as data_hash, $code as code_version,
             (select min(period_end) from indicator_values) as first_period,
             (select max(period_end) from indicator_values) as last_period,
             $loaded::bigint as rows_loaded, $rejected::bigint as rows_rejected,
             $superseded::bigint as rows_superseded""",
        {
            "hash": inputs_hash,
            "code": version("cmh-dashboard"),
            "loaded": loaded.rows_loaded,
            "rejected": loaded.rows_rejected,
            "superseded": loaded.rows_superseded,
        },
    )


def _drop_working_tables(con) -> None:
    """Person-level staging and intermediate tables never leave the pipeline."""
    rows = con.execute(
        "select table_name, table_type from information_schema.tables where table_schema = 'main'"
    ).fetchall()
    for name, kind in rows:
        if name not in PUBLISHED:
            con.execute(f'drop {"view" if kind == "VIEW" else "table"} if exists "{name}"')


def _save_failed_load_report(con, warehouse: Path) -> None:
    """A fatal load error still leaves its load_report where the data team can read it."""
    try:
        out = warehouse / "logs" / "last_failed_load_report.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        con.execute("select * from load_report").df().to_csv(out, index=False)
    except duckdb.Error:
        pass
