"""Incremental run against a full rebuild (spec/07: one new month added to 24 in <= 50% of a full
rebuild), and a resubmitted mid-series month for comparison.

For each scale: generate 24 months; build the first 23 in full (untimed: it only sets up the live
build); add month 24 and time the incremental run; then time `cmh pipeline run --full` on the same 24
months into a fresh warehouse — the baseline, in the same session, on the same files. Each is a
fresh `cmh` process (wall time, peak RSS). The two builds are then compared table by table
(benchmarks/compare_builds.py), so the speed-up is only reported for identical figures.

    .venv/bin/python benchmarks/bench_incremental.py --scales demo icb [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _proc import measured, synth

HERE = Path(__file__).resolve().parent


def stages(warehouse: Path) -> dict[str, float]:
    """Seconds per stage of the last run, from the structured log."""
    out: dict[str, float] = {}
    for line in (warehouse / "logs" / "pipeline.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["stage"] == "hash inputs":
            out = {}
        out[entry["stage"]] = entry["seconds"]
    return out


def message(warehouse: Path) -> str:
    out = subprocess.run(
        [str(Path(sys.executable).with_name("cmh")), "pipeline", "runs", "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next((line for line in out.splitlines() if "published" in line), out.strip())


def bench(scale: str, work: Path) -> dict:
    full_inbox, inbox = work / "full", work / "inbox"
    synth(scale, full_inbox)
    months = sorted(p.name for p in full_inbox.iterdir() if p.is_dir() and p.name[:2] == "20")
    shutil.copytree(full_inbox, inbox, ignore=lambda d, names: [months[-1]] if Path(d) == full_inbox else [])
    measured("pipeline", "run", "--quiet", "--inbox", str(inbox), "--warehouse", str(work / "wh"))
    shutil.copytree(full_inbox / months[-1], inbox / months[-1])
    inc_s, inc_mib = measured(
        "pipeline", "run", "--quiet", "--inbox", str(inbox), "--warehouse", str(work / "wh")
    )
    inc_stages, inc_msg = stages(work / "wh"), message(work / "wh")
    full_s, full_mib = measured(
        "pipeline", "run", "--quiet", "--full", "--inbox", str(inbox), "--warehouse", str(work / "full_wh")
    )
    full_stages = stages(work / "full_wh")
    same = subprocess.run(
        [
            sys.executable,
            str(HERE / "compare_builds.py"),
            str(work / "wh" / "current.duckdb"),
            str(work / "full_wh" / "current.duckdb"),
        ],
        capture_output=True,
        text=True,
    )
    return {
        "scale": scale,
        "incremental_s": round(inc_s, 1),
        "incremental_mib": round(inc_mib),
        "full_s": round(full_s, 1),
        "full_mib": round(full_mib),
        "ratio": round(inc_s / full_s, 2),
        "incremental_stages": inc_stages,
        "full_stages": full_stages,
        "run": inc_msg,
        "compare": same.stdout.strip().splitlines(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", default=["demo"])
    ap.add_argument("--work", type=Path, default=None, help="keep the files here (default: a temp dir)")
    args = ap.parse_args()
    for scale in args.scales:
        work = (args.work / scale) if args.work else Path(tempfile.mkdtemp(prefix=f"bench-inc-{scale}-"))
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        print(json.dumps(bench(scale, work), indent=1), flush=True)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
