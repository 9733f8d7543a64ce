"""Provider KPI extracts (spec/04): columns, file names, scope, filters and the three formats."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
import zipfile

import pyarrow.parquet as pq
import pytest
from fixture_warehouse import BUILD_ID, PROVIDER_PCNS

# spec/04 `indicator_values` columns, then the two the extract adds (typed from the spec, not imported).
SPEC_COLUMNS = [
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
    "indicator_title",
    "unit",
]
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _csv(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def _geos(rows) -> set[tuple[str, str]]:
    return {(r["geography_level"], r["geography_code"]) for r in rows}


def test_provider_default_extract_is_own_provider_and_served_pcns(as_user):
    response = as_user("prov-rwe").get("/extracts/kpi.csv")
    disposition = response.headers["Content-Disposition"]
    assert "RWE" in disposition and BUILD_ID in disposition and disposition.endswith('.csv"')
    assert response.headers["X-Build-Id"] == BUILD_ID
    rows = _csv(response)
    assert list(rows[0]) == SPEC_COLUMNS
    assert _geos(rows) == {("provider", "RWE")} | {("pcn", p) for p in PROVIDER_PCNS["RWE"]}
    assert {(r["indicator_id"], r["indicator_title"], r["unit"]) for r in rows} >= {
        ("referrals_received", "Referrals received", "count")
    }


@pytest.mark.parametrize(
    "query",
    ["provider=NWV01", "provider=RXX", "geography_code=NWV01", "geography_level=icb", "geography_code=QWEA"],
)
def test_provider_cannot_reach_another_providers_extract(app, as_user, query):
    response = as_user("prov-rwe").get(f"/extracts/kpi.xlsx?{query}")
    assert response.status_code == 403
    row = app.extensions["cmh_auth"].audit.rows(event="denied")[0]
    assert row["username"] == "prov-rwe" and row["status"] == 403 and query in row["path"]


def test_icb_users_may_download_any_geography_of_their_icb(as_user):
    client = as_user("board")
    assert _geos(_csv(client.get("/extracts/kpi.csv?provider=NWV01"))) == {("provider", "NWV01")} | {
        ("pcn", p) for p in PROVIDER_PCNS["NWV01"]
    }
    rows = _csv(client.get("/extracts/kpi.csv?geography_level=place"))
    assert _geos(rows) == {("place", "QWEA"), ("place", "QWEB")}
    assert as_user("board-qxx").get("/extracts/kpi.csv?provider=RWE").status_code == 403


def test_filters_period_range_indicators_and_breakdowns(as_user):
    client = as_user("prov-nwv")
    rows = _csv(
        client.get(
            "/extracts/kpi.csv?period_from=2025-02&period_to=2025-02-28"
            "&indicator_id=dna_rate_pct&indicator_id=referrals_received&breakdown=all"
        )
    )
    assert {r["period_end"] for r in rows} == {"2025-02-28"}
    assert {r["indicator_id"] for r in rows} == {"dna_rate_pct", "referrals_received"}
    assert {r["breakdown"] for r in rows} == {"all"}
    assert len(rows) == 2 * 3  # two indicators x (NWV01 + its two PCNs), one month, breakdown all
    comma = _csv(client.get("/extracts/kpi.csv?indicator_id=dna_rate_pct,referrals_received&breakdown=all"))
    assert {r["indicator_id"] for r in comma} == {"dna_rate_pct", "referrals_received"}


@pytest.mark.parametrize(
    ("query", "status"),
    [("indicator_id=nope", 400), ("shape=wide", 400), ("provider=RWE&geography_level=pcn", 400)],
)
def test_bad_extract_requests(as_user, query, status):
    response = as_user("board").get(f"/extracts/kpi.csv?{query}")
    assert response.status_code == status and response.json["parameter"] in query


def test_unknown_format_is_404(as_user):
    assert as_user("board").get("/extracts/kpi.pdf").status_code == 404


def _sheet_rows(zf: zipfile.ZipFile, index: int) -> list[list[str]]:
    root = ET.fromstring(zf.read(f"xl/worksheets/sheet{index}.xml"))
    out = []
    for row in root.iterfind(".//m:sheetData/m:row", NS):
        out.append(["".join(c.itertext()) for c in row.iterfind("m:c", NS)])
    return out


def test_excel_has_data_definitions_and_about_sheets(as_user):
    client = as_user("prov-rwe")
    csv_rows = _csv(client.get("/extracts/kpi.csv?indicator_id=four_week_wait_pct"))
    response = client.get("/extracts/kpi.xlsx?indicator_id=four_week_wait_pct")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert (
        "RWE" in response.headers["Content-Disposition"]
        and BUILD_ID in response.headers["Content-Disposition"]
    )
    zf = zipfile.ZipFile(io.BytesIO(response.data))
    assert zf.testzip() is None
    for name in zf.namelist():
        ET.fromstring(zf.read(name))  # every part is well-formed XML
    workbook = ET.fromstring(zf.read("xl/workbook.xml"))
    assert [s.get("name") for s in workbook.iterfind(".//m:sheet", NS)] == ["Data", "Definitions", "About"]
    data = _sheet_rows(zf, 1)
    assert data[0] == SPEC_COLUMNS and len(data) == len(csv_rows) + 1
    # Dates are real Excel dates (serial 45688 = 2025-01-31, counting from 1899-12-30).
    assert {row[1] for row in data[1:]} == {"45688", "45716", "45747"}
    definitions = _sheet_rows(zf, 2)
    assert definitions[0][:2] == ["indicator_id", "title"] and len(definitions) == 2
    about = {row[0]: row[1] for row in _sheet_rows(zf, 3)[1:]}
    assert about["build_id"] == BUILD_ID and about["provider"] == "RWE"
    assert (about["period_from"], about["period_to"]) == ("2025-01-31", "2025-03-31")
    assert "rounded to the nearest 5" in about["suppression_rules"]


def test_parquet_matches_csv_and_carries_the_about_metadata(as_user):
    client = as_user("equality")
    csv_rows = _csv(client.get("/extracts/kpi.csv?provider=NEV02"))
    response = client.get("/extracts/kpi.parquet?provider=NEV02")
    assert "NEV02" in response.headers["Content-Disposition"]
    table = pq.read_table(io.BytesIO(response.data))
    assert table.column_names == SPEC_COLUMNS and table.num_rows == len(csv_rows)
    about = json.loads(table.schema.metadata[b"cmh.about"])
    assert about["build_id"] == BUILD_ID
    parquet_nums = sorted(v for v in table["numerator"].to_pylist() if v is not None)
    csv_nums = sorted(float(r["numerator"]) for r in csv_rows if r["numerator"])
    assert parquet_nums == csv_nums


def test_downloads_are_audited_with_filters_and_build(app, as_user):
    as_user("prov-rwe").get("/extracts/kpi.parquet?period_from=2025-02&breakdown=ethnicity")
    row = app.extensions["cmh_auth"].audit.rows(event="download")[0]
    detail = json.loads(row["detail"])
    assert row["username"] == "prov-rwe" and row["build_id"] == BUILD_ID
    assert detail["format"] == "parquet" and detail["provider"] == "RWE"
    assert detail["breakdowns"] == ["ethnicity"] and detail["period_from"].startswith("2025-02-01")
