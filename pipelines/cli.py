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


if __name__ == "__main__":
    sys.exit(main())
