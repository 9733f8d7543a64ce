"""The input extract contract (shared/spec/01) as data.

One place declares every MHSDS-style table, its fields, which are required, their types, the
v5/pre-v5 aliases and the code lists. The synthetic generator writes files from it and the loader
validates against it, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Calendar


def uniq_month_id(year: int, month: int) -> int:
    """MHSDS UniqMonthID: (year - 1900) * 12 + month - 3 (April 2025 = 1501)."""
    return (year - 1900) * 12 + month - 3


def month_from_uniq_month_id(umid: int) -> tuple[int, int]:
    """Inverse of :func:`uniq_month_id`: (year, month)."""
    n = umid + 3 - 1  # months since January 1900, zero based
    return 1900 + n // 12, n % 12 + 1


def month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# Tables


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # str | int | date | ts | dec
    required: bool = False
    aliases: tuple[str, ...] = ()  # older MHSDS names accepted on input


@dataclass(frozen=True)
class Table:
    name: str
    kind: str  # "snapshot" | "event" | "header"
    fields: tuple[Field, ...]
    key: tuple[str, ...]  # identifies a row within a submission (duplicates are rejected)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]


def _f(name: str, type_: str = "str", required: bool = False, aliases: tuple[str, ...] = ()) -> Field:
    return Field(name, type_, required, aliases)


_SUB = (
    _f("OrgIDProv", required=True),
    _f("UniqMonthID", "int", True),
    _f("UniqSubmissionID", "int", True),
)
_PERSON = (_f("Person_ID", required=True),)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "MHS000Header",
            "header",
            (
                _f("UniqSubmissionID", "int", True),
                _f("OrgIDProv", required=True),
                _f("UniqMonthID", "int", True),
                _f("ReportingPeriodStartDate", "date", True),
                _f("ReportingPeriodEndDate", "date", True),
            ),
            ("UniqSubmissionID",),
        ),
        Table(
            "MHS001MPI",
            "snapshot",
            _PERSON
            + _SUB
            + (
                _f("RecordNumber", "int", True),
                _f("EthnicCategory"),
                _f("Gender"),
                _f("GenderIDCode"),
                _f("AgeRepPeriodEnd", "int"),
                _f("LSOA2011"),
                _f("LADistrictAuth"),
            ),
            ("Person_ID",),
        ),
        Table(
            "MHS002GP",
            "snapshot",
            _PERSON
            + _SUB
            + (
                _f("RecordNumber", "int", True),
                _f("GMPReg", required=True, aliases=("GMPCodeReg",)),
                _f("EndDateGMPRegistration", "date"),
            ),
            ("Person_ID", "GMPReg"),
        ),
        Table(
            "MHS004EmpStatus",
            "snapshot",
            _PERSON + _SUB + (_f("EmployStatus", required=True), _f("EmployStatusRecDate", "date")),
            ("Person_ID", "EmployStatus", "EmployStatusRecDate"),
        ),
        Table(
            "MHS007DisabilityType",
            "snapshot",
            _PERSON + _SUB + (_f("DisabCode", required=True), _f("DisabCodeDate", "date")),
            ("Person_ID", "DisabCode"),
        ),
        Table(
            "MHS008CarePlanType",
            "snapshot",
            (_f("UniqCarePlanID", required=True),)
            + _PERSON
            + _SUB
            + (
                _f("CarePlanTypeMH", required=True),
                _f("CarePlanCreatDate", "date"),
                _f("CarePlanLastUpdateDate", "date"),
                _f("UniqServReqID"),
            ),
            ("UniqCarePlanID",),
        ),
        Table(
            "MHS009CarePlanAgreement",
            "snapshot",
            (_f("UniqCarePlanID", required=True),) + _SUB + (_f("CarePlanAgreedDate", "date"),),
            ("UniqCarePlanID",),
        ),
        Table(
            "MHS011SocPerCircumstances",
            "snapshot",
            _PERSON
            + _SUB
            + (_f("SocPerCircumstance", required=True), _f("SocPerCircumstanceRecTimestamp", "ts")),
            ("Person_ID", "SocPerCircumstance"),
        ),
        Table(
            "MHS101Referral",
            "snapshot",
            (_f("UniqServReqID", required=True),)
            + _PERSON
            + _SUB
            + (
                _f("RecordNumber", "int", True),
                _f("ReferralRequestReceivedDate", "date", True),
                _f("SourceOfReferralMH"),
                _f("ServTeamTypeRefToMH", required=True),
                _f("ClinRespPriorityType"),
                _f("PrimReasonReferralMH"),
                _f("AgeServReferRecDate", "int"),
                _f("ServDischDate", "date"),
                _f("ReferRejectionDate", "date"),
                _f("ReferRejectReason"),
                _f("ReferClosureDate", "date"),
                _f("ReferClosReason"),
            ),
            ("UniqServReqID",),
        ),
        Table(
            "MHS201CareContact",
            "event",
            (_f("UniqCareContID", required=True), _f("UniqServReqID", required=True))
            + _PERSON
            + _SUB
            + (
                _f("CareContDate", "date", True),
                _f("CareContTime"),
                _f("AttendStatus", required=True, aliases=("AttendOrDNACode",)),
                _f("ConsMechanismMH", required=True, aliases=("ConsMediumUsed",)),
                _f("ClinContDurOfCareCont", "int"),
            ),
            ("UniqCareContID",),
        ),
        Table(
            "MHS501HospProvSpell",
            "snapshot",
            (_f("UniqHospProvSpellID", required=True), _f("UniqServReqID", required=True))
            + _PERSON
            + _SUB
            + (_f("StartDateHospProvSpell", "date"), _f("DischDateHospProvSpell", "date")),
            ("UniqHospProvSpellID",),
        ),
        Table(
            "MHS606CodedScoreAssessmentRefer",
            "event",
            (_f("UniqServReqID", required=True),)
            + _PERSON
            + _SUB
            + (
                _f("CodedAssToolType", required=True),
                _f("PersScore", required=True),
                _f("AssToolCompTimestamp", "ts", True),
            ),
            ("UniqServReqID", "CodedAssToolType", "AssToolCompTimestamp"),
        ),
    )
}

REQUIRED_TABLES = ("MHS000Header", "MHS001MPI", "MHS101Referral")

# Output names per MHSDS version: v6 is the contract's preferred naming.
V5_NAMES = {"AttendStatus": "AttendOrDNACode", "GMPReg": "GMPCodeReg"}

REFERENCE_FILES = ("gp_practice_pcn.csv", "lsoa_imd.csv", "population.csv", "providers.csv")

# ---------------------------------------------------------------------------------------------
# Code lists

ETHNIC_CATEGORY = tuple("ABCDEFGHJKLMNPRS") + ("Z", "99")
ETHNICITY_GROUP = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian"),
    **dict.fromkeys("MNP", "Black"),
    **dict.fromkeys("RS", "Other"),
}
ETHNICITY_GROUPS = ("White", "Mixed", "Asian", "Black", "Other")
GENDER = ("1", "2", "9", "X")
GENDER_ID = ("1", "2", "3", "4", "Z", "X")
ATTEND_STATUS = ("5", "6", "7", "2", "3", "4", "0")
ATTENDED = ("5", "6")
DNA = ("3", "7")
CONS_MECHANISM = ("01", "02", "04", "05", "09", "10", "11", "12", "13", "98")
DIRECT_MECHANISM = ("01", "02", "04", "11")
# pre-v5 ConsMediumUsed -> ConsMechanismMH
CONS_MEDIUM_PRE_V5 = {"01": "01", "02": "02", "03": "11", "04": "04", "05": "05", "06": "09", "98": "98"}

CORE_TEAM_TYPES = ("A05", "A06", "A08", "A09", "A12", "A13", "A16", "C10")
ACCESS_EXTRA_TEAM_TYPES = ("A14", "D05")
LEGACY_TEAM_TYPE = {"C03": "C10"}
TEAM_TYPES = (
    tuple(f"A{i:02d}" for i in range(1, 26))
    + ("B01", "B02")
    + tuple(f"C{i:02d}" for i in range(1, 11))
    + tuple(f"D{i:02d}" for i in range(1, 9))
    + tuple(f"E{i:02d}" for i in range(1, 5))
    + tuple(f"F{i:02d}" for i in range(1, 7))
    + ("Z01", "Z02")
)

SOURCE_OF_REFERRAL = [
    "A1",
    "A2",
    "A3",
    "A4",
    "B1",
    "B2",
    "C1",
    "C2",
    "C3",
    "D1",
    "D2",
    "E1",
    "E2",
    "E3",
    "E4",
    "E5",
    "E6",
    "F1",
    "F2",
    "F3",
    "G1",
    "G2",
    "G3",
    "G4",
    "H1",
    "H2",
    "I1",
    "I2",
    "M1",
    "M2",
    "M3",
    "M4",
    "M5",
    "M6",
    "M7",
    "M8",
    "N1",
    "N2",
    "N4",
    "P1",
    "Q1",
]
SOURCE_EMERGENCY_JUSTICE = ("H1", "E1", "E2", "E3", "E4", "E5", "E6")
SOURCE_SELF = ("B1", "B2")
SOURCE_GP = ("A1",)
SOURCE_VCSE = ("G4",)

EMPLOY_STATUS = ("01", "02", "03", "04", "05", "06", "07", "08", "ZZ")
DISAB_CODE = tuple(f"{i:02d}" for i in range(1, 11)) + ("XX", "NN", "ZZ")

SEXUAL_ORIENTATION = {
    "20430005": "Heterosexual",
    "89217008": "Gay or lesbian",
    "76102007": "Gay or lesbian",
    "42035005": "Bisexual",
    "765288000": "Other",
    "472985009": "Other",
    "1064711000000108": "Other",  # not sure
    "729951000000104": "Not known",  # not stated
    "699042003": "Not known",  # not stated
    "440583007": "Not known",
}

DIALOG_ITEMS = (
    "1037651000000100",
    "1037661000000102",
    "1037671000000109",
    "1037681000000106",
    "1037691000000108",
    "1037701000000108",
    "1037711000000105",
    "1037721000000104",
    "1037731000000102",
    "1037741000000106",
    "1037751000000109",
)
REQOL10_TOTAL = "1091071000000100"
GBO_GOALS = ("1638531000000102", "1638541000000106", "1638551000000109")
# tool code -> (tool, valid min, valid max, reliable change threshold)
PROM_TOOLS: dict[str, tuple[str, int, int, int]] = {
    **{c: ("DIALOG", 1, 7, 1) for c in DIALOG_ITEMS},
    REQOL10_TOTAL: ("ReQoL-10", 0, 40, 5),
    **{c: ("GBO", 0, 10, 3) for c in GBO_GOALS},
}

AGE_BANDS = ("18-25", "26-64", "65+")
GENDER_GROUPS = ("Male", "Female", "Non-binary or other", "Not known")
IMD_QUINTILE = {d: (d + 1) // 2 for d in range(1, 11)}
WAIT_BANDS = ("0-4 weeks", "4-18 weeks", "18-52 weeks", "52+ weeks")


def age_band(age: int) -> str | None:
    if age is None or age < 18:
        return None
    return "18-25" if age <= 25 else "26-64" if age <= 64 else "65+"
