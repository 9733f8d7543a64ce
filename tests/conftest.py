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
