"""`/download/<kind>.csv`: the data twin of every chart (CONVENTIONS C12).

The route parses the same query string as the page, resolves the same Context and calls the same
`charts.data()` as the card, so the file holds exactly the figures the chart plotted. Unknown chart
kinds or indicator ids get HTTP 400 naming the bad parameter; the file name carries the chart, the
indicators and the build id, and the build id is also sent as `X-Build-Id` (as the API does).
"""

from __future__ import annotations

import re

from flask import Flask, Response, abort, request

from dashboard import charts, context, db
from dashboard.state import ViewState

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def csv_for(kind: str, args: dict) -> tuple[str, str]:
    """(csv text, file name) of chart `kind` for a query string's arguments; ValueError when invalid."""
    if kind not in charts.KINDS:
        raise ValueError(f"unknown chart {kind!r}")
    ctx = context.build(ViewState.from_query(args))
    chart_ids = tuple(i for i in str(args.get("ids", "")).split(",") if i)
    unknown = [i for i in chart_ids if i not in ctx.metas]
    if not chart_ids or unknown:
        raise ValueError(f"ids: unknown or missing indicator id(s) {unknown or ''}".strip())
    df = charts.table_frame(charts.data(kind, ctx, chart_ids))
    name = _SAFE.sub("_", f"{kind}_{'-'.join(chart_ids)}_{ctx.level}-{ctx.code}_{db.build_id()}")[:180]
    return df.to_csv(index=False), f"{name}.csv"


def register(server: Flask) -> None:
    @server.get("/download/<kind>.csv")
    def download_csv(kind: str):
        try:
            text, filename = csv_for(kind, request.args.to_dict())
        except db.NoWarehouse:
            abort(503, "no published build")
        except ValueError as exc:
            return Response(str(exc), status=400, mimetype="text/plain")
        return Response(
            text,
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Build-Id": db.build_id(),
            },
        )
