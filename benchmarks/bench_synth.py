"""Time and peak memory of `cmh synth` at each scale (spec/07: icb <= 60 s; national <= 20 min, <= 8 GiB).

Each run is a separate `cmh synth` process so its peak RSS (ru_maxrss of the child) is its own.
`national` is measured on its first N ICBs (--icbs) and extrapolated by adult population, unless
--full-national is given. Prints a Markdown table row per run for benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_synth.py [--scales demo icb national] [--national-icbs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _proc import synth

NATIONAL_ADULTS = 45_000_000


def run(scale: str, out: Path, extra: list[str]) -> dict:
    secs, peak_mib = synth(scale, out, *extra)
    truth = json.loads((out / "ground_truth.json").read_text())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    adults = sum(g["adults"] for g in truth["geography"])
    return {
        "scale": scale,
        "secs": secs,
        "peak_mib": peak_mib,
        "adults": adults,
        "pcns": sum(g["pcns"] for g in truth["geography"]),
        **truth["counts"],
        "bytes": size,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", nargs="+", default=["demo", "icb", "national"])
    ap.add_argument("--national-icbs", type=int, default=4)
    ap.add_argument("--full-national", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="write into this folder and keep the output")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-synth-"))
    print("| scale | adults | PCNs | in-scope referrals | contacts | files | wall s | peak RSS MiB | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        for scale in args.scales:
            extra = []
            if scale == "national" and not args.full_national:
                extra = ["--icbs", str(args.national_icbs)]
            r = run(scale, base / scale, extra)
            note = ""
            if extra:
                est = r["secs"] * NATIONAL_ADULTS / r["adults"]
                note = f"first {args.national_icbs} ICBs; whole of England extrapolated by adults: {est / 60:.1f} min"
            print(
                f"| {scale} | {r['adults']:,} | {r['pcns']:,} | {r['in_scope_received']:,} | "
                f"{r['contacts_in_window']:,} | {r['bytes'] / 2**20:,.0f} MiB | {r['secs']:.1f} | "
                f"{r['peak_mib']:,.0f} | {note} |",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(base / scale, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\nmachine: {os.cpu_count()} cores; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
