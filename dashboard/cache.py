"""Query-result cache shared by every gunicorn worker, keyed by the live build id.

Builds are immutable, so a result keyed by (query name, build id, arguments) can never go stale:
there is no TTL to guess, and a newly published build simply misses the cache (OpenPrescribing's
matrixstore pattern). The backend must be shared across workers (CONVENTIONS C10):
`FileSystemCache` under `var/cache` on one host by default, `RedisCache` when
`CMH_DASHBOARD_REDIS_URL` is set; never the per-process `SimpleCache`.

`memoize` is our own small decorator rather than flask-caching's: the key is spelled out (function
name, build id, a digest of the arguments' repr) so it is identical in every worker and easy to
test, and the build id comes from the request's snapshot, not from an argument callers could forget.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from flask import Flask, current_app
from flask_caching import Cache

from dashboard import db

cache = Cache()
KEY_VERSION = "v1"
F = TypeVar("F", bound=Callable)


def init_cache(server: Flask, cache_dir: str | Path, config: dict | None = None) -> None:
    """Attach the shared cache to the Flask server; fails loudly on a per-process backend."""
    redis_url = os.environ.get("CMH_DASHBOARD_REDIS_URL")
    if config is None and redis_url:
        config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_url, "CACHE_KEY_PREFIX": "cmh:"}
    elif config is None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        config = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(cache_dir), "CACHE_THRESHOLD": 5000}
    config = {"CACHE_DEFAULT_TIMEOUT": 0, **config}
    if config["CACHE_TYPE"] in ("SimpleCache", "simple") and not config.get("CMH_ALLOW_SIMPLE"):
        raise ValueError("SimpleCache is per process; use FileSystemCache or RedisCache under gunicorn")
    cache.init_app(server, config={k: v for k, v in config.items() if k != "CMH_ALLOW_SIMPLE"})


def cache_key(name: str, build_id: str, args: tuple, kwargs: dict) -> str:
    digest = hashlib.sha256(repr((args, sorted(kwargs.items()))).encode()).hexdigest()[:24]
    return f"{KEY_VERSION}:{name}:{build_id}:{digest}"


# Per-process copies of small per-build results (the build's metadata, months and areas), read
# on every request: unpickling them from the shared backend each time cost more than the rest of
# a cached page. Keys carry the build id, so a publish simply misses; the dict is cleared when it
# grows past a few builds' worth.
_LOCAL: dict[str, object] = {}
_LOCAL_MAX = 64


def memoize(fn: F | None = None, *, per_process: bool = False):
    """Cache `fn`'s result under its name, the live build id and its (hashable, repr-stable) args.

    `per_process=True` also keeps the result in this worker's memory; only for small results that
    callers never modify (every caller shares the one object).
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if "cache" not in current_app.extensions:
                raise RuntimeError("the query cache is not attached: call dashboard.cache.init_cache(server)")
            key = cache_key(fn.__name__, db.build_id(), args, kwargs)
            result = _LOCAL.get(key) if per_process else None  # .get: another thread may clear it
            if result is not None:
                return result
            result = cache.get(key)
            if result is None:
                result = fn(*args, **kwargs)
                cache.set(key, result)
            if per_process:
                if len(_LOCAL) >= _LOCAL_MAX:
                    _LOCAL.clear()
                _LOCAL[key] = result
            return result

        wrapper.uncached = fn  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate
