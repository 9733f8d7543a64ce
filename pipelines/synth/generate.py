"""`cmh synth`: orchestrate the synthetic extract generator and write ground_truth.json.

Regions (ICBs) are generated one after another, each from its own seed derived from the run's seed,
so a region's data never depends on how many regions came before it and memory is bounded by the
largest region. Reference files are written last from the same in-memory geography.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipelines import contract as C
from pipelines.synth import activity, geography
from pipelines.synth.monthly import EPOCH, RegionTables
from pipelines.synth.writer import MonthWriter


@dataclass(frozen=True)
class SynthConfig:
    scale: str = "demo"
    months: int = 24
    start: tuple[int, int] = (2024, 11)
    seed: int = 20190901
    out: Path = Path("var/inbox")
    fmt: str = "csv"
    mhsds_version: int = 6
    icb_limit: int | None = None
    progress: bool = True


def _day(y: int, m: int) -> int:
    return int((np.datetime64(f"{y:04d}-{m:02d}-01", "D") - EPOCH).astype(int))


def make_window(start: tuple[int, int], months: int) -> activity.Window:
    y, m = start
    days = []
    for i in range(months + 1):
        n = y * 12 + m - 1 + i
        days.append(_day(n // 12, n % 12 + 1))
    n = y * 12 + m - 1 - activity.CASELOAD_MONTHS
    return activity.Window(month_start=np.array(days, dtype=np.int64), ext_start=_day(n // 12, n % 12 + 1))


def month_label(win: activity.Window, m: int) -> str:
    d = (EPOCH + int(win.month_start[m])).astype(object)
    return f"{d.year:04d}-{d.month:02d}"


def _regions_plan(cfg: SynthConfig):
    """Yields (index, builder) for each region; builders run lazily to keep memory bounded."""
    root = np.random.SeedSequence([cfg.seed, {"demo": 1, "icb": 2, "national": 3}[cfg.scale]])
    geo_rng = np.random.default_rng(root.spawn(1)[0])
    codes = geography.CodeAllocator(geo_rng)
    plan = [(0, "QWE", None)] if cfg.scale == "demo" else geography.synthetic_regions(geo_rng, cfg.scale)
    if cfg.icb_limit:
        plan = plan[: cfg.icb_limit]
    for index, code, adults in plan:
        rs = np.random.SeedSequence([cfg.seed, 17, index])
        rng_geo, rng_act = (np.random.default_rng(s) for s in rs.spawn(2))
        if cfg.scale == "demo":
            region = geography.demo_regions(rng_geo)[0]
        else:
            region = geography.build_synthetic_region(rng_geo, codes, index, code, adults)
        yield index, region, rng_act


def generate(cfg: SynthConfig) -> str:
    t0 = time.perf_counter()
    out = cfg.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    win = make_window(cfg.start, cfg.months)
    writer = MonthWriter(out, cfg.fmt, cfg.mhsds_version)
    n_regions = 1 if cfg.scale != "national" else (cfg.icb_limit or 42)
    bar = tqdm(
        total=n_regions * (cfg.months + 1),
        disable=not cfg.progress,
        unit="step",
        file=sys.stderr,
        desc=f"synth {cfg.scale}",
        dynamic_ncols=True,
    )
    regions, stats, resubs, counts = (
        [],
        {},
        [],
        {"people": 0, "referrals": 0, "in_scope_received": 0, "contacts_in_window": 0},
    )
    for index, region, rng in _regions_plan(cfg):
        bar.set_postfix_str(f"{region.icb_code}: simulating")
        sim = activity.simulate(rng, region, win)
        rt = RegionTables(rng, region, sim, win, index)
        bar.update(1)
        for m, tables in rt.months():
            bar.set_postfix_str(f"{region.icb_code}: {month_label(win, m)}")
            for name, t in tables.items():
                writer.write(month_label(win, m), name, t)
            bar.update(1)
        for name, st in rt.stats.items():
            agg = stats.setdefault(name, {})
            for k, v in st.items():
                agg[k] = agg.get(k, 0) + int(v)
        for r in rt.resubmission_list():
            r["month"] = month_label(win, r.pop("month_index"))
            resubs.append(r)
        R = sim.R
        counts["people"] += sim.P.n
        counts["referrals"] += int(((R.end >= win.start) & (R.received <= win.end)).sum())
        counts["in_scope_received"] += int((activity.IN_SCOPE[R.team] & (R.received >= win.start)).sum())
        counts["contacts_in_window"] += int(((sim.K.day >= win.start) & (sim.K.day <= win.end)).sum())
        regions.append(_region_summary(region, sim))
        del sim, rt
    for m in range(cfg.months):
        for name in C.TABLES:
            writer.ensure(month_label(win, m), name)
    writer.close()
    bar.set_postfix_str("reference files")
    _write_reference(out / "reference", regions, win)
    bar.close()
    truth = ground_truth(cfg, win, stats, resubs, counts, regions)
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    secs = time.perf_counter() - t0
    return (
        f"Wrote {cfg.months} month folders of {cfg.scale} data to {out} "
        f"({writer.rows_written:,} rows; {counts['people']:,} people, "
        f"{counts['in_scope_received']:,} in-scope referrals received, "
        f"{counts['contacts_in_window']:,} contacts) in {secs:.1f} s"
    )


def _region_summary(region: geography.Region, sim) -> dict:
    """Keep only what the reference files need, so the region's arrays can be freed."""
    pcn_of_lsoa = region.lsoa_pcn[region.cell_lsoa]
    quint = (region.lsoa_decile[region.cell_lsoa] + 1) // 2
    return {
        "region": region,
        "pop": {
            "pcn": pcn_of_lsoa,
            "age": region.cell_age,
            "gender": region.cell_gender,
            "eth": region.cell_eth,
            "quint": quint,
            "n": region.cell_pop,
        },
    }


def _write_reference(ref: Path, regions: list[dict], win: activity.Window) -> None:
    ref.mkdir(parents=True, exist_ok=True)
    move_day = (EPOCH + int(win.month_start[len(win.month_start) // 2]) + 9).astype(object)
    with (ref / "gp_practice_pcn.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(
            [
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
            ]
        )
        for r in regions:
            reg = r["region"]
            pcn_name = {p["code"]: p["name"] for p in reg.pcns}
            place_name = dict(reg.places)
            moves = {m["code"]: m for m in reg.practice_moves}
            for p in reg.practices:
                base = [p["code"], p["name"]]
                tail = [p["place_code"], place_name[p["place_code"]], reg.icb_code, reg.icb_name]
                if p["code"] in moves:
                    mv = moves[p["code"]]
                    end = move_day.fromordinal(move_day.toordinal() - 1).isoformat()
                    w.writerow(base + [mv["from"], pcn_name[mv["from"]]] + tail + ["2019-07-01", end])
                    w.writerow(base + [mv["to"], pcn_name[mv["to"]]] + tail + [move_day.isoformat(), ""])
                else:
                    w.writerow(
                        base + [p["pcn_code"], pcn_name.get(p["pcn_code"], "")] + tail + ["2019-07-01", ""]
                    )
    with (ref / "lsoa_imd.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["lsoa_code", "imd_decile"])
        for r in regions:
            reg = r["region"]
            for code, dec in zip(reg.lsoa_codes, reg.lsoa_decile, strict=True):
                w.writerow([code, int(dec)])
    with (ref / "population.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["pcn_code", "age_band", "gender", "ethnicity_group", "imd_quintile", "population"])
        for r in regions:
            reg, pop = r["region"], r["pop"]
            key = (
                ((pop["pcn"].astype(np.int64) * 3 + pop["age"]) * 2 + pop["gender"]) * 5 + pop["eth"]
            ) * 5 + (pop["quint"] - 1)
            uniq, inv = np.unique(key, return_inverse=True)
            total = np.bincount(inv, weights=pop["n"]).astype(np.int64)
            for k, n in zip(uniq, total, strict=True):
                k = int(k)
                q, k = k % 5 + 1, k // 5
                e, k = k % 5, k // 5
                g, k = k % 2, k // 2
                a, pcn = k % 3, k // 3
                w.writerow(
                    [
                        reg.pcns[pcn]["code"],
                        geography.AGE_BANDS[a],
                        geography.GENDERS[g],
                        geography.ETHNICITY_GROUPS[e],
                        q,
                        int(n),
                    ]
                )
    with (ref / "providers.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["provider_code", "provider_name", "provider_type", "icb_code"])
        for r in regions:
            reg = r["region"]
            for p in reg.providers:
                w.writerow([p["code"], p["name"], p["type"], reg.icb_code])


def ground_truth(cfg, win, stats, resubs, counts, regions) -> dict:
    P = activity.PLANTED
    poor = [r["region"].providers[2]["code"] for r in regions]
    return {
        "about": "Effects planted by the synthetic generator, for tests that check the pipeline finds them. "
        "Multipliers are relative to everyone else in the same neighbourhood.",
        "generator": {
            "scale": cfg.scale,
            "seed": cfg.seed,
            "start": f"{cfg.start[0]:04d}-{cfg.start[1]:02d}",
            "months": cfg.months,
            "format": cfg.fmt,
            "mhsds_version": cfg.mhsds_version,
            "first_month": month_label(win, 0),
            "last_month": month_label(win, cfg.months - 1),
        },
        "planted_inequalities": [
            {
                "id": "access_other_ethnicity",
                "indicator_id": "access_2plus_contacts",
                "dimension": "ethnicity_group",
                "group": "Other",
                "reference": "White",
                "direction": "lower",
                "referral_rate_multiplier": P.access_other_mult,
                "note": "under-represented in access relative to population (incl. the Chinese community)",
            },
            {
                "id": "waits_asian",
                "indicator_id": "wait_second_contact_28d_pct",
                "dimension": "ethnicity_group",
                "group": "Asian",
                "reference": "White",
                "direction": "lower",
                "wait_multiplier": P.wait_asian_mult,
                "also": ["wait_second_contact_median_days higher", "four_week_wait_pct lower"],
            },
            {
                "id": "emergency_justice_black",
                "indicator_id": "referral_route_emergency_justice_pct",
                "dimension": "ethnicity_group",
                "group": "Black",
                "reference": "White",
                "direction": "higher",
                "source_share_multiplier": P.black_emergency_justice_mult,
            },
            {
                "id": "access_older",
                "indicator_id": "access_2plus_contacts",
                "dimension": "age_band",
                "group": "65+",
                "reference": "26-64",
                "direction": "lower",
                "referral_rate_multiplier": P.access_65plus_mult,
            },
            {
                "id": "improvement_deprived",
                "indicator_id": "reqol10_reliable_improvement_pct",
                "dimension": "imd_quintile",
                "group": "1",
                "reference": "5",
                "direction": "lower",
                "latent_improvement_shift_sd": P.improvement_imd1_shift,
                "also": [
                    "dialog_item_reliable_improvement_pct lower",
                    "gbo_reliable_improvement_pct lower",
                    "SII of reqol10_reliable_improvement_pct across IMD quintiles is positive "
                    "(improvement rises from most to least deprived)",
                ],
            },
            {
                "id": "dna_young",
                "indicator_id": "dna_rate_pct",
                "dimension": "age_band",
                "group": "18-25",
                "reference": "26-64",
                "direction": "higher",
                "dna_multiplier": P.dna_18_25_mult,
            },
            {
                "id": "ethnicity_recording_provider",
                "indicator_id": "dq_ethnicity_known_pct",
                "geography_level": "provider",
                "providers": poor,
                "direction": "lower",
                "share_not_known": P.ethnicity_unknown_poor_provider,
                "others_share_not_known": [0.06, 0.10],
            },
        ],
        "resubmissions": resubs,
        "file_rows": stats,
        "counts": counts,
        "geography": [
            {
                "icb_code": r["region"].icb_code,
                "places": len(r["region"].places),
                "pcns": len(r["region"].pcns),
                "practices": len(r["region"].practices),
                "lsoas": len(r["region"].lsoa_codes),
                "adults": r["region"].adults,
                "practices_outside_pcn": [p["code"] for p in r["region"].practices if not p["pcn_code"]],
                "practice_moves": r["region"].practice_moves,
            }
            for r in regions
        ],
        "notes": [
            "population.csv counts adults registered with practices in a PCN; the few people registered at a "
            "practice outside any PCN (pcn UNMAPPED) are not in it.",
            "People with no MHS002GP row, or practice V81999, have no usable practice (place/PCN UNKNOWN).",
            "Injected faults: blank AttendStatus (missing required field), duplicated contact rows (duplicate "
            "key within a submission) and contacts dated before their month; counts per table in file_rows.",
        ],
    }
