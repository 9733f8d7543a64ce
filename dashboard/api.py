"""The read-only JSON API of spec/04, behind the same login as the dashboard.

    GET /api/v1/indicators   the registry
    GET /api/v1/values       rows of indicator_values: indicator_id, geography_level, geography_code,
                             breakdown, period_from, period_to (YYYY-MM or YYYY-MM-DD), limit (<= 10,000),
                             offset; indicator_id, geography_code and breakdown take comma-separated lists
    GET /api/v1/build        build_info and the freshness of the data

Unknown parameters or values get a 400 naming the parameter; rows outside the caller's scope a 403
(audited). Every response carries the build id in `X-Build-Id`. The scope rules, validation and
disclosure check live in dashboard/published.py, shared with the KPI extracts.
"""

from __future__ import annotations

import datetime as dt
import json
import math

from flask import Blueprint, current_app, request
from werkzeug.datastructures import MultiDict

from dashboard.auth import audit_event
from dashboard.published import (
    ApiError,
    DisclosureError,
    Forbidden,
    Published,
    authorise,
    check_params,
    parse_filters,
    published,
    refuse_breach,
    require_user,
    user_scope,
    values_sql,
    vocabulary,
)

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
VALUES_PARAMS = ("indicator_id", "geography_level", "geography_code", "breakdown", "period_from", "period_to")

bp = Blueprint("cmh_api", __name__, url_prefix="/api/v1")


def _json_value(v):
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _respond(body, pub: Published | None, status: int = 200):
    # json.dumps rather than jsonify, so the row objects keep the columns in the table's order.
    text = json.dumps(body, separators=(",", ":"), allow_nan=False, default=str)
    response = current_app.response_class(text, status=status, mimetype="application/json")
    if pub is not None:
        response.headers["X-Build-Id"] = pub.build_id
    return response


@bp.get("/indicators")
def indicators():
    user = require_user()
    check_params(request.args, ())
    with published() as pub:
        cur = pub.con.execute("select * from indicators order by indicator_id")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, map(_json_value, r), strict=True)) for r in cur.fetchall()]
        audit_event("api", status=200, build_id=pub.build_id, username=user.username)
        return _respond({"build_id": pub.build_id, "count": len(rows), "indicators": rows}, pub)


@bp.get("/values")
def values():
    require_user()
    args = request.args
    check_params(args, (*VALUES_PARAMS, "limit", "offset"))
    limit, offset = _int(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT), _int(args, "offset", 0, 0, None)
    with published() as pub:
        f = parse_filters(args, vocabulary(pub))
        scope = user_scope(pub, require_user())
        authorise(f, scope)
        sql, params = values_sql(f, scope)
        total = pub.rows(f"select count(*) from ({sql})", params)[0][0]
        cur = pub.con.execute(
            f"{sql} limit $limit offset $offset", {**params, "limit": limit, "offset": offset}
        )
        names = [d[0] for d in cur.description]
        raw = cur.fetchall()
        refuse_breach(pub, sum(1 for r in raw if r[-1]))
        rows = [dict(zip(names[:-1], map(_json_value, r[:-1]), strict=True)) for r in raw]
        audit_event("api", status=200, build_id=pub.build_id, detail={"rows": len(rows), **f.as_dict()})
        nxt = offset + len(rows) if offset + len(rows) < total else None
        body = {
            "build_id": pub.build_id,
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_offset": nxt,
        }
        return _respond({**body, "count": len(rows), "rows": rows}, pub)


def _int(args: MultiDict, name: str, default: int, low: int, high: int | None) -> int:
    text = args.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        bound = f"{low}-{high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"{name} must be a whole number {bound}", name)
    return int(text)


@bp.get("/build")
def build():
    require_user()
    check_params(request.args, ())
    with published() as pub:
        cur = pub.con.execute("select * from build_info limit 1")
        names = [d[0] for d in cur.description]
        info = dict(zip(names, cur.fetchone(), strict=True))
        freshness_days = int(current_app.config.get("CMH_FRESHNESS_DAYS") or _freshness_days())
        built_at = info.get("built_at")
        age = None
        if isinstance(built_at, dt.datetime):
            aware = built_at if built_at.tzinfo else built_at.replace(tzinfo=dt.UTC)
            age = round((dt.datetime.now(dt.UTC) - aware).total_seconds() / 86400, 1)
        freshness = {
            "build_age_days": age,
            "freshness_days": freshness_days,
            "stale": age is None or age > freshness_days,
        }
        audit_event("api", status=200, build_id=pub.build_id)
        body = {"build": {k: _json_value(v) for k, v in info.items()}, "freshness": freshness}
        return _respond(body, pub)


def _freshness_days() -> int:
    from pipelines.config import load_config

    return load_config().dashboard.freshness_days


@bp.errorhandler(ApiError)
def api_error_response(exc: ApiError):
    if not isinstance(exc, Forbidden) and exc.status in (400, 401):
        audit_event("api", outcome="refused", status=exc.status, detail={"error": exc.message})
    body = {"error": exc.status, "message": exc.message}
    if exc.param:
        body["parameter"] = exc.param
    return _respond(body, None, exc.status)


@bp.errorhandler(DisclosureError)
def disclosure_error_response(_exc: DisclosureError):
    return _respond(
        {"error": 500, "message": "the data failed a confidentiality check and was withheld"}, None, 500
    )
