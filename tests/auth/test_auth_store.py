"""The user store: password hashing, lock-out, disabling and API tokens (spec/05)."""

from __future__ import annotations

import base64
import hashlib
import sqlite3

import pytest

from dashboard.auth.store import UserError, UserStore, hash_password, verify_password

PASSWORD = "a long enough password 1"


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    s = UserStore(tmp_path / "users.sqlite", scrypt_n=2**10, max_failures=5, lockout_seconds=900, clock=clock)
    s.add_user("alice", "provider", "QWE", "RWE", PASSWORD)
    return s


def test_hash_is_scrypt_and_matches_the_standard_library_directly():
    encoded = hash_password("correct horse", n=2**10)
    algo, n, r, p, salt, digest = encoded.split("$")
    assert (algo, n, r, p) == ("scrypt", "1024", "8", "1")
    # Recompute with hashlib.scrypt itself (RFC 7914 parameters as stored), not our verify function.
    expected = hashlib.scrypt(b"correct horse", salt=base64.b64decode(salt), n=1024, r=8, p=1, dklen=32)
    assert base64.b64decode(digest) == expected
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsf", encoded)
    assert hash_password("correct horse", n=2**10) != encoded  # salted


def test_password_is_never_stored_in_clear(store, tmp_path):
    raw = (tmp_path / "users.sqlite").read_bytes()
    assert PASSWORD.encode() not in raw


def test_login_ok_and_bad_password(store):
    user, reason = store.authenticate("alice", PASSWORD)
    assert reason == "ok" and user.provider_code == "RWE"
    assert store.authenticate("alice", "wrong password!!")[1] == "bad_password"
    assert store.authenticate("nobody", PASSWORD) == (None, "unknown")


def test_lock_out_after_five_failures_even_with_the_right_password(store, clock):
    for _ in range(4):
        assert store.authenticate("alice", "wrong password!!")[1] == "bad_password"
    assert store.authenticate("alice", "wrong password!!")[1] == "locked"
    assert store.authenticate("alice", PASSWORD)[1] == "locked"
    clock.t += 899
    assert store.authenticate("alice", PASSWORD)[1] == "locked"
    clock.t += 2
    assert store.authenticate("alice", PASSWORD)[1] == "ok"


def test_success_resets_the_failure_count(store):
    for _ in range(4):
        store.authenticate("alice", "wrong password!!")
    assert store.authenticate("alice", PASSWORD)[1] == "ok"
    for _ in range(4):
        assert store.authenticate("alice", "wrong password!!")[1] == "bad_password"


def test_reset_password_clears_lock_and_ends_sessions(store):
    for _ in range(5):
        store.authenticate("alice", "wrong password!!")
    before = store.get("alice").session_version
    new = store.set_password("alice")
    assert len(new) >= 12
    assert store.authenticate("alice", new)[1] == "ok"
    assert store.get("alice").session_version == before + 1


def test_disabled_user_cannot_log_in(store):
    store.set_disabled("alice")
    assert store.authenticate("alice", PASSWORD)[1] == "disabled"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Bob", "board", "QWE", None), "username"),
        (("bob", "superuser", "QWE", None), "role"),
        (("bob", "provider", "QWE", None), "provider code"),
        (("bob", "board", "QWE", "RWE"), "only provider users"),
        (("bob", "board", "qwe;drop", None), "ICB code"),
    ],
)
def test_invalid_users_are_refused(store, args, message):
    with pytest.raises(UserError, match=message):
        store.add_user(*args, password=PASSWORD)


def test_password_policy(store):
    with pytest.raises(UserError, match="at least 12"):
        store.add_user("bob", "board", "QWE", None, "short")
    with pytest.raises(UserError, match="username"):
        store.add_user("bobby", "board", "QWE", None, "bobby-is-my-password")
    with pytest.raises(UserError, match="already exists"):
        store.add_user("alice", "board", "QWE", None, PASSWORD)


def test_tokens_are_hashed_expire_and_can_be_revoked(store, clock, tmp_path):
    token_id, token = store.issue_token("alice", days=30)
    assert store.user_for_token(token).username == "alice"
    with sqlite3.connect(tmp_path / "users.sqlite") as con:
        stored = con.execute("select token_hash from api_tokens where id = ?", (token_id,)).fetchone()[0]
    assert token not in stored and stored == hashlib.sha256(token.encode()).hexdigest()
    assert store.user_for_token(token + "x") is None
    clock.t += 30 * 86400 + 1
    assert store.user_for_token(token) is None  # expired
    clock.t -= 30 * 86400
    _, other = store.issue_token("alice")
    store.revoke_token(token_id)
    assert store.user_for_token(token) is None
    assert store.user_for_token(other).username == "alice"
    store.set_disabled("alice")
    assert store.user_for_token(other) is None  # a disabled user's tokens stop working
