"""The per-request checks of spec/05: who is asking, may they, and is the request genuine.

One `before_request` runs ahead of every route on the server — Dash's pages, its callbacks
(`/_dash-update-component`), its JavaScript bundles, the downloads and the API — so nothing is
reachable by forgetting a decorator. Anonymous requests are refused: pages redirect to the login
page, everything machine-facing (`/api/`, `/_dash-*`, non-GET) gets a 401 JSON body.

Sessions are Flask's signed cookies carrying the user id and a `session_version`; bumping the
version in the store (logout, disable, password reset) ends every session of that user at once.
CSRF: a random token per session, required on every state-changing request as the form field
`csrf_token` or the `X-CSRFToken` header. Dash callbacks are POSTs made by fetch(), so
assets/csrf.js copies the token from the readable `cmh_csrf` cookie into that header. Requests
authenticated by an API bearer token carry no ambient credentials and need no CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid

from flask import Flask, current_app, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import User, audit_event, state

log = logging.getLogger(__name__)

CSRF_COOKIE = "cmh_csrf"
CSRF_HEADER = "X-CSRFToken"
IDLE_TIMEOUT_SECONDS = 2 * 3600
ABSOLUTE_TIMEOUT_SECONDS = 12 * 3600
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # Dash callback payloads are small; extracts are GETs
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/login", "/favicon.ico"})
PUBLIC_PREFIXES = ("/auth/static/",)
MACHINE_PREFIXES = ("/api/", "/_dash-")
TOKEN_PREFIXES = ("/api/", "/extracts/", "/download/")  # where a personal API token is accepted
DATA_PREFIXES = ("/api/", "/extracts/", "/download/", "/_dash-update-component")
STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/auth/static/")


class _SessionInterface(SecureCookieSessionInterface):
    """`Secure` session cookie whenever the request came over HTTPS (spec/05), without a setting."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install(server: Flask) -> None:
    server.session_interface = _SessionInterface()
    server.config.update(
        SESSION_COOKIE_NAME="cmh_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=IDLE_TIMEOUT_SECONDS,
        SESSION_REFRESH_EACH_REQUEST=True,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    server.config.setdefault("MAX_CONTENT_LENGTH", MAX_REQUEST_BYTES)
    if not server.config.get("MAX_CONTENT_LENGTH"):
        server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    # Run before any other before_request (Dash's included), so nothing executes for anonymous users.
    server.before_request_funcs.setdefault(None, []).insert(0, _guard)
    server.after_request(_headers)
    server.register_error_handler(HTTPException, _http_error)
    server.register_error_handler(Exception, _unexpected_error)


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES)


def json_error(status: int, message: str, **extra):
    body = {"error": status, "message": message, **extra}
    return jsonify(body), status


def _user_from_session() -> User | None:
    uid = session.get("uid")
    if uid is None:
        return None
    stored = state().store.get_by_id(uid)
    started = session.get("t", 0)
    if (
        stored is None
        or stored.disabled
        or stored.session_version != session.get("sv")
        or time.time() - started > ABSOLUTE_TIMEOUT_SECONDS
    ):
        session.clear()
        return None
    g.cmh_auth_method = "session"
    return User(stored.username, stored.role, stored.icb_code, stored.provider_code)


def _user_from_token(header: str) -> User | None:
    token = header[len("Bearer ") :].strip()
    stored = state().store.user_for_token(token) if request.path.startswith(TOKEN_PREFIXES) else None
    if stored is None:
        return None
    g.cmh_auth_method = "token"
    return User(stored.username, stored.role, stored.icb_code, stored.provider_code)


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = request.form.get("csrf_token")
    return bool(expected and sent) and hmac.compare_digest(str(expected), str(sent))


def _guard():
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()  # before any route or Dash reads the body
    path = request.path
    header = request.headers.get("Authorization", "")
    bearer = header.startswith("Bearer ")
    g.cmh_user = _user_from_token(header) if bearer else _user_from_session()
    if bearer and g.cmh_user is None:
        audit_event("denied", outcome="bad_token", status=401)
        return json_error(401, "the API token is invalid, expired or revoked")

    public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
    if g.cmh_user is None and not public:
        # Data routes are audited; page views and bundles are not, or every visit would be logged.
        if path.startswith(DATA_PREFIXES):
            audit_event("denied", outcome="anonymous", status=401)
        if is_machine_path(path) or request.method not in SAFE_METHODS:
            return json_error(401, "sign in first", login=url_for("cmh_auth.login"))
        target = request.full_path if request.query_string else path
        return redirect(url_for("cmh_auth.login", next=target))

    if request.method not in SAFE_METHODS and g.get("cmh_auth_method") != "token" and not _csrf_ok():
        audit_event("denied", outcome="csrf", status=400)
        if is_machine_path(path):
            return json_error(400, "missing or invalid CSRF token; reload the page")
        return "The form has expired. Go back, reload the page and try again.", 400

    if path.startswith("/admin") and not g.cmh_user.is_admin:
        audit_event("denied", outcome="role", status=403)
        return "This page is for administrators only.", 403
    return None


def _content_security_policy() -> str:
    script_src = ["'self'", *_dash_inline_script_hashes()]
    return "; ".join(
        (
            "default-src 'self'",
            "script-src " + " ".join(script_src),
            # Plotly injects <style> elements for its modebar and hover labels.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _dash_inline_script_hashes() -> list[str]:
    """Hashes of the inline scripts of the Dash app on this server (its renderer bootstrap and any
    inline clientside callbacks), so script-src needs no 'unsafe-inline'."""
    try:
        from dash import _get_app
    except ImportError:  # pragma: no cover - dash is a dependency
        return []
    app = _get_app.APP
    if app is None or getattr(app, "server", None) is not _current_server():
        return []
    return list(app.csp_hashes())


def _current_server() -> Flask:
    return current_app._get_current_object()


def _headers(response):
    if request.path.startswith("/download/") and g.get("cmh_user") is not None:
        # The charts' data downloads (dashboard/downloads.py) are audited here, in one place.
        audit_event("download", status=response.status_code, build_id=response.headers.get("X-Build-Id"))
    h = response.headers
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "same-origin"
    h["X-Frame-Options"] = "DENY"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if response.mimetype == "text/html":
        h["Content-Security-Policy"] = _content_security_policy()
    else:
        h.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    if request.is_secure:
        h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if not request.path.startswith(STATIC_PREFIXES):
        h["Cache-Control"] = "no-store"
    token = session.get("csrf") if "uid" in session else None
    if token and request.cookies.get(CSRF_COOKIE) != token:
        # Readable by the page's own script (not HttpOnly) so csrf.js can echo it in a header.
        response.set_cookie(CSRF_COOKIE, token, secure=request.is_secure, httponly=False, samesite="Strict")
    return response


def _http_error(exc: HTTPException):
    if exc.code and exc.code >= 500:
        log.error("HTTP %s on %s %s", exc.code, request.method, request.path)
    if is_machine_path(request.path) or request.path.startswith(DATA_PREFIXES):
        return json_error(exc.code or 500, exc.description or exc.name)
    return exc


def _unexpected_error(exc: Exception):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    incident = uuid.uuid4().hex[:12]
    log.exception("unhandled error, incident %s, on %s %s", incident, request.method, request.path)
    message = f"Something went wrong on our side. If it keeps happening, quote incident {incident}."
    if is_machine_path(request.path) or request.path.startswith(DATA_PREFIXES):
        return json_error(500, message, incident=incident)
    return message, 500, {"Content-Type": "text/plain; charset=utf-8"}
