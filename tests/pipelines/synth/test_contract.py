"""The generated extract folders satisfy the input contract (shared/spec/01)."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest

from pipelines import contract as C


def _month_dirs(inbox):
    return sorted(p for p in inbox.iterdir() if p.is_dir() and p.name != "reference")


@pytest.fixture(scope="module")
def con(demo_inbox):
    con = duckdb.connect()
    for name in C.TABLES:
        con.execute(
            f"create table {name} as select *, parse_filename(filename, true, 'system') as tbl, "
            f"split_part(filename, '/', -2) as folder from read_csv('{demo_inbox}/*/{name}.csv', "
            "all_varchar=true, filename=true)"
        )
    return con


def test_every_month_has_every_table_with_contract_header(demo_inbox):
    months = _month_dirs(demo_inbox)
    assert len(months) == 24
    assert months[0].name == "2024-11" and months[-1].name == "2026-10"
    for m in months:
        for name, table in C.TABLES.items():
            f = m / f"{name}.csv"
            assert f.exists(), f
            with f.open() as fh:
                header = next(csv.reader(fh))
            assert header == table.columns, f


def test_uniq_month_id_agrees_with_folder(con):
    for name in C.TABLES:
        bad = con.execute(
            f"select folder, UniqMonthID from {name} group by all having "
            "UniqMonthID::int <> (split_part(folder, '-', 1)::int - 1900) * 12 + split_part(folder, '-', 2)::int - 3"
        ).fetchall()
        assert bad == [], name


def test_required_fields_present_except_counted_faults(con, demo_inbox):
    truth = json.loads((demo_inbox / "ground_truth.json").read_text())
    for name, table in C.TABLES.items():
        cond = " or ".join(f"{c} is null" for c in table.required)
        n = con.execute(f"select count(*) from {name} where {cond}").fetchone()[0]
        expected = truth["file_rows"].get(name, {}).get("injected_missing_required", 0)
        assert n == expected, name
    assert truth["file_rows"]["MHS201CareContact"]["injected_missing_required"] > 0


def test_codes_come_from_the_code_lists(con):
    def values(sql):
        return {r[0] for r in con.execute(sql).fetchall()}

    assert values(
        "select distinct AttendStatus from MHS201CareContact where AttendStatus is not null"
    ) <= set(C.ATTEND_STATUS)
    assert values("select distinct ConsMechanismMH from MHS201CareContact") <= set(C.CONS_MECHANISM)
    teams = values("select distinct ServTeamTypeRefToMH from MHS101Referral")
    assert teams <= set(C.TEAM_TYPES) and set(C.CORE_TEAM_TYPES) <= teams
    assert values(
        "select distinct SourceOfReferralMH from MHS101Referral where SourceOfReferralMH is not null"
    ) <= set(C.SOURCE_OF_REFERRAL)
    assert values("select distinct EmployStatus from MHS004EmpStatus") <= set(C.EMPLOY_STATUS)
    assert values("select distinct DisabCode from MHS007DisabilityType") <= set(C.DISAB_CODE)
    eth = values("select distinct left(EthnicCategory, 1) from MHS001MPI where EthnicCategory is not null")
    # every valid category appears; the only off-list value is the deliberate invalid 'X' (and '9' of '99')
    assert set("ABCDEFGHJKLMNPRSZ") <= eth and eth - set(C.ETHNIC_CATEGORY) <= {"X", "9"}
    assert values("select distinct Gender from MHS001MPI where Gender is not null") <= set(C.GENDER)
    assert values("select distinct GenderIDCode from MHS001MPI where GenderIDCode is not null") <= set(
        C.GENDER_ID
    )
    tools = values("select distinct CodedAssToolType from MHS606CodedScoreAssessmentRefer")
    assert set(C.PROM_TOOLS) <= tools


def test_event_tables_hold_only_their_months_events(con, demo_inbox):
    truth = json.loads((demo_inbox / "ground_truth.json").read_text())
    out_of_month = con.execute(
        "select count(*) from MHS201CareContact where strftime(CareContDate::date, '%Y-%m') <> folder"
    ).fetchone()[0]
    assert out_of_month == truth["file_rows"]["MHS201CareContact"]["injected_out_of_month"]
    assert (
        con.execute(
            "select count(*) from MHS606CodedScoreAssessmentRefer "
            "where strftime(AssToolCompTimestamp::timestamp, '%Y-%m') <> folder"
        ).fetchone()[0]
        == 0
    )


def test_snapshot_referrals_resent_every_active_month_with_end_filled_once(con):
    latest = con.execute(
        """
        with r as (select * from MHS101Referral r where UniqSubmissionID = (
                   select max(UniqSubmissionID) from MHS000Header h
                   where h.OrgIDProv = r.OrgIDProv and h.UniqMonthID = r.UniqMonthID))
        select UniqServReqID, count(*) n, count(distinct UniqMonthID) n_months,
               max(UniqMonthID::int) - min(UniqMonthID::int) + 1 span,
               count(coalesce(ServDischDate, ReferRejectionDate)) ended_rows,
               max(UniqMonthID::int) filter (where coalesce(ServDischDate, ReferRejectionDate) is not null) end_month,
               max(UniqMonthID::int) last_month
        from r group by 1
        """
    ).df()
    assert (latest.n == latest.n_months).all()  # one row per referral per month
    assert (latest.n_months == latest.span).all()  # consecutive months, no gaps
    assert latest.ended_rows.max() == 1  # the end date appears once, in the last month sent
    ended = latest[latest.ended_rows == 1]
    assert (ended.end_month == ended.last_month).all()
    assert len(ended) > 0.5 * len(latest)


def test_resubmissions_supersede_with_higher_submission_id(con, demo_inbox):
    truth = json.loads((demo_inbox / "ground_truth.json").read_text())
    assert len(truth["resubmissions"]) >= 3
    headers = con.execute(
        "select OrgIDProv, folder, list(UniqSubmissionID::int order by UniqSubmissionID::int) ids "
        "from MHS000Header group by all"
    ).df()
    multi = headers[headers.ids.map(len) > 1]
    got = {(r.OrgIDProv, r.folder, tuple(r.ids)) for r in multi.itertuples()}
    want = {
        (r["provider"], r["month"], (r["superseded_submission_id"], r["final_submission_id"]))
        for r in truth["resubmissions"]
    }
    assert got == want
    superseded_ids = ",".join(str(r["superseded_submission_id"]) for r in truth["resubmissions"])
    for name in C.TABLES:
        n = con.execute(
            f"select count(*) from {name} where UniqSubmissionID::int in ({superseded_ids})"
        ).fetchone()[0]
        assert n == truth["file_rows"].get(name, {}).get("superseded_rows", 0), name


def test_duplicate_keys_only_where_injected(con, demo_inbox):
    truth = json.loads((demo_inbox / "ground_truth.json").read_text())
    for name, table in C.TABLES.items():
        if table.kind == "header":
            continue
        key = ", ".join(table.key)
        dups = con.execute(
            f"select count(*) - count(distinct ({key}, UniqSubmissionID, folder)) from {name}"
        ).fetchone()[0]
        assert dups == truth["file_rows"].get(name, {}).get("injected_duplicate_rows", 0), name


def test_reference_files_have_contract_columns_and_codes(demo_inbox):
    ref = demo_inbox / "reference"
    expected = {
        "gp_practice_pcn.csv": [
            "practice_code",
            "practice_name",
            "pcn_code",
            "pcn_name",
            "place_code",
            "place_name",
            "icb_code",
            "icb_name",
            "rel_start_date",
            "rel_end_date",
        ],
        "lsoa_imd.csv": ["lsoa_code", "imd_decile"],
        "population.csv": ["pcn_code", "age_band", "gender", "ethnicity_group", "imd_quintile", "population"],
        "providers.csv": ["provider_code", "provider_name", "provider_type", "icb_code"],
    }
    for f, cols in expected.items():
        rows = list(csv.DictReader((ref / f).open()))
        assert list(rows[0].keys()) == cols, f
    prac = list(csv.DictReader((ref / "gp_practice_pcn.csv").open()))
    import re

    assert all(re.fullmatch(r"A\d{5}", r["practice_code"]) for r in prac)
    assert all(re.fullmatch(r"U\d{5}", r["pcn_code"]) for r in prac if r["pcn_code"])
    assert any(r["pcn_code"] == "" and r["place_code"] and r["icb_code"] for r in prac)  # outside any PCN
    assert any(r["rel_end_date"] for r in prac)  # a dated change of PCN
    pcns = {r["pcn_code"] for r in prac if r["pcn_code"]}
    assert len(pcns) == 15
    assert {r["place_name"] for r in prac} == {"Westside", "Eastside"}
    prov = list(csv.DictReader((ref / "providers.csv").open()))
    assert [p["provider_type"] for p in prov] == ["NHS trust", "VCSE", "VCSE"]
    imd = list(csv.DictReader((ref / "lsoa_imd.csv").open()))
    assert {int(r["imd_decile"]) for r in imd} <= set(range(1, 11))
