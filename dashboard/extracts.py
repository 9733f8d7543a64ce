"""Provider KPI extracts (spec/04): the published figures as CSV, Excel or Parquet.

    GET /extracts/kpi.<csv|xlsx|parquet>?provider=CODE | geography_level=&geography_code=
        &period_from=YYYY-MM[-DD]&period_to=&indicator_id=a,b&breakdown=all,ethnicity

`provider=CODE` means that provider's rows plus the PCNs it serves (see dashboard/published.py for the
definition); a provider user gets their own provider by default and a 403 (audited) for any
other. ICB-wide users may ask for any provider or geography of their ICB. Columns are the
`indicator_values` columns plus `indicator_title` and `unit`; the file name carries the provider
(or geography) code and the build id. The rows come from the same query, scope rules and
disclosure check as the API, so a download can never show more than the API would.

Excel files are written here with `zipfile` and minimal SpreadsheetML (no xlsx library is a
dependency): sheets Data, Definitions (from `indicators`) and About (build, period range,
filters and the suppression rules).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from xml.sax.saxutils import escape

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from flask import Blueprint, Response, request

from dashboard.api import api_error_response, disclosure_error_response
from dashboard.auth import audit_event
from dashboard.published import (
    ApiError,
    DisclosureError,
    Scope,
    authorise,
    check_params,
    deny,
    disclosure_settings,
    parse_filters,
    provider_pcns,
    published,
    refuse_breach,
    require_user,
    user_scope,
    values_sql,
    vocabulary,
)

bp = Blueprint("cmh_extracts", __name__, url_prefix="/extracts")
bp.register_error_handler(ApiError, api_error_response)
bp.register_error_handler(DisclosureError, disclosure_error_response)

PARAMS = (
    "provider",
    "geography_level",
    "geography_code",
    "indicator_id",
    "breakdown",
    "period_from",
    "period_to",
)
MULTI = ("geography_code", "indicator_id", "breakdown")
EXCEL_MAX_ROWS = 1_048_575
MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


def suppression_rules(threshold: int, rounding: int) -> list[str]:
    return [
        f"Counts below {threshold} are suppressed (shown empty, with suppressed = primary) to protect "
        "confidentiality.",
        f"Other counts (numerators, denominators and count indicators) are rounded to the nearest {rounding}.",
        "Percentages, rates, means and medians are computed from unrounded counts and suppressed when their "
        f"numerator or denominator is below {threshold}; their confidence limits are suppressed with them.",
        "Where one figure in a set that adds up to a shown total is suppressed, the next-smallest is "
        "suppressed too (suppressed = secondary), so it cannot be worked out by subtraction.",
    ]


@bp.get("/kpi.<fmt>")
def kpi(fmt: str):
    if fmt not in MIMETYPES:
        raise ApiError(404, f"unknown format {fmt!r}; use csv, xlsx or parquet")
    user = require_user()
    args = request.args
    check_params(args, PARAMS, MULTI)
    provider = args.get("provider", "").strip() or None
    if provider and (args.get("geography_level") or args.get("geography_code")):
        raise ApiError(400, "provider: give either provider or geography_level/geography_code", "provider")
    if user.role == "provider" and provider is None and not args.get("geography_code"):
        provider = user.provider_code
    with published() as pub:
        vocab = vocabulary(pub)
        f = parse_filters(args, vocab)
        scope = user_scope(pub, user)
        if provider is not None:
            if ("provider", provider) not in vocab.geographies:
                raise ApiError(400, f"provider: no published provider {provider!r}", "provider")
            if not scope.allows("provider", provider):
                raise deny(f"provider {provider!r} is outside what this account may read")
            scope = Scope(provider, provider_pcns(pub, provider), None)
        authorise(f, scope)
        sql, params = values_sql(f, scope)
        table = pub.con.sql(sql, params=params).to_arrow_table()
        refuse_breach(pub, int(pc.sum(pc.cast(table["_disclosure_breach"], pa.int64())).as_py() or 0))
        table = table.drop_columns(["_disclosure_breach"])
        if fmt == "xlsx" and table.num_rows > EXCEL_MAX_ROWS:
            raise ApiError(
                400, "too many rows for Excel: narrow the filters or choose CSV or Parquet", "period_from"
            )
        about = _about(pub, table, f, provider, user)
        definitions = _definitions(pub, f.indicator_ids)
        code = provider or "-".join(f.geography_codes[:3]) or f.geography_level or user.icb_code
        name = re.sub(r"[^A-Za-z0-9_.-]", "", f"cmh_kpi_{code}_{pub.build_id}.{fmt}")
        body = {"csv": _csv, "xlsx": _xlsx, "parquet": _parquet}[fmt](table, definitions, about)
        audit_event(
            "download",
            status=200,
            build_id=pub.build_id,
            detail={"format": fmt, "file": name, "rows": table.num_rows, "provider": provider, **f.as_dict()},
        )
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Build-Id": about["build_id"]}
    return Response(body, mimetype=MIMETYPES[fmt], headers=headers)


def _about(pub, table: pa.Table, f, provider: str | None, user) -> dict:
    built_at = pub.rows("select built_at from build_info limit 1")[0][0]
    periods = table["period_end"]
    first = pc.min(periods).as_py() if table.num_rows else None
    last = pc.max(periods).as_py() if table.num_rows else None
    threshold, rounding = disclosure_settings()
    return {
        "build_id": pub.build_id,
        "built_at": built_at.isoformat() if hasattr(built_at, "isoformat") else str(built_at),
        "provider": provider or "",
        "period_from": first.isoformat() if first else "",
        "period_to": last.isoformat() if last else "",
        "filters": json.dumps(f.as_dict(), default=str),
        "rows": table.num_rows,
        "downloaded_by": user.username,
        "downloaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "suppression_rules": suppression_rules(threshold, rounding),
        "data": "Synthetic data only.",
    }


def _definitions(pub, indicator_ids: tuple[str, ...]) -> tuple[list[str], list[tuple]]:
    cur = pub.con.execute(
        "select * from indicators where len($ids::varchar[]) = 0 or list_contains($ids::varchar[], indicator_id)"
        " order by indicator_id",
        {"ids": list(indicator_ids)},
    )
    return [d[0] for d in cur.description], cur.fetchall()


def _cell_text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _csv(table: pa.Table, _definitions, _about) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(table.column_names)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for row in zip(*columns, strict=True):
        writer.writerow([_cell_text(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM so Excel reads UTF-8 names correctly


def _parquet(table: pa.Table, _definitions, about: dict) -> bytes:
    meta = dict(table.schema.metadata or {})
    meta[b"cmh.about"] = json.dumps(about).encode()
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buf)
    return buf.getvalue()


# -- a minimal xlsx writer ------------------------------------------------------------------

_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_STYLES = (
    f'<styleSheet xmlns="{_NS}"><fonts count="2"><font><sz val="11"/><name val="Arial"/></font>'
    '<font><b/><sz val="11"/><name val="Arial"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
    '</fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    "</styleSheet>"
)


def _xcell(v, bold: bool = False) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "<c/>"
    if isinstance(v, bool):
        return f'<c t="b"><v>{int(v)}</v></c>'
    if isinstance(v, dt.datetime):
        v = v.isoformat(sep=" ")
    elif isinstance(v, dt.date):
        return f'<c s="2"><v>{(v - _EXCEL_EPOCH).days}</v></c>'
    if isinstance(v, int | float):
        return f"<c><v>{v!r}</v></c>"
    text = escape(_ILLEGAL_XML.sub("", str(v)))
    style = ' s="1"' if bold else ""
    return f'<c t="inlineStr"{style}><is><t xml:space="preserve">{text}</t></is></c>'


def _sheet(header: list[str], rows) -> str:
    out = [
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_NS}">'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft"'
        ' state="frozen"/></sheetView></sheetViews><sheetData>',
        '<row r="1">' + "".join(_xcell(h, bold=True) for h in header) + "</row>",
    ]
    out.extend(f'<row r="{i}">' + "".join(map(_xcell, row)) + "</row>" for i, row in enumerate(rows, start=2))
    out.append("</sheetData></worksheet>")
    return "".join(out)


def _xlsx(table: pa.Table, definitions: tuple[list[str], list[tuple]], about: dict) -> bytes:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    about_rows = [(k, "\n".join(v) if isinstance(v, list) else v) for k, v in about.items()]
    sheets = [
        ("Data", _sheet(table.column_names, zip(*columns, strict=True))),
        ("Definitions", _sheet(definitions[0], definitions[1])),
        ("About", _sheet(["item", "value"], about_rows)),
    ]
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{ct}.worksheet+xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    files = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{ct}.styles+xml"/>{overrides}</Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" Type="{_REL_NS}/officeDocument"'
            ' Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{_NS}" xmlns:r="{_REL_NS}"><sheets>'
            + "".join(
                f'<sheet name="{n}" sheetId="{i}" r:id="rId{i}"/>' for i, (n, _) in enumerate(sheets, 1)
            )
            + "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{_PKG_REL}">'
            + "".join(
                f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                for i in range(1, len(sheets) + 1)
            )
            + f'<Relationship Id="rId{len(sheets) + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
            "</Relationships>"
        ),
        "xl/styles.xml": _STYLES,
    }
    files.update({f"xl/worksheets/sheet{i}.xml": xml for i, (_, xml) in enumerate(sheets, 1)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, xml in files.items():
            zf.writestr(name, xml)
    return buf.getvalue()
