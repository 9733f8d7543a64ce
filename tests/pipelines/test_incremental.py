"""Incremental runs (spec/07: one new month added to 24 without redoing everything) publish exactly
what a full rebuild of the same inbox publishes.

The reference is always a full rebuild by the same code: the demo warehouse of the session for a new
month, and a second full run for a resubmission. The decision rules (when an incremental run is not
safe) are tested directly on state files.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines import incremental
from pipelines.contract import uniq_month_id
from pipelines.publish import current_build

# Each compared table with its key; any two builds of the same inbox must agree on every row.
KEYS = {
    "indicator_values": "indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value",
    "indicator_values_raw": "indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value",
    "inequality_summary": "indicator_id, period_end, geography_level, geography_code, dimension, measure, group_value",
    "provider_pcns": "provider_code, pcn_code",
    "load_report": "file",
    # every rejected row, with its reason (duplicate keys of the new month are found among its rows alone)
    "quarantine": "file, line_number",
}


def differences(a: Path, b: Path) -> dict[str, list]:
    """Per table, a few rows that differ between builds `a` and `b`; empty when they agree.

    Rows are matched on the table's key (a row missing on either side is a difference). Every
    column must be equal, doubles to the last bit and suppression flags included: the build sums
    non-integer values in fixed point, so no summation order can move a figure (before that, a few
    thousand values differed at 1e-15 relative and this allowed 1e-9).
    """
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    out: dict[str, list] = {}
    for table, key in KEYS.items():
        cols = con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = 'a' and table_name = ? "
            "order by column_index",
            [table],
        ).fetchall()
        keys = [k.strip() for k in key.split(",")]
        same = [f"a.{c} is not distinct from b.{c}" for c, _ in cols if c not in keys]
        same = [x.replace("a.table", 'a."table"').replace("b.table", 'b."table"') for x in same]
        on = " and ".join(f"a.{k} is not distinct from b.{k}" for k in keys)
        rows = con.execute(
            f"select a.*, b.* from a.{table} as a full join b.{table} as b on {on} "
            f"where a.{keys[0]} is null or b.{keys[0]} is null or not ({' and '.join(same) or 'true'}) limit 4"
        ).fetchall()
        if rows:
            out[table] = rows
    (ha,), (hb,) = (con.execute(f"select data_hash from {d}.build_info").fetchone() for d in "ab")
    if ha != hb:
        out["build_info.data_hash"] = [ha, hb]
    con.close()
    return out


def _months(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.iterdir() if p.is_dir() and p.name[:2] == "20")


@pytest.fixture(scope="module")
def grown(demo_inbox, tmp_path_factory, run_pipeline):
    """The demo inbox without its last month, built in full; then the last month added and built."""
    root = tmp_path_factory.mktemp("incremental")
    inbox, wh = root / "inbox", root / "wh"
    last = _months(demo_inbox)[-1]
    shutil.copytree(demo_inbox, inbox, ignore=lambda d, names: [last] if Path(d) == demo_inbox else [])
    first = run_pipeline(inbox, wh)
    shutil.copytree(demo_inbox / last, inbox / last)
    second = run_pipeline(inbox, wh)
    return inbox, wh, first, second


def test_a_new_month_is_built_incrementally_and_publishes_what_a_full_rebuild_does(grown, demo_warehouse):
    inbox, wh, first, second = grown
    assert "full rebuild: no live build" in first.message
    assert "incremental from UniqMonthID" in second.message, second.message
    builds = [
        e
        for e in map(json.loads, (wh / "logs" / "pipeline.jsonl").read_text().splitlines())
        if e["stage"] == "build"
    ]
    assert builds[-1]["full"] is False
    assert builds[-1]["rows"] < builds[-2]["rows"] / 2, (
        "the incremental build recomputes a fraction of the rows"
    )
    loads = [e for e in _log(wh) if e["stage"] == "load"]
    n = len(_months(inbox))
    assert [e["months_from_cache"] for e in loads[-2:]] == [0, n - 1], "only the new month's files are read"
    assert loads[-1]["rows"] == loads[-2]["rows"] + sum(_rows(inbox / _months(inbox)[-1])), (
        "the cached months' rows are all still there, and counted"
    )
    assert differences(wh / "current.duckdb", demo_warehouse / "current.duckdb") == {}


@pytest.mark.slow
def test_an_incremental_run_made_a_few_periods_at_a_time_publishes_what_a_full_rebuild_does(
    grown, demo_warehouse, tmp_path
):
    """A national inbox builds its facts by groups of months (pipeline.period_chunk_rows); its monthly
    run is incremental, so the two together must still publish what a one-pass full rebuild does."""
    import dataclasses

    from pipelines.config import load_config
    from pipelines.run import run_pipeline as run

    inbox, wh, _, _ = grown
    last = _months(inbox)[-1]
    shorter, chunked = tmp_path / "inbox", tmp_path / "wh"
    shutil.copytree(inbox, shorter, ignore=lambda d, names: [last] if Path(d) == inbox else [])
    cfg = load_config(env={})
    settings = dataclasses.replace(cfg.pipeline, inbox=shorter, warehouse=chunked, period_chunk_rows=400_000)
    run(dataclasses.replace(cfg, pipeline=settings), progress=False)
    shutil.copytree(inbox / last, shorter / last)
    stats = run(dataclasses.replace(cfg, pipeline=settings), progress=False)
    assert "incremental from UniqMonthID" in stats.message, stats.message
    build = [e for e in _log(chunked) if e["stage"] == "build"][-1]
    groups = [f for f in build["seconds_by_file"] if f.startswith("fct_indicator_units.sql[")]
    assert len(groups) >= 2, "the rebuilt months must still come in several groups"
    assert differences(chunked / "current.duckdb", demo_warehouse / "current.duckdb") == {}


def _log(wh: Path) -> list[dict]:
    return [json.loads(line) for line in (wh / "logs" / "pipeline.jsonl").read_text().splitlines()]


def _rows(month: Path) -> list[int]:
    """Data rows of every CSV in a month folder."""
    out = []
    for f in sorted(month.glob("*.csv")):
        with f.open(newline="", encoding="utf-8") as fh:
            out.append(sum(1 for _ in csv.reader(fh)) - 1)
    return out


def _rewrite(path: Path, change) -> int:
    """Rewrite a CSV through `change(row) -> row | None` (None drops the row); returns rows changed."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
        fields = list(rows[0].keys())
    out, n = [], 0
    for row in rows:
        new = change(dict(row))
        n += new != row
        if new is not None:
            out.append(new)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(out)
    return n


def test_a_resubmitted_month_and_a_backdated_rejection_match_a_full_rebuild(grown, tmp_path, run_pipeline):
    inbox, wh, _, _ = grown
    months = _months(inbox)
    # A resubmission of a mid-series month: some contacts withdrawn.
    resubmitted = months[-5]
    dropped = _rewrite(
        inbox / resubmitted / "MHS201CareContact.csv", lambda r: None if r["UniqCareContID"][-1] == "7" else r
    )
    assert dropped > 100
    # ... and one contact sent twice: the duplicate key is found among the re-read month's rows
    contacts = inbox / resubmitted / "MHS201CareContact.csv"
    lines = contacts.read_text(encoding="utf-8").splitlines(keepends=True)
    contacts.write_text("".join([*lines, lines[1]]), encoding="utf-8")
    # The latest month rejects a referral received over a year earlier: a latest-version change that
    # reaches back to the month it was received (referrals_rejected_pct is by received month).
    latest = inbox / months[-1] / "MHS101Referral.csv"
    target_month = months[-14]
    with latest.open(newline="", encoding="utf-8") as fh:
        target = next(
            r["UniqServReqID"]
            for r in csv.DictReader(fh)
            if r["ReferralRequestReceivedDate"].startswith(target_month) and not r["ReferRejectionDate"]
        )
    rejected = _rewrite(
        latest,
        lambda r: {**r, "ReferRejectionDate": f"{months[-1]}-15"} if r["UniqServReqID"] == target else r,
    )
    assert rejected == 1

    stats = run_pipeline(inbox, wh)
    y, m = (int(x) for x in target_month.split("-"))
    assert "incremental from UniqMonthID" in stats.message, stats.message
    load = [e for e in _log(wh) if e["stage"] == "load"][-1]
    assert load["months_from_cache"] == len(months) - 2, "both changed months are read again, the rest cached"
    from_umid = int(stats.message.split("incremental from UniqMonthID ")[1].split(":")[0])
    assert from_umid <= uniq_month_id(y, m), "the backdated rejection must reach back to its received month"
    with duckdb.connect(str(wh / "current.duckdb"), read_only=True) as con:
        (dup,) = con.execute(
            "select count(*) from quarantine where file = ? and line_number = ? and reason like 'duplicate key%'",
            [f"{resubmitted}/MHS201CareContact.csv", len(lines) + 1],
        ).fetchone()
    assert dup == 1, "the re-sent line of the resubmitted month is rejected as a duplicate"
    run_pipeline(inbox, tmp_path / "full")
    assert differences(wh / "current.duckdb", tmp_path / "full" / "current.duckdb") == {}


def test_changed_care_plans_rebuild_the_four_week_wait_only_where_its_units_change(
    grown, tmp_path, run_pipeline
):
    """Care plans are latest-version data, and a plan reviewed today is re-sent with a new last-updated
    date however long ago it was created. Such a change may reach back to the first month: the run
    stays incremental, works out the four-week wait's units again from there, and rebuilds its
    figures from the first period whose units changed."""
    src_inbox, src_wh, _, _ = grown
    inbox, wh = tmp_path / "inbox", tmp_path / "wh"
    shutil.copytree(src_inbox, inbox)
    shutil.copytree(src_wh, wh, symlinks=True)
    months = _months(inbox)
    latest, first, year_ago = months[-1], months[0], months[-12]
    first_umid = uniq_month_id(*map(int, first.split("-")))
    plans, day = inbox / latest / "MHS008CarePlanType.csv", f"{latest}-15"
    # plans created in the first month, reviewed now: they reach back to the first month
    reviewed = _rewrite(
        plans,
        lambda r: {**r, "CarePlanLastUpdateDate": day} if r["CarePlanCreatDate"].startswith(first) else r,
    )
    # plans created a year ago, re-sent as created now: clocks that stopped on them stop later
    moved = _rewrite(
        plans,
        lambda r: (
            {**r, "CarePlanCreatDate": day, "CarePlanLastUpdateDate": day}
            if r["CarePlanCreatDate"].startswith(year_ago)
            else r
        ),
    )
    assert reviewed > 0 and moved >= 20
    before = current_build(wh).path

    stats = run_pipeline(inbox, wh)
    assert "incremental from UniqMonthID" in stats.message, stats.message
    assert f"changed care plans reach back to UniqMonthID {first_umid}" in stats.message
    build = [e for e in _log(wh) if e["stage"] == "build"][-1]
    run_pipeline(inbox, tmp_path / "full")
    assert differences(wh / "current.duckdb", tmp_path / "full" / "current.duckdb") == {}

    # The case is a real one: four-week wait figures changed before the other indicators' first
    # rebuilt period, and the run rebuilt them from there, but not from the first month.
    con = duckdb.connect()
    con.execute(f"attach '{before}' as old (read_only)")
    con.execute(f"attach '{tmp_path / 'full' / 'current.duckdb'}' as new (read_only)")
    (changed,) = con.execute(
        """select min(n.period_end) from new.indicator_values_raw as n
           left join old.indicator_values_raw as o
               using (indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value)
           where n.indicator_id like 'four_week%'
               and (o.indicator_id is null or n.numerator <> o.numerator or n.denominator <> o.denominator)"""
    ).fetchone()
    con.close()
    assert changed is not None
    changed_umid = uniq_month_id(changed.year, changed.month)
    assert changed_umid < build["cutoff_umid"], "a four-week wait figure changed before the cutoff"
    assert first_umid < build["from_umid"] <= changed_umid
    # the digests are saved exactly (a HUGEINT would go to Parquet as a rounded DOUBLE)
    saved = wh / "state" / "current" / "four_week_wait.parquet"
    assert duckdb.sql(f"select distinct typeof(digest) from read_parquet('{saved}')").fetchall() == [
        ("UBIGINT",)
    ]


def test_a_failed_run_keeps_the_saved_state_of_the_live_build(grown, tmp_path, run_pipeline):
    from pipelines.load import FatalLoadError

    inbox, wh, _, _ = grown
    live = current_build(wh).build_id
    state = json.loads((wh / "state" / "current" / "state.json").read_text())
    assert state["build_id"] == live
    cache = wh / "state" / "current" / "load.duckdb"
    cache_mtime = cache.stat().st_mtime_ns if cache.exists() else None
    broken = tmp_path / "inbox"
    shutil.copytree(inbox, broken)
    (broken / _months(broken)[-1] / "MHS001MPI.csv").unlink()
    with pytest.raises(FatalLoadError):
        run_pipeline(broken, wh)
    assert current_build(wh).build_id == live
    assert json.loads((wh / "state" / "current" / "state.json").read_text()) == state
    assert not list((wh / "state").glob(".new-*")), "a failed run leaves no half-written state"
    assert not list((wh / "state").glob(".tmp_*")), "nor its scratch database"
    assert (cache.stat().st_mtime_ns if cache.exists() else None) == cache_mtime, (
        "the live build's load cache is untouched"
    )


# The decision rules, on state files alone -------------------------------------------------------

ENTRIES = {"2025-01": "a", "2025-02": "b", "reference": "r"}


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "state" / "current"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"build_id": "B1", "fingerprint": "F", "entries": ENTRIES}))
    return tmp_path


def _plan(wh, entries, *, live_id="B1", fp="F", live=Path("x.duckdb")):
    return incremental.plan(wh, live, live_id, entries, fp)


@pytest.mark.parametrize(
    ("entries", "kwargs", "why"),
    [
        (ENTRIES, {"live": None}, "no live build"),
        (ENTRIES, {"live_id": "B0"}, "not of the live build"),
        (ENTRIES, {"fp": "G"}, "code, SQL, registry or settings changed"),
        ({"2025-02": "b", "reference": "r"}, {}, "removed: 2025-01"),
        ({**ENTRIES, "reference": "r2"}, {}, "non-month inbox entries changed: reference"),
        (ENTRIES, {}, "inbox unchanged"),
    ],
)
def test_anything_unexpected_means_a_full_rebuild(saved, entries, kwargs, why):
    p = _plan(saved, entries, **kwargs)
    assert p.full and why in p.reason


def test_no_saved_state_means_a_full_rebuild(tmp_path):
    p = _plan(tmp_path, ENTRIES)
    assert p.full and "no saved state" in p.reason


def test_new_and_changed_months_rebuild_from_the_earliest(saved):
    p = _plan(saved, {**ENTRIES, "2025-02": "b2", "2025-03": "c"})
    assert not p.full
    assert p.from_umid == uniq_month_id(2025, 2)
    assert p.changed == ["2025-02", "2025-03"]


def test_state_is_switched_whole(tmp_path):
    wh = tmp_path
    (wh / "state" / "current").mkdir(parents=True)
    (wh / "state" / "current" / "state.json").write_text('{"build_id": "old"}')
    new = wh / "state" / ".new-B2"
    new.mkdir()
    (new / "state.json").write_text('{"build_id": "B2"}')
    incremental.commit_state(wh, new)
    assert json.loads((wh / "state" / "current" / "state.json").read_text()) == {"build_id": "B2"}
    assert sorted(p.name for p in (wh / "state").iterdir()) == ["current"]
