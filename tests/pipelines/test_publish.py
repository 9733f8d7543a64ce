"""Publishing builds: atomic switch, readers during a publish, failures that must not publish, kills,
pruning, rollback and the content hashes. Real DuckDB files in tmp_path; other processes are real
subprocesses, because DuckDB's locking and caching are per process (research/stack-notes.md §5)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipelines.publish import (
    CheckFailed,
    PublishError,
    build_into_new_file,
    current_build,
    data_hash,
    list_builds,
    prune_builds,
    rollback,
    table_hash,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 10, 5, 3, 0, 0, tzinfo=dt.UTC)


def fill(value: int, rows: int = 1000):
    def build_fn(con):
        con.execute(
            "create table t as select $v::int as v, i as x from range($n) r(i)", {"v": value, "n": rows}
        )
        return value

    return build_fn


def publish(wh: Path, value: int, n: int = 0, rows: int = 1000, **kw):
    kw.setdefault("built_at", T0 + dt.timedelta(hours=n))
    return build_into_new_file(
        wh, fill(value, rows), last_period="2026-09", data_hash=f"{value:08x}feed", **kw
    )


def live_value(wh: Path) -> int:
    con = duckdb.connect(str(wh / "current.duckdb"), read_only=True)
    try:
        return con.execute("select max(v) from t").fetchone()[0]
    finally:
        con.close()


def leftovers(wh: Path) -> list[str]:
    return sorted(p.name for d in (wh, wh / "builds") for p in d.iterdir() if p.name.startswith(".tmp"))


def child(code: str, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def test_publish_names_the_file_and_points_current_at_it(tmp_path):
    result = publish(tmp_path, 1)
    cur = tmp_path / "current.duckdb"
    assert cur.is_symlink() and not os.path.isabs(os.readlink(cur))  # relative: the folder can move
    assert cur.resolve() == result.build.path
    assert re.fullmatch(r"data_2026-09_20261005T030000Z_00000001\.duckdb", result.build.path.name)
    assert result.build.path.parent == tmp_path / "builds"
    assert result.previous is None and result.value == 1
    assert live_value(tmp_path) == 1
    assert leftovers(tmp_path) == []
    assert not list((tmp_path / "builds").glob("*.wal"))  # closed (checkpointed) before the switch


def test_second_publish_switches_current_and_keeps_the_previous_build(tmp_path):
    first = publish(tmp_path, 1, 0)
    second = publish(tmp_path, 2, 1)
    assert second.previous.build_id == first.build.build_id
    assert live_value(tmp_path) == 2
    assert [b.build_id for b in list_builds(tmp_path)] == [second.build.build_id, first.build.build_id]
    assert current_build(tmp_path).build_id == second.build.build_id


def test_build_fn_sees_its_build_id(tmp_path):
    def build_fn(con):
        con.execute("create table build_info as select getvariable('build_id') as build_id")

    result = build_into_new_file(tmp_path, build_fn, last_period=dt.date(2026, 9, 30), data_hash="ab")
    con = duckdb.connect(str(tmp_path / "current.duckdb"), read_only=True)
    assert con.execute("select build_id from build_info").fetchone()[0] == result.build.build_id
    con.close()


def test_reader_keeps_working_during_publish_and_sees_new_build_after_reopening(tmp_path):
    publish(tmp_path, 1, 0, rows=300_000)
    reader = child(
        """
        import sys, duckdb
        path = sys.argv[1]
        con = duckdb.connect(path, read_only=True)
        print(con.execute("select max(v), count(*) from t").fetchone(), flush=True)
        sys.stdin.readline()
        # a full scan after the switch, including blocks this process has not read yet
        print(con.execute("select max(v), count(*), sum(x) from t").fetchone(), flush=True)
        con.close()  # every connection to the path must be closed, or DuckDB returns its cached instance
        con = duckdb.connect(path, read_only=True)
        print(con.execute("select max(v), count(*) from t").fetchone(), flush=True)
        """,
        str(tmp_path / "current.duckdb"),
    )
    try:
        assert reader.stdout.readline().strip() == "(1, 300000)"
        # keep_builds=1 also deletes the old file from the folder while the reader still has it open
        publish(tmp_path, 2, 1, rows=10, keep_builds=1)
        assert len(list_builds(tmp_path)) == 1
        reader.stdin.write("go\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == f"(1, 300000, {sum(range(300_000))})"
        assert reader.stdout.readline().strip() == "(2, 10)"
        assert reader.wait(timeout=30) == 0
    finally:
        reader.kill()


def test_readers_never_fail_while_builds_are_published(tmp_path):
    publish(tmp_path, 1, 0)
    stop = tmp_path / "stop"
    poller = child(
        """
        import json, os, sys, duckdb
        path, stop = sys.argv[1], sys.argv[2]
        def read():
            con = duckdb.connect(path, read_only=True)
            try:
                return con.execute("select max(v) from t").fetchone()[0]
            finally:
                con.close()
        errors, seen = [], set()
        print("ready", flush=True)
        while not os.path.exists(stop):
            try:
                seen.add(read())
            except Exception as e:
                errors.append(repr(e))
        print(json.dumps({"seen": sorted(seen), "errors": errors[:3], "final": read()}), flush=True)
        """,
        str(tmp_path / "current.duckdb"),
        str(stop),
    )
    try:
        assert poller.stdout.readline().strip() == "ready"
        for n in range(2, 6):
            publish(tmp_path, n, n)
        stop.touch()
        out = json.loads(poller.communicate(timeout=30)[0])
    finally:
        poller.kill()
    assert out["errors"] == []
    assert out["final"] == 5 and set(out["seen"]) <= {1, 2, 3, 4, 5}


def test_failing_check_names_check_shows_rows_and_publishes_nothing(tmp_path):
    first = publish(tmp_path, 1, 0)
    checks = [
        ("chk_ok", "select * from t where v is null"),
        ("chk_v_positive", "select v, x from t where v <= 0 order by x"),
    ]
    with pytest.raises(CheckFailed) as info:
        publish(tmp_path, -3, 1, checks=checks)
    assert info.value.name == "chk_v_positive"
    assert "chk_v_positive" in str(info.value) and "'v': -3" in str(info.value)
    assert "chk_ok" not in str(info.value)
    assert [b.build_id for b in list_builds(tmp_path)] == [first.build.build_id]
    assert live_value(tmp_path) == 1 and leftovers(tmp_path) == []


def test_broken_check_sql_blocks_publication(tmp_path):
    publish(tmp_path, 1, 0)
    with pytest.raises(CheckFailed, match="chk_typo"):
        publish(tmp_path, 2, 1, checks=[("chk_typo", "select * from no_such_table")])
    assert live_value(tmp_path) == 1 and len(list_builds(tmp_path)) == 1


def test_build_fn_that_raises_leaves_previous_build_live(tmp_path):
    publish(tmp_path, 1, 0)

    def broken(con):
        con.execute("create table t as select 9 as v")
        raise ValueError("bad month folder")

    with pytest.raises(ValueError, match="bad month folder"):
        build_into_new_file(tmp_path, broken, last_period="2026-10", data_hash="ff")
    assert live_value(tmp_path) == 1 and len(list_builds(tmp_path)) == 1 and leftovers(tmp_path) == []


def test_killed_mid_build_leaves_current_intact_and_rerun_cleans_up(tmp_path):
    publish(tmp_path, 1, 0)
    proc = child(
        """
        import sys, time
        from pipelines.publish import build_into_new_file
        def build_fn(con):
            con.execute("create table t as select 2 as v from range(1000)")
            con.execute("checkpoint")
            print("building", flush=True)
            time.sleep(60)
        build_into_new_file(sys.argv[1], build_fn, last_period="2026-10", data_hash="bb")
        """,
        str(tmp_path),
    )
    try:
        assert proc.stdout.readline().strip() == "building"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
    assert leftovers(tmp_path), "the killed run should have left its temporary file behind"
    assert live_value(tmp_path) == 1 and len(list_builds(tmp_path)) == 1

    publish(tmp_path, 3, 2)
    assert live_value(tmp_path) == 3 and leftovers(tmp_path) == []


def test_disk_full_is_a_clear_error_and_publishes_nothing(tmp_path):
    publish(tmp_path, 1, 0)
    # RLIMIT_FSIZE makes writes past 1 MB fail with EFBIG, as a full disk would (without SIGXFSZ).
    proc = child(
        """
        import json, resource, signal, sys
        from pipelines.publish import build_into_new_file
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        def build_fn(con):
            con.execute("create table t as select 2 as v, random() as x from range(2000000)")
        try:
            build_into_new_file(sys.argv[1], build_fn, last_period="2026-10", data_hash="cc")
            print(json.dumps(["published", ""]))
        except Exception as e:
            print(json.dumps([type(e).__name__, str(e)]))
        """,
        str(tmp_path),
    )
    out, _ = proc.communicate(timeout=60)
    kind, message = json.loads(out.strip().splitlines()[-1])
    assert kind == "PublishError", message
    assert "full" in message and "not published" in message
    assert live_value(tmp_path) == 1 and len(list_builds(tmp_path)) == 1 and leftovers(tmp_path) == []


def test_permission_error_at_the_switch_is_clear_and_publishes_nothing(tmp_path, monkeypatch):
    publish(tmp_path, 1, 0)

    # Tests run as root, which ignores file modes, so the refusal is injected at the last step:
    # after the new file has its final name, before current.duckdb points at it.
    def refuse(*args, **kw):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(os, "symlink", refuse)
    with pytest.raises(PublishError, match="permission denied"):
        publish(tmp_path, 2, 1)
    monkeypatch.undo()
    assert live_value(tmp_path) == 1 and len(list_builds(tmp_path)) == 1 and leftovers(tmp_path) == []


def test_keeps_the_newest_n_builds(tmp_path):
    ids = [publish(tmp_path, n, n, keep_builds=3).build.build_id for n in range(6)]
    assert [b.build_id for b in list_builds(tmp_path)] == ids[::-1][:3]
    assert len(list((tmp_path / "builds").iterdir())) == 3


def test_pruning_never_deletes_the_live_build(tmp_path):
    ids = [publish(tmp_path, n, n).build.build_id for n in range(3)]
    rollback(tmp_path, to=ids[0])
    removed = prune_builds(tmp_path, keep=1)
    assert [p.stem for p in removed] == [ids[1]]
    assert {b.build_id for b in list_builds(tmp_path)} == {ids[2], ids[0]}
    assert live_value(tmp_path) == 0


def test_rollback_to_previous_and_to_named_build(tmp_path):
    ids = [publish(tmp_path, n, n).build.build_id for n in range(3)]
    assert rollback(tmp_path).build_id == ids[1] and live_value(tmp_path) == 1
    assert rollback(tmp_path).build_id == ids[0] and live_value(tmp_path) == 0
    with pytest.raises(PublishError, match="no earlier build"):
        rollback(tmp_path)
    assert rollback(tmp_path, to=ids[2] + ".duckdb").build_id == ids[2] and live_value(tmp_path) == 2
    with pytest.raises(PublishError, match="no build 'data_nope'"):
        rollback(tmp_path, to="data_nope")
    assert live_value(tmp_path) == 2


def write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_data_hash_depends_on_paths_and_bytes_only(tmp_path):
    files = {"2026-09/MHS101.csv": b"a,b\n1,2\n", "2026-10/MHS101.csv": b"a,b\n3,4\n" * 500_000}
    a = write(tmp_path / "a", files)
    b = write(tmp_path / "b", dict(reversed(files.items())))  # other location, other creation order
    (b / ".partial-upload.csv").write_bytes(b"ignored")
    assert data_hash(a) == data_hash(b)

    # reference: the documented stream (length-prefixed path, size, bytes), hashed in one piece
    ref = hashlib.sha256()
    for rel in sorted(files):
        ref.update(
            len(rel).to_bytes(8, "big") + rel.encode() + len(files[rel]).to_bytes(8, "big") + files[rel]
        )
    assert data_hash(a) == ref.hexdigest()

    (b / "2026-10/MHS101.csv").write_bytes(b"a,b\n3,5\n" + files["2026-10/MHS101.csv"][8:])
    assert data_hash(b) != data_hash(a)
    (b / "2026-10/MHS101.csv").rename(b / "2026-10/MHS102.csv")
    c = write(tmp_path / "c", {**files, "2026-11/MHS101.csv": b""})
    assert len({data_hash(a), data_hash(b), data_hash(c)}) == 3
    with pytest.raises(FileNotFoundError):
        data_hash(tmp_path / "missing")


def test_table_hash_ignores_row_order_but_not_values(tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("create table a as select * from (values (1, 'x', null), (2, 'y', 2.5)) v(i, s, d)")
    con.execute("create table b as select * from (values (2, 'y', 2.5), (1, 'x', null)) v(i, s, d)")
    con.execute("create table c as select * from (values (2, 'y', 2.5), (1, 'x', 0.0)) v(i, s, d)")
    assert table_hash(con, "a") == table_hash(con, "b") != table_hash(con, "c")
    con.close()
    assert table_hash(tmp_path / "x.duckdb", "a") == table_hash(str(tmp_path / "x.duckdb"), "b")


def test_a_dead_runs_scratch_database_is_removed_and_a_live_ones_is_not(tmp_path):
    # The pipeline's scratch database (person-level load tables) lives in <warehouse>/state while it
    # runs; a run killed there must not leave it behind for good.
    state = tmp_path / "state"
    state.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = [state / f".tmp_work_pid{gone.pid}.duckdb", state / f".tmp_work_pid{gone.pid}.duckdb.wal"]
    alive = state / f".tmp_work_pid{os.getppid()}.duckdb"  # our parent is running
    for p in (*dead, alive):
        p.write_bytes(b"x")
    publish(tmp_path, 1, 0)
    assert not any(p.exists() for p in dead)
    assert alive.exists()
