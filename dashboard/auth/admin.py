"""Admin pages for users and the audit log (spec/05 "managed from the admin page"; "viewable by
admin, exportable as CSV").

Plain server-rendered Flask pages under /admin (the guard lets only the `admin` role in) rather
than Dash callbacks: every change is an ordinary POST form with a CSRF token, which is simpler to
audit and to test than callback payloads, and works without JavaScript. The Dash admin page links
here. New passwords and tokens are shown once, on the response page, and never stored in clear.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, render_template, request

from . import audit_event, csrf_token, current_user, state
from .audit import iter_csv
from .store import ROLES, UserError

bp = Blueprint("cmh_admin", __name__, url_prefix="/admin", template_folder="templates")


def _require_admin():
    # Defence in depth: the guard already refuses non-admins for /admin.
    user = current_user()
    if user is None or not user.is_admin:
        abort(403)
    return user


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _render_users(
    message: str | None = None, secret: str | None = None, error: str | None = None, status=200
):
    store = state().store
    return (
        render_template(
            "cmh_auth/admin_users.html",
            user=current_user(),
            users=store.list_users(),
            tokens=store.list_tokens(),
            roles=ROLES,
            csrf=csrf_token(),
            message=message,
            secret=secret,
            error=error,
            when=_when,
        ),
        status,
    )


@bp.get("/users")
def users():
    _require_admin()
    return _render_users()


@bp.post("/users")
def users_post():
    _require_admin()
    store = state().store
    form = request.form
    action = form.get("action", "")
    username = form.get("username", "").strip().lower()
    detail = {"action": action, "target": username}
    try:
        if action == "add":
            provider = form.get("provider_code", "").strip().upper() or None
            role, icb = form.get("role", ""), form.get("icb_code", "").strip().upper()
            password = store.add_user(username, role, icb, provider)
            detail.update(role=role, icb_code=icb, provider_code=provider)
            message, secret = (
                f"User {username} added. Give them this password; it is shown only once.",
                password,
            )
        elif action in ("disable", "enable"):
            store.set_disabled(username, action == "disable")
            message, secret = f"User {username} {action}d.", None
        elif action == "reset-password":
            secret = store.set_password(username)
            message = f"Password of {username} reset; their sessions have ended. It is shown only once."
        elif action == "token":
            token_id, secret = store.issue_token(username, days=int(form.get("days", "90") or 90))
            detail["token_id"] = token_id
            message = f"API token {token_id} issued to {username}. It is shown only once."
        elif action == "revoke-token":
            token_id = int(form.get("token_id", "0"))
            store.revoke_token(token_id)
            detail["token_id"] = token_id
            message, secret = f"Token {token_id} revoked.", None
        else:
            raise UserError(f"unknown action {action!r}")
    except (UserError, ValueError) as exc:
        audit_event("admin", outcome="failure", status=400, detail={**detail, "error": str(exc)})
        return _render_users(error=str(exc), status=400)
    audit_event("admin", status=200, detail=detail)
    return _render_users(message=message, secret=secret)


@bp.get("/audit")
def audit():
    _require_admin()
    event = request.args.get("event") or None
    who = request.args.get("username") or None
    rows = state().audit.rows(limit=500, event=event, username=who)
    return render_template(
        "cmh_auth/admin_audit.html",
        user=current_user(),
        rows=rows,
        event=event or "",
        who=who or "",
        intact=state().audit.verify(),
    )


@bp.get("/audit.csv")
def audit_csv():
    _require_admin()
    audit_event("download", status=200, detail={"what": "audit_log"})
    rows = state().audit.rows(limit=None)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        iter_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="cmh_audit_{stamp}.csv"'},
    )
