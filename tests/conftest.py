"""Shared fixtures. The demo extract is generated once per test session (about 15 s) with a fixed
start month so results do not depend on today's date."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.synth.generate import SynthConfig, generate

DEMO_START = (2024, 11)


@pytest.fixture(scope="session")
def demo_inbox(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "inbox"
    generate(SynthConfig(scale="demo", months=24, start=DEMO_START, seed=20190901, out=out, progress=False))
    return out


def run_pipeline_into(inbox: Path, warehouse: Path):
    """Run the real pipeline (load, build, statistics, disclosure, checks, publish) once."""
    import dataclasses

    from pipelines.config import load_config
    from pipelines.run import run_pipeline

    cfg = load_config(env={})
    cfg = dataclasses.replace(
        cfg, pipeline=dataclasses.replace(cfg.pipeline, inbox=inbox, warehouse=warehouse)
    )
    return run_pipeline(cfg, progress=False)


@pytest.fixture(scope="session")
def demo_warehouse(demo_inbox, tmp_path_factory) -> Path:
    """The demo extract built and published once per session; tests open current.duckdb read-only."""
    warehouse = tmp_path_factory.mktemp("demo-warehouse")
    run_pipeline_into(demo_inbox, warehouse)
    return warehouse


@pytest.fixture(scope="session")
def run_pipeline():
    """The function above, for tests that publish builds of their own."""
    return run_pipeline_into
