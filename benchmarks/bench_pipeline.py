"""Time the pipeline end to end against a hand-written single DuckDB query (spec/07).

For each scale: generate the extract (unless --inbox is given), run `cmh pipeline run` in a fresh
process (wall time, peak RSS of that process, and the per-stage seconds it logs), then run the
baseline — one hand-written DuckDB query that computes the headline `access_2plus_contacts` count for
every month at ICB level straight from the CSV files (latest submission, access-scope referrals,
attended direct contacts, 12-month window) — and report pipeline ÷ baseline.

    .venv/bin/python benchmarks/bench_pipeline.py [--scales demo icb] [--inbox DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from _proc import measured, synth

BIN = Path(sys.executable).parent

BASELINE = """
with hdr as (select OrgIDProv, UniqMonthID, max(UniqSubmissionID) s
             from read_csv('{inbox}/*/MHS000Header.csv') group by all),
ref as (select r.* from read_csv('{inbox}/*/MHS101Referral.csv', types={{'AgeServReferRecDate': 'INTEGER'}}) r
        join hdr h on h.OrgIDProv = r.OrgIDProv and h.UniqMonthID = r.UniqMonthID and h.s = r.UniqSubmissionID
        qualify row_number() over (partition by UniqServReqID order by r.UniqMonthID desc) = 1),
spells as (select distinct UniqServReqID from read_csv('{inbox}/*/MHS501HospProvSpell.csv')),
scope as (select UniqServReqID, Person_ID from ref
          where ServTeamTypeRefToMH in ('A05','A06','A08','A09','A12','A13','A16','C10','C03','A14','D05')
            and AgeServReferRecDate >= 18 and UniqServReqID not in (select UniqServReqID from spells)),
con as (select c.UniqServReqID, c.CareContDate d from read_csv('{inbox}/*/MHS201CareContact.csv',
            types={{'AttendStatus': 'VARCHAR', 'ConsMechanismMH': 'VARCHAR'}}) c
        join hdr h on h.OrgIDProv = c.OrgIDProv and h.UniqMonthID = c.UniqMonthID and h.s = c.UniqSubmissionID
        where AttendStatus in ('5','6') and ConsMechanismMH in ('01','02','04','11')),
months as (select distinct last_day(d) period_end from con),
second as (select m.period_end, s.Person_ID from months m join con c
             on c.d > m.period_end - interval 12 month and c.d <= m.period_end
           join scope s using (UniqServReqID)
           group by m.period_end, s.Person_ID, c.UniqServReqID having count(*) >= 2)
select period_end, count(distinct Person_ID) people from second group by 1 order by 1
"""


def run_pipeline(inbox: Path, warehouse: Path) -> dict:
    secs, peak_mib = measured(
        "pipeline", "run", "--quiet", "--inbox", str(inbox), "--warehouse", str(warehouse)
    )
    stages = {}
    for line in (warehouse / "logs" / "pipeline.jsonl").read_text().splitlines():
        e = json.loads(line)
        stages[e["stage"]] = e["seconds"]
    return {"secs": secs, "peak_mib": peak_mib, "stages": stages}


def baseline(inbox: Path) -> tuple[float, int]:
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    t0 = time.perf_counter()
    rows = con.execute(BASELINE.format(inbox=inbox)).fetchall()
    return time.perf_counter() - t0, rows[-1][1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", nargs="+", default=["demo", "icb"])
    ap.add_argument("--inbox", type=Path, help="use this extract instead of generating one (one scale)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    print(
        "| scale | pipeline wall s | peak RSS MiB | load | build | statistics | disclosure | write+checks "
        "| baseline query s | ratio | ICB access (pipeline raw / baseline) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    try:
        for scale in args.scales:
            inbox = args.inbox or tmp / f"{scale}-inbox"
            if not args.inbox:
                synth(scale, inbox)
            r = run_pipeline(inbox, tmp / f"{scale}-wh")
            b_secs, b_people = baseline(inbox)
            wh = duckdb.connect(str(tmp / f"{scale}-wh" / "current.duckdb"), read_only=True)
            (p_people,) = wh.execute(
                "select numerator from indicator_values_raw where indicator_id = 'access_2plus_contacts' and "
                "geography_level = 'icb' and breakdown = 'all' and period_end = (select max(period_end) "
                "from indicator_values_raw) order by geography_code limit 1"
            ).fetchone()
            wh.close()
            s = r["stages"]
            print(
                f"| {scale} | {r['secs']:.1f} | {r['peak_mib']:,.0f} | {s.get('load', 0):.1f} | "
                f"{s.get('build', 0):.1f} | {s.get('statistics', 0):.1f} | {s.get('disclosure', 0):.1f} | "
                f"{s.get('write', 0) + s.get('checks', 0):.1f} | {b_secs:.1f} | {r['secs'] / b_secs:.1f}x | "
                f"{p_people:,.0f} / {b_people:,} |",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nmachine: {os.cpu_count()} cores; python {sys.version.split()[0]}; duckdb {duckdb.__version__}")


if __name__ == "__main__":
    main()
