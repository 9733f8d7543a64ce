"""Turn one region's simulated entities into the monthly MHSDS tables of spec/01.

Snapshot tables re-send every active person/referral/care plan each month (end dates filled in
once known); event tables hold only the month's events. Each provider-month is one submission; a
few are resubmitted (the superseded original is written too, with a lower UniqSubmissionID), and a
small number of rows carry the kind of faults real submissions have (a blank required field, a
duplicated row, an event dated outside its month). Every such choice is counted in `stats` so the
ground truth can say exactly what a loader should find.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract as C
from pipelines.synth.activity import ATTEND, MECH, PLANTED, SOURCES, TEAM_CODES, Window, _group_rank
from pipelines.synth.geography import Region

EPOCH = np.datetime64("1970-01-01", "D")
ARROW_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "date": pa.date32(),
    "ts": pa.timestamp("s"),
    "dec": pa.float64(),
}
# share of (person, provider) MPI records whose ethnicity is not known, by provider index
ETH_UNKNOWN = (0.06, 0.10, None)  # None = the planted poor-recording provider (see PLANTED)
RECORDED = {  # P(characteristic recorded) by provider index: trust, VCSE A, VCSE B
    "gender_id": (0.65, 0.40, 0.40),
    "employ": (0.80, 0.50, 0.50),
    "disab": (0.60, 0.35, 0.35),
    "sexor": (0.55, 0.30, 0.30),
    "lsoa_missing": (0.015, 0.04, 0.04),
    "prom_invalid": (0.005, 0.02, 0.02),
}


def schema(table: str) -> pa.Schema:
    return pa.schema([(f.name, ARROW_TYPES[f.type]) for f in C.TABLES[table].fields])


def _dates(days) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    return pa.array(days.astype(np.int32), type=pa.int32(), mask=days < 0).cast(pa.date32())


def _codes(idx, codes) -> pa.Array:
    idx = np.asarray(idx, dtype=np.int32)
    d = pa.DictionaryArray.from_arrays(pa.array(idx, mask=idx < 0), pa.array(list(codes), pa.string()))
    return d.cast(pa.string())


def _strs(values, mask=None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), pa.string(), mask=mask)


def _ints(values, mask=None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64(), mask=mask)


def _join(prefix: pa.Array, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers, pa.int64()), pa.string()), "")


def _expand(start, end, win: Window):
    """(entity index, month index) for each window month that [start, end] overlaps."""
    m_count = len(win.month_start) - 1
    m0 = np.maximum(win.month_of(start), 0)
    m1 = np.minimum(win.month_of(end), m_count - 1)
    n = np.where((start <= win.end) & (end >= win.start), m1 - m0 + 1, 0).clip(0)
    ent = np.repeat(np.arange(len(start)), n)
    month = m0[ent] + _group_rank(ent)
    return ent, month


class RegionTables:
    """Pre-computes the month expansions for one region and yields per-month arrow tables."""

    def __init__(
        self,
        rng: np.random.Generator,
        region: Region,
        sim: SimpleNamespace,
        win: Window,
        icb_index: int,
        resubmissions: int = 3,
    ):
        self.rng, self.region, self.sim, self.win = rng, region, sim, win
        self.M = len(win.month_start) - 1
        self.prov_codes = np.array([p["code"] for p in region.providers])
        self.stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        P, R = sim.P, sim.R
        mix = (np.uint64(icb_index) << np.uint64(40)) + np.arange(P.n, dtype=np.uint64)
        hashed = mix * np.uint64(0x9E3779B97F4A7C15)  # odd multiplier: a bijection mod 2^64
        self.person_id = np.array([f"{int(x):016x}" for x in hashed])
        base = 1_000_000 + icb_index * 3 * 2 * (self.M + 1)
        self.sub_base = base + (np.arange(3)[:, None] * (self.M + 1) + np.arange(self.M)[None, :]) * 2
        pairs = rng.choice(3 * self.M, size=min(resubmissions, 3 * self.M), replace=False)
        self.resub = {(int(x) // self.M, int(x) % self.M) for x in pairs}
        self.final_sub = self.sub_base.copy()
        for p, mm in self.resub:
            self.final_sub[p, mm] += 1
        # referral-months
        r_end = np.where(R.end > win.end, np.iinfo(np.int64).max // 2, R.end)
        self.rm_ref, self.rm_month = _expand(R.received.astype(np.int64), r_end, win)
        # person-provider-months
        pp = R.person[self.rm_ref].astype(np.int64) * 3 + R.provider[self.rm_ref]
        key = (self.rm_month.astype(np.int64) * 3 * P.n) + (
            R.provider[self.rm_ref].astype(np.int64) * P.n + R.person[self.rm_ref]
        )
        self.ppm_key = np.unique(key)
        self.ppm_month = self.ppm_key // (3 * P.n)
        self.ppm_prov = (self.ppm_key // P.n) % 3
        self.ppm_person = self.ppm_key % P.n
        self.ppm_recno = _group_rank(self.ppm_month * 3 + self.ppm_prov) + 1
        # per (person, provider) pair: what that provider recorded about the person
        pair, inv = np.unique(pp, return_inverse=True)
        first_seen = np.full(len(pair), np.iinfo(np.int64).max)
        np.minimum.at(first_seen, inv, R.received[self.rm_ref].astype(np.int64))
        self.pair, self.pair_first = pair, first_seen
        self._pair_attributes()

    # ------------------------------------------------------------------ per (person, provider)
    def _pair_attributes(self) -> None:
        rng, P = self.rng, self.sim.P
        n = len(self.pair)
        person, prov = self.pair // 3, self.pair % 3
        u = rng.random(n)
        unk = np.array([x if x is not None else PLANTED.ethnicity_unknown_poor_provider for x in ETH_UNKNOWN])
        unknown = u < unk[prov]
        eth = P.eth_code[person].astype(object)
        kind = rng.random(n)
        eth = np.where(unknown & (kind < 0.5), "Z", eth)
        eth = np.where(unknown & (kind >= 0.5) & (kind < 0.7), "99", eth)
        eth = np.where(unknown & (kind >= 0.7) & (kind < 0.9), None, eth)
        eth = np.where(unknown & (kind >= 0.9), "X", eth)  # not a valid code: maps to not known
        local = ~unknown & (prov == 0) & (rng.random(n) < 0.08)  # local sub-codes: first character counts
        eth = np.where(local, np.char.add(P.eth_code[person], "1").astype(object), eth)
        self.pair_eth = eth
        r = {k: np.array(v)[prov] for k, v in RECORDED.items()}
        self.pair_gid = np.where(rng.random(n) < r["gender_id"], P.gender_id[person].astype(str), None)
        self.pair_gender = np.where(rng.random(n) < 0.01, None, (P.gender[person] + 1).astype(str))
        self.pair_lsoa = np.where(rng.random(n) < r["lsoa_missing"], None, P.lsoa_code[person])
        self.pair_lsoa = np.where(rng.random(n) < 0.004, "E01999999", self.pair_lsoa)
        self.pair_la = np.where(rng.random(n) < 0.03, None, P.la[person])
        self.pair_employ = rng.random(n) < r["employ"]
        self.pair_disab = rng.random(n) < r["disab"]
        self.pair_sexor = rng.random(n) < r["sexor"]

    def _pair_index(self, person, prov):
        return np.searchsorted(self.pair, person.astype(np.int64) * 3 + prov)

    def sub_id(self, prov, month):
        """The final (counting) submission id of each (provider, month)."""
        return self.final_sub[prov, month]

    # ------------------------------------------------------------------ month tables
    def month_tables(self, m: int) -> dict[str, pa.Table]:
        umid = self._umid(m)
        out = {}
        out["MHS000Header"] = self._header(m, umid)
        sel = np.flatnonzero(self.ppm_month == m)
        out["MHS001MPI"] = self._mpi(sel, m, umid)
        out["MHS002GP"] = self._gp(sel, m, umid)
        out["MHS004EmpStatus"], out["MHS007DisabilityType"], out["MHS011SocPerCircumstances"] = self._chars(
            sel, m, umid
        )
        out["MHS101Referral"] = self._referrals(np.flatnonzero(self.rm_month == m), m, umid)
        out["MHS201CareContact"] = self._contacts(m, umid)
        out["MHS501HospProvSpell"] = self._spells(m, umid)
        out["MHS606CodedScoreAssessmentRefer"] = self._proms(m, umid)
        out["MHS008CarePlanType"], out["MHS009CarePlanAgreement"] = self._care_plans(m, umid)
        return self._with_resubmissions(m, out)

    def _umid(self, m):
        d = (EPOCH + int(self.win.month_start[m])).astype(object)
        return C.uniq_month_id(d.year, d.month)

    def _sub_cols(self, prov, m, umid, n):
        prov = np.asarray(prov, dtype=np.int64)
        return {
            "OrgIDProv": _codes(prov, self.prov_codes),
            "UniqMonthID": _ints(np.full(n, umid)),
            "UniqSubmissionID": _ints(self.sub_id(prov, np.full(n, m)) if n else np.zeros(0)),
        }

    def _table(self, name, cols: dict, n: int) -> pa.Table:
        sch = schema(name)
        arrays = []
        for f in sch:
            a = cols.get(f.name)
            arrays.append(pa.nulls(n, f.type) if a is None else a.cast(f.type))
        self.stats[name]["rows"] += n
        return pa.Table.from_arrays(arrays, schema=sch)

    def _header(self, m, umid):
        prov = np.arange(3)
        ms, me = int(self.win.month_start[m]), int(self.win.month_start[m + 1]) - 1
        cols = self._sub_cols(prov, m, umid, 3)
        cols["ReportingPeriodStartDate"] = _dates(np.full(3, ms))
        cols["ReportingPeriodEndDate"] = _dates(np.full(3, me))
        return self._table("MHS000Header", cols, 3)

    def _person_cols(self, sel):
        person, prov = self.ppm_person[sel], self.ppm_prov[sel]
        return (
            person,
            prov,
            {"Person_ID": _strs(self.person_id[person]), "RecordNumber": _ints(self.ppm_recno[sel])},
        )

    def _mpi(self, sel, m, umid):
        person, prov, cols = self._person_cols(sel)
        pi = self._pair_index(person, prov)
        me = int(self.win.month_start[m + 1]) - 1
        cols.update(self._sub_cols(prov, m, umid, len(sel)))
        cols["EthnicCategory"] = _strs(self.pair_eth[pi])
        cols["Gender"] = _strs(self.pair_gender[pi])
        cols["GenderIDCode"] = _strs(self.pair_gid[pi])
        cols["AgeRepPeriodEnd"] = _ints((me - self.sim.P.birth[person]) // 365.25)
        cols["LSOA2011"] = _strs(self.pair_lsoa[pi])
        cols["LADistrictAuth"] = _strs(self.pair_la[pi])
        return self._table("MHS001MPI", cols, len(sel))

    def _gp(self, sel, m, umid):
        P = self.sim.P
        ms, me = int(self.win.month_start[m]), int(self.win.month_start[m + 1]) - 1
        person = self.ppm_person[sel]
        has = ~P.no_practice[person]
        sel, person = sel[has], person[has]
        mv = P.move_day[person]
        moved_before = (mv >= 0) & (mv < ms)
        moving_now = (mv >= ms) & (mv <= me)
        code = np.where(
            moved_before, P.practice_codes[P.new_practice[person]], P.practice_codes[P.practice[person]]
        )
        code = np.where(P.sentinel[person], "V81999", code)
        end = np.full(len(sel), -1)
        end[moving_now] = mv[moving_now]
        # the month of a move carries the ended registration and the new one
        extra = np.flatnonzero(moving_now & ~P.sentinel[person])
        rows = np.r_[np.arange(len(sel)), extra]
        code = np.r_[code, P.practice_codes[P.new_practice[person[extra]]]]
        end = np.r_[end, np.full(len(extra), -1)]
        order = np.argsort(rows, kind="stable")
        rows, code, end = rows[order], code[order], end[order]
        _, prov, cols = self._person_cols(sel[rows])
        cols.update(self._sub_cols(prov, m, umid, len(rows)))
        cols["GMPReg"] = _strs(code)
        cols["EndDateGMPRegistration"] = _dates(end)
        return self._table("MHS002GP", cols, len(rows))

    def _chars(self, sel, m, umid):
        P = self.sim.P
        person, prov = self.ppm_person[sel], self.ppm_prov[sel]
        pi = self._pair_index(person, prov)
        first = self.pair_first[pi]
        # employment
        e = sel[self.pair_employ[pi]]
        ep, epv, cols = self._person_cols(e)
        cols.update(self._sub_cols(epv, m, umid, len(e)))
        cols["EmployStatus"] = _codes(P.employ[ep], C.EMPLOY_STATUS)
        cols["EmployStatusRecDate"] = _dates(first[self.pair_employ[pi]])
        emp = self._table("MHS004EmpStatus", cols, len(e))
        # disability: one row per code; some people have two
        d_ok = self.pair_disab[pi]
        dsel = np.flatnonzero(d_ok)
        second = dsel[P.second_disab[person[dsel]]]
        rows = np.sort(np.r_[dsel, second], kind="stable")
        is_second = np.r_[np.zeros(len(dsel), bool), np.ones(len(second), bool)][
            np.argsort(np.r_[dsel, second], kind="stable")
        ]
        dp = person[rows]
        code = np.where(
            P.disabled[dp],
            np.char.mod("%02d", np.where(is_second, P.disab_code[dp] % 10 + 1, P.disab_code[dp])),
            "NN",
        )
        code = np.where(P.disabled[dp] & (P.disab_code[dp] == 10) & ~is_second, "XX", code)
        code = np.where((dp % 10 == 3) & ~is_second, "ZZ", code)  # deterministic ~10% "not stated"
        _, dpv, cols = self._person_cols(sel[rows])
        cols.update(self._sub_cols(dpv, m, umid, len(rows)))
        cols["DisabCode"] = _strs(code)
        cols["DisabCodeDate"] = _dates(np.where(dp % 3 == 0, -1, first[rows]))
        dis = self._table("MHS007DisabilityType", cols, len(rows))
        # sexual orientation (SNOMED); some people also have an unrelated social circumstance code
        s_ok = np.flatnonzero(self.pair_sexor[pi])
        other = s_ok[person[s_ok] % 10 == 7]
        rows = np.r_[s_ok, other]
        order = np.argsort(rows, kind="stable")
        code = np.r_[P.sexor[person[s_ok]], np.full(len(other), "160724009")][order]
        rows = rows[order]
        _, spv, cols = self._person_cols(sel[rows])
        cols.update(self._sub_cols(spv, m, umid, len(rows)))
        cols["SocPerCircumstance"] = _strs(code)
        cols["SocPerCircumstanceRecTimestamp"] = pa.array(
            (first[rows] * 86400 + 36000).astype("datetime64[s]"), pa.timestamp("s")
        )
        soc = self._table("MHS011SocPerCircumstances", cols, len(rows))
        return emp, dis, soc

    def _ref_ids(self, ref):
        prov = self.sim.R.provider[ref]
        return _join(_codes(prov, [c + "-R" for c in self.prov_codes]), ref)

    def _recno(self, ref, m):
        R = self.sim.R
        key = m * 3 * self.sim.P.n + R.provider[ref].astype(np.int64) * self.sim.P.n + R.person[ref]
        return self.ppm_recno[np.searchsorted(self.ppm_key, key)]

    def _referrals(self, sel, m, umid):
        R = self.sim.R
        ref = self.rm_ref[sel]
        me = int(self.win.month_start[m + 1]) - 1
        ended = R.end[ref] <= me
        cols = self._sub_cols(R.provider[ref], m, umid, len(ref))
        cols["UniqServReqID"] = self._ref_ids(ref)
        cols["Person_ID"] = _strs(self.person_id[R.person[ref]])
        cols["RecordNumber"] = _ints(self._recno(ref, m))
        cols["ReferralRequestReceivedDate"] = _dates(R.received[ref])
        cols["SourceOfReferralMH"] = _codes(R.source[ref], SOURCES)
        cols["ServTeamTypeRefToMH"] = _codes(R.team[ref], TEAM_CODES)
        cols["ClinRespPriorityType"] = _strs((R.priority[ref] + 1).astype(str))
        cols["PrimReasonReferralMH"] = _strs(np.char.mod("%02d", R.reason[ref]))
        cols["AgeServReferRecDate"] = _ints(R.age[ref], mask=R.age_missing[ref])
        rej = ended & R.rejected[ref]
        dis = ended & ~R.rejected[ref]
        clo = dis & R.closure_recorded[ref]
        cols["ServDischDate"] = _dates(np.where(dis, R.end[ref], -1))
        cols["ReferRejectionDate"] = _dates(np.where(rej, R.end[ref], -1))
        cols["ReferRejectReason"] = _strs(np.char.mod("%02d", R.reject_reason[ref]), mask=~rej)
        cols["ReferClosureDate"] = _dates(np.where(clo, R.end[ref], -1))
        cols["ReferClosReason"] = _strs(np.char.mod("%02d", R.close_reason[ref]), mask=~clo)
        return self._table("MHS101Referral", cols, len(ref))

    def _contacts(self, m, umid):
        K, R = self.sim.K, self.sim.R
        idx = np.flatnonzero(self._k_month == m)
        ref = K.ref[idx]
        n = len(idx)
        cols = self._sub_cols(R.provider[ref], m, umid, n)
        cols["UniqCareContID"] = _join(_codes(R.provider[ref], [c + "-C" for c in self.prov_codes]), idx)
        cols["UniqServReqID"] = self._ref_ids(ref)
        cols["Person_ID"] = _strs(self.person_id[R.person[ref]])
        cols["CareContDate"] = _dates(K.day[idx])
        cols["CareContTime"] = _strs(
            np.char.add(
                np.char.add(np.char.zfill((K.minute[idx] // 60).astype(str), 2), ":"),
                np.char.zfill((K.minute[idx] % 60).astype(str), 2),
            )
        )
        cols["AttendStatus"] = _codes(K.attend[idx], ATTEND)
        cols["ConsMechanismMH"] = _codes(K.mech[idx], MECH)
        cols["ClinContDurOfCareCont"] = _ints(K.duration[idx], mask=K.duration[idx] < 0)
        return self._table("MHS201CareContact", cols, n)

    def _spells(self, m, umid):
        H, R = self.sim.H, self.sim.R
        ent, month = self._h_exp
        sel = ent[month == m]
        ref = H.ref[sel]
        me = int(self.win.month_start[m + 1]) - 1
        cols = self._sub_cols(R.provider[ref], m, umid, len(sel))
        cols["UniqHospProvSpellID"] = _join(_codes(R.provider[ref], [c + "-H" for c in self.prov_codes]), sel)
        cols["UniqServReqID"] = self._ref_ids(ref)
        cols["Person_ID"] = _strs(self.person_id[R.person[ref]])
        cols["StartDateHospProvSpell"] = _dates(H.start[sel])
        cols["DischDateHospProvSpell"] = _dates(np.where(H.disch[sel] <= me, H.disch[sel], -1))
        return self._table("MHS501HospProvSpell", cols, len(sel))

    def _proms(self, m, umid):
        S, R = self.sim.S, self.sim.R
        idx = np.flatnonzero(self._s_month == m)
        ref = S.ref[idx]
        cols = self._sub_cols(R.provider[ref], m, umid, len(idx))
        cols["UniqServReqID"] = self._ref_ids(ref)
        cols["Person_ID"] = _strs(self.person_id[R.person[ref]])
        cols["CodedAssToolType"] = _strs(S.tool[idx])
        score = S.score[idx].astype(str).astype(object)
        bad = self._s_invalid[idx]
        score = np.where(bad == 1, (S.score[idx] + 50).astype(str), score)
        score = np.where(bad == 2, "not done", score)
        cols["PersScore"] = _strs(score)
        cols["AssToolCompTimestamp"] = pa.array(
            (S.day[idx] * 86400 + S.second[idx]).astype("datetime64[s]"), pa.timestamp("s")
        )
        self.stats["MHS606CodedScoreAssessmentRefer"]["invalid_scores"] += int((bad > 0).sum())
        return self._table("MHS606CodedScoreAssessmentRefer", cols, len(idx))

    def _care_plans(self, m, umid):
        CP, R = self.sim.CP, self.sim.R
        me = int(self.win.month_start[m + 1]) - 1
        ent, month = self._cp_exp
        sel = ent[month == m]
        ref = CP.ref[sel]
        prov = R.provider[ref]
        plan_ids = _join(_codes(prov, [c + "-P" for c in self.prov_codes]), sel)
        cols = self._sub_cols(prov, m, umid, len(sel))
        cols["UniqCarePlanID"] = plan_ids
        cols["Person_ID"] = _strs(self.person_id[R.person[ref]])
        cols["CarePlanTypeMH"] = _strs(CP.ptype[sel])
        cols["CarePlanCreatDate"] = _dates(CP.created[sel])
        cols["CarePlanLastUpdateDate"] = _dates(np.where(CP.last_update[sel] <= me, CP.last_update[sel], -1))
        cols["UniqServReqID"] = self._ref_ids(ref)
        t8 = self._table("MHS008CarePlanType", cols, len(sel))
        ag = CP.agreed[sel] & (CP.agreed_day[sel] <= me)
        cols = self._sub_cols(prov[ag], m, umid, int(ag.sum()))
        cols["UniqCarePlanID"] = plan_ids.filter(pa.array(ag))
        cols["CarePlanAgreedDate"] = _dates(CP.agreed_day[sel][ag])
        t9 = self._table("MHS009CarePlanAgreement", cols, int(ag.sum()))
        return t8, t9

    def prepare_events(self) -> None:
        """Month of every event, event-table faults, and the expansions of plans and spells."""
        K, S, R, CP, H = self.sim.K, self.sim.S, self.sim.R, self.sim.CP, self.sim.H
        rng = self.rng
        self._k_month = np.where(
            (K.day >= self.win.start) & (K.day <= self.win.end), self.win.month_of(K.day), -1
        )
        self._s_month = np.where(
            (S.day >= self.win.start) & (S.day <= self.win.end), self.win.month_of(S.day), -1
        )
        inv_p = np.array(RECORDED["prom_invalid"])[R.provider[S.ref]]
        u = rng.random(len(S.ref))
        self._s_invalid = np.where(u < inv_p * 0.7, 1, np.where(u < inv_p, 2, 0))
        r_end = np.where(R.end > self.win.end, np.iinfo(np.int64).max // 2, R.end)
        cp_start = np.maximum(CP.created, R.received[CP.ref])
        self._cp_exp = _expand(cp_start, r_end[CP.ref], self.win)
        self._h_exp = _expand(H.start, np.minimum(H.disch, r_end[H.ref]), self.win)

    def _with_resubmissions(self, m, out: dict[str, pa.Table]) -> dict[str, pa.Table]:
        """Add faults to the final submissions, then the superseded originals of resubmitted months."""
        rng = self.rng
        k = out["MHS201CareContact"]
        n = k.num_rows
        if n:
            blank = rng.random(n) < 0.0003
            dup = np.flatnonzero(rng.random(n) < 0.0001)
            early = rng.random(n) < 0.00005
            att = pc.if_else(pa.array(blank), pa.nulls(n, pa.string()), k["AttendStatus"])
            ms = int(self.win.month_start[m])
            day = pc.if_else(pa.array(early), _dates(np.full(n, ms - 3)), k["CareContDate"])
            k = k.set_column(k.schema.get_field_index("AttendStatus"), "AttendStatus", att)
            k = k.set_column(k.schema.get_field_index("CareContDate"), "CareContDate", day)
            k = pa.concat_tables([k, k.take(pa.array(dup, pa.int64()))])
            st = self.stats["MHS201CareContact"]
            st["injected_missing_required"] += int(blank.sum())
            st["injected_duplicate_rows"] += len(dup)
            st["injected_out_of_month"] += int((early & ~blank).sum())
            st["rows"] += len(dup)
            out["MHS201CareContact"] = k
        for prov, mm in sorted(self.resub):
            if mm != m:
                continue
            orig_id = int(self.sub_base[prov, m])
            for name, t in list(out.items()):
                mask = pc.equal(t["OrgIDProv"], self.prov_codes[prov])
                sub = t.filter(mask)
                if name in ("MHS201CareContact", "MHS606CodedScoreAssessmentRefer") and sub.num_rows:
                    sub = sub.filter(pa.array(rng.random(sub.num_rows) >= 0.08))
                sid = sub.schema.get_field_index("UniqSubmissionID")
                sub = sub.set_column(
                    sid, "UniqSubmissionID", pa.array(np.full(sub.num_rows, orig_id), pa.int64())
                )
                out[name] = pa.concat_tables([t, sub])
                self.stats[name]["superseded_rows"] += sub.num_rows
                self.stats[name]["rows"] += sub.num_rows
        return out

    def months(self) -> Iterator[tuple[int, dict[str, pa.Table]]]:
        self.prepare_events()
        for m in range(self.M):
            yield m, self.month_tables(m)

    def resubmission_list(self) -> list[dict]:
        return [
            {
                "provider": self.prov_codes[p],
                "month_index": m,
                "superseded_submission_id": int(self.sub_base[p, m]),
                "final_submission_id": int(self.sub_base[p, m]) + 1,
            }
            for p, m in sorted(self.resub)
        ]
