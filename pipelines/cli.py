"""The `cmh` command line: one entry point for generating data, running pipelines and serving.

Sub-commands import their modules lazily so that `cmh --help` stays fast and a missing optional
piece (e.g. the dashboard) never breaks the others.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """cmh-dashboard: community mental health outcomes and inequalities."""


def _default_start() -> str:
    today = dt.date.today()
    n = today.year * 12 + today.month - 1 - 24
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


@main.command()
@click.option("--scale", type=click.Choice(["demo", "icb", "national"]), default="demo", show_default=True)
@click.option("--months", type=click.IntRange(1, 120), default=24, show_default=True)
@click.option(
    "--start", default=None, help="First reporting month YYYY-MM [default: 24 months before this month]"
)
@click.option("--seed", type=int, default=20190901, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("var/inbox"), show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option(
    "--mhsds-version",
    type=click.Choice(["5", "6"]),
    default="6",
    show_default=True,
    help="5 writes the v5 field names (AttendOrDNACode, GMPCodeReg) and legacy team code C03",
)
@click.option(
    "--icbs",
    type=click.IntRange(1, None),
    default=None,
    help="national only: generate just the first N ICBs (for measuring a fraction)",
)
@click.option("--force", is_flag=True, help="Overwrite a non-empty --out folder")
@click.option("--quiet", is_flag=True, help="No progress bar")
def synth(scale, months, start, seed, out, fmt, mhsds_version, icbs, force, quiet) -> None:
    """Write synthetic MHSDS-style monthly extract folders (spec/01) and ground_truth.json."""
    from pipelines.synth.generate import SynthConfig, generate

    start = start or _default_start()
    try:
        year, month = (int(x) for x in start.split("-"))
        dt.date(year, month, 1)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM, got {start!r}", param_hint="--start") from None
    if out.exists() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; pass --force to overwrite it")
    cfg = SynthConfig(
        scale=scale,
        months=months,
        start=(year, month),
        seed=seed,
        out=out,
        fmt=fmt,
        mhsds_version=int(mhsds_version),
        icb_limit=icbs,
        progress=not quiet,
    )
    summary = generate(cfg)
    click.echo(summary, err=False)


def _config(inbox: Path | None, warehouse: Path | None):
    """Settings from cmh.toml / CMH_* variables, with command-line paths taking precedence."""
    import dataclasses

    from pipelines.config import ConfigError, load_config

    try:
        cfg = load_config()
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    changes = {k: v for k, v in {"inbox": inbox, "warehouse": warehouse}.items() if v is not None}
    if changes:
        cfg = dataclasses.replace(cfg, pipeline=dataclasses.replace(cfg.pipeline, **changes))
    return cfg


_inbox_opt = click.option(
    "--inbox",
    type=click.Path(path_type=Path),
    default=None,
    help="Extract folder [default: pipeline.inbox, var/inbox]",
)
_wh_opt = click.option(
    "--warehouse",
    type=click.Path(path_type=Path),
    default=None,
    help="Warehouse folder [default: pipeline.warehouse, var/warehouse]",
)


@main.group()
def pipeline() -> None:
    """Load, validate, build, check and publish the indicator warehouse."""


@pipeline.command("run")
@_inbox_opt
@_wh_opt
@click.option("--quiet", is_flag=True, help="No progress output")
@click.option(
    "--if-changed", is_flag=True, help="Skip when the inbox is unchanged since the last successful run"
)
@click.option(
    "--full",
    is_flag=True,
    help="Rebuild every period, even when only some need it (see pipeline.incremental)",
)
def pipeline_run(inbox, warehouse, quiet, if_changed, full) -> None:
    """Run the pipeline once now and publish a new build."""
    from pipelines.run import run_pipeline
    from pipelines.schedule import run_once

    cfg = _config(inbox, warehouse)
    outcome = run_once(
        cfg,
        lambda c, h: run_pipeline(c, progress=not quiet, full=full, hashed=h),
        trigger="manual",
        force=not if_changed,
    )
    if outcome.status == "skipped" and if_changed:
        click.echo(f"skipped: {outcome.message}")
        return
    if outcome.status != "success":
        raise click.ClickException(f"pipeline {outcome.status}: {outcome.message}")
    click.echo(outcome.message)


@pipeline.command("schedule")
@_inbox_opt
@_wh_opt
@click.option(
    "--once", is_flag=True, help="One scheduled tick now (runs only if the inbox changed), then exit"
)
def pipeline_schedule(inbox, warehouse, once) -> None:
    """Run the pipeline on the cron schedule of the config (schedule.cron) whenever the inbox changes."""
    from pipelines.run import run_pipeline
    from pipelines.schedule import run_once, run_scheduler

    cfg = _config(inbox, warehouse)
    run_fn = lambda c, h: run_pipeline(c, progress=False, hashed=h)  # noqa: E731
    if once:
        outcome = run_once(cfg, run_fn, trigger="schedule")
        click.echo(f"{outcome.status}: {outcome.message}")
        if outcome.status == "failed":
            raise SystemExit(1)
        return
    click.echo(f"Scheduler started: cron '{cfg.schedule.cron}' ({cfg.schedule.timezone}); Ctrl-C to stop")
    run_scheduler(cfg, run_fn)


@pipeline.command("rollback")
@_wh_opt
@click.option(
    "--to", "to", default=None, help="Build id to make live [default: the one before the live build]"
)
def pipeline_rollback(warehouse, to) -> None:
    """Switch the live build back to an earlier one."""
    from pipelines.publish import PublishError, rollback
    from pipelines.runs import RunInProgress, run_lock

    cfg = _config(None, warehouse)
    try:
        with run_lock(cfg.pipeline.warehouse):  # never race a run that is about to publish
            build = rollback(cfg.pipeline.warehouse, to)
    except (PublishError, RunInProgress) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Live build is now {build.build_id}")


@pipeline.command("builds")
@_wh_opt
def pipeline_builds(warehouse) -> None:
    """List the kept builds, newest first (* = live)."""
    from pipelines.publish import list_builds

    cfg = _config(None, warehouse)
    for b in list_builds(cfg.pipeline.warehouse):
        click.echo(f"{'*' if b.is_current else ' '} {b.build_id}  built {b.built_at:%Y-%m-%d %H:%M:%S} UTC")


@pipeline.command("runs")
@_wh_opt
@click.option("--limit", type=int, default=20, show_default=True)
def pipeline_runs(warehouse, limit) -> None:
    """Show the run history (start, end, status, counts, message)."""
    from pipelines.runs import read_runs

    cfg = _config(None, warehouse)
    for r in read_runs(cfg.pipeline.warehouse, limit):
        click.echo(
            f"{r.run_id:>5} {r.started_at} {r.status:<8} {r.trigger:<8} {r.build_id or '-'}  {r.message}"
        )


@main.command()
@_wh_opt
@click.option("--host", default=None, help="[default: dashboard.host, 127.0.0.1]")
@click.option("--port", type=int, default=None, help="[default: dashboard.port, 8050]")
@click.option("--workers", type=int, default=None, help="[default: dashboard.workers, 2]")
def serve(warehouse, host, port, workers) -> None:
    """Serve the dashboard under gunicorn (reads only the published warehouse)."""
    from dashboard.serve import serve as run_server

    cfg = _config(None, warehouse)
    d = cfg.dashboard
    run_server(cfg.pipeline.warehouse, host or d.host, port or d.port, workers or d.workers)


@main.command("demo-accounts")
@_wh_opt
def demo_accounts(warehouse) -> None:
    """Create (or reset) one demo login per role and print them. Demo use only."""
    import os

    cfg = _config(None, warehouse)
    os.environ.setdefault("CMH_PIPELINE_WAREHOUSE", str(cfg.pipeline.warehouse))
    from dashboard.auth.cli import demo_accounts as make_accounts

    click.echo("Demo logins (synthetic data only; passwords are reset on every `make run`):")
    for username, role, password in make_accounts():
        click.echo(f"  {role:<14} user {username:<15} password {password}")


def _attach_users() -> None:
    from dashboard.auth.cli import users

    main.add_command(users)


_attach_users()

if __name__ == "__main__":
    sys.exit(main())
