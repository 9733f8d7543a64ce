"""Login and logout pages: plain Flask routes and server-rendered HTML, so signing in works with no
JavaScript and before any of the Dash app's bundles (which need a login) can load.

The form follows the NHS.UK design system's patterns (labelled inputs, an error summary that
receives focus and links to the field, one primary button); the stylesheet is vendored in
auth/static so the page needs nothing from the internet. Failure messages never say whether the
username exists.
"""

from __future__ import annotations

import secrets
import time

from flask import Blueprint, redirect, render_template, request, session, url_for

from . import audit_event, csrf_token, current_user, state

bp = Blueprint(
    "cmh_auth",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/auth/static",
)

FAILED = (
    "The username or password is not right, or the account is locked after too many attempts. "
    "Check and try again, or ask your data team."
)


def safe_next(target: str | None) -> str:
    """Only same-site relative paths, so the login page cannot be used as an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@bp.get("/login")
def login():
    if current_user() is not None:
        return redirect(safe_next(request.args.get("next")))
    signed_out = request.args.get("signed_out") == "1"
    return render_template(
        "cmh_auth/login.html",
        csrf=csrf_token(),
        next=safe_next(request.args.get("next")),
        error=None,
        username="",
        signed_out=signed_out,
    )


@bp.post("/login")
def login_post():
    username = request.form.get("username", "").strip().lower()[:64]
    password = request.form.get("password", "")[:1024]
    target = safe_next(request.form.get("next"))
    user, reason = (
        state().store.authenticate(username, password) if username and password else (None, "empty")
    )
    if reason != "ok":
        audit_event("login", outcome=f"failure:{reason}", status=200, username=username or None)
        return render_template(
            "cmh_auth/login.html",
            csrf=csrf_token(),
            next=target,
            error=FAILED if username and password else "Enter your username and password.",
            username=username,
            signed_out=False,
        )
    # A fresh session (and CSRF token) at every sign-in.
    session.clear()
    session.permanent = True
    session.update(uid=user.id, sv=user.session_version, t=time.time(), csrf=secrets.token_urlsafe(32))
    audit_event("login", username=user.username, role=user.role, status=302)
    return redirect(target)


@bp.get("/logout")
def logout_confirm():
    return render_template("cmh_auth/logout.html", csrf=csrf_token(), user=current_user())


@bp.post("/logout")
def logout():
    user = current_user()
    if user is not None:
        # Ends this user's sessions everywhere: a copied cookie is useless after signing out.
        state().store.end_sessions(user.username)
        audit_event("logout", status=302)
    session.clear()
    return redirect(url_for("cmh_auth.login", signed_out=1))
