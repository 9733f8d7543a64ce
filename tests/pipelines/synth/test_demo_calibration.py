"""The demo extract matches the framework's worked example and carries the planted inequalities.

Expected values come from shared/reference/westside_eastside.csv (vendored) and the worked example's
demographics box (shared/research/seeds-requirements.md §6.2: Westside 156,000 adults of whom 42,800
are 65+ and 37% live in the most deprived quintile, 9.2% Asian; Eastside 551,000, 171,200 aged 65+,
4% most deprived). The inequality checks are computed here straight from the raw files with simple
SQL, independently of the pipeline, so they test the generator, not our indicator code.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

REF = Path(__file__).resolve().parents[3] / "pipelines" / "data" / "westside_eastside.csv"
ACCESS_TEAMS = "('A05','A06','A08','A09','A12','A13','A16','C10','A14','D05')"


@pytest.fixture(scope="module")
def db(demo_inbox):
    con = duckdb.connect()
    src = lambda t: f"read_csv('{demo_inbox}/*/{t}.csv', all_varchar=true)"  # noqa: E731
    for t in (
        "MHS000Header",
        "MHS001MPI",
        "MHS002GP",
        "MHS101Referral",
        "MHS201CareContact",
        "MHS606CodedScoreAssessmentRefer",
    ):
        # keep only the latest submission of each provider-month, as the contract says
        con.execute(f"""create table {t} as select x.* from {src(t)} x
            join (select OrgIDProv, UniqMonthID, max(UniqSubmissionID::int) s from {src("MHS000Header")}
                  group by all) h on h.OrgIDProv = x.OrgIDProv and h.UniqMonthID = x.UniqMonthID
                  and h.s = x.UniqSubmissionID::int""")
    for f in ("gp_practice_pcn", "population", "lsoa_imd", "providers"):
        con.execute(f"create table {f} as select * from read_csv('{demo_inbox}/reference/{f}.csv')")
    con.execute("""create table person as select Person_ID,
        any_value(EthnicCategory order by UniqMonthID desc) eth,
        any_value(AgeRepPeriodEnd::int order by UniqMonthID desc) age,
        any_value(LSOA2011 order by UniqMonthID desc) lsoa from MHS001MPI group by 1""")
    con.execute("""create table person_dim as select Person_ID,
        case when left(eth,1) in ('A','B','C') then 'White' when left(eth,1) in ('D','E','F','G') then 'Mixed'
             when left(eth,1) in ('H','J','K','L') then 'Asian' when left(eth,1) in ('M','N','P') then 'Black'
             when left(eth,1) in ('R','S') then 'Other' end eth_group,
        case when age <= 25 then '18-25' when age <= 64 then '26-64' else '65+' end age_band,
        (d.imd_decile + 1) // 2 as quintile
        from person left join lsoa_imd d on d.lsoa_code = person.lsoa""")
    con.execute("""create table referral as select * from MHS101Referral
        qualify row_number() over (partition by UniqServReqID order by UniqMonthID desc) = 1""")
    con.execute("""create table attended as select c.UniqServReqID, c.CareContDate::date d from MHS201CareContact c
        where AttendStatus in ('5','6') and ConsMechanismMH in ('01','02','04','11')""")
    return con


@pytest.fixture(scope="module")
def truth(demo_inbox):
    return json.loads((demo_inbox / "ground_truth.json").read_text())


def _neighbourhoods():
    return list(csv.DictReader(REF.open()))


def test_population_matches_the_worked_example_exactly(db):
    pop = dict(
        db.execute("""select regexp_replace(pcn_name, '( University| Riverside)? PCN$', ''), sum(p.population)
        from population p join (select distinct pcn_code, pcn_name from gp_practice_pcn) g using (pcn_code)
        group by 1""").fetchall()
    )
    want = {r["neighbourhood"]: int(r["adult_population"]) for r in _neighbourhoods()}
    assert pop == want
    assert sum(pop.values()) == 707_000


@pytest.mark.parametrize(
    "place, over65, q1, q1_tol, asian",
    [("Westside", 42_800 / 156_000, 0.37, 0.05, 0.092), ("Eastside", 171_200 / 551_000, 0.04, 0.03, None)],
)
def test_place_demographics_match_the_demographics_box(db, place, over65, q1, q1_tol, asian):
    row = db.execute(
        """select sum(population) filter (where age_band = '65+') / sum(population),
               sum(population) filter (where imd_quintile = 1) / sum(population),
               sum(population) filter (where ethnicity_group = 'Asian') / sum(population)
        from population p join (select distinct pcn_code, place_name from gp_practice_pcn) g using (pcn_code)
        where place_name = $1""",
        [place],
    ).fetchone()
    assert row[0] == pytest.approx(over65, abs=0.015)
    assert row[1] == pytest.approx(q1, abs=q1_tol)
    if asian is not None:
        assert row[2] == pytest.approx(asian, abs=0.015)


def test_referral_volumes_follow_smi_prevalence(db, truth):
    """In-scope referrals received by neighbourhood (via the practice's PCN) are proportional to the
    neighbourhood's SMI register (population x SMI prevalence), within 12%."""
    got = dict(
        db.execute(f"""
        with gp as (select Person_ID, any_value(GMPReg order by UniqMonthID desc) prac from MHS002GP
                    where EndDateGMPRegistration is null group by 1),
        r as (select r.UniqServReqID, g.pcn_name from referral r join gp using (Person_ID)
              -- the practice's original PCN: the generator draws a practice's patients from that area
              join (from gp_practice_pcn qualify row_number() over (partition by practice_code
                    order by rel_start_date) = 1) g on g.practice_code = gp.prac
              where ServTeamTypeRefToMH in {ACCESS_TEAMS} and ReferralRequestReceivedDate::date >= '2024-11-01'
                and g.pcn_code is not null)
        select regexp_replace(pcn_name, '( University| Riverside)? PCN$', ''), count(*) from r group by 1
    """).fetchall()
    )
    rows = _neighbourhoods()
    smi = {r["neighbourhood"]: int(r["adult_population"]) * float(r["smi_prevalence_pct"]) for r in rows}
    total_got, total_smi = sum(got.values()), sum(smi.values())
    for name, s in smi.items():
        assert got[name] / total_got == pytest.approx(s / total_smi, rel=0.12), name
    assert 36_000 <= truth["counts"]["in_scope_received"] <= 44_000  # spec/07: about 40,000


def _access_rates(db, dim):
    """People with >= 2 attended direct contacts on one access-scope referral in the last 12 months,
    per 10,000 population of the group."""
    return dict(
        db.execute(f"""
        with two as (select UniqServReqID from attended where d >= '2025-11-01' group by 1 having count(*) >= 2),
        ppl as (select distinct r.Person_ID from referral r join two using (UniqServReqID)
                where ServTeamTypeRefToMH in {ACCESS_TEAMS} and AgeServReferRecDate::int >= 18),
        num as (select {dim} g, count(*) n from ppl join person_dim using (Person_ID) group by 1),
        den as (select {"ethnicity_group" if dim == "eth_group" else "age_band"} g, sum(population) p
                from population group by 1)
        select g, n / p * 10000 from num join den using (g)
    """).fetchall()
    )


def test_planted_access_gaps(db):
    eth = _access_rates(db, "eth_group")
    assert eth["Other"] < 0.6 * eth["White"]
    assert eth["Other"] == min(eth.values())
    age = _access_rates(db, "age_band")
    assert age["65+"] < 0.65 * age["26-64"]


def test_planted_longer_waits_for_asian_people(db):
    pct = dict(
        db.execute("""
        with k as (select UniqServReqID, d, row_number() over (partition by UniqServReqID order by d) n from attended)
        select eth_group, avg(case when k.d - r.ReferralRequestReceivedDate::date <= 28 then 1 else 0 end)
        from referral r join k using (UniqServReqID) join person_dim using (Person_ID)
        where k.n = 2 and r.ReferRejectionDate is null group by 1""").fetchall()
    )
    assert pct["Asian"] < pct["White"] - 0.10


def test_planted_emergency_and_justice_routes_for_black_people(db):
    pct = dict(
        db.execute("""select eth_group,
        avg(case when SourceOfReferralMH in ('H1','E1','E2','E3','E4','E5','E6') then 1 else 0 end)
        from referral join person_dim using (Person_ID) group by 1""").fetchall()
    )
    assert pct["Black"] > 2 * pct["White"]


def test_planted_higher_dna_at_18_25(db):
    pct = dict(
        db.execute("""select age_band, avg(case when AttendStatus in ('3','7') then 1 else 0 end)
        from MHS201CareContact c join person_dim using (Person_ID)
        where AttendStatus in ('3','5','6','7') group by 1""").fetchall()
    )
    assert pct["18-25"] > 1.6 * pct["26-64"]


def test_planted_fewer_reliable_improvements_in_most_deprived_quintile(db):
    pct = dict(
        db.execute("""
        with s as (select UniqServReqID, Person_ID, try_cast(PersScore as int) v, AssToolCompTimestamp::timestamp t
                   from MHS606CodedScoreAssessmentRefer where CodedAssToolType = '1091071000000100'
                   and try_cast(PersScore as int) between 0 and 40),
        p as (select UniqServReqID, any_value(Person_ID) Person_ID, arg_min(v, t) b, arg_max(v, t) f,
                     count(*) n from s group by 1 having n >= 2)
        select quintile, avg(case when f - b >= 5 then 1 else 0 end) from p join person_dim using (Person_ID)
        group by 1""").fetchall()
    )
    assert pct[1] < pct[5] - 0.08


def test_planted_poor_ethnicity_recording_at_one_provider(db, truth):
    poor = truth["planted_inequalities"][-1]["providers"]
    pct = dict(
        db.execute("""select OrgIDProv, avg(case when left(EthnicCategory,1) in
        ('A','B','C','D','E','F','G','H','J','K','L','M','N','P','R','S') then 0 else 1 end)
        from MHS001MPI group by 1""").fetchall()
    )
    assert len(pct) == 3
    for prov, share in pct.items():
        assert (share > 0.25) if prov in poor else (share < 0.15), prov
