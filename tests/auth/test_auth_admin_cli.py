"""Admin pages, the audit log and `cmh users` (spec/05)."""

from __future__ import annotations

import csv
import io
import re
import sqlite3

import pytest
from click.testing import CliRunner
from fixture_app import PASSWORD, csrf_from, login

from dashboard.auth.audit import AuditLog
from dashboard.auth.cli import demo_accounts, users
from dashboard.auth.store import ROLES, UserStore


def _admin(app):
    client = app.test_client()
    assert login(client, "admin").status_code == 302
    return client


def test_non_admins_are_refused_admin_pages_and_audited(app, audit):
    for username in ("board", "equality", "prov-rwe"):
        client = app.test_client()
        login(client, username)
        for path in ("/admin/users", "/admin/audit", "/admin/audit.csv"):
            assert client.get(path).status_code == 403
    denied = audit.rows(event="denied")
    assert len(denied) == 9 and {r["outcome"] for r in denied} == {"role"}


def test_admin_manages_users_with_csrf_protected_forms(app, store, audit):
    client = _admin(app)
    page = client.get("/admin/users")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    form = {
        "action": "add",
        "username": "carol",
        "role": "provider",
        "icb_code": "QWE",
        "provider_code": "NEV02",
    }
    assert client.post("/admin/users", data=form).status_code == 400  # no CSRF token
    response = client.post("/admin/users", data={**form, "csrf_token": token})
    assert response.status_code == 200
    password = response.get_data(as_text=True).split('class="secret">')[1].split("<")[0]
    assert store.authenticate("carol", password)[1] == "ok"
    client.post("/admin/users", data={"action": "disable", "username": "carol", "csrf_token": token})
    assert store.get("carol").disabled
    bad = client.post(
        "/admin/users", data={**form, "username": "dave", "provider_code": "", "csrf_token": token}
    )
    assert bad.status_code == 400 and "provider code" in bad.get_data(as_text=True)
    actions = audit.rows(event="admin")
    assert [r["outcome"] for r in actions] == ["failure", "ok", "ok"]
    assert all(r["username"] == "admin" for r in actions)


def test_audit_log_is_viewable_and_exportable_as_csv(app):
    client = _admin(app)
    login(app.test_client(), "board", password="wrong password!!")
    assert "login" in client.get("/admin/audit").get_data(as_text=True)
    response = client.get("/admin/audit.csv")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert any(r["event"] == "login" and r["outcome"] == "failure:bad_password" for r in rows)
    assert all(r["row_hash"] for r in rows)


def test_audit_log_is_append_only_and_tamper_evident(tmp_path):
    log = AuditLog(tmp_path / "a.sqlite")
    log.record("login", username="=cmd|' /C calc'!A0")
    log.record("download", username="bob", detail={"rows": 3})
    assert log.verify()
    with sqlite3.connect(tmp_path / "a.sqlite") as con:
        for sql in ("update audit_log set username = 'x'", "delete from audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(sql)
    with sqlite3.connect(tmp_path / "a.sqlite") as con:  # someone edits the file by hand
        con.execute("drop trigger audit_log_no_update")
        con.execute("update audit_log set username = 'mallory' where event = 'download'")
    assert not log.verify()
    from dashboard.auth.audit import iter_csv

    text = "".join(iter_csv(log.rows(limit=None)))
    assert "'=cmd" in text  # a spreadsheet formula is neutralised


def _run(db, args, stdin=None):
    result = CliRunner().invoke(users, ["--db", str(db), *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_add_list_disable_reset_and_token(tmp_path):
    db = tmp_path / "u.sqlite"
    out = _run(
        db, ["add", "erin", "--role", "provider", "--icb", "qwe", "--provider", "RWE"], stdin=PASSWORD + "\n"
    )
    assert "password:" not in out  # read from standard input, so not echoed back
    store = UserStore(db)
    assert store.authenticate("erin", PASSWORD)[1] == "ok"
    assert store.get("erin").icb_code == "QWE"
    listing = _run(db, ["list"])
    assert re.search(r"erin\s+provider\s+QWE\s+RWE\s+active", listing)
    generated = _run(db, ["reset-password", "erin"]).split("password: ")[1].strip()
    assert store.authenticate("erin", generated)[1] == "ok"
    token = _run(db, ["token", "erin", "--days", "7"]).strip().splitlines()[-1]
    assert store.user_for_token(token).username == "erin"
    _run(db, ["disable", "erin"])
    assert "disabled" in _run(db, ["list"])
    assert store.user_for_token(token) is None
    bad = CliRunner().invoke(
        users, ["--db", str(db), "add", "xavier", "--role", "provider", "--icb", "QWE"], input=""
    )
    assert bad.exit_code != 0 and "provider code" in bad.output
    events = AuditLog(db).rows(event="admin")
    assert [r["detail"].split('"action": "')[1].split('"')[0] for r in reversed(events)] == [
        "add",
        "reset-password",
        "token",
        "disable",
    ]


def test_demo_accounts_one_per_role_with_working_passwords(tmp_path):
    store = UserStore(tmp_path / "u.sqlite", scrypt_n=2**10)
    accounts = demo_accounts(store)
    assert sorted(role for _, role, _ in accounts) == sorted(ROLES)
    for username, _role, password in accounts:
        assert store.authenticate(username, password)[1] == "ok"
    again = demo_accounts(store)  # re-running (make run twice) prints passwords that work
    assert all(store.authenticate(u, p)[1] == "ok" for u, _, p in again)
    assert store.get("demo-provider").provider_code == "RWE"
