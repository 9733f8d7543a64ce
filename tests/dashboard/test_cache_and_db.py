"""db.py (build switching) and cache.py (keying, shared backend) with real fixture builds."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from dashboard import cache, db, queries


def test_no_published_build_is_a_clear_error(tmp_path):
    with pytest.raises(db.NoWarehouse, match="no published build"):
        db.Warehouse(tmp_path).acquire()


def test_a_new_build_is_picked_up_and_the_old_connection_closed(tmp_path, fixtures_mod):
    fw = fixtures_mod
    first = fw.publish_fixture(tmp_path, months=3, built_at=dt.datetime(2026, 11, 1, 9, 0))
    wh = db.Warehouse(tmp_path)
    snap = wh.acquire()
    assert snap.build_id == first
    old_con = snap._conn.con
    wh.release(snap)
    second = fw.publish_fixture(tmp_path, months=3, last_period=dt.date(2026, 11, 30), seed=7,
                                built_at=dt.datetime(2026, 12, 1, 9, 0))  # fmt: skip
    snap2 = wh.acquire()
    assert snap2.build_id == second != first
    assert snap2.cursor.execute("SELECT max(period_end) FROM indicator_values").fetchone()[0] == dt.date(
        2026, 11, 30
    )
    with pytest.raises(duckdb.Error):
        old_con.execute("SELECT 1")  # closed: DuckDB would otherwise keep serving the old file
    wh.release(snap2)
    assert wh.opens == 2


def test_a_connection_in_use_is_closed_by_its_last_user(tmp_path, fixtures_mod):
    fw = fixtures_mod
    fw.publish_fixture(tmp_path, months=2, built_at=dt.datetime(2026, 11, 1, 9, 0))
    wh = db.Warehouse(tmp_path)
    busy = wh.acquire()  # another thread's request still reading the old build
    fw.publish_fixture(tmp_path, months=2, seed=8, built_at=dt.datetime(2026, 11, 2, 9, 0))
    fresh = wh.acquire()
    assert busy.cursor.execute("SELECT count(*) FROM build_info").fetchone()[0] == 1  # still usable
    wh.release(busy)
    with pytest.raises(duckdb.Error):
        busy._conn.con.execute("SELECT 1")
    wh.release(fresh)


def test_one_request_sees_one_build(app, warehouse):
    with app.server.test_request_context("/"):
        a = db.snapshot()
        b = db.snapshot()
        assert a is b and db.build_id() == a.build_id


def test_cache_key_includes_the_build_id():
    k1 = cache.cache_key("series", "build_a", ("x", ("U1",)), {})
    k2 = cache.cache_key("series", "build_b", ("x", ("U1",)), {})
    assert k1 != k2 and "build_a" in k1 and k1.startswith(f"{cache.KEY_VERSION}:series:")
    assert cache.cache_key("series", "build_a", ("x", ("U1",)), {}) == k1  # stable across processes


def test_memoised_results_are_stored_in_the_shared_backend(app):
    with app.server.test_request_context("/"):
        queries.build_info()
        key = cache.cache_key("build_info", db.build_id(), (), {})
        assert cache.cache.get(key) is not None
    assert type(cache.cache.cache).__name__ == "FileSystemCache"


def test_per_process_cache_is_refused():
    from flask import Flask

    with pytest.raises(ValueError, match="per process"):
        cache.init_cache(Flask("x"), "unused", {"CACHE_TYPE": "SimpleCache"})


def test_gunicorn_is_started_without_writing_to_home(tmp_path):
    from dashboard.serve import gunicorn_argv

    argv = gunicorn_argv(tmp_path / "w", "127.0.0.1", 8050, 3, tmp_path / "run")
    assert "--no-control-socket" in argv  # gunicorn 27 would create ~/.gunicorn/gunicorn.ctl
    assert argv[argv.index("--worker-tmp-dir") + 1] == str(tmp_path / "run")
    assert argv[argv.index("--workers") + 1] == "3" and argv[-1] == "dashboard.wsgi:server"
