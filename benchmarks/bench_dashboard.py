"""Dashboard callback latency under gunicorn (spec/07: icb data; warm p95 <= 50 ms, cold <= 300 ms,
20 concurrent users p95 <= 500 ms with zero errors; worker RSS <= 300 MiB).

The callback measured is the one a user triggers on every change of page, period, area or group:
Dash's pages router (`_pages_content.children`), which runs the page's layout — its queries and
figures — for the new URL. Requests are real HTTP POSTs to /_dash-update-component on a real
gunicorn (2 workers), with authentication off (CMH_AUTH=off) so the figures measure the dashboard,
not the login.

    .venv/bin/python benchmarks/bench_dashboard.py --warehouse DIR [--users 20 --seconds 30]
    .venv/bin/python benchmarks/bench_dashboard.py --scale icb     # generates and builds first
    .venv/bin/python benchmarks/bench_dashboard.py --warehouse DIR --repo /tmp/old-checkout  # a baseline

The server is started as `cmh serve` starts it (dashboard.serve.gunicorn_argv), but on the checkout
given by --repo (default: this one), so an older commit can be measured on the same states for a
before/after ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
from _proc import measured, synth

from dashboard.page_cache import router_payload
from dashboard.serve import gunicorn_argv

REPO = Path(__file__).resolve().parents[1]
PAGES = ["/", "/access", "/waiting", "/outcomes", "/equity", "/data-quality"]
DIMS = ["", "ethnicity_group", "age_band", "imd_quintile", "gender"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def states(warehouse: Path, n: int, seed: int = 1) -> list[tuple[str, str]]:
    """Distinct (page, search) pairs a user could reach: pages x areas x characteristics x months."""
    con = duckdb.connect(str(warehouse / "current.duckdb"), read_only=True)
    geo = con.execute(
        "select geography_level, geography_code, parent_code from geography "
        "where geography_level in ('place', 'pcn') and geography_code not in ('UNMAPPED', 'UNKNOWN')"
    ).fetchall()
    icb = con.execute(
        "select geography_code from geography where geography_level = 'icb' limit 1"
    ).fetchone()[0]
    months = [
        str(r[0])  # the month end as an ISO date, as the period control writes it into the URL
        for r in con.execute(
            "select distinct period_end from indicator_values order by 1 desc limit 6"
        ).fetchall()
    ]
    con.close()
    rng = random.Random(seed)
    out = set()
    while len(out) < n:
        level, code, parent = rng.choice(geo)
        area = f"&icb={icb}&place={code}" if level == "place" else f"&icb={icb}&place={parent}&pcn={code}"
        dim = rng.choice(DIMS)
        search = f"?period={rng.choice(months)}{area}" + (f"&dim={dim}" if dim else "")
        out.add((rng.choice(PAGES), search))
    return sorted(out)


def payload(path: str, search: str) -> bytes:
    return json.dumps(router_payload(path, search)).encode()


def call(base: str, path: str, search: str) -> tuple[float, int]:
    req = urllib.request.Request(
        base + "/_dash-update-component",
        data=payload(path, search),
        headers={"Content-Type": "application/json"},
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return (time.perf_counter() - t0) * 1000, status


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[94] if len(xs) >= 20 else max(xs)


def worker_rss(master_pid: int) -> list[float]:
    out = subprocess.run(["ps", "-o", "pid=,rss=", "--ppid", str(master_pid)], capture_output=True, text=True)
    return [int(line.split()[1]) / 1024 for line in out.stdout.splitlines() if line.strip()]


def start_server(
    warehouse: Path, tmp: Path, workers: int = 2, threads: int = 1, repo: Path = REPO
) -> tuple[subprocess.Popen, str]:
    """gunicorn serving `warehouse` with authentication off and a fresh cache under `tmp`; ready to use."""
    port = free_port()
    (tmp / "run").mkdir(parents=True, exist_ok=True)
    argv = gunicorn_argv(warehouse, "127.0.0.1", port, workers, tmp / "run")
    argv[argv.index("--chdir") + 1] = str(repo.resolve())
    argv[argv.index("--access-logfile") + 1] = "/dev/null"
    if threads > 1:
        argv[-1:-1] = ["--threads", str(threads)]
    env = {
        **os.environ, "CMH_AUTH": "off", "CMH_DASHBOARD_CACHE_DIR": str(tmp / "cache"),
        "CMH_RUN_DIR": str(tmp / "run"), "CMH_PIPELINE_WAREHOUSE": str(warehouse.resolve()),
        "PYTHONPATH": str(repo.resolve()),
    }  # fmt: skip
    # cwd too: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH
    server = subprocess.Popen(
        argv, env=env, cwd=repo.resolve(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(base + "/_dash-layout", timeout=2).read()
            return server, base
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warehouse", type=Path)
    ap.add_argument("--scale", default="icb")
    ap.add_argument("--states", type=int, default=60)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (gthread if > 1)")
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose dashboard/ is served")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-dash-"))
    warehouse = args.warehouse
    if warehouse is None:
        inbox, warehouse = tmp / "inbox", tmp / "wh"
        synth(args.scale, inbox)
        measured("pipeline", "run", "--quiet", "--inbox", str(inbox), "--warehouse", str(warehouse))
    server, base = start_server(warehouse, tmp, args.workers, args.threads, args.repo)
    try:
        todo = states(warehouse, args.states)
        call(base, "/", "")  # the pages router registers on a worker's first request
        call(base, "/", "")
        cold = [call(base, p, s) for p, s in todo]
        warm = [call(base, p, s) for p, s in todo for _ in range(2)]
        errors, lat = [], []
        stop = time.perf_counter() + args.seconds
        lock = threading.Lock()

        def user(seed: int) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < stop:
                ms, status = call(base, *rng.choice(todo))
                with lock:
                    lat.append(ms)
                    if status != 200:
                        errors.append(status)

        threads = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rss = worker_rss(server.pid)
        bad = [s for _, s in cold + warm if s != 200]
        print("| measure | requests | p50 ms | p95 ms | errors |")
        print("|---|---|---|---|---|")
        for name, xs in (
            ("cold cache (first view of each state)", [m for m, _ in cold]),
            ("warm cache (same states again)", [m for m, _ in warm]),
            (f"{args.users} concurrent users, {args.seconds:.0f} s, mixed states", lat),
        ):
            print(
                f"| {name} | {len(xs)} | {statistics.median(xs):.0f} | {p95(xs):.0f} | "
                f"{len(errors) if 'concurrent' in name else len(bad)} |"
            )
        print(
            f"\nworker RSS after the run: {', '.join(f'{r:.0f} MiB' for r in rss)}; "
            f"{len(todo)} states over {len(PAGES)} pages; {args.workers} workers x {args.threads} threads; "
            f"served from {args.repo}; machine {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
