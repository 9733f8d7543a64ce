"""Published-data access shared by the API and the KPI extracts: the live build, who may read
which rows, filter validation and the serving-time disclosure check.

Everything here reads the live build read-only through dashboard/db.py (one connection per
process, a cursor per request, opened on the symlink's target so a build swapped mid-request
cannot mix two builds, and with the same DuckDB settings, which DuckDB requires of every
in-process connection to one file); only the published tables (`indicator_values`, `indicators`, `build_info`, and the optional lookups below) are read,
never `indicator_values_raw` or `quarantine`. Every value reaches SQL as a bound parameter.

Who may read what (spec/05): a provider user only rows of their own provider
(geography_level `provider`) and of the PCNs it serves; everyone else the geographies of their
ICB. "The PCNs a provider serves" come from the optional published table
`provider_pcns(provider_code, pcn_code)` (the PCNs of the people on its referrals); ICB
membership from the optional `geography(geography_level, geography_code, ..., icb_code)`. Without
`provider_pcns` a provider user sees only provider rows; without `geography` (a single-ICB
warehouse) ICB-wide users see every geography.

As a last line of defence every response passes a disclosure check (spec/03): a count that is
1-4 or not a multiple of the rounding base, or a figure on a suppressed row, withholds the whole
response with a 500 and an error in the log, rather than serving it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
from flask import current_app
from werkzeug.datastructures import MultiDict

from dashboard.auth import User, audit_event, current_user

log = logging.getLogger(__name__)

VALUE_COLUMNS = (
    "indicator_id",
    "period_end",
    "geography_level",
    "geography_code",
    "breakdown",
    "breakdown_value",
    "numerator",
    "denominator",
    "value",
    "lower_95",
    "upper_95",
    "lower_998",
    "upper_998",
    "method",
    "suppressed",
    "significance_95",
    "significance_998",
    "benchmark_value",
)
GEOGRAPHY_LEVELS = ("icb", "place", "pcn", "provider")


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


class Forbidden(ApiError):
    def __init__(self, message: str):
        super().__init__(403, message)


class DisclosureError(RuntimeError):
    """A published row breaks the suppression rules; nothing is served."""


# -- the published build ----------------------------------------------------------------------


def warehouse_dir() -> Path:
    configured = current_app.config.get("CMH_WAREHOUSE_DIR") or current_app.config.get("CMH_WAREHOUSE")
    if configured:
        return Path(configured)
    from pipelines.config import load_config

    return load_config().pipeline.warehouse


def disclosure_settings() -> tuple[int, int]:
    cfg = current_app.config
    if "CMH_DISCLOSURE_THRESHOLD" not in cfg:
        from pipelines.config import load_config

        disclosure = load_config().disclosure
        cfg.setdefault("CMH_DISCLOSURE_THRESHOLD", disclosure.threshold)
        cfg.setdefault("CMH_DISCLOSURE_ROUNDING", disclosure.rounding)
    return int(cfg["CMH_DISCLOSURE_THRESHOLD"]), int(cfg["CMH_DISCLOSURE_ROUNDING"])


@dataclass
class Published:
    con: duckdb.DuckDBPyConnection
    build_id: str
    tables: frozenset[str]

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        return self.con.execute(sql, params or {}).fetchall()


_TABLES: dict[str, frozenset[str]] = {}
_OWN: dict[str, object] = {}  # warehouse dir -> dashboard.db.Warehouse, when the app has none


def _describe(con: duckdb.DuckDBPyConnection, build_id: str) -> Published:
    if build_id not in _TABLES:  # a build never changes, so once per build and process
        _TABLES.clear()
        _TABLES[build_id] = frozenset(
            r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()
        )
    return Published(con, build_id, _TABLES[build_id])


@contextlib.contextmanager
def published() -> Iterator[Published]:
    """The live build for this request, through the dashboard's per-process read-only connection
    (dashboard/db.py): the app's own when it has one, else one kept here per warehouse folder."""
    from dashboard import db

    own = "cmh_warehouse" not in current_app.extensions
    if own:
        directory = str(warehouse_dir())
        wh = _OWN.setdefault(directory, db.Warehouse(directory))
    try:
        snap = wh.acquire() if own else db.snapshot()
    except db.NoWarehouse:
        raise ApiError(503, "no build has been published yet") from None
    try:
        yield _describe(snap.cursor, snap.build_id)
    finally:
        if own:
            wh.release(snap)  # otherwise db's teardown releases it


@dataclass(frozen=True)
class Vocabulary:
    indicators: frozenset[str]
    geographies: frozenset[tuple[str, str]]
    breakdowns: frozenset[str]


_VOCAB: dict[str, Vocabulary] = {}


def vocabulary(pub: Published) -> Vocabulary:
    """The values a filter may take in this build (cached per build: builds never change)."""
    if pub.build_id not in _VOCAB:
        _VOCAB.clear()  # only the live build matters
        _VOCAB[pub.build_id] = Vocabulary(
            indicators=frozenset(r[0] for r in pub.rows("select indicator_id from indicators")),
            geographies=frozenset(
                pub.rows("select distinct geography_level, geography_code from indicator_values")
            ),
            breakdowns=frozenset(r[0] for r in pub.rows("select distinct breakdown from indicator_values")),
        )
    return _VOCAB[pub.build_id]


# -- who may see what -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    provider_code: str | None  # set for provider users: only this provider and its PCNs
    pcns: frozenset[str]
    geographies: frozenset[tuple[str, str]] | None  # ICB-wide users; None = unrestricted

    def allows(self, level: str | None, code: str) -> bool:
        if self.provider_code is not None:
            own = level in (None, "provider") and code == self.provider_code
            return own or (level in (None, "pcn") and code in self.pcns)
        if self.geographies is None:
            return True
        levels = GEOGRAPHY_LEVELS if level is None else (level,)
        return any((lv, code) in self.geographies for lv in levels)


def provider_pcns(pub: Published, provider_code: str) -> frozenset[str]:
    if "provider_pcns" not in pub.tables:
        return frozenset()
    rows = pub.rows(
        "select distinct pcn_code from provider_pcns where provider_code = $p", {"p": provider_code}
    )
    # The pseudo-PCNs (UNMAPPED/UNKNOWN, or UNMAPPED-<icb>/UNKNOWN-<icb> when the warehouse holds several
    # ICBs) gather people from every provider, so they are nobody's "own" PCN.
    return frozenset(r[0] for r in rows if r[0].split("-")[0] not in {"UNMAPPED", "UNKNOWN"})


def user_scope(pub: Published, user: User) -> Scope:
    if user.role == "provider":
        return Scope(user.provider_code, provider_pcns(pub, user.provider_code), None)
    if "geography" not in pub.tables:
        return Scope(None, frozenset(), None)
    rows = pub.rows(
        "select geography_level, geography_code from geography where icb_code = $icb",
        {"icb": user.icb_code},
    )
    return Scope(None, frozenset(), frozenset(rows) | {("icb", user.icb_code)})


def scope_sql(scope: Scope, params: dict) -> str | None:
    if scope.provider_code is not None:
        params["scope_provider"] = scope.provider_code
        params["scope_pcns"] = sorted(scope.pcns)
        return (
            "((v.geography_level = 'provider' and v.geography_code = $scope_provider)"
            " or (v.geography_level = 'pcn' and list_contains($scope_pcns::varchar[], v.geography_code)))"
        )
    if scope.geographies is not None:
        params["scope_geos"] = sorted(f"{lv}|{code}" for lv, code in scope.geographies)
        return "list_contains($scope_geos::varchar[], v.geography_level || '|' || v.geography_code)"
    return None


def deny(message: str) -> Forbidden:
    audit_event("denied", outcome="scope", status=403, detail={"reason": message})
    return Forbidden(message)


# -- filters ----------------------------------------------------------------------------------


@dataclass
class Filters:
    indicator_ids: tuple[str, ...] = ()
    geography_level: str | None = None
    geography_codes: tuple[str, ...] = ()
    breakdowns: tuple[str, ...] = ()
    period_from: dt.date | None = None
    period_to: dt.date | None = None

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if v}


def _parse_period(name: str, text: str, end: bool) -> dt.date:
    try:
        if len(text) == 7:  # YYYY-MM: the whole month
            first = dt.date.fromisoformat(text + "-01")
            if not end:
                return first
            return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400, f"{name} must be a date YYYY-MM-DD or a month YYYY-MM, not {text!r}", name
        ) from None


def check_params(args: MultiDict, allowed: tuple[str, ...], multi: tuple[str, ...] = ()) -> None:
    for name in args:
        if name not in allowed:
            raise ApiError(400, f"unknown parameter {name!r}; allowed: {', '.join(allowed) or 'none'}", name)
        if name not in multi and len(args.getlist(name)) > 1:
            raise ApiError(400, f"parameter {name!r} given more than once", name)


def _values(args: MultiDict, name: str) -> tuple[str, ...]:
    out: list[str] = []
    for raw in args.getlist(name):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(dict.fromkeys(out))


def parse_filters(args: MultiDict, vocab: Vocabulary) -> Filters:
    """Validate the common filters; unknown values are 400s naming the parameter."""
    f = Filters(
        indicator_ids=_values(args, "indicator_id"),
        geography_codes=_values(args, "geography_code"),
        breakdowns=_values(args, "breakdown"),
    )
    for ind in f.indicator_ids:
        if ind not in vocab.indicators:
            raise ApiError(400, f"indicator_id: unknown indicator {ind!r}", "indicator_id")
    level = args.get("geography_level", "").strip() or None
    if level is not None and level not in GEOGRAPHY_LEVELS:
        raise ApiError(
            400, f"geography_level must be one of {', '.join(GEOGRAPHY_LEVELS)}", "geography_level"
        )
    f.geography_level = level
    for code in f.geography_codes:
        levels = GEOGRAPHY_LEVELS if level is None else (level,)
        if not any((lv, code) in vocab.geographies for lv in levels):
            raise ApiError(400, f"geography_code: no published geography {code!r}", "geography_code")
    for b in f.breakdowns:
        if b not in vocab.breakdowns:
            raise ApiError(400, f"breakdown: unknown breakdown {b!r}", "breakdown")
    if args.get("period_from", "").strip():
        f.period_from = _parse_period("period_from", args["period_from"].strip(), end=False)
    if args.get("period_to", "").strip():
        f.period_to = _parse_period("period_to", args["period_to"].strip(), end=True)
    if f.period_from and f.period_to and f.period_from > f.period_to:
        raise ApiError(400, "period_from is after period_to", "period_from")
    return f


def authorise(f: Filters, scope: Scope) -> None:
    """403 (audited) when the filters name rows outside the user's scope."""
    if scope.provider_code is not None and f.geography_level not in (None, "provider", "pcn"):
        raise deny(f"provider users may read only provider {scope.provider_code} and the PCNs it serves")
    for code in f.geography_codes:
        if not scope.allows(f.geography_level, code):
            raise deny(f"geography {code!r} is outside what this account may read")


def values_sql(f: Filters, scope: Scope, extra_where: str | None = None) -> tuple[str, dict]:
    """`select` of the published rows matching `f` within `scope`, plus indicator_title, unit and a
    `_disclosure_breach` flag (dropped before serving)."""
    threshold, rounding = disclosure_settings()
    params: dict = {"thr": threshold, "rnd": rounding}
    where = ["true"]
    if f.indicator_ids:
        params["ind"] = list(f.indicator_ids)
        where.append("list_contains($ind::varchar[], v.indicator_id)")
    if f.geography_level:
        params["level"] = f.geography_level
        where.append("v.geography_level = $level")
    if f.geography_codes:
        params["codes"] = list(f.geography_codes)
        where.append("list_contains($codes::varchar[], v.geography_code)")
    if f.breakdowns:
        params["breakdowns"] = list(f.breakdowns)
        where.append("list_contains($breakdowns::varchar[], v.breakdown)")
    if f.period_from:
        params["pfrom"] = f.period_from
        where.append("v.period_end >= $pfrom")
    if f.period_to:
        params["pto"] = f.period_to
        where.append("v.period_end <= $pto")
    scoped = scope_sql(scope, params)
    if scoped:
        where.append(scoped)
    if extra_where:
        where.append(extra_where)
    small = "({c} is not null and (({c} > 0 and {c} < $thr) or {c} % $rnd <> 0))"
    breach = " or ".join(
        (
            small.format(c="v.numerator"),
            small.format(c="v.denominator"),
            f"(i.unit = 'count' and {small.format(c='v.value')})",
            "(v.suppressed is not null and (v.numerator is not null or v.value is not null))",
        )
    )
    cols = ", ".join(f"v.{c}" for c in VALUE_COLUMNS)
    sql = (
        f"select {cols}, i.title as indicator_title, i.unit, coalesce({breach}, false) as _disclosure_breach"
        " from indicator_values v left join indicators i using (indicator_id)"
        f" where {' and '.join(where)}"
        " order by v.indicator_id, v.period_end, v.geography_level, v.geography_code, v.breakdown,"
        " v.breakdown_value"
    )
    return sql, params


def refuse_breach(pub: Published, breaches: int) -> None:
    if breaches:
        log.error(
            "build %s: %d published rows break the disclosure rules; response withheld",
            pub.build_id,
            breaches,
        )
        audit_event("disclosure_guard", outcome="withheld", status=500, build_id=pub.build_id)
        raise DisclosureError("withheld")


def require_user() -> User:
    user = current_user()
    if user is None:  # the guard refuses first; this covers CMH_AUTH=off
        raise ApiError(401, "sign in or send an API token")
    return user
