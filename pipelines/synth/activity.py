"""Synthetic people, referrals, contacts, PROMs, care plans and recorded characteristics for one ICB.

Everything is vectorised with numpy (one array per field, one element per entity) so that the
`national` scale (millions of referrals, tens of millions of contacts) stays fast; the only loops are
over small things (neighbourhoods, code lists). Dates are int32 days since 1970-01-01.

The planted inequalities (PLANTED below) are written to ground_truth.json by the caller so tests can
check the pipeline recovers them. Their sizes are chosen to be clearly detectable at `demo` scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from pipelines import contract as C
from pipelines.synth.geography import Region

# ---------------------------------------------------------------------------------------------
# Planted effects (relative to everyone else unless stated)
PLANTED = SimpleNamespace(
    access_other_mult=0.35,  # ethnicity group "Other" (incl. the Chinese community) under-referred
    access_65plus_mult=0.45,  # people aged 65+ under-referred
    wait_asian_mult=1.8,  # longer waits to first and second contact for Asian people
    black_emergency_justice_mult=3.0,  # referral via ED (H1) or justice (E1-E6) for Black people
    dna_18_25_mult=2.2,  # did-not-attend rate at 18-25
    improvement_imd1_shift=-0.45,  # mean latent improvement lower in IMD quintile 1
    ethnicity_unknown_poor_provider=0.35,  # share of MPI rows with ethnicity not known at one VCSE
)

IN_SCOPE_RATE = 0.0283  # core + access-scope referrals per adult per year (demo: ~40k in 24 months)
OUT_OF_SCOPE_SHARE = 0.15
CASELOAD_MONTHS = 36  # referrals received up to 3 years before the window may still be open in it

# team types: core CMH, access extras, and out-of-scope types (crisis, perinatal, memory, ...)
TEAM_CODES = np.array(
    C.CORE_TEAM_TYPES + C.ACCESS_EXTRA_TEAM_TYPES + ("A02", "A07", "A11", "A17", "A18", "C02")
)
TEAM_P = np.array(
    [0.16, 0.42, 0.02, 0.03, 0.05, 0.08, 0.04, 0.03, 0.05, 0.03, 0.04, 0.015, 0.02, 0.02, 0.02, 0.015]
)
TEAM_P_OLD = TEAM_P * np.array([1, 1, 1, 1, 1, 1, 1, 1, 0.1, 0.3, 1, 6, 1, 8, 1, 0])
# median referral length in days by team type, lognormal sigma 0.8
TEAM_MEDIAN_DAYS = np.array([90, 240, 700, 700, 180, 180, 365, 240, 1000, 270, 30, 200, 20, 120, 10, 250])
IN_SCOPE = np.isin(TEAM_CODES, C.CORE_TEAM_TYPES + C.ACCESS_EXTRA_TEAM_TYPES)
VCSE_TEAMS = np.isin(TEAM_CODES, ("A05", "A12", "A13"))

SOURCES = np.array(
    ["A1", "B1", "B2", "G4", "H1", "E1", "E2", "E3", "E5", "H2", "C1", "P1", "M7", "A3", "I2", "M4"]
)
SOURCE_P = np.array(
    [0.52, 0.10, 0.03, 0.05, 0.05, 0.012, 0.006, 0.006, 0.006, 0.06, 0.03, 0.05, 0.05, 0.02, 0.005, 0.01]
)
EMERG_JUSTICE = np.isin(SOURCES, C.SOURCE_EMERGENCY_JUSTICE)

ETH_CODES = {  # codes within each group, and probabilities
    0: (("A", "B", "C"), (0.80, 0.03, 0.17)),
    1: (("D", "E", "F", "G"), (0.2, 0.15, 0.2, 0.45)),
    2: (("H", "J", "K", "L"), (0.25, 0.5, 0.1, 0.15)),
    3: (("M", "N", "P"), (0.45, 0.45, 0.10)),
    4: (("R", "S"), (0.6, 0.4)),
}
ATTEND = np.array(["5", "6", "7", "3", "2", "4"])
ATTEND_P = np.array([0.80, 0.03, 0.01, 0.08, 0.04, 0.04])
MECH = np.array(["01", "02", "11", "04", "05", "09", "10", "98"])
MECH_P = np.array([0.64, 0.22, 0.08, 0.003, 0.01, 0.015, 0.01, 0.022])


@dataclass
class Window:
    month_start: np.ndarray  # int32 day of the 1st of each window month (+ one past the end)
    ext_start: int  # first day referrals are generated from (caseload)

    @property
    def start(self) -> int:
        return int(self.month_start[0])

    @property
    def end(self) -> int:  # last day of the window
        return int(self.month_start[-1]) - 1

    def month_of(self, day: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_start, day, side="right") - 1


def _choice(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right").clip(0, len(p) - 1)


def _group_rank(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2... within runs of equal (sorted) keys."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(keys[1:] != keys[:-1]) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    return np.arange(n) - run_start


def simulate(rng: np.random.Generator, region: Region, win: Window) -> SimpleNamespace:
    """All entities for one region. Returns a namespace of people (P), referrals (R), contacts (K),
    PROM scores (S), care plans (CP) and inpatient spells (H)."""
    P, R = _people_and_referrals(rng, region, win)
    K = _contacts(rng, R, P, win)
    CP = _care_plans(rng, R)
    S = _proms(rng, R, P, K, win)
    H = _spells(rng, R, win)
    return SimpleNamespace(P=P, R=R, K=K, S=S, CP=CP, H=H)


def _people_and_referrals(rng, region: Region, win: Window):
    nbs = region.neighbourhoods
    cell_nb = np.array([p["neighbourhood"] for p in region.pcns])[region.lsoa_pcn[region.cell_lsoa]]
    quint = (region.lsoa_decile[region.cell_lsoa] + 1) // 2
    mult = np.ones(len(region.cell_pop))
    mult *= np.where(region.cell_eth == 4, PLANTED.access_other_mult, 1.0)
    mult *= np.where(region.cell_age == 2, PLANTED.access_65plus_mult, 1.0)
    mult *= np.where(region.cell_age == 0, 1.2, 1.0)
    mult *= np.select([quint == 1, quint == 2], [1.25, 1.1], 1.0)
    mult *= np.where(region.cell_gender == 1, 1.1, 1.0)
    raw = region.cell_pop * mult
    # need-driven volumes: each neighbourhood's expected referrals are proportional to its SMI count
    smi = np.array([nb.adults * nb.smi_pct for nb in nbs])
    k = (IN_SCOPE_RATE / (1 - OUT_OF_SCOPE_SHARE)) * sum(nb.adults for nb in nbs) / smi.sum()
    nb_raw = np.bincount(cell_nb, weights=raw, minlength=len(nbs))
    years = (win.end - win.ext_start + 1) / 365.25
    lam = raw / nb_raw[cell_nb] * (k * smi)[cell_nb] * years
    n_ref = rng.poisson(lam)
    ref_cell = np.repeat(np.arange(len(lam)), n_ref)
    nr = len(ref_cell)
    # people: most referrals are a new person; ~20% are a re-referral of someone in the same cell
    rank = _group_rank(ref_cell)
    new = (rank == 0) | (rng.random(nr) < 0.8)
    person_seq = np.cumsum(new) - 1
    first_person_of_cell = person_seq[rank == 0]
    cell_order = np.cumsum(rank == 0) - 1
    persons_so_far = person_seq - first_person_of_cell[cell_order] + 1
    pick = first_person_of_cell[cell_order] + (rng.random(nr) * persons_so_far).astype(np.int64)
    ref_person = np.where(new, person_seq, pick)
    n_people = int(new.sum())
    p_cell = ref_cell[new]

    P = SimpleNamespace(n=n_people)
    P.cell = p_cell
    P.lsoa = region.cell_lsoa[p_cell]
    P.age_band = region.cell_age[p_cell]
    P.gender = region.cell_gender[p_cell]
    P.eth_group = region.cell_eth[p_cell]
    P.quint = quint[p_cell]
    P.nb = cell_nb[p_cell]
    P.pcn = region.lsoa_pcn[P.lsoa]
    lo = np.array([18, 26, 65])[P.age_band]
    span = np.array([8, 39, 25])[P.age_band]
    age_at_end = lo + rng.random(n_people) * span * np.where(P.age_band == 2, rng.random(n_people), 1)
    P.birth = (win.end - age_at_end * 365.25).astype(np.int32)
    # exact ethnic category within group (Westside's Asian communities are mostly Pakistani)
    eth_code = np.empty(n_people, dtype=object)
    for g, (codes, p) in ETH_CODES.items():
        sel = np.flatnonzero(P.eth_group == g)
        eth_code[sel] = np.array(codes)[_choice(rng, len(sel), np.array(p))]
    westside = np.array([nb.place == nbs[0].place for nb in nbs])[P.nb]
    sel = np.flatnonzero(westside & (P.eth_group == 2) & (rng.random(n_people) < 0.5))
    eth_code[sel] = "J"
    enclave = np.array([nb.enclave is not None for nb in nbs])[P.nb] & (P.eth_group == 4)
    eth_code[enclave & (rng.random(n_people) < 0.9)] = "R"
    P.eth_code = eth_code.astype(str)
    # GP practice: by list size within the PCN; a few outside any PCN, a few with none
    prac_codes = np.array([p["code"] for p in region.practices])
    prac_pcn = np.array([p["pcn_code"] for p in region.practices])
    pcn_codes = np.array([p["code"] for p in region.pcns])
    P.practice = np.full(n_people, -1, dtype=np.int32)
    for pi, code in enumerate(pcn_codes):
        idx = np.flatnonzero(P.pcn == pi)
        cand = np.flatnonzero(prac_pcn == code)
        sizes = np.array([region.practices[c]["list_size"] for c in cand])
        P.practice[idx] = cand[_choice(rng, len(idx), sizes)]
    unmapped = np.flatnonzero(prac_pcn == "")
    u = rng.random(n_people)
    to_unmapped = np.flatnonzero(u < 0.007)
    if len(unmapped):
        P.practice[to_unmapped] = unmapped[rng.integers(0, len(unmapped), len(to_unmapped))]
    P.no_practice = (u >= 0.007) & (u < 0.019)  # no MHS002 row at all
    P.sentinel = (u >= 0.019) & (u < 0.024)  # V81999 "no registered practice"
    P.practice_codes = prac_codes
    # 3% move practice (to any mapped practice) during the window
    P.move_day = np.where(rng.random(n_people) < 0.03, rng.integers(win.start, win.end, n_people), -1)
    mapped = np.flatnonzero(prac_pcn != "")
    pick = rng.integers(0, len(mapped), n_people)
    pick = np.where(
        mapped[pick] == P.practice, (pick + 1) % len(mapped), pick
    )  # a move is to another practice
    P.new_practice = mapped[pick]
    P.la = region.lsoa_la[P.lsoa]
    P.lsoa_code = region.lsoa_codes[P.lsoa]
    P.gender_id = np.where(
        rng.random(n_people) < 0.008, 3, np.where(rng.random(n_people) < 0.002, 4, P.gender + 1)
    )
    # characteristics a person would report (recorded or not is decided per provider at write time)
    young, old = P.age_band == 0, P.age_band == 2
    emp_p = np.array([0.21, 0.16, 0.05, 0.25, 0.08, 0.07, 0.02, 0.06, 0.10])
    P.employ = _choice(rng, n_people, emp_p)
    P.employ = np.where(young & (rng.random(n_people) < 0.35), 2, P.employ)  # students
    P.employ = np.where(old & (rng.random(n_people) < 0.75), 7, P.employ)  # retired
    P.employ = np.where((P.quint == 1) & (P.employ == 0) & (rng.random(n_people) < 0.35), 1, P.employ)
    P.disabled = rng.random(n_people) < (0.38 + 0.2 * old)
    P.disab_code = rng.integers(1, 11, n_people)
    P.second_disab = P.disabled & (rng.random(n_people) < 0.1)
    so = np.array(
        [
            "20430005",
            "89217008",
            "76102007",
            "42035005",
            "765288000",
            "1064711000000108",
            "729951000000104",
            "440583007",
        ]
    )
    so_p = np.array([0.84, 0.02, 0.02, 0.04, 0.01, 0.01, 0.05, 0.01])
    P.sexor = so[_choice(rng, n_people, so_p)]

    # ---- referrals
    R = SimpleNamespace(n=nr)
    R.person = ref_person
    R.received = rng.integers(win.ext_start, win.end + 1, nr).astype(np.int32)
    old_r = P.age_band[ref_person] == 2
    team = _choice(rng, nr, TEAM_P)
    team_old = _choice(rng, nr, TEAM_P_OLD)
    R.team = np.where(old_r, team_old, team)
    place_of = np.array([region.pcns[i]["place_code"] for i in range(len(region.pcns))])[P.pcn[ref_person]]
    prov = np.zeros(nr, dtype=np.int8)
    for vi in (1, 2):
        serves = np.isin(place_of, region.providers[vi]["serves"])
        prov = np.where(serves & VCSE_TEAMS[R.team] & (rng.random(nr) < 0.35), vi, prov)
    R.provider = prov
    black = P.eth_group[ref_person] == 3
    src_p_black = SOURCE_P * np.where(EMERG_JUSTICE, PLANTED.black_emergency_justice_mult, 1.0)
    R.source = np.where(black, _choice(rng, nr, src_p_black), _choice(rng, nr, SOURCE_P))
    R.source = np.where(rng.random(nr) < 0.02, -1, R.source)  # not recorded
    R.priority = _choice(rng, nr, np.array([0.02, 0.10, 0.85, 0.03]))  # codes 1..4
    R.reason = rng.integers(1, 29, nr)
    age_ref = ((R.received - P.birth[ref_person]) / 365.25).astype(np.int32)
    R.age = age_ref
    age_missing_p = np.array([0.004, 0.02, 0.02])[prov]
    R.age_missing = rng.random(nr) < age_missing_p
    # outcomes of the referral
    rej_p = np.where(R.team == 0, 0.12, 0.07)
    R.rejected = rng.random(nr) < rej_p
    R.lost = ~R.rejected & (rng.random(nr) < 0.02)  # accepted, never seen, still open
    dur = np.exp(np.log(TEAM_MEDIAN_DAYS[R.team]) + 0.8 * rng.standard_normal(nr))
    R.dur = dur
    R.reject_reason = rng.integers(1, 4, nr)
    R.close_reason = rng.integers(1, 10, nr)
    R.closure_recorded = rng.random(nr) < 0.6
    # PCN-level service variation in waits, so PCNs differ (funnel plots have something to show)
    pcn_factor = np.exp(0.25 * rng.standard_normal(len(region.pcns)))
    R.wait_mult = (
        np.where(P.eth_group[ref_person] == 2, PLANTED.wait_asian_mult, 1.0)
        * pcn_factor[P.pcn[ref_person]]
        * np.where(R.priority <= 1, 0.35, 1.0)
    )
    return P, R


def _contacts(rng, R, P, win: Window):
    nr = R.n
    w1 = rng.gamma(2.0, 7.0, nr) * R.wait_mult
    w2 = rng.gamma(2.0, 5.0, nr) * R.wait_mult
    interval = rng.uniform(14, 50, nr)
    c0 = R.received + w1
    single = rng.random(nr) < 0.12
    end = R.received + np.maximum(R.dur, w1 + w2 + 1)
    end = np.where(single, c0 + rng.uniform(1, 14, nr), end)
    end = np.where(R.rejected, R.received + rng.uniform(2, 21, nr), end)
    end = np.where(R.lost, R.received + rng.uniform(400, 900, nr), end)
    R.end = np.floor(end).astype(np.int64)
    R.end_kind = np.where(R.rejected, 1, 0)  # 1 rejection, 0 discharge
    c1 = c0 + w2
    n = np.where(c0 > end, 0, np.where(c1 > end, 1, 2 + np.floor((end - c1) / interval)))
    n = np.where(R.rejected | R.lost, 0, n).clip(0, 150).astype(np.int64)
    ref = np.repeat(np.arange(nr), n)
    k = _group_rank(ref)
    day = c0[ref] + (k >= 1) * w2[ref] + np.maximum(k - 1, 0) * interval[ref]
    day = day + (k >= 2) * rng.uniform(-3, 3, len(ref))
    day = np.floor(day).astype(np.int64)
    keep = day <= R.end[ref]
    ref, k, day = ref[keep], k[keep], day[keep]
    m = len(ref)
    young = P.age_band[R.person[ref]] == 0
    ap = ATTEND_P.copy()
    ap_young = ATTEND_P * np.array([1, 1, PLANTED.dna_18_25_mult, PLANTED.dna_18_25_mult, 1, 1])
    att = np.where(young, _choice(rng, m, ap_young), _choice(rng, m, ap))
    K = SimpleNamespace(ref=ref, day=day, attend=att, mech=_choice(rng, m, MECH_P))
    K.minute = (rng.integers(8 * 4, 18 * 4, m) * 15).astype(np.int32)
    K.duration = np.where(rng.random(m) < 0.03, -1, rng.integers(3, 13, m) * 5).astype(np.int32)
    attended = att <= 1  # codes 5, 6
    # first and last attended contact of each referral (before windowing), for care plans/PROMs
    big = np.iinfo(np.int64).max
    first_att = np.full(nr, big)
    np.minimum.at(first_att, ref[attended], day[attended])
    last_att = np.full(nr, -1)
    np.maximum.at(last_att, ref[attended], day[attended])
    n_att = np.bincount(ref[attended], minlength=nr)
    R.first_att, R.last_att, R.n_att = first_att, last_att, n_att
    R.n_contacts = np.bincount(ref, minlength=nr)
    K.attended = attended
    return K


def _care_plans(rng, R):
    nr = R.n
    has = (R.n_att >= 1) & (rng.random(nr) < 0.75)
    idx = np.flatnonzero(has)
    created = R.first_att[idx] + rng.integers(0, 22, len(idx))
    pre = rng.random(len(idx)) < 0.03  # a plan carried over from before this referral
    last_update = np.where(pre, created, created + rng.integers(0, 60, len(idx)))
    created = np.where(pre, R.received[idx] - rng.integers(30, 400, len(idx)), created)
    agreed = rng.random(len(idx)) < 0.85
    agreed_day = np.where(pre, last_update, created + rng.integers(0, 15, len(idx)))
    return SimpleNamespace(
        ref=idx,
        created=created,
        last_update=last_update,
        pre=pre,
        agreed=agreed,
        agreed_day=agreed_day,
        ptype=np.where(rng.random(len(idx)) < 0.1, "12", "10"),
    )


def _proms(rng, R, P, K, win):
    nr = R.n
    prov_p = np.array([0.50, 0.35, 0.35])[R.provider]
    base = (R.n_att >= 2) & IN_SCOPE[R.team] & (rng.random(nr) < prov_p)
    idx = np.flatnonzero(base)
    n = len(idx)
    use_dialog = rng.random(n) < 0.45
    use_reqol = rng.random(n) < 0.55
    use_gbo = rng.random(n) < 0.25
    use_reqol |= ~(use_dialog | use_gbo)
    t0 = R.first_att[idx]
    follow = (R.last_att[idx] - t0 >= 42) & (rng.random(n) < 0.6)
    t2 = R.last_att[idx]
    mid = follow & (rng.random(n) < 0.25)
    t1 = t0 + (t2 - t0) // 2
    quint = P.quint[R.person[idx]]
    z = rng.normal(0.55 + np.where(quint == 1, PLANTED.improvement_imd1_shift, 0.0), 1.0)
    rows_ref, rows_tool, rows_score, rows_day = [], [], [], []

    def add(sel, tool, score, day):
        rows_ref.append(idx[sel])
        rows_tool.append(np.full(sel.sum() if sel.dtype == bool else len(sel), tool, dtype=object))
        rows_score.append(np.asarray(score)[sel])
        rows_day.append(np.asarray(day)[sel])

    # ReQoL-10 total (0-40)
    b = np.clip(np.round(rng.normal(17, 6, n)), 0, 40)
    ch = 6 * z + rng.normal(0, 3, n)
    add(use_reqol, C.REQOL10_TOTAL, b, t0)
    add(use_reqol & mid, C.REQOL10_TOTAL, np.clip(np.round(b + ch / 2 + rng.normal(0, 2, n)), 0, 40), t1)
    add(use_reqol & follow, C.REQOL10_TOTAL, np.clip(np.round(b + ch), 0, 40), t2)
    # DIALOG items 1-11 (1-7)
    for item in C.DIALOG_ITEMS:
        bi = np.clip(np.round(rng.normal(3.8, 1.2, n)), 1, 7)
        ci = np.round(0.9 * z + rng.normal(0, 0.9, n))
        add(use_dialog, item, bi, t0)
        add(use_dialog & follow, item, np.clip(bi + ci, 1, 7), t2)
    # GBO goals (0-10), one to three goals
    goals = rng.integers(1, 4, n)
    for gi, code in enumerate(C.GBO_GOALS):
        sel = use_gbo & (goals > gi)
        bg = np.clip(np.round(rng.normal(3, 1.5, n)), 0, 10)
        cg = np.round(2.8 * z + rng.normal(0, 1.8, n))
        add(sel, code, bg, t0)
        add(sel & follow, code, np.clip(bg + cg, 0, 10), t2)
    # another scored tool that the outcome indicators ignore (PHQ-9 total)
    phq = rng.random(n) < 0.1
    add(phq, "720433000", rng.integers(0, 28, n), t0)
    ref = np.concatenate(rows_ref)
    S = SimpleNamespace(
        ref=ref,
        tool=np.concatenate(rows_tool).astype(str),
        score=np.concatenate(rows_score).astype(np.int64),
        day=np.concatenate(rows_day),
    )
    S.second = (rng.integers(9 * 3600, 18 * 3600, len(ref))).astype(np.int64)
    return S


def _spells(rng, R, win):
    sel = np.flatnonzero(IN_SCOPE[R.team] & (R.n_att >= 2) & (rng.random(R.n) < 0.025))
    start = R.first_att[sel] + rng.integers(5, 60, len(sel))
    keep = start < R.end[sel]
    sel, start = sel[keep], start[keep]
    disch = start + rng.integers(7, 60, len(sel))
    return SimpleNamespace(ref=sel, start=start, disch=disch)
