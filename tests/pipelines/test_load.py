"""Tests for pipelines/load.py: every bad-input case of spec 07 against real files and a real DuckDB.

Each test writes a tiny extract drop into tmp_path (a valid base month plus one defect), loads it,
and checks what a user relies on: the named fatal error, the quarantined rows and reasons, the
load_report entry, and that rows read = loaded + rejected + superseded for every file. Expected
counts come from the rows the test itself wrote, never from the loader's output.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from pipelines import load
from pipelines.contract import TABLES, uniq_month_id
from pipelines.load import FatalLoadError, landed_queries, load_inbox
from pipelines.load_report import LoadAccountingError, check_accounting

APR = uniq_month_id(2025, 4)  # 1501 per the spec's own example
MAY = uniq_month_id(2025, 5)
assert APR == 1501


# --------------------------------------------------------------------------------------------
# Tiny extract writer


def base_month(ym: str, org: str = "RXX", sub: int = 1, persons=("P1", "P2", "P3")) -> dict[str, list[dict]]:
    """A valid month: header, MPI, referrals, GP, contacts and PROMs for a few people."""
    year, month = map(int, ym.split("-"))
    umid = uniq_month_id(year, month)
    last = {4: 30, 5: 31, 6: 30}[month]
    s = {"OrgIDProv": org, "UniqMonthID": umid, "UniqSubmissionID": sub}
    t: dict[str, list[dict]] = {
        "MHS000Header": [
            {
                "UniqSubmissionID": sub,
                "OrgIDProv": org,
                "UniqMonthID": umid,
                "ReportingPeriodStartDate": f"{ym}-01",
                "ReportingPeriodEndDate": f"{ym}-{last}",
            }
        ]
    }
    t["MHS001MPI"] = [
        {"Person_ID": p, **s, "RecordNumber": 100 + i, "EthnicCategory": "A", "Gender": "1",
         "GenderIDCode": "1", "AgeRepPeriodEnd": 30 + i, "LSOA2011": "E01000001", "LADistrictAuth": "E06000001"}
        for i, p in enumerate(persons)
    ]  # fmt: skip
    t["MHS002GP"] = [
        {"Person_ID": p, **s, "RecordNumber": 100 + i, "GMPReg": "A81001"} for i, p in enumerate(persons)
    ]
    t["MHS101Referral"] = [
        {"UniqServReqID": f"R{p}", "Person_ID": p, **s, "RecordNumber": 100 + i,
         "ReferralRequestReceivedDate": "2025-01-15", "ServTeamTypeRefToMH": "A05", "AgeServReferRecDate": 30}
        for i, p in enumerate(persons)
    ]  # fmt: skip
    t["MHS201CareContact"] = [
        {"UniqCareContID": f"C{p}{k}", "UniqServReqID": f"R{p}", "Person_ID": p, **s,
         "CareContDate": f"{ym}-{10 + k}", "AttendStatus": "5", "ConsMechanismMH": "01", "ClinContDurOfCareCont": 30}
        for p in persons for k in range(2)
    ]  # fmt: skip
    t["MHS606CodedScoreAssessmentRefer"] = [
        {"UniqServReqID": f"R{p}", "Person_ID": p, **s, "CodedAssToolType": "1091071000000100",
         "PersScore": "20", "AssToolCompTimestamp": f"{ym}-12T10:00:00"}
        for p in persons
    ]  # fmt: skip
    return t


def write_csv(path: Path, rows: list[dict], columns=None, *, encoding="utf-8", delimiter=",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return path


REFERENCE = {
    "gp_practice_pcn.csv": [
        {"practice_code": "A81001", "practice_name": "One", "pcn_code": "U12345", "pcn_name": "PCN One",
         "place_code": "WEA", "place_name": "Westside", "icb_code": "QWE", "icb_name": "ICB",
         "rel_start_date": "2020-04-01", "rel_end_date": ""},
        {"practice_code": "A81002", "practice_name": "Two", "pcn_code": "", "pcn_name": "",
         "place_code": "WEA", "place_name": "Westside", "icb_code": "QWE", "icb_name": "ICB",
         "rel_start_date": "2020-04-01", "rel_end_date": ""},
    ],
    "lsoa_imd.csv": [{"lsoa_code": "E01000001", "imd_decile": 3}, {"lsoa_code": "E01000002", "imd_decile": 10}],
    "population.csv": [
        {"pcn_code": "U12345", "age_band": "18-25", "gender": "male", "ethnicity_group": "White",
         "imd_quintile": 2, "population": 120},
        {"pcn_code": "U12345", "age_band": "26-64", "gender": "female", "ethnicity_group": "Asian",
         "imd_quintile": 2, "population": 80},
    ],
    "providers.csv": [{"provider_code": "RXX", "provider_name": "Trust", "provider_type": "NHS trust",
                       "icb_code": "QWE"}],
}  # fmt: skip


def make_inbox(root: Path, months: dict[str, dict[str, list[dict]]], reference=None) -> Path:
    for ym, tables in months.items():
        for name, rows in tables.items():
            write_csv(root / ym / f"{name}.csv", rows)
    for name, rows in (reference or REFERENCE).items():
        write_csv(root / "reference" / name, rows)
    return root


@pytest.fixture(params=["batched", "singly"])
def con(request, monkeypatch):
    """Every test runs twice: with the small files of a table scanned together (as at demo and icb
    scale), and with each CSV file loaded on its own, several at once (as nationally: load.py's
    _SINGLE_FILE_BYTES)."""
    if request.param == "singly":
        monkeypatch.setattr(load, "_SINGLE_FILE_BYTES", 0)
    c = duckdb.connect()
    yield c
    c.close()


def report(con, file_suffix: str) -> dict:
    rows = con.execute(
        "SELECT * FROM load_report WHERE file LIKE '%' || ? ORDER BY month", [file_suffix]
    ).fetchdf()
    assert len(rows) == 1, rows
    return rows.iloc[0].to_dict()


def quarantine(con, table: str) -> list[tuple]:
    return con.execute(
        'SELECT line_number, reason, raw_record FROM quarantine WHERE "table" = ? ORDER BY line_number',
        [table],
    ).fetchall()


def assert_balanced(con) -> None:
    """rows_read = loaded + rejected + superseded for every file, and the parts really landed."""
    unbalanced = con.execute(
        "SELECT file FROM load_report WHERE rows_read <> rows_loaded + rows_rejected + rows_superseded"
    ).fetchall()
    assert unbalanced == []
    q = dict(con.execute("SELECT file, count(*) FROM quarantine GROUP BY file").fetchall())
    for file, rejected in con.execute("SELECT file, rows_rejected FROM load_report").fetchall():
        assert q.get(file, 0) == rejected, file


def load_ok(con, root: Path):
    result = load_inbox(con, root)
    assert_balanced(con)
    return result


def fatal(con, root: Path) -> FatalLoadError:
    with pytest.raises(FatalLoadError) as info:
        load_inbox(con, root)
    err = info.value
    row = con.execute("SELECT file, status, message FROM load_report WHERE status = 'fatal'").fetchall()
    assert row == [(err.file, "fatal", err.problem)]
    return err


# --------------------------------------------------------------------------------------------
# A clean drop


def test_clean_inbox_loads_every_row_with_types_and_provenance(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04"), "2025-05": base_month("2025-05")})
    steps = []
    result = load_inbox(con, root, progress=lambda what, done, total: steps.append((done, total)))
    assert_balanced(con)
    assert steps[-1][0] == steps[-1][1] and len(steps) > 2

    assert result.months == [APR, MAY]
    assert result.rows_rejected == result.rows_superseded == 0
    assert result.loaded_by_table["MHS201CareContact"] == 12  # 3 people x 2 contacts x 2 months
    assert result.loaded_by_table["MHS101Referral"] == 6
    types = dict(
        con.execute("SELECT column_name, column_type FROM (DESCRIBE stg_MHS201CareContact)").fetchall()
    )
    assert types["CareContDate"] == "DATE"
    assert types["ClinContDurOfCareCont"] == "INTEGER"
    assert types["AttendStatus"] == "VARCHAR"
    assert types["src_line"] == "BIGINT"
    ts = con.execute("SELECT column_type FROM (DESCRIBE stg_MHS606CodedScoreAssessmentRefer) "
                     "WHERE column_name = 'AssToolCompTimestamp'").fetchone()  # fmt: skip
    assert ts == ("TIMESTAMP",)
    # provenance: CSV line 2 is the first data row
    prov = con.execute(
        "SELECT src_month, src_file, src_line FROM stg_MHS101Referral WHERE \"UniqServReqID\" = 'RP1' ORDER BY 1"
    ).fetchall()
    assert prov == [(APR, "2025-04/MHS101Referral.csv", 2), (MAY, "2025-05/MHS101Referral.csv", 2)]
    # absent optional tables get an 'absent' row; present files are 'ok'
    assert report(con, "2025-04/MHS004EmpStatus")["status"] == "absent"
    assert report(con, "2025-04/MHS201CareContact.csv")["status"] == "ok"
    assert report(con, "reference/lsoa_imd.csv")["rows_loaded"] == 2
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    # the reference lookups are typed too
    assert con.execute("SELECT imd_decile FROM ref_lsoa_imd WHERE lsoa_code = 'E01000002'").fetchone() == (
        10,
    )
    assert con.execute(
        "SELECT pcn_code FROM ref_gp_practice_pcn WHERE practice_code = 'A81002'"
    ).fetchone() == (None,)


def test_utf8_bom_crlf_and_quoted_fields_are_accepted(tmp_path, con):
    """April plain; May with a BOM, CRLF line ends and a quoted comma: read together in one scan."""
    may = base_month("2025-05")
    may["MHS101Referral"][0]["ReferClosReason"] = 'moved away, "abroad"'
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04"), "2025-05": may})
    for name in ("MHS001MPI", "MHS101Referral"):
        path = root / "2025-05" / f"{name}.csv"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    load_ok(con, root)
    assert con.execute("SELECT count(*) FROM stg_MHS001MPI WHERE src_month = ?", [MAY]).fetchone() == (3,)
    got = con.execute(
        "SELECT ReferClosReason, src_line FROM stg_MHS101Referral WHERE src_month = ? AND UniqServReqID = 'RP1'",
        [MAY],
    ).fetchone()
    assert got == ('moved away, "abroad"', 2)


def test_loading_twice_gives_identical_tables(tmp_path, con):
    month = base_month("2025-04")
    month["MHS201CareContact"][2]["CareContDate"] = "2025-06-01"
    root = make_inbox(tmp_path, {"2025-04": month, "2025-05": base_month("2025-05")})
    other = duckdb.connect()
    load_ok(con, root)
    load_ok(other, root)
    for sql in (
        "SELECT * FROM load_report ORDER BY file",
        "SELECT * FROM quarantine ORDER BY file, line_number",
        "SELECT * FROM stg_MHS201CareContact ORDER BY src_file, src_line",
        "SELECT * FROM stg_MHS001MPI_latest ORDER BY Person_ID, OrgIDProv",
    ):
        assert con.execute(sql).fetchall() == other.execute(sql).fetchall()


def test_header_with_the_wrong_reporting_period_is_rejected(tmp_path, con):
    month = base_month("2025-04")
    month["MHS000Header"][0]["ReportingPeriodEndDate"] = "2025-04-29"
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))
    q = quarantine(con, "MHS000Header")
    assert [r[:2] for r in q] == [(2, "ReportingPeriodEndDate 2025-04-29 is not 2025-04-30 (folder 2025-04)")]
    assert report(con, "MHS101Referral.csv")["rows_loaded"] == 3  # the submission itself still counts


# --------------------------------------------------------------------------------------------
# Fatal problems: named error, 'fatal' load_report row


def test_missing_required_file_is_fatal(tmp_path, con):
    month = base_month("2025-04")
    del month["MHS001MPI"]
    err = fatal(con, make_inbox(tmp_path, {"2025-04": month}))
    assert err.file == "2025-04/MHS001MPI.csv"
    assert "required file missing" in err.problem


def test_missing_reference_file_is_fatal(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    (root / "reference" / "population.csv").unlink()
    err = fatal(con, root)
    assert err.file == "reference/population.csv"


def test_header_lacking_a_required_column_names_it(tmp_path, con):
    month = base_month("2025-04")
    for r in month["MHS201CareContact"]:
        del r["AttendStatus"]
    err = fatal(con, make_inbox(tmp_path, {"2025-04": month}))
    assert err.file == "2025-04/MHS201CareContact.csv"
    assert err.problem == "header lacks required column(s): AttendStatus"


def test_missing_header_row_is_named(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    path = root / "2025-04" / "MHS101Referral.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    err = fatal(con, root)
    assert err.problem.startswith("no header row")


def test_wrong_delimiter_is_named(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    write_csv(root / "2025-04" / "MHS001MPI.csv", base_month("2025-04")["MHS001MPI"], delimiter=";")
    err = fatal(con, root)
    assert err.file == "2025-04/MHS001MPI.csv"
    assert err.problem.startswith("wrong delimiter: the header is separated by semicolon")


def test_non_utf8_file_is_fatal(tmp_path, con):
    month = base_month("2025-04")
    month["MHS101Referral"][2]["ReferClosReason"] = "déménagé"
    root = make_inbox(tmp_path, {"2025-04": month})
    write_csv(root / "2025-04" / "MHS101Referral.csv", month["MHS101Referral"], encoding="latin-1")
    err = fatal(con, root)
    assert err.file == "2025-04/MHS101Referral.csv"
    assert "not UTF-8" in err.problem


def test_a_bad_file_among_the_months_of_a_batch_is_named(tmp_path, con):
    """Months of one table are read in one scan; the error must still name the right file."""
    root = make_inbox(tmp_path, {m: base_month(m) for m in ("2025-04", "2025-05", "2025-06")})
    path = root / "2025-05" / "MHS201CareContact.csv"
    path.write_bytes(path.read_bytes().replace(b"RXX", b"R\xe9X"))
    err = fatal(con, root)
    assert (err.file, "not UTF-8" in err.problem) == ("2025-05/MHS201CareContact.csv", True)


def test_truncated_file_is_fatal(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    path = root / "2025-04" / "MHS201CareContact.csv"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 25])  # cut inside the last record
    err = fatal(con, root)
    assert err.file == "2025-04/MHS201CareContact.csv"
    assert err.problem.startswith("malformed or truncated CSV at line 7")


def test_a_fatal_file_after_tables_already_written_leaves_nothing_loaded(tmp_path, con):
    """The loader commits each batch of files as it goes (so a national load does not keep them all
    in spill); a fatal error in a later table must still leave nothing loaded and no quarantine."""
    month = base_month("2025-04")
    month["MHS101Referral"][0]["UniqServReqID"] = ""  # a quarantined row, written before the fatal file
    root = make_inbox(tmp_path, {"2025-04": month})
    path = root / "2025-04" / "MHS201CareContact.csv"  # read after the header, people and referrals
    path.write_bytes(path.read_bytes()[:-25])
    fatal(con, root)
    for table in ("stg_MHS000Header", "stg_MHS001MPI", "stg_MHS101Referral", "quarantine"):
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,), table
    assert con.execute("SELECT count(*) FROM load_report").fetchone() == (1,)  # the fatal row alone
    assert con.execute("SELECT count(*) FROM work.load_MHS101Referral").fetchone() == (0,)
    work = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'work'").fetchall()
    assert {t for (t,) in work} == {f"load_{name}" for name in TABLES}  # no working table left behind


def test_unterminated_quote_is_fatal(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    path = root / "2025-04" / "MHS002GP.csv"
    path.write_text(path.read_text() + 'P9,RXX,1501,1,9,"A81')
    assert "unterminated quote" in fatal(con, root).problem


def test_every_row_in_the_wrong_month_is_fatal(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    write_csv(root / "2025-04" / "MHS201CareContact.csv", base_month("2025-05")["MHS201CareContact"])
    err = fatal(con, root)
    assert err.file == "2025-04/MHS201CareContact.csv"
    assert f"UniqMonthID {MAY} (not {APR}) in every row" in err.problem


@pytest.mark.parametrize("content", [b"", b"header-only"])
def test_empty_required_file_is_fatal(tmp_path, con, content):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    path = root / "2025-04" / "MHS101Referral.csv"
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0] if content else b"")
    err = fatal(con, root)
    assert err.file == "2025-04/MHS101Referral.csv"
    assert "empty" in err.problem or "no data rows" in err.problem


def test_parquet_with_wrong_schema_is_fatal(tmp_path, con):
    month = base_month("2025-04")
    del month["MHS201CareContact"]
    root = make_inbox(tmp_path, {"2025-04": month})
    pq.write_table(pa.table({"UniqCareContID": ["C1"], "CareContDate": ["2025-04-02"]}),
                   root / "2025-04" / "MHS201CareContact.parquet")  # fmt: skip
    err = fatal(con, root)
    assert err.file == "2025-04/MHS201CareContact.parquet"
    assert err.problem.startswith("Parquet schema lacks required column(s): UniqServReqID, Person_ID")


def test_file_that_is_not_parquet_is_fatal(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    (root / "2025-04" / "MHS002GP.csv").rename(root / "2025-04" / "MHS002GP.parquet")
    err = fatal(con, root)
    assert err.problem.startswith("not a readable Parquet file")


def test_no_month_folders_is_fatal(tmp_path, con):
    make_inbox(tmp_path, {})
    assert "no YYYY-MM month folders" in fatal(con, tmp_path).problem


def test_fatal_error_loads_nothing(tmp_path, con):
    month = base_month("2025-05")
    del month["MHS000Header"]
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04"), "2025-05": month})
    fatal(con, root)
    assert con.execute("SELECT count(*) FROM stg_MHS101Referral").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM load_report").fetchone() == (1,)


# --------------------------------------------------------------------------------------------
# Row-level problems: quarantine with a reason, load_report counts


def test_unparseable_and_impossible_values(tmp_path, con):
    month = base_month("2025-04")
    mpi = month["MHS001MPI"]
    mpi[0]["RecordNumber"] = "abc"  # required int, not a number -> rejected
    mpi[1]["RecordNumber"] = "5.5"  # required int, not whole -> rejected
    mpi[2]["AgeRepPeriodEnd"] = "250"  # optional, impossible -> kept, NULL, warned
    ref = month["MHS101Referral"]
    ref[1]["ReferralRequestReceivedDate"] = "2025-02-30"  # impossible date -> rejected
    ref[2]["Person_ID"] = ""  # required missing -> rejected
    ref[0]["ServDischDate"] = "not a date"  # optional -> NULL, warned
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))

    q = quarantine(con, "MHS001MPI")
    assert [(line, reason) for line, reason, _ in q] == [
        (2, 'RecordNumber invalid integer: "abc"'),
        (3, 'RecordNumber invalid integer: "5.5"'),
    ]
    assert json.loads(q[0][2])["Person_ID"] == "P1"  # the raw record, under the file's column names
    assert json.loads(q[0][2])["RecordNumber"] == "abc"
    r = report(con, "2025-04/MHS001MPI.csv")
    assert (r["rows_read"], r["rows_loaded"], r["rows_rejected"], r["status"]) == (3, 1, 2, "warning")
    assert "1 invalid AgeRepPeriodEnd value(s) loaded as NULL" in r["message"]
    assert con.execute("SELECT AgeRepPeriodEnd FROM stg_MHS001MPI").fetchall() == [(None,)]

    q = quarantine(con, "MHS101Referral")
    assert [(line, reason) for line, reason, _ in q] == [
        (3, 'ReferralRequestReceivedDate invalid date: "2025-02-30"'),
        (4, "missing required Person_ID"),
    ]
    assert con.execute("SELECT ServDischDate FROM stg_MHS101Referral").fetchall() == [(None,)]
    assert "1 invalid ServDischDate value(s) loaded as NULL" in report(con, "MHS101Referral.csv")["message"]


def test_event_dates_outside_the_reporting_month_are_rejected(tmp_path, con):
    month = base_month("2025-04")
    month["MHS201CareContact"][1]["CareContDate"] = "2025-03-31"
    month["MHS201CareContact"][4]["CareContDate"] = "2025-05-01"
    month["MHS606CodedScoreAssessmentRefer"][0]["AssToolCompTimestamp"] = "2025-05-01T00:00:00"
    month["MHS606CodedScoreAssessmentRefer"][1]["AssToolCompTimestamp"] = (
        "2025-04-30T23:59:59"  # last second: fine
    )
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))
    q = quarantine(con, "MHS201CareContact")
    assert [(line, reason) for line, reason, _ in q] == [
        (3, "CareContDate 2025-03-31 outside reporting month 2025-04"),
        (6, "CareContDate 2025-05-01 outside reporting month 2025-04"),
    ]
    q = quarantine(con, "MHS606CodedScoreAssessmentRefer")
    assert [(line, reason) for line, reason, _ in q] == [
        (2, "AssToolCompTimestamp 2025-05-01 00:00:00 outside reporting month 2025-04")
    ]
    assert report(con, "MHS201CareContact.csv")["rows_loaded"] == 4


def test_duplicate_keys_keep_the_first_line(tmp_path, con):
    month = base_month("2025-04")
    contacts = month["MHS201CareContact"]
    contacts.append({**contacts[0], "AttendStatus": "3"})  # line 8 repeats line 2's UniqCareContID
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))
    q = quarantine(con, "MHS201CareContact")
    assert [(line, reason) for line, reason, _ in q] == [
        (8, "duplicate key (UniqCareContID) of line 2 in the same submission")
    ]
    assert json.loads(q[0][2])["AttendStatus"] == "3"
    kept = con.execute(
        "SELECT AttendStatus, src_line FROM stg_MHS201CareContact WHERE UniqCareContID = 'CP10'"
    )
    assert kept.fetchall() == [("5", 2)]
    r = report(con, "MHS201CareContact.csv")
    assert (r["rows_read"], r["rows_loaded"], r["rows_rejected"]) == (7, 6, 1)


def test_some_rows_with_another_months_uniqmonthid_are_rejected(tmp_path, con):
    month = base_month("2025-04")
    month["MHS101Referral"][1]["UniqMonthID"] = MAY
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))
    q = quarantine(con, "MHS101Referral")
    assert [(line, reason) for line, reason, _ in q] == [
        (3, f"UniqMonthID {MAY} does not match folder 2025-04 ({APR})")
    ]


def test_empty_optional_files(tmp_path, con):
    root = make_inbox(tmp_path, {"2025-04": base_month("2025-04")})
    gp = root / "2025-04" / "MHS002GP.csv"
    gp.write_bytes(gp.read_bytes().splitlines(keepends=True)[0])  # header only
    (root / "2025-04" / "MHS606CodedScoreAssessmentRefer.csv").write_bytes(b"")  # zero bytes
    load_ok(con, root)
    r = report(con, "MHS002GP.csv")
    assert (r["rows_read"], r["status"]) == (0, "ok")
    assert r["message"].endswith("no data rows")
    r = report(con, "MHS606CodedScoreAssessmentRefer.csv")
    assert (r["rows_read"], r["status"]) == (0, "warning")
    assert "0 bytes" in r["message"]


def test_resubmission_supersedes_the_earlier_submission(tmp_path, con):
    first = base_month("2025-04", sub=11)
    second = base_month("2025-04", sub=12, persons=("P1", "P2"))  # the resubmission drops P3
    other = base_month("2025-04", org="RYY", sub=7, persons=("Q1",))
    month = {name: first[name] + second[name] + other[name] for name in first}
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))

    r = report(con, "2025-04/MHS101Referral.csv")
    assert (r["rows_read"], r["rows_loaded"], r["rows_superseded"], r["rows_rejected"]) == (6, 3, 3, 0)
    assert "3 row(s) of superseded submissions" in r["message"]
    subs = con.execute(
        'SELECT DISTINCT "OrgIDProv", "UniqSubmissionID" FROM stg_MHS201CareContact ORDER BY 1'
    ).fetchall()
    assert subs == [("RXX", 12), ("RYY", 7)]
    assert con.execute("SELECT count(*) FROM stg_MHS001MPI WHERE Person_ID = 'P3'").fetchone() == (0,)
    h = report(con, "2025-04/MHS000Header.csv")
    assert (h["rows_loaded"], h["rows_superseded"]) == (2, 1)


def test_rows_of_an_undeclared_submission_are_rejected(tmp_path, con):
    month = base_month("2025-04")
    month["MHS201CareContact"][0]["UniqSubmissionID"] = 99
    month["MHS201CareContact"][1]["OrgIDProv"] = "RZZ"
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))
    q = quarantine(con, "MHS201CareContact")
    assert [reason for _, reason, _ in q] == [
        "submission 99 not in MHS000Header (latest is 1)",
        "no MHS000Header row for provider RZZ in this month",
    ]


def test_v5_and_pre_v5_names_and_codes_load(tmp_path, con):
    month = base_month("2025-04")
    for r in month["MHS201CareContact"]:
        r["AttendOrDNACode"] = r.pop("AttendStatus")
        r["ConsMediumUsed"] = r.pop("ConsMechanismMH")
    c = month["MHS201CareContact"]
    c[0]["ConsMediumUsed"], c[1]["ConsMediumUsed"], c[2]["ConsMediumUsed"] = "03", "06", "02"
    for r in month["MHS002GP"]:
        r["GMPCodeReg"] = r.pop("GMPReg")
    month["MHS101Referral"][0]["ServTeamTypeRefToMH"] = "C03"
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))
    got = con.execute(
        "SELECT src_line, AttendStatus, ConsMechanismMH FROM stg_MHS201CareContact ORDER BY src_line LIMIT 3"
    ).fetchall()
    # spec 01: pre-v5 03 telemedicine = 11 video, 06 SMS = 09 text, 02 telephone unchanged
    assert got == [(2, "5", "11"), (3, "5", "09"), (4, "5", "02")]
    assert con.execute("SELECT count(GMPReg) FROM stg_MHS002GP").fetchone() == (3,)
    team = con.execute("SELECT ServTeamTypeRefToMH FROM stg_MHS101Referral WHERE UniqServReqID = 'RP1'")
    assert team.fetchone() == ("C10",)
    msg = report(con, "MHS201CareContact.csv")["message"]
    assert "AttendStatus read from older column name AttendOrDNACode" in msg


def test_snapshot_latest_keeps_the_latest_months_version(tmp_path, con):
    apr, may = base_month("2025-04"), base_month("2025-05")
    may["MHS101Referral"][0]["ServDischDate"] = "2025-05-20"  # RP1 closes in May
    may["MHS101Referral"] = may["MHS101Referral"][:2]  # RP3 not re-sent in May
    may["MHS001MPI"][0]["EthnicCategory"] = "H"
    # the same person is also seen by another provider, whose record must not replace RXX's
    other = base_month("2025-04", org="RYY", sub=5, persons=("P1",))
    other["MHS001MPI"][0]["EthnicCategory"] = "M"
    apr = {k: apr[k] + other[k] for k in apr}
    load_ok(con, make_inbox(tmp_path, {"2025-04": apr, "2025-05": may}))

    assert con.execute("SELECT count(*) FROM stg_MHS101Referral").fetchone() == (3 + 1 + 2,)  # history kept
    latest = con.execute(
        "SELECT UniqServReqID, src_month, ServDischDate FROM stg_MHS101Referral_latest ORDER BY 1"
    ).fetchall()
    assert [(k, m) for k, m, _ in latest] == [("RP1", MAY), ("RP2", MAY), ("RP3", APR)]
    assert str(latest[0][2]) == "2025-05-20"
    mpi = con.execute(
        "SELECT OrgIDProv, EthnicCategory, src_month FROM stg_MHS001MPI_latest WHERE Person_ID = 'P1' ORDER BY 1"
    ).fetchall()
    assert mpi == [("RXX", "H", MAY), ("RYY", "M", APR)]


def test_prom_scores_out_of_range_or_not_numeric_are_kept_and_flagged(tmp_path, con):
    month = base_month("2025-04", persons=("P1", "P2", "P3", "P4", "P5"))
    proms = month["MHS606CodedScoreAssessmentRefer"]
    dialog = "1037651000000100"
    proms[0].update(CodedAssToolType=dialog, PersScore="9")  # DIALOG valid 1-7
    proms[1].update(CodedAssToolType=dialog, PersScore="seven")
    proms[2].update(CodedAssToolType=dialog, PersScore="7")
    proms[3].update(PersScore="41")  # ReQoL-10 total valid 0-40
    proms[4].update(CodedAssToolType="123456", PersScore="500")  # a tool we do not use
    load_ok(con, make_inbox(tmp_path, {"2025-04": month}))
    got = con.execute(
        "SELECT PersScore, score, score_valid, invalid_reason FROM stg_MHS606CodedScoreAssessmentRefer "
        "ORDER BY src_line"
    ).fetchall()
    assert got == [
        ("9", 9.0, False, "PersScore outside the valid range 1-7 for DIALOG"),
        ("seven", None, False, "PersScore not a number"),
        ("7", 7.0, True, None),
        ("41", 41.0, False, "PersScore outside the valid range 0-40 for ReQoL-10"),
        ("500", 500.0, True, None),
    ]
    assert report(con, "MHS606CodedScoreAssessmentRefer.csv")["rows_rejected"] == 0


def test_unexpected_columns_folders_and_files_are_reported_once(tmp_path, con):
    month = base_month("2025-04")
    for r in month["MHS001MPI"]:
        r["LocalNotes"] = "x"
    root = make_inbox(tmp_path, {"2025-04": month})
    (root / "2025-04" / "README.txt").write_text("hello")
    (root / "old-stuff").mkdir()
    load_ok(con, root)
    r = report(con, "MHS001MPI.csv")
    assert r["status"] == "warning"
    assert "unexpected column(s) ignored: LocalNotes" in r["message"]
    assert report(con, "README.txt")["status"] == "warning"
    assert report(con, "old-stuff")["message"] == "not a YYYY-MM month folder; ignored"


def test_line_numbers_hold_across_the_months_of_a_batch(tmp_path, con):
    """Months of one table are scanned together: each file's line numbers must restart at 2."""
    months = {}
    for ym, n in (("2025-04", 3000), ("2025-05", 40), ("2025-06", 2500)):
        m = base_month(ym, persons=tuple(f"P{i}" for i in range(n // 2)))
        months[ym] = m
    months["2025-05"]["MHS201CareContact"][9]["AttendStatus"] = ""  # line 11
    months["2025-06"]["MHS201CareContact"][2399]["AttendStatus"] = ""  # line 2401
    con.execute("SET preserve_insertion_order = false")  # the loader needs it on, and must restore it
    load_ok(con, make_inbox(tmp_path, months))
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (False,)
    q = con.execute(
        "SELECT file, line_number, json_extract_string(raw_record, '$.UniqCareContID') FROM quarantine ORDER BY 1"
    ).fetchall()
    c05, c06 = months["2025-05"]["MHS201CareContact"][9], months["2025-06"]["MHS201CareContact"][2399]
    assert q == [
        ("2025-05/MHS201CareContact.csv", 11, c05["UniqCareContID"]),
        ("2025-06/MHS201CareContact.csv", 2401, c06["UniqCareContID"]),
    ]
    lines = con.execute(
        "SELECT src_file, min(src_line), max(src_line), count(*) FROM stg_MHS201CareContact GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert lines == [
        ("2025-04/MHS201CareContact.csv", 2, 3001, 3000),
        ("2025-05/MHS201CareContact.csv", 2, 41, 39),
        ("2025-06/MHS201CareContact.csv", 2, 2501, 2499),
    ]


def test_parquet_extract_loads_like_csv(tmp_path, con):
    month = base_month("2025-04")
    month["MHS201CareContact"][3]["ClinContDurOfCareCont"] = "-5"  # impossible: NULL with a warning
    root = make_inbox(tmp_path / "csv", {"2025-04": month})
    proot = make_inbox(tmp_path / "pq", {"2025-04": month})
    for name in ("MHS201CareContact", "MHS001MPI"):
        csv_path = proot / "2025-04" / f"{name}.csv"
        names = csv_path.read_text().splitlines()[0].split(",")
        opts = pa_csv.ConvertOptions(strings_can_be_null=True, column_types=dict.fromkeys(names, pa.string()))
        table = pa_csv.read_csv(csv_path, convert_options=opts)
        pq.write_table(table, csv_path.with_suffix(".parquet"))
        csv_path.unlink()
    cols = "* EXCLUDE (src_file, src_line)"  # a Parquet row's line is its row number (no header)
    load_ok(con, root)
    want = con.execute(f"SELECT {cols} FROM stg_MHS201CareContact ORDER BY src_line").fetchall()
    con2 = duckdb.connect()
    load_ok(con2, proot)
    got = con2.execute(f"SELECT {cols} FROM stg_MHS201CareContact ORDER BY src_line").fetchall()
    assert got == want and len(got) == 6
    assert report(con2, "MHS201CareContact.parquet")["message"].startswith("1 invalid ClinContDurOfCareCont")


def test_reference_rows_with_malformed_codes_are_quarantined(tmp_path, con):
    reference = {k: [dict(r) for r in v] for k, v in REFERENCE.items()}
    reference["gp_practice_pcn.csv"][1]["pcn_code"] = "PCN-7"
    reference["lsoa_imd.csv"].append({"lsoa_code": "E01000003", "imd_decile": 11})
    reference["lsoa_imd.csv"].append({"lsoa_code": "E01000001", "imd_decile": 4})  # repeats line 2
    load_ok(con, make_inbox(tmp_path, {"2025-04": base_month("2025-04")}, reference))
    assert [r[:2] for r in quarantine(con, "ref_gp_practice_pcn")] == [(3, 'pcn_code invalid value: "PCN-7"')]
    assert [r[:2] for r in quarantine(con, "ref_lsoa_imd")] == [
        (4, 'imd_decile invalid integer: "11"'),
        (5, "duplicate key (lsoa_code) of line 2"),
    ]
    r = report(con, "reference/lsoa_imd.csv")
    assert (r["month"], r["rows_read"], r["rows_loaded"], r["rows_rejected"]) == (None, 4, 2, 2)


def test_the_accounting_check_notices_a_lost_row(tmp_path, con):
    load_ok(con, make_inbox(tmp_path, {"2025-04": base_month("2025-04")}))
    check_accounting(con, landed_queries())  # holds after a load
    con.execute("DELETE FROM work.load_MHS201CareContact WHERE src_line = 3")
    with pytest.raises(LoadAccountingError, match="2025-04/MHS201CareContact.csv"):
        check_accounting(con, landed_queries())
