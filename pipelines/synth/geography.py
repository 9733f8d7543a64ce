"""Synthetic geography: ICBs, places, PCNs, GP practices, LSOAs and registered populations.

The `demo` scale is the Community Mental Health Framework's worked example (Westside and Eastside,
shared/reference/westside_eastside.csv) with the demographics of its "demographics box"; `icb` and
`national` are built from the same recipe with randomised neighbourhood profiles so that every scale
has the same kinds of variation (deprivation, ethnicity, age structure, SMI prevalence).

Population is held at the level of LSOA x age band x gender x ethnicity group ("cells"); the people
who are referred are drawn from these cells, so population.csv is consistent with them by
construction.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data"  # vendored copies of shared/reference

AGE_BANDS = ("18-25", "26-64", "65+")
GENDERS = ("male", "female")
ETHNICITY_GROUPS = ("White", "Mixed", "Asian", "Black", "Other")
ADULTS_PER_LSOA = 1300  # an LSOA holds about 1,500 people, ~1,300 of them adults


@dataclass
class Neighbourhood:
    name: str
    place: str
    adults: int
    smi_pct: float
    depression_pct: float
    young: float  # share aged 18-25
    old: float  # share aged 65+
    ethnicity: tuple[float, float, float, float, float]  # White, Mixed, Asian, Black, Other
    imd: tuple[float, float, float, float, float]  # P(quintile 1..5) for its LSOAs
    enclave: tuple[float, float] | None = None  # (share of LSOAs, Other share there): a Chinese area
    pcns: int = 1


@dataclass
class Region:
    """One ICB: everything the activity model needs, as flat numpy arrays."""

    icb_code: str
    icb_name: str
    places: list[tuple[str, str]]  # (code, name)
    pcns: list[dict]  # code, name, place_code, neighbourhood index
    practices: list[dict]  # code, name, pcn_code ('' = outside any PCN), place_code, list_size
    practice_moves: list[dict]  # practices that change PCN: code, from, to, date
    providers: list[dict]  # code, name, type, serves (list of place codes)
    neighbourhoods: list[Neighbourhood]
    lsoa_codes: np.ndarray  # str
    lsoa_decile: np.ndarray  # int8 1..10
    lsoa_pcn: np.ndarray  # index into pcns
    lsoa_la: np.ndarray  # str LA district code
    # cells: one per lsoa x age x gender x ethnicity
    cell_lsoa: np.ndarray = field(default=None)
    cell_age: np.ndarray = field(default=None)
    cell_gender: np.ndarray = field(default=None)
    cell_eth: np.ndarray = field(default=None)
    cell_pop: np.ndarray = field(default=None)

    @property
    def adults(self) -> int:
        return int(self.cell_pop.sum())


def _westside_eastside() -> list[Neighbourhood]:
    """The worked example's 14 neighbourhoods with profiles matching its demographics box."""
    rows = list(csv.DictReader((REFERENCE_DIR / "westside_eastside.csv").open()))
    west = {
        # young, old, (W, M, A, B, O), imd quintile probabilities
        "Westside Central": (0.13, 0.26, (0.80, 0.03, 0.12, 0.035, 0.015), (0.42, 0.25, 0.15, 0.10, 0.08)),
        "St Christopher": (0.12, 0.27, (0.83, 0.03, 0.09, 0.035, 0.015), (0.40, 0.25, 0.17, 0.10, 0.08)),
        "Fourie Hill": (0.10, 0.31, (0.92, 0.02, 0.03, 0.02, 0.01), (0.22, 0.28, 0.25, 0.15, 0.10)),
    }
    city = (0.12, 0.02, 0.04, 0.02)  # Mixed, Asian, Black, Other in the two city neighbourhoods
    east_default = (0.09, 0.37, (0.88, 0.08, 0.02, 0.01, 0.01), (0.01, 0.06, 0.20, 0.33, 0.40))
    east = {
        "Eastside City": (0.30, 0.14, (1 - sum(city), *city), (0.02, 0.15, 0.25, 0.28, 0.30)),
        # a smaller area with a predominantly Chinese population (EthnicCategory R, group "Other")
        "Eastside City North": (0.24, 0.18, (0.73, 0.12, 0.02, 0.03, 0.10), (0.12, 0.22, 0.25, 0.21, 0.20)),
        "Hayes": (0.10, 0.33, (0.86, 0.08, 0.03, 0.02, 0.01), (0.15, 0.25, 0.25, 0.20, 0.15)),
    }
    out = []
    for r in rows:
        name = r["neighbourhood"]
        young, old, eth, imd = west.get(name) or east.get(name) or east_default
        nb = Neighbourhood(
            name=name,
            place=r["place"],
            adults=int(r["adult_population"]),
            smi_pct=float(r["smi_prevalence_pct"]),
            depression_pct=float(r["depression_prevalence_pct"]),
            young=young,
            old=old,
            ethnicity=eth,
            imd=imd,
            enclave=(0.25, 0.75) if name == "Eastside City North" else None,
            pcns=2 if name == "Eastside City" else 1,
        )
        out.append(nb)
    return out


def _random_neighbourhoods(
    rng: np.random.Generator, adults: int, places: list[str], size: tuple[int, int]
) -> list[Neighbourhood]:
    """Neighbourhoods (one PCN each) of `size` adults with varied deprivation, ethnicity and age
    profiles. spec/07 implies ~50k adults per PCN at `icb` scale (1.5 m, ~30 PCNs) and ~36k nationally
    (45 m, ~1,250 PCNs); the caller passes the range."""
    sizes = []
    left = adults
    while left > 0:
        s = int(rng.integers(size[0], size[1] + 1))
        s = left if left - s < size[0] else s
        sizes.append(s)
        left -= s
    out = []
    for i, s in enumerate(sizes):
        dep = rng.beta(1.3, 3.0)  # 0 = affluent, 1 = deprived
        urban = rng.random() < 0.45
        q = np.array([dep**0.7, 0.5 * dep + 0.1, 0.2, 0.5 * (1 - dep) + 0.1, (1 - dep) ** 1.5])
        q = q / q.sum()
        diverse = rng.beta(1.2, 5.0) * (1.6 if urban else 0.6)
        m, a, b, o = (
            0.35 * diverse,
            0.40 * diverse * rng.uniform(0.5, 1.5),
            0.18 * diverse * (0.5 + dep),
            0.07 * diverse,
        )
        eth = (max(0.2, 1 - m - a - b - o), m, a, b, o)
        eth = tuple(float(x) for x in np.array(eth) / sum(eth))
        young = float(rng.uniform(0.16, 0.30) if urban else rng.uniform(0.08, 0.13))
        old = float(rng.uniform(0.12, 0.20) if urban else rng.uniform(0.25, 0.40))
        smi = float(np.clip(rng.normal(0.75 + 0.45 * dep + (0.15 if urban else 0), 0.12), 0.45, 1.4))
        out.append(
            Neighbourhood(
                name=f"Neighbourhood {i + 1}",
                place=places[i * len(places) // len(sizes)],
                adults=s,
                smi_pct=round(smi, 2),
                depression_pct=round(float(rng.normal(8.5, 1.2)), 2),
                young=young,
                old=old,
                ethnicity=eth,
                imd=tuple(float(x) for x in q),
                enclave=(0.2, 0.6) if rng.random() < 0.05 else None,
            )
        )
    return out


class CodeAllocator:
    """Unique realistic-looking codes (PCN U#####, practice A#####, LSOA E01######)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.used: set[str] = set()

    def take(self, prefix: str, digits: int, lo: int = 0) -> str:
        while True:
            code = f"{prefix}{int(self.rng.integers(lo, 10**digits)):0{digits}d}"
            if code not in self.used:
                self.used.add(code)
                return code


def build_region(
    rng: np.random.Generator,
    codes: CodeAllocator,
    *,
    icb_code: str,
    icb_name: str,
    neighbourhoods: list[Neighbourhood],
    place_names: list[str],
    provider_codes: tuple[str, str, str],
    provider_names: tuple[str, str, str],
    unmapped_practices: int,
) -> Region:
    places = [(f"{icb_code[1:]}{chr(ord('A') + i)}", name) for i, name in enumerate(place_names)]
    place_code = dict((n, c) for c, n in places)
    pcns, practices = [], []
    lsoa_codes, lsoa_decile, lsoa_pcn, lsoa_la, lsoa_nb = [], [], [], [], []
    for ni, nb in enumerate(neighbourhoods):
        nb_pcns = []
        for k in range(nb.pcns):
            suffix = "" if nb.pcns == 1 else (" University", " Riverside", " Park")[k]
            pcn = {
                "code": codes.take("U", 5, 10_000),
                "name": f"{nb.name}{suffix} PCN",
                "place_code": place_code[nb.place],
                "neighbourhood": ni,
            }
            pcns.append(pcn)
            nb_pcns.append(len(pcns) - 1)
            share = nb.adults / nb.pcns
            n_prac = int(np.clip(round(share / 8000), 3, 7))
            sizes = rng.dirichlet(np.full(n_prac, 4.0)) * share
            for s in sizes:
                practices.append(
                    {
                        "code": codes.take("A", 5, 80_000),
                        "name": f"{nb.name} Practice {len(practices) + 1}",
                        "pcn_code": pcn["code"],
                        "place_code": pcn["place_code"],
                        "list_size": float(s),
                    }
                )
        n_lsoa = max(4, round(nb.adults / ADULTS_PER_LSOA))
        la = f"E0{'6' if nb.place == neighbourhoods[0].place else '7'}000{100 + ni % 3 + 10 * (ni % 2):03d}"
        # quintiles shared out to the LSOAs in proportion (largest remainder), in random order
        share = np.array(nb.imd) / sum(nb.imd) * n_lsoa
        k = np.floor(share).astype(int)
        k[np.argsort(-(share - k), kind="stable")[: n_lsoa - k.sum()]] += 1
        quint = rng.permutation(np.repeat(np.arange(1, 6), k))
        dec = quint * 2 - rng.integers(0, 2, size=n_lsoa)
        for j in range(n_lsoa):
            lsoa_codes.append(codes.take("E01", 6, 0))
            lsoa_decile.append(int(dec[j]))
            lsoa_pcn.append(nb_pcns[j * nb.pcns // n_lsoa])
            lsoa_la.append(la)
            lsoa_nb.append(ni)
    # Practices outside any PCN: small, registered from the same neighbourhoods' residents.
    for k in range(unmapped_practices):
        nb_i = int(rng.integers(0, len(neighbourhoods)))
        practices.append(
            {
                "code": codes.take("A", 5, 80_000),
                "name": f"{neighbourhoods[nb_i].name} Independent Surgery {k + 1}",
                "pcn_code": "",
                "place_code": place_code[neighbourhoods[nb_i].place],
                "list_size": 0.0,
                "neighbourhood": nb_i,
            }
        )
    # One practice changes PCN part-way through (the mapping is dated).
    moves = []
    mapped = [p for p in practices if p["pcn_code"]]
    if len(pcns) > 1:
        mover = mapped[int(rng.integers(0, len(mapped)))]
        others = [
            p["code"]
            for p in pcns
            if p["code"] != mover["pcn_code"] and p["place_code"] == mover["place_code"]
        ]
        if others:
            moves.append({"code": mover["code"], "from": mover["pcn_code"], "to": others[0]})
    providers = [
        {
            "code": provider_codes[0],
            "name": provider_names[0],
            "type": "NHS trust",
            "serves": [c for c, _ in places],
        },
        {
            "code": provider_codes[1],
            "name": provider_names[1],
            "type": "VCSE",
            "serves": [c for c, _ in places[: max(1, len(places) // 2)]],
        },
        {
            "code": provider_codes[2],
            "name": provider_names[2],
            "type": "VCSE",
            "serves": [c for c, _ in places[max(1, len(places) // 2) :]] or [places[-1][0]],
        },
    ]
    region = Region(
        icb_code=icb_code,
        icb_name=icb_name,
        places=places,
        pcns=pcns,
        practices=practices,
        practice_moves=moves,
        providers=providers,
        neighbourhoods=neighbourhoods,
        lsoa_codes=np.array(lsoa_codes),
        lsoa_decile=np.array(lsoa_decile, dtype=np.int8),
        lsoa_pcn=np.array(lsoa_pcn, dtype=np.int32),
        lsoa_la=np.array(lsoa_la),
    )
    _fill_cells(rng, region, np.array(lsoa_nb, dtype=np.int32))
    return region


def _fill_cells(rng: np.random.Generator, region: Region, lsoa_nb: np.ndarray) -> None:
    """Split each neighbourhood's adults over its LSOAs x age x gender x ethnicity."""
    nbs = region.neighbourhoods
    n_lsoa = len(lsoa_nb)
    # LSOA populations: neighbourhood total shared out with mild variation, summing exactly.
    pop_lsoa = np.zeros(n_lsoa)
    for ni, nb in enumerate(nbs):
        idx = np.flatnonzero(lsoa_nb == ni)
        w = rng.gamma(20.0, size=len(idx))
        pop_lsoa[idx] = nb.adults * w / w.sum()
    eth = np.array([nbs[i].ethnicity for i in lsoa_nb])
    for ni, nb in enumerate(nbs):
        if nb.enclave:
            idx = np.flatnonzero(lsoa_nb == ni)
            k = max(1, round(nb.enclave[0] * len(idx)))
            enc = idx[:k]
            rest = idx[k:]
            other_rest = max(0.005, (nb.ethnicity[4] - nb.enclave[0] * nb.enclave[1]) / (1 - nb.enclave[0]))
            for sel, other in ((enc, nb.enclave[1]), (rest, other_rest)):
                base = np.array(nb.ethnicity[:4])
                eth[sel, :4] = base / base.sum() * (1 - other)
                eth[sel, 4] = other
    age = np.array([(nbs[i].young, 1 - nbs[i].young - nbs[i].old, nbs[i].old) for i in lsoa_nb])
    female = np.array([0.50, 0.505, 0.55])  # share female by age band
    # cell population = lsoa pop x age share x gender share x ethnicity share (older people are whiter)
    age_eth_tilt = np.array(
        [[0.85, 1.3, 1.2, 1.2, 1.3], [1.0, 1.0, 1.0, 1.0, 1.0], [1.15, 0.4, 0.6, 0.6, 0.5]]
    )
    cells = []
    for a in range(3):
        e = eth * age_eth_tilt[a]
        e = e / e.sum(axis=1, keepdims=True)
        for g in range(2):
            gs = female[a] if g == 1 else 1 - female[a]
            p = pop_lsoa[:, None] * age[:, a : a + 1] * gs * e
            cells.append(p)
    pop = np.stack(cells, axis=1)  # lsoa x (age*gender) x eth
    # integerise per LSOA by largest remainder so neighbourhood totals hold exactly
    flat = pop.reshape(n_lsoa, -1)
    floor = np.floor(flat)
    rem = flat - floor
    target = np.zeros(n_lsoa, dtype=np.int64)
    for ni, nb in enumerate(nbs):
        idx = np.flatnonzero(lsoa_nb == ni)
        t = pop_lsoa[idx]
        tf = np.floor(t).astype(np.int64)
        short = nb.adults - tf.sum()
        order = np.argsort(-(t - tf), kind="stable")
        tf[order[:short]] += 1
        target[idx] = tf
    need = target - floor.sum(axis=1).astype(np.int64)
    order = np.argsort(-rem, axis=1, kind="stable")
    add = np.zeros_like(floor)
    rows = np.arange(n_lsoa)[:, None]
    add[rows, order] = (np.arange(flat.shape[1])[None, :] < need[:, None]).astype(float)
    counts = (floor + add).astype(np.int64)
    li, ag, ei = np.meshgrid(np.arange(n_lsoa), np.arange(6), np.arange(5), indexing="ij")
    region.cell_lsoa = li.ravel().astype(np.int32)
    region.cell_age = (ag.ravel() // 2).astype(np.int8)
    region.cell_gender = (ag.ravel() % 2).astype(np.int8)
    region.cell_eth = ei.ravel().astype(np.int8)
    region.cell_pop = counts.ravel()
    for p in region.practices:
        if not p["pcn_code"]:
            p["list_size"] = 0.0


def demo_regions(seed_rng: np.random.Generator) -> list[Region]:
    codes = CodeAllocator(seed_rng)
    nbs = _westside_eastside()
    return [
        build_region(
            seed_rng,
            codes,
            icb_code="QWE",
            icb_name="NHS Westside and Eastside Integrated Care Board (synthetic)",
            neighbourhoods=nbs,
            place_names=["Westside", "Eastside"],
            provider_codes=("RWE", "NWV01", "NEV02"),
            provider_names=(
                "Westside and Eastside Mental Health NHS Foundation Trust (synthetic)",
                "Westside Wellbeing Collective (synthetic VCSE)",
                "Eastside Minds Together (synthetic VCSE)",
            ),
            unmapped_practices=2,
        )
    ]


def synthetic_regions(seed_rng: np.random.Generator, scale: str) -> list[tuple[int, str, int]]:
    """Plan of ICBs for the `icb` and `national` scales: (index, code, adults)."""
    if scale == "icb":
        return [(0, "QIC", 1_500_000)]
    n = 42
    shares = seed_rng.dirichlet(np.full(n, 3.0))
    adults = np.maximum(450_000, shares * 45_000_000)
    adults = np.round(adults / adults.sum() * 45_000_000).astype(int)
    letters = [f"Q{chr(ord('A') + i // 26)}{chr(ord('A') + i % 26)}" for i in range(n)]
    return [(i, letters[i], int(adults[i])) for i in range(n)]


def build_synthetic_region(
    rng: np.random.Generator, codes: CodeAllocator, index: int, icb_code: str, adults: int
) -> Region:
    n_places = int(np.clip(round(adults / 400_000), 1, 6)) if adults > 600_000 else 2
    place_names = [f"{icb_code} Place {i + 1}" for i in range(n_places)]
    size = (42_000, 58_000) if icb_code == "QIC" else (28_000, 44_000)
    nbs = _random_neighbourhoods(rng, adults, place_names, size)
    return build_region(
        rng,
        codes,
        icb_code=icb_code,
        icb_name=f"NHS Synthetic ICB {index + 1} ({icb_code})",
        neighbourhoods=nbs,
        place_names=place_names,
        provider_codes=(f"R{icb_code[1:]}", f"N{icb_code[1:]}01", f"N{icb_code[1:]}02"),
        provider_names=(
            f"Synthetic Mental Health NHS Trust {index + 1}",
            f"Synthetic Community Wellbeing {index + 1}A (VCSE)",
            f"Synthetic Community Wellbeing {index + 1}B (VCSE)",
        ),
        unmapped_practices=max(1, adults // 400_000),
    )
