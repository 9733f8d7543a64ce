"""The cron parser (expected times worked out by hand from crontab(5) and the calendar: 22 Nov 2026
is a Sunday) and the scheduler loop, driven by a fake clock so no test sleeps."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipelines.config import Config, PipelineSettings, ScheduleSettings
from pipelines.publish import data_hash, hash_inbox
from pipelines.runs import RunLog, RunStats
from pipelines.schedule import CronExpr, next_due, run_once, run_scheduler

ROOT = Path(__file__).resolve().parents[2]
D = dt.datetime


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 2 * * *", D(2026, 11, 22, 10, 17), D(2026, 11, 23, 2, 0)),
        ("0 2 * * *", D(2026, 11, 23, 1, 59, 59), D(2026, 11, 23, 2, 0)),
        ("0 2 * * *", D(2026, 11, 23, 2, 0), D(2026, 11, 24, 2, 0)),  # strictly after
        ("*/15 * * * 1-5", D(2026, 11, 20, 23, 50), D(2026, 11, 23, 0, 0)),  # Friday night -> Monday
        ("*/15 * * * 1-5", D(2026, 11, 24, 10, 44), D(2026, 11, 24, 10, 45)),
        ("*/15 * * * 1-5", D(2026, 11, 24, 23, 45), D(2026, 11, 25, 0, 0)),
        ("0 0 1 * *", D(2026, 12, 15, 8, 0), D(2027, 1, 1, 0, 0)),
        ("0 0 1 * *", D(2027, 1, 1, 0, 0), D(2027, 2, 1, 0, 0)),
        ("30 4 1,15 * *", D(2026, 11, 2), D(2026, 11, 15, 4, 30)),
        ("0 0 13 * 1", D(2026, 11, 10), D(2026, 11, 13)),  # both day fields set: the 13th OR a Monday
        ("0 0 13 * 1", D(2026, 11, 13), D(2026, 11, 16)),
        ("0 9 * JAN-MAR mon", D(2026, 11, 22), D(2027, 1, 4, 9, 0)),  # first Monday of 2027
        ("0 0 * * 7", D(2026, 11, 20), D(2026, 11, 22)),  # 7 is Sunday, like 0
        ("0 0 29 2 *", D(2026, 3, 1), D(2028, 2, 29)),
        ("5/20 * * * *", D(2026, 11, 22, 10, 25), D(2026, 11, 22, 10, 45)),
        ("0-30/10 8 * * *", D(2026, 11, 22, 8, 25), D(2026, 11, 22, 8, 30)),
        ("0-30/10 8 * * *", D(2026, 11, 22, 8, 30), D(2026, 11, 23, 8, 0)),
        ("@hourly", D(2026, 11, 22, 10, 17), D(2026, 11, 22, 11, 0)),
        ("@monthly", D(2026, 12, 31, 23, 59), D(2027, 1, 1, 0, 0)),
    ],
)
def test_cron_next_after(expr, after, expected):
    cron = CronExpr.parse(expr)
    assert cron.next_after(after) == expected
    assert cron.matches(expected)


def test_cron_field_sets():
    cron = CronExpr.parse("*/15 9-17 * * 1-5")
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == set(range(9, 18))
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert CronExpr.parse("1,2,5-7 * * * *").minutes == {1, 2, 5, 6, 7}


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* * *", "must have 5 fields"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("0 0 30 2 *", "is never due"),
        ("x * * * *", "minute: 'x' is not a number"),
        ("0 0 * 13 *", "month: 13 is outside 1-12"),
    ],
)
def test_cron_rejects_bad_expressions(expr, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        CronExpr.parse(expr)


def test_next_due_reads_cron_in_the_configured_time_zone():
    cron = CronExpr.parse("0 2 * * *")
    london = ZoneInfo("Europe/London")
    # British Summer Time is UTC+1, so 02:00 in London in July is 01:00 UTC; in winter GMT = UTC.
    assert next_due(cron, D(2026, 7, 1, 12, tzinfo=dt.UTC), london) == D(2026, 7, 2, 1, tzinfo=dt.UTC)
    assert next_due(cron, D(2026, 12, 1, 12, tzinfo=dt.UTC), london) == D(2026, 12, 2, 2, tzinfo=dt.UTC)


def test_next_due_across_daylight_saving_changes():
    # UK clocks change at 01:00 UTC on the last Sunday of March (29 Mar 2026: 01:00 GMT -> 02:00 BST)
    # and of October (25 Oct 2026: 02:00 BST -> 01:00 GMT), so 01:30 is skipped once and seen twice.
    cron, london = CronExpr.parse("30 1 * * *"), ZoneInfo("Europe/London")
    utc = dt.UTC
    # the skipped wall time runs an hour late (01:30 UTC = 02:30 BST) rather than not at all
    assert next_due(cron, D(2026, 3, 29, 0, 0, tzinfo=utc), london) == D(2026, 3, 29, 1, 30, tzinfo=utc)
    # the repeated wall time runs at its first occurrence (01:30 BST = 00:30 UTC) ...
    assert next_due(cron, D(2026, 10, 25, 0, 0, tzinfo=utc), london) == D(2026, 10, 25, 0, 30, tzinfo=utc)
    # ... and the next tick, computed just after it, is the next day, not the second 01:30
    assert next_due(cron, D(2026, 10, 25, 0, 31, tzinfo=utc), london) == D(2026, 10, 26, 1, 30, tzinfo=utc)
    # a scheduler started between the two occurrences runs at the second one
    assert next_due(cron, D(2026, 10, 25, 1, 10, tzinfo=utc), london) == D(2026, 10, 25, 1, 30, tzinfo=utc)


class FakeClock:
    def __init__(self, start: dt.datetime):
        self.t = start
        self.slept = 0.0

    def now(self) -> dt.datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept += seconds
        self.t += dt.timedelta(seconds=seconds)


def make_config(tmp_path: Path, cron: str = "0 2 * * *") -> Config:
    inbox = tmp_path / "inbox"
    (inbox / "2026-09").mkdir(parents=True)
    (inbox / "2026-09" / "MHS101Referral.csv").write_text("Person_ID\n1\n")
    return Config(
        pipeline=PipelineSettings(inbox=inbox, warehouse=tmp_path / "wh"),
        schedule=ScheduleSettings(cron=cron),
    )


class Pipeline:
    """A stand-in run_fn that notes when it ran and can be told to fail."""

    def __init__(self, clock: FakeClock):
        self.clock, self.calls, self.fail = clock, [], False

    def __call__(self, config: Config, hashed) -> RunStats:
        self.calls.append(self.clock.now())
        if self.fail:
            raise RuntimeError("MHS101 header is wrong")
        return RunStats(build_id=f"build{len(self.calls)}", rows_loaded=1)


def test_scheduler_skips_unchanged_inbox_runs_on_change_and_retries_after_failure(tmp_path):
    cfg = make_config(tmp_path)
    inbox = cfg.pipeline.inbox
    clock = FakeClock(D(2026, 11, 22, 10, 17, tzinfo=dt.UTC))
    pipeline = Pipeline(clock)

    def tick() -> str:
        (out,) = run_scheduler(cfg, pipeline, now_fn=clock.now, sleep_fn=clock.sleep, max_ticks=1)
        return out.status

    assert tick() == "success"  # first run: nothing succeeded before
    assert tick() == "skipped"  # nothing changed
    (inbox / "2026-10").mkdir()  # a new month folder
    (inbox / "2026-10" / "MHS101Referral.csv").write_text("Person_ID\n2\n")
    assert tick() == "success"
    (inbox / "2026-10" / "MHS101Referral.csv").write_text("Person_ID\n2\n3\n")  # a resubmission
    pipeline.fail = True
    assert tick() == "failed"
    pipeline.fail = False
    assert tick() == "success"  # retried with no clean-up: the last success had the old hash
    assert tick() == "skipped"

    days = [D(2026, 11, d, 2, 0, tzinfo=dt.UTC) for d in range(23, 29)]
    assert pipeline.calls == [days[0], days[2], days[3], days[4]]
    assert clock.t == days[5]  # woke exactly at each due time, never early
    assert clock.slept == (days[5] - D(2026, 11, 22, 10, 17, tzinfo=dt.UTC)).total_seconds()

    history = RunLog(cfg.pipeline.warehouse).recent()[::-1]
    assert [r.status for r in history] == ["success", "skipped", "success", "failed", "success", "skipped"]
    assert all(r.trigger == "schedule" and r.ended_at for r in history)
    assert history[3].message == "RuntimeError: MHS101 header is wrong"
    assert history[4].build_id == "build4" and history[4].inbox_hash == data_hash(inbox)
    assert "unchanged since run 5" in history[5].message


def test_scheduler_keeps_ticking_after_a_failure(tmp_path):
    cfg = make_config(tmp_path, cron="*/15 * * * *")
    clock = FakeClock(D(2026, 11, 23, 9, 1, tzinfo=dt.UTC))
    pipeline = Pipeline(clock)
    pipeline.fail = True
    outcomes = run_scheduler(cfg, pipeline, now_fn=clock.now, sleep_fn=clock.sleep, max_ticks=3)
    assert [o.status for o in outcomes] == ["failed", "failed", "failed"]  # retried every tick
    assert [c.minute for c in pipeline.calls] == [15, 30, 45]


def test_missing_inbox_is_a_failed_tick_not_a_crash(tmp_path):
    cfg = make_config(tmp_path)
    (cfg.pipeline.inbox / "2026-09" / "MHS101Referral.csv").unlink()
    os.rmdir(cfg.pipeline.inbox / "2026-09")
    os.rmdir(cfg.pipeline.inbox)
    out = run_once(cfg, lambda c, h: pytest.fail("must not run"))
    assert out.status == "failed" and "inbox" in out.message


def test_tick_is_skipped_while_another_process_holds_the_lock(tmp_path):
    cfg = make_config(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from pipelines.runs import run_lock
                with run_lock(sys.argv[1]):
                    print("locked", flush=True)
                    sys.stdin.readline()
                """
            ),
            str(cfg.pipeline.warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = run_once(cfg, lambda c, h: pytest.fail("must not run while another run holds the lock"))
        assert out.status == "skipped" and out.message == f"another run (pid {holder.pid}) is in progress"
    finally:
        holder.communicate("done\n", timeout=10)
    assert run_once(cfg, lambda c, h: None).status == "success"


def test_manual_force_runs_even_when_unchanged(tmp_path):
    cfg = make_config(tmp_path)
    calls = []
    assert run_once(cfg, lambda c, h: calls.append(h), trigger="manual").status == "success"
    assert run_once(cfg, lambda c, h: calls.append(h), trigger="manual").status == "skipped"
    assert run_once(cfg, lambda c, h: calls.append(h), trigger="manual", force=True).status == "success"
    assert len(calls) == 2
    # the run is handed the hashes of the inbox it runs on (it does not hash the inbox again)
    assert calls[0] == calls[1] == hash_inbox(cfg.pipeline.inbox)
