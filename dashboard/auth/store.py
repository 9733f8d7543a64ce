"""The embedded user store (spec/05): users, roles, password hashes, lock-out and API tokens.

A small SQLite file (`<warehouse>/users.sqlite`, or `CMH_AUTH_DB`) rather than the warehouse itself,
because the warehouse is immutable and rebuilt by the pipeline while users change any time. SQLite
in WAL mode is safe for the few writes (logins, admin actions) from several gunicorn workers.

Passwords are hashed with scrypt (memory-hard, in the standard library; spec/05 allows it). The
hash string carries its own parameters, so raising the cost later re-hashes on the next login.
API tokens are random 256-bit secrets, so a fast SHA-256 of them is enough to store; they expire
and can be revoked. `auth_source`/`external_id` let single sign-on (OIDC) users live in the same
table later without a password hash.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

ROLES = ("board", "equality_lead", "provider", "admin")
MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "cmh_"
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
_CODE_RE = re.compile(r"^[A-Z0-9]{3,12}$")
_SCRYPT_R, _SCRYPT_P = 8, 1

SCHEMA = """
create table if not exists users (
    id integer primary key,
    username text not null unique,
    role text not null,
    icb_code text not null,
    provider_code text,
    password_hash text,               -- null for single-sign-on users
    auth_source text not null default 'local',
    external_id text,                 -- subject claim of an SSO identity
    disabled integer not null default 0,
    failed_logins integer not null default 0,
    locked_until real not null default 0,
    session_version integer not null default 1,
    created_at text not null,
    updated_at text not null
);
create table if not exists api_tokens (
    id integer primary key,
    user_id integer not null references users(id),
    token_hash text not null unique,
    created_at real not null,
    expires_at real not null,
    revoked_at real,
    last_used_at real
);
"""


class UserError(ValueError):
    """An invalid user, role, code or password; the message is safe to show to an admin."""


@dataclass(frozen=True)
class StoredUser:
    id: int
    username: str
    role: str
    icb_code: str
    provider_code: str | None
    disabled: bool
    failed_logins: int
    locked_until: float
    session_version: int
    auth_source: str


@dataclass(frozen=True)
class TokenInfo:
    id: int
    username: str
    created_at: float
    expires_at: float
    revoked_at: float | None
    last_used_at: float | None


def generate_password() -> str:
    return secrets.token_urlsafe(16)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, n: int = 2**15) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=256 * n * _SCRYPT_R, dklen=32
    )
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        algo, n, r, p, salt, digest = encoded.split("$")
        n, r, p = int(n), int(r), int(p)
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=n, r=r, p=p, maxmem=256 * n * r, dklen=32
        )
    except (ValueError, TypeError):
        return False
    return algo == "scrypt" and hmac.compare_digest(got, expected)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class UserStore:
    """All reads and writes of users and tokens. Every SQL statement is parameterised."""

    def __init__(
        self,
        path: str | Path,
        *,
        scrypt_n: int = 2**15,
        max_failures: int = 5,
        lockout_seconds: int = 15 * 60,
        clock: Callable[[], float] = time.time,
    ):
        self.path = Path(path)
        self.scrypt_n = scrypt_n
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Equalises the time of a login for an unknown user with that of a known one.
        self._dummy_hash = hash_password(generate_password(), n=scrypt_n)
        with closing(self.connect()) as con:
            con.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("pragma journal_mode=wal")
        con.execute("pragma foreign_keys=on")
        return con

    # -- users --------------------------------------------------------------------------------

    @staticmethod
    def validate(username: str, role: str, icb_code: str, provider_code: str | None) -> None:
        if not _USERNAME_RE.match(username):
            raise UserError("username must be 2-64 lower-case letters, digits or . _ @ - characters")
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        if not _CODE_RE.match(icb_code or ""):
            raise UserError("ICB code must be 3-12 upper-case letters or digits")
        if role == "provider" and not _CODE_RE.match(provider_code or ""):
            raise UserError("a provider user needs a provider code (3-12 upper-case letters or digits)")
        if role != "provider" and provider_code:
            raise UserError("only provider users have a provider code")

    @staticmethod
    def check_password_policy(username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        if username.lower() in password.lower():
            raise UserError("password must not contain the username")

    def add_user(
        self,
        username: str,
        role: str,
        icb_code: str,
        provider_code: str | None = None,
        password: str | None = None,
    ) -> str:
        """Create a local user; returns the password (generated when none is given)."""
        self.validate(username, role, icb_code, provider_code)
        password = password if password is not None else generate_password()
        self.check_password_policy(username, password)
        now = _now_iso()
        try:
            with closing(self.connect()) as con:
                con.execute(
                    "insert into users (username, role, icb_code, provider_code, password_hash,"
                    " created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?)",
                    (
                        username,
                        role,
                        icb_code,
                        provider_code,
                        hash_password(password, self.scrypt_n),
                        now,
                        now,
                    ),
                )
        except sqlite3.IntegrityError:
            raise UserError(f"user {username!r} already exists") from None
        return password

    def _row(self, row: sqlite3.Row | None) -> StoredUser | None:
        if row is None:
            return None
        return StoredUser(
            id=row["id"],
            username=row["username"],
            role=row["role"],
            icb_code=row["icb_code"],
            provider_code=row["provider_code"],
            disabled=bool(row["disabled"]),
            failed_logins=row["failed_logins"],
            locked_until=row["locked_until"],
            session_version=row["session_version"],
            auth_source=row["auth_source"],
        )

    def get(self, username: str) -> StoredUser | None:
        with closing(self.connect()) as con:
            return self._row(con.execute("select * from users where username = ?", (username,)).fetchone())

    def get_by_id(self, user_id: int) -> StoredUser | None:
        with closing(self.connect()) as con:
            return self._row(con.execute("select * from users where id = ?", (user_id,)).fetchone())

    def list_users(self) -> list[StoredUser]:
        with closing(self.connect()) as con:
            return [self._row(r) for r in con.execute("select * from users order by username")]

    def _update(self, username: str, sql: str, params: tuple) -> None:
        with closing(self.connect()) as con:
            cur = con.execute(
                f"update users set {sql}, updated_at = ? where username = ?", (*params, _now_iso(), username)
            )
            if cur.rowcount != 1:
                raise UserError(f"no user {username!r}")

    def set_password(self, username: str, password: str | None = None) -> str:
        """Set (or generate) a password; clears any lock-out and ends the user's sessions."""
        password = password if password is not None else generate_password()
        self.check_password_policy(username, password)
        self._update(
            username,
            "password_hash = ?, failed_logins = 0, locked_until = 0, session_version = session_version + 1",
            (hash_password(password, self.scrypt_n),),
        )
        return password

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        """Disabling ends every session and makes the user's tokens unusable at once."""
        self._update(username, "disabled = ?, session_version = session_version + 1", (int(disabled),))

    def end_sessions(self, username: str) -> None:
        self._update(username, "session_version = session_version + 1", ())

    # -- login --------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> tuple[StoredUser | None, str]:
        """Check a login. Returns (user, "ok") or (user-or-None, reason) with reason one of
        "unknown", "bad_password", "locked", "disabled", "no_password"."""
        user = self.get(username)
        with closing(self.connect()) as con:
            row = con.execute("select password_hash from users where username = ?", (username,)).fetchone()
        if user is None or row is None or row["password_hash"] is None:
            verify_password(password, self._dummy_hash)
            return user, "unknown" if user is None else "no_password"
        now = self.clock()
        if user.locked_until > now:
            verify_password(password, self._dummy_hash)
            return user, "locked"
        ok = verify_password(password, row["password_hash"])
        if not ok:
            failures = user.failed_logins + 1
            locked_until = now + self.lockout_seconds if failures >= self.max_failures else 0
            self._update(
                username,
                "failed_logins = ?, locked_until = ?",
                (0 if locked_until else failures, locked_until),
            )
            return self.get(username), "locked" if locked_until else "bad_password"
        if user.disabled:
            return user, "disabled"
        rehash = row["password_hash"].split("$")[1] != str(self.scrypt_n)
        sets, params = "failed_logins = 0, locked_until = 0", ()
        if rehash:
            sets, params = sets + ", password_hash = ?", (hash_password(password, self.scrypt_n),)
        self._update(username, sets, params)
        return self.get(username), "ok"

    # -- API tokens ---------------------------------------------------------------------------

    def issue_token(self, username: str, days: int = 90) -> tuple[int, str]:
        """A new personal API token (returned once, stored only as a hash)."""
        user = self.get(username)
        if user is None:
            raise UserError(f"no user {username!r}")
        if not 1 <= days <= 366:
            raise UserError("a token lasts 1-366 days")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with closing(self.connect()) as con:
            cur = con.execute(
                "insert into api_tokens (user_id, token_hash, created_at, expires_at) values (?, ?, ?, ?)",
                (user.id, _token_hash(token), now, now + days * 86400),
            )
            return cur.lastrowid, token

    def revoke_token(self, token_id: int) -> None:
        with closing(self.connect()) as con:
            cur = con.execute(
                "update api_tokens set revoked_at = ? where id = ? and revoked_at is null",
                (self.clock(), token_id),
            )
            if cur.rowcount != 1:
                raise UserError(f"no active token {token_id}")

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        sql = (
            "select t.*, u.username from api_tokens t join users u on u.id = t.user_id"
            " where (? is null or u.username = ?) order by t.id"
        )
        with closing(self.connect()) as con:
            return [
                TokenInfo(
                    r["id"],
                    r["username"],
                    r["created_at"],
                    r["expires_at"],
                    r["revoked_at"],
                    r["last_used_at"],
                )
                for r in con.execute(sql, (username, username))
            ]

    def user_for_token(self, token: str) -> StoredUser | None:
        """The enabled user owning an unexpired, unrevoked token, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        now = self.clock()
        with closing(self.connect()) as con:
            row = con.execute(
                "select id, user_id from api_tokens where token_hash = ? and revoked_at is null"
                " and expires_at > ?",
                (_token_hash(token), now),
            ).fetchone()
            if row is None:
                return None
            con.execute("update api_tokens set last_used_at = ? where id = ?", (now, row["id"]))
        user = self.get_by_id(row["user_id"])
        return None if user is None or user.disabled else user
