"""The run history (readable while written) and the run lock (one run at a time, crash-safe).
The lock tests use real processes: flock is per open file, and the point is what the kernel does
when the holder dies."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.runs import RunInProgress, RunLog, RunStats, read_runs, run_lock

ROOT = Path(__file__).resolve().parents[2]


def test_history_records_each_run_newest_first(tmp_path):
    runs = RunLog(tmp_path)
    rid = runs.start("manual", "hash1")
    assert runs.get(rid).status == "running" and runs.get(rid).ended_at is None
    runs.finish(
        rid, "success", RunStats(build_id="data_x", rows_loaded=10, rows_rejected=2, rows_superseded=1)
    )
    skipped = runs.record("schedule", "skipped", inbox_hash="hash1", message="inbox unchanged")
    failed = runs.start("schedule", "hash2")
    runs.finish(failed, "failed", message="ValueError: boom")

    got = read_runs(tmp_path)
    assert [(r.run_id, r.status, r.trigger) for r in got] == [
        (failed, "failed", "schedule"),
        (skipped, "skipped", "schedule"),
        (rid, "success", "manual"),
    ]
    ok = got[2]
    assert (ok.build_id, ok.rows_loaded, ok.rows_rejected, ok.rows_superseded) == ("data_x", 10, 2, 1)
    assert ok.started_at <= ok.ended_at and ok.inbox_hash == "hash1"
    assert got[0].message == "ValueError: boom"
    assert runs.last_successful().run_id == rid


def test_finish_accepts_a_mapping_and_the_hash_actually_used(tmp_path):
    runs = RunLog(tmp_path)
    rid = runs.start("manual", "before")
    runs.finish(rid, "success", {"build_id": "b", "rows_loaded": 3, "inbox_hash": "after", "other": 1})
    assert (runs.get(rid).build_id, runs.get(rid).inbox_hash) == ("b", "after")
    with pytest.raises(TypeError):
        runs.finish(rid, "success", 42)


def test_history_is_readable_while_a_write_is_in_progress(tmp_path):
    runs = RunLog(tmp_path)
    runs.record("manual", "success", message="committed")
    writer = sqlite3.connect(tmp_path / "runs.sqlite", timeout=0)
    writer.execute("begin immediate")
    writer.execute("insert into runs (started_at, status, trigger) values ('2026', 'running', 'manual')")
    try:
        # WAL: the reader neither waits for nor sees the open transaction
        assert [r.message for r in read_runs(tmp_path)] == ["committed"]
    finally:
        writer.rollback()
        writer.close()
    assert sqlite3.connect(tmp_path / "runs.sqlite").execute("pragma journal_mode").fetchone()[0] == "wal"


def test_read_runs_without_history_is_empty(tmp_path):
    assert read_runs(tmp_path) == []


def test_run_left_running_by_a_dead_process_is_marked_failed(tmp_path):
    runs = RunLog(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    ghost = runs.start("schedule", "h")
    with sqlite3.connect(tmp_path / "runs.sqlite") as con:
        con.execute("update runs set pid = ? where run_id = ?", (int(dead.stdout), ghost))
    mine = runs.start("schedule", "h")  # this process is alive: its row must stay running
    assert runs.mark_interrupted() == 1
    assert runs.get(ghost).status == "failed" and "interrupted" in runs.get(ghost).message
    assert runs.get(mine).status == "running"


HOLDER = """
    import sys, time
    from pipelines.runs import run_lock
    with run_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
"""


def test_lock_refuses_a_second_process_and_is_released_when_the_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = rf"^another run \(pid {holder.pid}\) is in progress$"
        with pytest.raises(RunInProgress, match=refused), run_lock(tmp_path):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        holder.kill()
    with run_lock(tmp_path):  # no manual clean-up needed
        assert (tmp_path / ".run.lock").read_text().strip() == str(os.getpid())


def test_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(KeyError), run_lock(tmp_path):
        raise KeyError("boom")
    with run_lock(tmp_path):
        pass


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    with run_lock(tmp_path), pytest.raises(RunInProgress), run_lock(tmp_path):
        pass
