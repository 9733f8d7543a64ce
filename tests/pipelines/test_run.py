"""The whole pipeline on real files: what a published build holds, that nothing is lost, that the
same inputs publish the same figures, that planted inequalities come out as significant gaps, and
that a bad input leaves the previous build live."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.publish import current_build, table_hash
from pipelines.synth.generate import SynthConfig, generate

SPEC04 = {
    "indicator_values": ["indicator_id", "period_end", "geography_level", "geography_code", "breakdown",
                         "breakdown_value", "numerator", "denominator", "value", "lower_95", "upper_95",
                         "lower_998", "upper_998", "method", "suppressed", "significance_95", "significance_998",
                         "benchmark_value"],
    "inequality_summary": ["indicator_id", "period_end", "geography_level", "geography_code", "dimension",
                           "measure", "group_value", "value", "lower_95", "upper_95", "suppressed"],
    "indicators": ["indicator_id", "title", "definition", "numerator_definition", "denominator_definition", "unit",
                   "polarity", "method", "caveats", "source_tables"],
    "build_info": ["build_id", "built_at", "data_hash", "code_version", "first_period", "last_period",
                   "rows_loaded", "rows_rejected", "rows_superseded"],
    "load_report": ["month", "table", "file", "rows_read", "rows_loaded", "rows_rejected", "rows_superseded",
                    "rows_out_of_scope", "status", "message"],
    "quarantine": ["month", "table", "file", "line_number", "reason", "raw_record"],
}  # fmt: skip


@pytest.fixture(scope="module")
def wh(demo_warehouse):
    return duckdb.connect(str(demo_warehouse / "current.duckdb"), read_only=True)


@pytest.fixture(scope="module")
def truth(demo_inbox):
    return json.loads((demo_inbox / "ground_truth.json").read_text())


def test_published_tables_have_the_spec_columns_and_no_person_level_rows(wh):
    for table, cols in SPEC04.items():
        have = [r[0] for r in wh.execute(f"describe {table}").fetchall()]
        assert set(cols) <= set(have), (table, set(cols) - set(have))
    tables = {r[0] for r in wh.execute("show tables").fetchall()}
    assert not any(t.startswith(("stg_", "int_", "load_", "fct_", "ref_")) for t in tables - {"load_report"})
    (n,) = wh.execute("select count(*) from build_info").fetchone()
    assert n == 1


def test_every_row_is_accounted_for(wh, truth):
    bad = wh.execute(
        "select file, rows_read, rows_loaded, rows_rejected, rows_superseded from load_report "
        "where rows_read <> rows_loaded + rows_rejected + rows_superseded"
    ).fetchall()
    assert bad == []
    rejected, quarantined = wh.execute(
        "select (select sum(rows_rejected) from load_report), (select count(*) from quarantine)"
    ).fetchone()
    assert rejected == quarantined
    superseded = wh.execute("select sum(rows_superseded) from load_report").fetchone()[0]
    assert superseded == sum(t.get("superseded_rows", 0) for t in truth["file_rows"].values())
    k = truth["file_rows"]["MHS201CareContact"]
    got = wh.execute("select count(*) from quarantine where \"table\" = 'MHS201CareContact'").fetchone()[0]
    assert got == k["injected_missing_required"] + k["injected_duplicate_rows"] + k["injected_out_of_month"]


def test_every_quarantined_row_names_the_line_that_holds_it(wh, demo_inbox):
    """The data team fixes rejected rows by file and line. Large CSVs are read in parallel chunks and
    several files at once, so the line number must come from the file, not from arrival order (it
    once pointed tens of thousands of lines away for a duplicate at the end of a file)."""
    rows = wh.execute(
        "select file, line_number, raw_record from quarantine where line_number is not null"
    ).fetchall()
    assert len(rows) > 100
    lines: dict[str, list[str]] = {}
    wrong = []
    for file, line, raw in rows:
        if file not in lines:
            lines[file] = (demo_inbox / file).read_text(encoding="utf-8").split("\n")
        first = next(iter(json.loads(raw).values()))  # the table's first column: its id (maybe blank)
        key = "" if first is None else str(first)
        if key not in lines[file][line - 1].split(",")[:1]:
            wrong.append((file, line, key))
    assert wrong == []


def test_no_published_count_is_small_or_unrounded(wh):
    bad = wh.execute("""select count(*) from indicator_values where
        (numerator > 0 and numerator < 5) or (denominator > 0 and denominator < 5)
        or numerator % 5 <> 0 or denominator % 5 <> 0
        or (suppressed is not null and (value is not null or lower_95 is not null or numerator is not null))""").fetchone()
    assert bad == (0,)


PLANTED_GAPS = ["access_other_ethnicity", "access_older", "waits_asian", "emergency_justice_black",
                "improvement_deprived", "dna_young"]  # fmt: skip


@pytest.mark.parametrize("planted_id", PLANTED_GAPS)
def test_planted_inequalities_are_significant_gaps_at_icb_level(wh, truth, planted_id):
    """Month by month at ICB level the published gap against the reference group is significant in
    the planted direction in at least a quarter of the months, and never in the other direction."""
    p = next(x for x in truth["planted_inequalities"] if x["id"] == planted_id)
    sign = -1 if p["direction"] == "lower" else 1
    right, wrong, months = wh.execute(
        """select count(*) filter (where significant and sign(value) = $sign),
                  count(*) filter (where significant and sign(value) = -$sign), count(distinct period_end)
           from inequality_summary where geography_level = 'icb' and measure = 'gap_abs'
           and indicator_id = $ind and dimension = $dim and group_value = $grp""",
        {"sign": sign, "ind": p["indicator_id"], "dim": p["dimension"], "grp": p["group"]},
    ).fetchone()
    assert wrong == 0
    assert right >= max(6, months // 4), (right, months)


def test_sii_for_the_deprivation_effect_has_the_planted_sign(wh):
    """Reliable improvement rises from the most to the least deprived quintile: SII > 0."""
    values = [
        r[0]
        for r in wh.execute(
            "select value from inequality_summary where indicator_id = 'reqol10_reliable_improvement_pct' "
            "and geography_level = 'icb' and measure = 'sii' and value is not null"
        ).fetchall()
    ]
    assert len(values) >= 6
    assert sum(v > 0 for v in values) >= 0.8 * len(values)


def test_poor_ethnicity_recording_provider_is_flagged(wh, truth):
    poor = truth["planted_inequalities"][-1]["providers"]
    rows = wh.execute("""select geography_code, significance_95 from indicator_values
        where indicator_id = 'dq_ethnicity_known_pct' and geography_level = 'provider'
        and period_end = (select max(period_end) from indicator_values)""").fetchall()
    flags = dict(rows)
    assert flags[poor[0]] == "worse"


@pytest.fixture(scope="module")
def small_inbox(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "inbox"
    generate(SynthConfig(months=3, start=(2025, 4), seed=3, out=out, progress=False))
    return out


def test_same_inputs_publish_identical_figures(small_inbox, tmp_path, run_pipeline):
    a = run_pipeline(small_inbox, tmp_path / "a")
    b = run_pipeline(small_inbox, tmp_path / "b")
    assert a.inbox_hash == b.inbox_hash
    for table in ("indicator_values", "inequality_summary"):
        assert table_hash(tmp_path / "a" / "current.duckdb", table) == table_hash(
            tmp_path / "b" / "current.duckdb", table
        ), table


def test_a_build_on_disk_publishes_what_a_build_in_memory_does(small_inbox, tmp_path, run_pipeline):
    # Big inboxes build their working tables in a compressed scratch file (pipeline.disk_build_from_gb);
    # 0 sends this small one there too.
    run_pipeline(small_inbox, tmp_path / "memory")
    wh = tmp_path / "disk"
    args = ["pipeline", "run", "--quiet", "--inbox", str(small_inbox), "--warehouse", str(wh)]
    out = CliRunner().invoke(main, args, env={"CMH_PIPELINE_DISK_BUILD_FROM_GB": "0"})
    assert out.exit_code == 0, out.output
    builds = list(map(json.loads, (wh / "logs" / "pipeline.jsonl").read_text().splitlines()))
    assert [e["on_disk"] for e in builds if e["stage"] == "build"] == [True]
    for table in ("indicator_values", "inequality_summary", "load_report", "quarantine"):
        assert table_hash(tmp_path / "memory" / "current.duckdb", table) == table_hash(
            wh / "current.duckdb", table
        ), table
    assert sorted(p.name for p in (wh / "state").iterdir()) == ["current"], "no scratch file is left behind"


def test_fatal_input_error_names_the_file_and_keeps_the_live_build(small_inbox, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(small_inbox, inbox)
    wh = tmp_path / "wh"
    runner = CliRunner()
    ok = runner.invoke(main, ["pipeline", "run", "--quiet", "--inbox", str(inbox), "--warehouse", str(wh)])
    assert ok.exit_code == 0, ok.output
    live = current_build(wh).build_id
    (inbox / "2025-05" / "MHS001MPI.csv").unlink()
    bad = runner.invoke(main, ["pipeline", "run", "--quiet", "--inbox", str(inbox), "--warehouse", str(wh)])
    assert bad.exit_code != 0
    assert "2025-05" in bad.output and "MHS001MPI" in bad.output
    assert current_build(wh).build_id == live
    runs = runner.invoke(main, ["pipeline", "runs", "--warehouse", str(wh)])
    assert "failed" in runs.output and "success" in runs.output
