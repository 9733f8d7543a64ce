"""Incremental runs: rebuild only the periods that new or changed input can affect (spec/07: one new
month added to 24 in at most half the time of a full rebuild).

Every indicator value belongs to one period, and almost every input acts only on its own period and
later ones: events (contacts, PROMs, spells) are in their month's folder, person characteristics are
taken "latest up to the period end", and a referral's end date only matters from the month it falls
in. So a run whose code, settings and reference data are unchanged, and whose month folders only
gained or changed from month *M* on, recomputes periods >= *M* and copies the earlier periods'
published rows from the live build. Four inputs reach back before their own month, and each moves
*M* back to the first period it can touch:

- a referral's latest version (spec/01: snapshot tables take the latest month's version). Its
  rejection, team, source, age, provider and inpatient exclusion apply to every period, so a referral
  whose latest row changed moves *M* to its *floor*: the earliest of its received month, its first
  submission and its first contact or PROM. A change of end date alone moves *M* to the earlier of
  the old and new end dates. An agreed care plan (also latest-version data) that is new, gone or
  changed moves the four-week wait's *M* (and only its: no other indicator reads care plans) to the
  earliest of its old and new created and last-updated dates, where that clock can stop, or to the
  first month (the run stays incremental: a plan reviewed today may have been created years ago).
  Once the four-week wait's units are worked out again from there, *M* moves on to the first period
  whose units differ from the previous build's (:func:`settle_plan_family`).
- a contact id sent again in a later month replaces the earlier version (stg_contacts), so a changed
  month holding an id that other months also hold moves *M* to the earliest of those months.
- `provider_pcns` is a lookup over all periods; it is rebuilt from per-period code pairs.

What the previous build knew is kept in `<warehouse>/state/current/`: a JSON of the build id, a
fingerprint of code, SQL, registry and disclosure settings, and each inbox entry's hash; a Parquet of
each referral's row hash, end date and floor; the (provider, PCN, period) pairs; and per period a
digest of the four-week wait's units. Those files hold pseudonymous referral ids, so they live beside
the builds (as private as the inbox), never in a published build. Anything unexpected — no state, a
state from another build than the live one (a rollback, a crash between publish and saving state), a
different fingerprint, a removed month, changed reference data — gives a full rebuild, and the run log
says why. tests/pipelines/test_incremental.py checks incremental results against full rebuilds, row
for row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import publish
from pipelines.contract import uniq_month_id

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
STATE = "state"
CURRENT = "current"
# The last build's load_<table> rows, every month (see prepare_work). With it, cached months' rows are
# stored before the re-read months', in a different order from a full load's: no build step may depend
# on stored order (benchmarks/determinism_check.py --shuffle; int_units__access once did, a620c33).
LOAD_CACHE = "load.duckdb"
# the only intermediate table that reads agreed care plans, which can reach back further than the rest
PLAN_FAMILY = "int_units__four_week_wait"


@dataclass
class Plan:
    """What this run rebuilds: every period (``from_umid is None``) or periods >= ``from_umid``."""

    full: bool
    reason: str
    previous: Path | None = None  # the live build to copy earlier periods from
    from_umid: int | None = None  # the first period rebuilt for the care-plan family
    cutoff_umid: int | None = None  # the first period rebuilt for every other indicator
    state_dir: Path | None = None
    changed: list[str] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)  # every inbox entry of this run

    def to_full(self, reason: str) -> None:
        self.full, self.reason, self.from_umid, self.cutoff_umid = True, reason, None, None


def fingerprint(*, disclosure: dict[str, object], params: dict[str, object]) -> str:
    """Everything besides the inbox that decides the figures: our code, SQL and registry, DuckDB's
    version (its hash() fills the state) and the settings. Any change means a full rebuild."""
    h = hashlib.sha256()
    for folder, pattern in (("pipelines", "*.py"), ("sql", "*.sql"), ("indicators", "*.yaml")):
        for path in sorted((ROOT / folder).rglob(pattern)):
            rel = path.relative_to(ROOT).as_posix()
            if "/synth/" in rel:
                continue  # the generator does not touch a build
            h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(
        json.dumps(
            {"duckdb": duckdb.__version__, **disclosure, **params}, sort_keys=True, default=str
        ).encode()
    )
    return h.hexdigest()


def _month_umid(entry: str) -> int | None:
    try:
        y, m = entry.split("-")
        return uniq_month_id(int(y), int(m)) if len(y) == 4 and len(m) == 2 else None
    except ValueError:
        return None


def plan(warehouse: Path, live: Path | None, live_id: str | None, entries: dict[str, str], fp: str) -> Plan:
    """Decide from the inbox hashes alone whether an incremental run is possible, and from when."""
    state_dir = warehouse / STATE / CURRENT
    meta_path = state_dir / "state.json"
    if live is None:
        return Plan(True, "no live build")
    if not meta_path.is_file():
        return Plan(True, "no saved state from an earlier build")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        return Plan(True, f"saved state unreadable ({e})")
    if meta.get("build_id") != live_id:
        return Plan(True, "saved state is not of the live build (rollback or interrupted run)")
    if meta.get("fingerprint") != fp:
        return Plan(True, "code, SQL, registry or settings changed")
    old: dict[str, str] = meta.get("entries", {})
    removed = sorted(set(old) - set(entries))
    if removed:
        return Plan(True, f"inbox entries removed: {', '.join(removed)}")
    changed = sorted(k for k in entries if old.get(k) != entries[k])
    if not changed:
        return Plan(True, "inbox unchanged (rebuilding everything)")
    umids = [_month_umid(k) for k in changed]
    if any(u is None for u in umids):
        bad = [k for k, u in zip(changed, umids, strict=True) if u is None]
        return Plan(True, f"non-month inbox entries changed: {', '.join(bad)}")
    return Plan(
        False,
        f"changed or new month folders: {', '.join(changed)}",
        previous=live,
        from_umid=min(umids),  # type: ignore[type-var]
        cutoff_umid=min(umids),  # type: ignore[type-var]
        state_dir=state_dir,
        changed=changed,
        entries=sorted(entries),
    )


# Each referral as it is now: a hash of everything but its end date, the end
# date, and its floor (the first period anything about it can touch).
_REFERRAL_STATE = """
with core as (
    select * exclude (end_date) from stg_referrals
),
floors as (
    select referral_id, min(umid) as umid from (
        select UniqServReqID as referral_id, min(UniqMonthID) as umid from stg_MHS101Referral group by all
        union all select referral_id, min(contact_umid) from stg_contacts group by all
        union all select referral_id, min(assessed_umid) from stg_prom_scores group by all
    ) group by all
)
select r.referral_id,
    hash(c) as row_hash,
    r.end_date,
    least(r.received_umid, f.umid) as floor_umid
from stg_referrals as r
inner join core as c on r.referral_id = c.referral_id
left join floors as f on r.referral_id = f.referral_id
"""


# Each agreed care plan: a hash of its row, and the first period it can touch (the four-week wait
# stops at its created or last-updated date, whichever applies).
_PLAN_STATE = """
select p.care_plan_id, hash(p) as row_hash,
    (year(least(p.created_date, p.last_update_date)) - 1900) * 12
        + month(least(p.created_date, p.last_update_date)) - 3 as floor_umid
from stg_agreed_care_plans as p
"""


def _umid_sql(col: str) -> str:
    return f"(year({col}) - 1900) * 12 + month({col}) - 3"


def refine(con: duckdb.DuckDBPyConnection, p: Plan) -> None:
    """After staging: move the plan's floors back to the first period changed referrals, care plans
    or re-sent contacts can touch (see the module docstring). Leaves ``_inc_referrals`` and
    ``_inc_plans`` for :func:`write_state`."""
    con.execute(f"create or replace temp table _inc_referrals as {_REFERRAL_STATE}")
    con.execute(f"create or replace temp table _inc_plans as {_PLAN_STATE}")
    if p.full:
        return
    old = p.state_dir / "referrals.parquet"  # type: ignore[operator]
    e_new, e_old = _umid_sql("n.end_date"), _umid_sql("o.end_date")
    (ref_floor,) = con.execute(
        f"""select min(case
                when n.referral_id is null then o.floor_umid
                when o.referral_id is null then n.floor_umid
                when n.row_hash <> o.row_hash then least(n.floor_umid, o.floor_umid)
                else least({e_new}, {e_old})  -- only the end date differs; null = open
            end)
            from _inc_referrals as n
            full join read_parquet($old) as o on n.referral_id = o.referral_id
            where n.referral_id is null or o.referral_id is null or n.row_hash <> o.row_hash
                or n.end_date is distinct from o.end_date""",
        {"old": str(old)},
    ).fetchone()
    (plan_floor,) = con.execute(
        """select min(least(n.floor_umid, o.floor_umid)) from _inc_plans as n
           full join read_parquet($old) as o on n.care_plan_id = o.care_plan_id
           where n.row_hash is distinct from o.row_hash""",
        {"old": str(p.state_dir / "plans.parquet")},  # type: ignore[operator]
    ).fetchone()
    changed = [u for k in p.changed if (u := _month_umid(k)) is not None]
    (contact_floor,) = con.execute(
        """select min(c.src_month) from stg_MHS201CareContact as c
           where c.UniqCareContID in (
               select UniqCareContID from stg_MHS201CareContact where src_month in (select unnest($m))
           )""",
        {"m": changed},
    ).fetchone()
    cutoff = min(u for u in (p.from_umid, ref_floor, contact_floor) if u is not None)
    (first_loaded,) = con.execute("select min(umid) from stg_months").fetchone()
    if first_loaded is None or cutoff <= first_loaded:
        p.to_full(p.reason + "; changed referrals or re-sent contacts reach back to the first month")
        return
    # The care-plan family alone may reach back to the first month and still be an incremental run:
    # settle_plan_family then rebuilds only the periods whose four-week wait units really changed.
    first = max(min(cutoff, plan_floor), first_loaded) if plan_floor is not None else cutoff
    if cutoff < p.from_umid:  # type: ignore[operator]
        p.reason += f"; changed referrals or re-sent contacts reach back to UniqMonthID {cutoff}"
    if first < cutoff:
        p.reason += f"; changed care plans reach back to UniqMonthID {first} (four-week wait only)"
    p.from_umid, p.cutoff_umid = first, cutoff


# Per period, the four-week wait's units: how many, and the sum of their row hashes modulo 2^64 (the
# same rows in any order give the same sum; kept in 64 bits, since Parquet would store a HUGEINT as a
# DOUBLE and round it). A period with the same count and sum as the previous build's has the same
# units, so the same figures: the facts add only characteristics and geography as at the period, which
# no input before the cutoff changed.
_WAIT_DIGEST = f"""
select umid, count(*) as n, (sum(hash(u)::hugeint) % 18446744073709551616)::ubigint as digest
from {PLAN_FAMILY} as u
group by umid
"""


def settle_plan_family(con: duckdb.DuckDBPyConnection, p: Plan) -> None:
    """After the intermediate layer: the care-plan family's periods are rebuilt only from the first one
    whose units differ from the previous build's (``four_week_wait.parquet``), not from the earliest
    date a changed care plan holds. A care plan updated today but created two years ago changes no
    clock that had already stopped on another plan, a contact or a PROM; without this every such update
    would rebuild the four-week wait back to its created month. Leaves ``_inc_waits`` (every period's
    digest) for :func:`write_state`."""
    con.execute(f"create or replace temp table _inc_waits as {_WAIT_DIGEST}")
    if p.full:
        return
    old = str(p.state_dir / "four_week_wait.parquet")  # type: ignore[operator]
    reached = p.from_umid
    if reached is not None and p.cutoff_umid is not None and reached < p.cutoff_umid:
        (first_changed,) = con.execute(
            """select min(coalesce(n.umid, o.umid)) from (select * from _inc_waits where umid < $cut) as n
               full join (select * from read_parquet($old) where umid >= $from and umid < $cut) as o
                   on n.umid = o.umid
               where n.n is distinct from o.n or n.digest is distinct from o.digest""",
            {"old": old, "from": reached, "cut": p.cutoff_umid},
        ).fetchone()
        settled = first_changed if first_changed is not None else p.cutoff_umid
        if settled > reached:
            p.from_umid = settled
            if settled < p.cutoff_umid:
                p.reason += f", but its units change only from UniqMonthID {settled}"
            else:
                p.reason += ", but change none of its units before the others'"
            con.execute("delete from _inc_months where umid < $u", {"u": settled})
            con.execute("create or replace temp table stg_months as select * from _inc_months order by umid")
    # the periods this run did not build keep the previous build's digests
    con.execute(
        "insert into _inc_waits select umid, n, digest from read_parquet($old) where umid < $u",
        {"old": old, "u": reached},
    )


def restrict_months(con: duckdb.DuckDBPyConnection, p: Plan) -> None:
    """Only the periods to rebuild stay in stg_months, which every later layer joins to."""
    if not p.full:
        con.execute("delete from stg_months where umid < $u", {"u": p.from_umid})
        con.execute("create or replace temp table _inc_months as select * from stg_months")


def months_for(con: duckdb.DuckDBPyConnection, p: Plan, path: Path) -> None:
    """Before each layer file: the intermediate unit tables other than the care-plan family need only
    the periods from the cutoff; everything else (the care-plan family, the geography and history it
    joins, the facts) needs them from ``from_umid``. Switching stg_months per file keeps the SQL as is."""
    if p.full or p.from_umid == p.cutoff_umid:
        return
    narrow = (
        path.parent.name.startswith("20_")
        and path.stem != PLAN_FAMILY
        and (path.stem.startswith("int_units__") or path.stem == "int_people_in_contact")
    )
    con.execute(
        "create or replace temp table stg_months as select * from _inc_months where umid >= $u order by umid",
        {"u": p.cutoff_umid if narrow else p.from_umid},
    )


def _period_end(umid: int | None) -> dt.date | None:
    if umid is None:
        return None
    y, m = 1900 + (umid + 2) // 12, (umid + 2) % 12 + 1
    return dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)


def indicator_floors(con: duckdb.DuckDBPyConnection, p: Plan) -> None:
    """``_inc_floors``: per indicator, the first period this run rebuilt (the care-plan family from
    ``from_umid``, the rest from ``cutoff_umid``; a derived indicator follows its source), and
    ``_inc_late``: the ids of the care-plan family."""
    con.execute(f"create or replace temp table _inc_late as select distinct indicator_id from {PLAN_FAMILY}")
    con.execute(
        """create or replace temp table _inc_floors as
           select r.indicator_id,
               case when l.indicator_id is not null then $early else $late end as floor_end
           from reg_indicator as r
           left join _inc_late as l on coalesce(r.derived_from, r.indicator_id) = l.indicator_id""",
        {"early": _period_end(p.from_umid), "late": _period_end(p.cutoff_umid)},
    )


def trim_raw(con: duckdb.DuckDBPyConnection, p: Plan) -> None:
    """Drop any rows the build made for periods before an indicator's floor (e.g. population
    denominators of periods only the four-week wait needed): those periods come from the live build."""
    if not p.full:
        con.execute(
            "delete from indicator_values_raw as r using _inc_floors as f "
            "where r.indicator_id = f.indicator_id and r.period_end < f.floor_end"
        )


@contextlib.contextmanager
def previous_build(con: duckdb.DuckDBPyConnection, p: Plan) -> Iterator[None]:
    """The live build attached read-only as ``_prev`` while the new tables are written."""
    if p.full:
        yield
        return
    con.execute("attach $path as _prev (read_only)", {"path": str(p.previous)})
    try:
        yield
    finally:
        con.execute("detach _prev")


def previous_rows(p: Plan, table: str) -> str:
    """SQL (``union all by name ...``, or nothing) adding the live build's rows of the periods this
    run did not rebuild; used inside :func:`previous_build`."""
    if p.full:
        return ""
    return (
        f" union all by name select t.* from _prev.{table} as t "
        "inner join _inc_floors as f on t.indicator_id = f.indicator_id where t.period_end < f.floor_end"
    )


def provider_pcn_periods(con: duckdb.DuckDBPyConnection, p: Plan) -> None:
    """`provider_pcns` over all periods: this run's (provider, PCN, period) pairs, plus the saved pairs
    of the periods and families it did not rebuild."""
    con.execute(
        "create or replace temp table _inc_provider_pcns as "
        "select provider_code, pcn_code, period_end, late from agg_provider_pcns"
    )
    if not p.full:
        con.execute(
            """insert into _inc_provider_pcns select provider_code, pcn_code, period_end, late
               from read_parquet($old) where period_end < $early or (period_end < $late and not late)""",
            {
                "old": str(p.state_dir / "provider_pcns.parquet"),  # type: ignore[operator]
                "early": _period_end(p.from_umid),
                "late": _period_end(p.cutoff_umid),
            },
        )
        con.execute(
            "create or replace table provider_pcns as select distinct provider_code, pcn_code "
            "from _inc_provider_pcns order by provider_code, pcn_code"
        )


def work_path(warehouse: Path, what: str = "work") -> Path:
    """A scratch database of this run (`work`: the loader's tables, compressed on disk). The name is
    one publish.clean_stale removes once its process is gone."""
    return warehouse / STATE / f".tmp_{what}_pid{os.getpid()}.duckdb"


def prepare_work(p: Plan, warehouse: Path) -> tuple[Path, list[int]]:
    """The scratch database for this run's load, and the months whose loaded rows it already holds.

    An incremental run starts from a copy of the previous build's (its state folder's load.duckdb):
    those rows were loaded from month folders whose hashes are unchanged, by the same code (the
    fingerprint), so they are exactly what loading the files again would give, and the loader reads
    only the new or changed months. A full run starts from an empty file. Either way the file becomes
    the next run's cache once this build is live (:func:`write_state`)."""
    work = work_path(warehouse)
    discard_work(work)
    work.parent.mkdir(parents=True, exist_ok=True)
    cache = p.state_dir / LOAD_CACHE if p.state_dir is not None else None
    if p.full or cache is None or not cache.is_file():
        return work, []
    shutil.copyfile(cache, work)
    cached = {_month_umid(k) for k in p.entries if k not in p.changed}
    return work, sorted(u for u in cached if u is not None)


def discard_work(work: Path | None) -> None:
    if work is not None:
        publish.unlink_db(work)  # with its .wal and spill folder


def write_state(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    build_id: str,
    entries: dict,
    fp: str,
    work: Path | None = None,
) -> Path:
    """Write this build's state to a new folder; :func:`commit_state` makes it current once the build
    is live. `work`, the run's scratch database (already detached), moves in as the load cache.
    Returns the folder."""
    folder = warehouse / STATE / f".new-{build_id}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if work is not None and work.is_file():
        os.replace(work, folder / LOAD_CACHE)
    con.execute(f"copy _inc_referrals to '{folder / 'referrals.parquet'}' (format parquet)")
    con.execute(f"copy _inc_plans to '{folder / 'plans.parquet'}' (format parquet)")
    con.execute(f"copy _inc_waits to '{folder / 'four_week_wait.parquet'}' (format parquet)")
    con.execute(f"copy _inc_provider_pcns to '{folder / 'provider_pcns.parquet'}' (format parquet)")
    (folder / "state.json").write_text(
        json.dumps({"build_id": build_id, "fingerprint": fp, "entries": entries})
    )
    return folder


def commit_state(warehouse: Path, folder: Path) -> None:
    """Make `folder` the current state. A crash part-way leaves no `current`: the next run is full."""
    current = warehouse / STATE / CURRENT
    old = warehouse / STATE / ".old"
    if old.exists():
        shutil.rmtree(old)
    if current.exists():
        os.rename(current, old)
    os.rename(folder, current)
    shutil.rmtree(old, ignore_errors=True)


def discard_state(folder: Path | None) -> None:
    if folder is not None and folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
