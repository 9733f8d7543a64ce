"""Shared by the benchmark scripts: run a `cmh` command as its own process and measure it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

CMH = str(Path(sys.executable).with_name("cmh"))


def measured(*args: str, env: dict | None = None) -> tuple[float, float]:
    """Run `cmh ARGS...`; return (wall seconds, that process's own peak RSS in MiB). Fails loudly."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([CMH, *args], stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)  # ru_maxrss of this child alone, in KiB
    secs = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"cmh {' '.join(args)} failed")
    return secs, usage.ru_maxrss / 1024


def synth(scale: str, out: Path, *extra: str) -> tuple[float, float]:
    """Generate `scale` with the benchmarks' fixed start month into `out`."""
    return measured(
        "synth", "--scale", scale, "--start", "2024-11", "--out", str(out), "--force", "--quiet", *extra
    )
