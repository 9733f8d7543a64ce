"""`cmh users ...`: manage accounts from the command line (spec/05), and the demo accounts.

Passwords are read from standard input when it is piped (`echo "$PW" | cmh users add ...`), so
they never appear in the process list or shell history; at a terminal a strong password is
generated and printed once. Every change is written to the audit log as an admin action by
`cli:<operating-system user>`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import sys

import click

from . import auth_db_path
from .audit import AuditLog
from .store import UserError, UserStore

DEMO_ICB = "QWE"  # the demo synthetic ICB (pipelines/synth/geography.py)
DEMO_PROVIDER = "RWE"


def _open(db: str | None) -> tuple[UserStore, AuditLog]:
    path = db or auth_db_path()
    return UserStore(path), AuditLog(path)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _password_from_stdin() -> str | None:
    if sys.stdin is None or sys.stdin.isatty():
        return None
    line = sys.stdin.readline().rstrip("\r\n")
    return line or None


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.group("users")
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    help="User store (default: CMH_AUTH_DB or <warehouse>/users.sqlite).",
)
@click.pass_context
def users(ctx: click.Context, db: str | None) -> None:
    """Manage dashboard users and API tokens."""
    ctx.obj = {"db": db}


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["board", "equality_lead", "provider", "admin"]))
@click.option("--icb", "icb_code", required=True, help="ICB code the user belongs to.")
@click.option("--provider", "provider_code", default=None, help="Provider code (role provider only).")
@click.pass_context
def add(ctx: click.Context, username: str, role: str, icb_code: str, provider_code: str | None) -> None:
    """Add a user; the password is read from standard input, or generated and printed."""
    store, audit = _open(ctx.obj["db"])
    given = _password_from_stdin()
    try:
        password = store.add_user(
            username, role, icb_code.upper(), provider_code and provider_code.upper(), given
        )
    except UserError as exc:
        _fail(exc)
    audit.record(
        "admin",
        username=_actor(),
        detail={"action": "add", "target": username, "role": role, "icb_code": icb_code},
    )
    click.echo(f"added {username} ({role}, ICB {icb_code.upper()})")
    if given is None:
        click.echo(f"password: {password}")


@users.command("disable")
@click.argument("username")
@click.pass_context
def disable(ctx: click.Context, username: str) -> None:
    """Disable a user: their sessions end and their API tokens stop working at once."""
    store, audit = _open(ctx.obj["db"])
    try:
        store.set_disabled(username, True)
    except UserError as exc:
        _fail(exc)
    audit.record("admin", username=_actor(), detail={"action": "disable", "target": username})
    click.echo(f"disabled {username}")


@users.command("enable")
@click.argument("username")
@click.pass_context
def enable(ctx: click.Context, username: str) -> None:
    """Re-enable a disabled user."""
    store, audit = _open(ctx.obj["db"])
    try:
        store.set_disabled(username, False)
    except UserError as exc:
        _fail(exc)
    audit.record("admin", username=_actor(), detail={"action": "enable", "target": username})
    click.echo(f"enabled {username}")


@users.command("reset-password")
@click.argument("username")
@click.pass_context
def reset_password(ctx: click.Context, username: str) -> None:
    """Set a new password (standard input, or generated and printed); clears a lock-out."""
    store, audit = _open(ctx.obj["db"])
    given = _password_from_stdin()
    try:
        password = store.set_password(username, given)
    except UserError as exc:
        _fail(exc)
    audit.record("admin", username=_actor(), detail={"action": "reset-password", "target": username})
    click.echo(f"password of {username} reset; their sessions have ended")
    if given is None:
        click.echo(f"password: {password}")


@users.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List users with role, ICB, provider and status."""
    store, _ = _open(ctx.obj["db"])
    rows = [("USERNAME", "ROLE", "ICB", "PROVIDER", "STATUS")]
    for u in store.list_users():
        status = "disabled" if u.disabled else "locked" if u.locked_until > store.clock() else "active"
        rows.append((u.username, u.role, u.icb_code, u.provider_code or "-", status))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _date(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d") if ts else "-"


@users.command("token")
@click.argument("username")
@click.option(
    "--days", default=90, show_default=True, type=click.IntRange(1, 366), help="Days until it expires."
)
@click.option("--list", "list_tokens", is_flag=True, help="List the user's tokens instead of issuing one.")
@click.option("--revoke", "revoke_id", type=int, default=None, help="Revoke the token with this id.")
@click.pass_context
def token(ctx: click.Context, username: str, days: int, list_tokens: bool, revoke_id: int | None) -> None:
    """Issue a personal API token (printed once; send it as `Authorization: Bearer <token>`)."""
    store, audit = _open(ctx.obj["db"])
    try:
        if list_tokens:
            for t in store.list_tokens(username):
                state = (
                    "revoked" if t.revoked_at else "expired" if t.expires_at <= store.clock() else "active"
                )
                click.echo(f"{t.id}  created {_date(t.created_at)}  expires {_date(t.expires_at)}  {state}")
            return
        if revoke_id is not None:
            if not any(t.id == revoke_id for t in store.list_tokens(username)):
                raise UserError(f"{username} has no token {revoke_id}")
            store.revoke_token(revoke_id)
            audit.record(
                "admin",
                username=_actor(),
                detail={"action": "revoke-token", "target": username, "token_id": revoke_id},
            )
            click.echo(f"revoked token {revoke_id} of {username}")
            return
        token_id, secret = store.issue_token(username, days)
    except UserError as exc:
        _fail(exc)
    audit.record(
        "admin", username=_actor(), detail={"action": "token", "target": username, "token_id": token_id}
    )
    click.echo(f"token {token_id} for {username}, expires in {days} days (shown only once):")
    click.echo(secret)


def demo_accounts(
    store: UserStore | None = None, icb_code: str = DEMO_ICB, provider_code: str = DEMO_PROVIDER
) -> list[tuple[str, str, str]]:
    """One account per role with a fresh generated password: [(username, role, password)].

    Re-running resets the demo passwords, so `make run` always prints ones that work."""
    store = store or UserStore(auth_db_path())
    out = []
    for username, role in (
        ("demo-board", "board"),
        ("demo-equality", "equality_lead"),
        ("demo-provider", "provider"),
        ("demo-admin", "admin"),
    ):
        provider = provider_code if role == "provider" else None
        if store.get(username) is None:
            password = store.add_user(username, role, icb_code, provider)
        else:
            password = store.set_password(username)
            store.set_disabled(username, False)
        out.append((username, role, password))
    return out
