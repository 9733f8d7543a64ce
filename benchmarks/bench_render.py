"""Page first render in Chromium (spec/07: <= 2 s), against the app under real gunicorn (2 workers).

For each page, the time from the start of navigation to the page's charts being drawn: Playwright
drives Debian's /usr/bin/chromium (never a downloaded browser) to a URL state, and the clock is
the page's own `performance.now()` (milliseconds since navigation start) at the first animation
frame at which the page is ready:
- the page body has arrived (`#page-body h1`),
- every `dcc.Graph` on it has been drawn by Plotly (`.js-plotly-plot .main-svg` inside each
  `.dash-graph`), and
- no Dash callback is in flight (no `[data-dash-is-loading="true"]`).

`cold` is the first view of a URL state after the server started with an empty cache (the
browser already holds Dash's and Plotly's JavaScript from one earlier, unrelated page, as any
returning user's would); `warm` is the same URL loaded again (server caches warm, browser HTTP cache
warm). The very first load of the session, which also downloads the JavaScript bundles, is
reported on its own. Authentication is off (CMH_AUTH=off), as in bench_dashboard.py.

    .venv/bin/python benchmarks/bench_render.py --warehouse DIR [--per-page 5 --repeats 2]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from bench_dashboard import PAGES, REPO, p95, start_server, states

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
READY = """() => {
  const body = document.querySelector('#page-body');
  if (!body || !body.querySelector('h1')) return false;
  if (document.querySelector('[data-dash-is-loading="true"]')) return false;
  const graphs = [...body.querySelectorAll('.dash-graph')];
  if (graphs.some(g => !g.querySelector('.js-plotly-plot .main-svg'))) return false;
  return performance.now();
}"""


def render_ms(page, url: str) -> float:
    page.goto(url, wait_until="commit")
    return float(page.wait_for_function(READY, polling="raf", timeout=60_000).json_value())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warehouse", type=Path, required=True)
    ap.add_argument("--per-page", type=int, default=5, help="URL states per page")
    ap.add_argument("--repeats", type=int, default=2, help="warm loads of each state")
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose dashboard/ is served")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
    pool = states(args.warehouse, 400, seed=7)
    rng = random.Random(7)
    todo = [s for path in PAGES for s in rng.sample([s for s in pool if s[0] == path], args.per_page)]
    server, base = start_server(args.warehouse, tmp / "server", repo=args.repo)
    env = {**os.environ, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"),
           "XDG_CACHE_HOME": str(tmp / "cache"), "TMPDIR": str(tmp)}  # fmt: skip
    cold, warm = defaultdict(list), defaultdict(list)
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS, env=env,
                viewport={"width": 1280, "height": 900},
            )  # fmt: skip
            page = ctx.new_page()
            first = render_ms(page, base + "/definitions")  # bundles downloaded; no state of `todo`
            for path, search in todo:
                cold[path].append(render_ms(page, base + path + search))
            for _ in range(args.repeats):
                for path, search in todo:
                    warm[path].append(render_ms(page, base + path + search))
            version = ctx.browser.version if ctx.browser else "?"
            ctx.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print("| page | cold loads | cold p50 ms | cold p95 ms | warm loads | warm p50 ms | warm p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for path in PAGES:
        c, w = cold[path], warm[path]
        print(f"| {path} | {len(c)} | {statistics.median(c):.0f} | {p95(c):.0f} | {len(w)} | "
              f"{statistics.median(w):.0f} | {p95(w):.0f} |")  # fmt: skip
    every_c, every_w = [x for v in cold.values() for x in v], [x for v in warm.values() for x in v]
    print(f"| all pages | {len(every_c)} | {statistics.median(every_c):.0f} | {p95(every_c):.0f} | "
          f"{len(every_w)} | {statistics.median(every_w):.0f} | {p95(every_w):.0f} |")  # fmt: skip
    print(
        f"\nfirst load of the session (JavaScript bundles downloaded, /definitions): {first:.0f} ms; "
        f"Chromium {version}; served from {args.repo}; machine {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
