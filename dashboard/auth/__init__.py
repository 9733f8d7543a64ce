"""Authentication and authorisation (spec/05): the interface the rest of the dashboard relies on.

`init_auth(server)` installs login/logout routes, the admin user and audit pages, session handling,
CSRF protection, security headers and a `before_request` guard that refuses every anonymous
request (pages, Dash callbacks, downloads, API). `current_user()` returns the logged-in user for
the current request (or None). Everything is plain Flask on the Dash app's server, so the same
checks cover Dash's own routes and ours.

Outside demo mode (`CMH_DEMO` != "1") the service refuses to start without `CMH_SECRET_KEY`; in
demo mode a random key is generated once and kept beside the user store (0600), so every gunicorn
worker signs sessions with the same key.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request, session
from werkzeug.exceptions import Forbidden

from .audit import AuditLog
from .store import UserStore

MIN_SECRET_KEY_LENGTH = 32


@dataclass(frozen=True)
class User:
    username: str
    role: str  # board | equality_lead | provider | admin
    icb_code: str
    provider_code: str | None = None  # set for role "provider" only

    def may_see_provider(self, provider_code: str) -> bool:
        """Provider users may reach only their own provider's rows (extracts, API, load report)."""
        return self.role != "provider" or provider_code == self.provider_code

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class AuthState:
    store: UserStore
    audit: AuditLog
    demo: bool


class ConfigurationError(RuntimeError):
    """The service is not safe to start as configured (e.g. no secret key outside demo mode)."""


def auth_db_path() -> Path:
    """`CMH_AUTH_DB`, else `<warehouse>/users.sqlite` with the warehouse from the configuration."""
    explicit = os.environ.get("CMH_AUTH_DB")
    if explicit:
        return Path(explicit).expanduser()
    from pipelines.config import load_config

    return load_config().pipeline.warehouse / "users.sqlite"


def demo_mode() -> bool:
    return os.environ.get("CMH_DEMO") == "1"


def _secret_key(db_path: Path) -> str:
    key = os.environ.get("CMH_SECRET_KEY", "")
    if key:
        if len(key) < MIN_SECRET_KEY_LENGTH and not demo_mode():
            raise ConfigurationError(f"CMH_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters")
        return key
    if not demo_mode():
        raise ConfigurationError(
            "CMH_SECRET_KEY is not set: the service refuses to start without a secret key outside demo"
            ' mode (generate one with: python -c "import secrets; print(secrets.token_hex(32))")'
        )
    key_file = db_path.with_name(".demo_secret_key")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return key_file.read_text().strip()


def init_auth(server: Flask, *, store: UserStore | None = None, audit: AuditLog | None = None) -> AuthState:
    """Protect every route of `server`. `store`/`audit` may be given (tests); otherwise both open
    `auth_db_path()`."""
    from . import admin, guard, views

    db_path = store.path if store is not None else auth_db_path()
    server.secret_key = _secret_key(db_path)
    state = AuthState(
        store=store or UserStore(db_path),
        audit=audit or AuditLog(db_path),
        demo=demo_mode(),
    )
    server.extensions["cmh_auth"] = state
    guard.install(server)
    server.register_blueprint(views.bp)
    server.register_blueprint(admin.bp)
    return state


def state() -> AuthState:
    return current_app.extensions["cmh_auth"]


def current_user() -> User | None:
    if not has_request_context():
        return None
    return g.get("cmh_user")


def csrf_token() -> str:
    """The session's CSRF token (created on first use) for hidden form fields."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def audit_event(event: str, *, outcome: str = "ok", status: int | None = None, **kw) -> None:
    """Record an event with who/where filled in from the current request."""
    user = current_user()
    if user is not None:
        kw.setdefault("username", user.username)
        kw.setdefault("role", user.role)
    if has_request_context():
        kw.setdefault("method", request.method)
        kw.setdefault("path", request.full_path.rstrip("?") if request.query_string else request.path)
        kw.setdefault("ip", request.remote_addr)
    state().audit.record(event, outcome=outcome, status=status, **kw)


def require_provider_access(provider_code: str) -> None:
    """For Dash callbacks and routes that take a provider code from the client (a URL, a callback
    payload): a provider user naming another provider gets HTTP 403, and the attempt is audited."""
    user = current_user()
    if user is not None and user.may_see_provider(provider_code):
        return
    audit_event("denied", outcome="scope", status=403, detail={"provider_code": provider_code})
    raise Forbidden("this account may not see that provider's data")


def require_role(*roles: str) -> User:
    """The current user if their role is one of `roles`; otherwise HTTP 403 (audited)."""
    user = current_user()
    if user is not None and user.role in roles:
        return user
    audit_event("denied", outcome="role", status=403, detail={"needs": list(roles)})
    raise Forbidden("this account's role may not do that")


__all__ = [
    "User",
    "init_auth",
    "current_user",
    "csrf_token",
    "audit_event",
    "require_provider_access",
    "require_role",
    "ConfigurationError",
]
