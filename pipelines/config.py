"""One configuration for the pipeline, the scheduler and the dashboard.

Settings come from three layers, each overriding the one before: built-in defaults (so a fresh
checkout runs with no file at all), one TOML file (`cmh.toml` in the working directory, or the
file named by `CMH_CONFIG`), then environment variables `CMH_<SECTION>_<KEY>` — the form that
containers, systemd units and CI set most easily. `cmh.example.toml` documents every setting.

Relative paths in the TOML file are resolved against the file's own directory, so a cron job or a
systemd unit gets the same warehouse whatever its working directory; relative paths from the
defaults or the environment are resolved against the working directory, as a shell user expects.
Unknown sections or keys in the file are errors (a typo must not silently fall back to a default);
unknown `CMH_*` variables are ignored because other tools may share the prefix.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_FILE = "cmh.toml"
ENV_FILE = "CMH_CONFIG"


class ConfigError(ValueError):
    """A setting is missing, mistyped or out of range; the message names where it came from."""


@dataclass(frozen=True)
class PipelineSettings:
    inbox: Path = Path("var/inbox")
    warehouse: Path = Path("var/warehouse")
    threads: int = 0  # 0 = DuckDB's default (one per core)
    memory_limit: str = ""  # "" = DuckDB's default (80% of RAM); e.g. "8GB"
    incremental: bool = True  # rebuild only the periods changed input can affect (pipelines.incremental)
    # an inbox of at least this many GB builds its working tables compressed on disk rather than in
    # memory (slower, but a national inbox's do not fit in memory or in uncompressed spill); 0 = always
    disk_build_from_gb: int = 1
    # the facts and aggregates of the build are made a few periods at a time, about this many units
    # each, when all periods hold more (bounds the build's largest table nationally); 0 = in one go.
    # Nationally (about 6-11 million units a month) 12 million makes each month a group of its own,
    # which was faster than bigger groups (benchmarks/RESULTS.md §2i)
    period_chunk_rows: int = 12_000_000

    def duckdb_config(self) -> dict[str, object]:
        """The `config=` for `duckdb.connect` (DuckDB rejects threads=0, so defaults are left out)."""
        out: dict[str, object] = {}
        if self.threads:
            out["threads"] = self.threads
        if self.memory_limit:
            out["memory_limit"] = self.memory_limit
        return out


@dataclass(frozen=True)
class ScheduleSettings:
    cron: str = "0 2 * * *"
    timezone: str = "UTC"


@dataclass(frozen=True)
class DisclosureSettings:
    threshold: int = 5
    rounding: int = 5


@dataclass(frozen=True)
class PublishSettings:
    keep_builds: int = 5


@dataclass(frozen=True)
class DashboardSettings:
    host: str = "127.0.0.1"
    port: int = 8050
    workers: int = 2
    freshness_days: int = 45
    cache_dir: Path = Path("var/cache")


@dataclass(frozen=True)
class Config:
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    disclosure: DisclosureSettings = field(default_factory=DisclosureSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    source: Path | None = None  # the TOML file read, if any


SECTIONS: dict[str, type] = {
    f.name: typing.get_type_hints(Config)[f.name] for f in dataclasses.fields(Config) if f.name != "source"
}

# (minimum, maximum) for integers; None = unbounded.
_RANGES: dict[tuple[str, str], tuple[int | None, int | None]] = {
    ("pipeline", "threads"): (0, None),
    ("pipeline", "disk_build_from_gb"): (0, None),
    ("pipeline", "period_chunk_rows"): (0, None),
    ("disclosure", "threshold"): (1, None),
    ("disclosure", "rounding"): (1, None),
    ("publish", "keep_builds"): (1, None),
    ("dashboard", "port"): (1, 65535),
    ("dashboard", "workers"): (1, None),
    ("dashboard", "freshness_days"): (1, None),
}


def env_name(section: str, key: str) -> str:
    return f"CMH_{section}_{key}".upper()


def settings() -> list[tuple[str, str, type]]:
    """Every (section, key, type) the configuration knows, in declaration order."""
    out = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        out.extend((section, f.name, hints[f.name]) for f in dataclasses.fields(cls))
    return out


def _from_env(raw: str, typ: type, where: str) -> object:
    text = raw.strip()
    if typ is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}={raw!r} is not a whole number") from None
    if typ is bool:
        low = text.lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{where}={raw!r} is not true/false")
    if typ is Path:
        if not text:
            raise ConfigError(f"{where} is empty; give a path")
        return Path(text).expanduser()
    return raw


def _from_toml(value: object, typ: type, where: str, base: Path) -> object:
    # bool is a subclass of int in Python, but `keep_builds = true` is a mistake, not 1.
    if typ is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{where} must be a whole number, got {value!r}")
    if typ is bool and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if typ in (str, Path) and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    if typ is Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path
    return value


def _read_file(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration file: {e.strerror}") from None


def _check(cfg: Config) -> None:
    for (section, key), (lo, hi) in _RANGES.items():
        value = getattr(getattr(cfg, section), key)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise ConfigError(f"{section}.{key} must be {bounds}, got {value} (env {env_name(section, key)})")
    if cfg.pipeline.memory_limit and not re.fullmatch(
        r"\d+(\.\d+)?\s*[KMGT]i?B", cfg.pipeline.memory_limit.strip(), re.IGNORECASE
    ):
        raise ConfigError(
            f"pipeline.memory_limit must be empty or a size such as '8GB', got {cfg.pipeline.memory_limit!r}"
        )
    # Imported here: schedule.py needs Config only for type hints, so there is no cycle at import time.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from pipelines.schedule import CronExpr

    try:
        CronExpr.parse(cfg.schedule.cron)
    except ValueError as e:
        raise ConfigError(f"schedule.cron: {e}") from None
    try:
        ZoneInfo(cfg.schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"schedule.timezone: unknown time zone {cfg.schedule.timezone!r}") from None


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read defaults, then the TOML file, then `CMH_<SECTION>_<KEY>` variables; validate; freeze.

    `path` (or `CMH_CONFIG`) must exist when given; the default `cmh.toml` may be absent.
    """
    env = os.environ if env is None else env
    explicit = path if path is not None else env.get(ENV_FILE) or None
    file = Path(explicit).expanduser() if explicit else Path(DEFAULT_FILE)
    data: dict = {}
    source: Path | None = None
    if explicit and not file.is_file():
        raise ConfigError(f"configuration file {file} does not exist")
    if file.is_file():
        data, source = _read_file(file), file.resolve()

    for section in data:
        if section not in SECTIONS:
            raise ConfigError(f"{file}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if not isinstance(data[section], dict):
            raise ConfigError(f"{file}: {section} must be a [{section}] table")

    values: dict[str, dict[str, object]] = {s: {} for s in SECTIONS}
    known = {(s, k): t for s, k, t in settings()}
    for section, table in data.items():
        for key, value in table.items():
            if (section, key) not in known:
                keys = ", ".join(k for s, k in known if s == section)
                raise ConfigError(f"{file}: unknown setting {section}.{key}; [{section}] knows: {keys}")
            where = f"{file}: {section}.{key}"
            values[section][key] = _from_toml(value, known[section, key], where, source.parent)
    for (section, key), typ in known.items():
        name = env_name(section, key)
        if name in env:
            values[section][key] = _from_env(env[name], typ, name)

    cfg = Config(**{s: cls(**values[s]) for s, cls in SECTIONS.items()}, source=source)
    _check(cfg)
    return cfg
