"""Generator options: determinism, formats, MHSDS versions and the command line."""

from __future__ import annotations

import hashlib

import duckdb
import pyarrow.parquet as pq
from click.testing import CliRunner

from pipelines import contract as C
from pipelines.cli import main
from pipelines.synth.generate import SynthConfig, generate


def _digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _small(tmp_path, name, **kw):
    cfg = dict(scale="demo", months=2, start=(2025, 3), seed=7, out=tmp_path / name, progress=False)
    cfg.update(kw)
    generate(SynthConfig(**cfg))
    return tmp_path / name


def test_same_seed_and_start_give_byte_identical_files(tmp_path):
    a = _digest(_small(tmp_path, "a"))
    b = _digest(_small(tmp_path, "b"))
    assert len(a) == 2 * len(C.TABLES) + 4 + 1  # tables x months, reference files, ground truth
    assert a == b
    c = _digest(_small(tmp_path, "c", seed=8))
    assert c["2025-03/MHS201CareContact.csv"] != a["2025-03/MHS201CareContact.csv"]


def test_v5_field_names_and_legacy_team_code(tmp_path):
    out = _small(tmp_path, "v5", mhsds_version=5, months=1)
    con = duckdb.connect()
    cols = [
        r[0]
        for r in con.execute(
            f"describe select * from read_csv('{out}/2025-03/MHS201CareContact.csv')"
        ).fetchall()
    ]
    assert "AttendOrDNACode" in cols and "AttendStatus" not in cols
    gp = [
        r[0] for r in con.execute(f"describe select * from read_csv('{out}/2025-03/MHS002GP.csv')").fetchall()
    ]
    assert "GMPCodeReg" in gp and "GMPReg" not in gp
    teams = {
        r[0]
        for r in con.execute(
            f"select distinct ServTeamTypeRefToMH from read_csv('{out}/2025-03/MHS101Referral.csv')"
        ).fetchall()
    }
    assert "C03" in teams and "C10" not in teams


def test_parquet_has_typed_columns_and_the_same_rows_as_csv(tmp_path):
    pq_out = _small(tmp_path, "pq", fmt="parquet", months=1)
    csv_out = _small(tmp_path, "csv", months=1)
    for name, table in C.TABLES.items():
        t = pq.read_table(pq_out / "2025-03" / f"{name}.parquet")
        assert t.column_names == table.columns
        n_csv = (
            duckdb.connect()
            .execute(f"select count(*) from read_csv('{csv_out}/2025-03/{name}.csv', all_varchar=true)")
            .fetchone()[0]
        )
        assert t.num_rows == n_csv, name
    t = pq.read_table(pq_out / "2025-03" / "MHS201CareContact.parquet")
    assert str(t.schema.field("CareContDate").type) == "date32[day]"
    assert str(t.schema.field("UniqMonthID").type) == "int64"


def test_cli_refuses_to_overwrite_and_rejects_bad_start(tmp_path):
    runner = CliRunner()
    out = tmp_path / "x"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    r = runner.invoke(main, ["synth", "--out", str(out), "--months", "1", "--quiet"])
    assert r.exit_code != 0 and "--force" in r.output
    assert (out / "keep.txt").exists()
    r = runner.invoke(main, ["synth", "--out", str(tmp_path / "y"), "--start", "2025-13", "--quiet"])
    assert r.exit_code != 0 and "YYYY-MM" in r.output


def test_cli_generates_and_summarises(tmp_path):
    r = CliRunner().invoke(
        main, ["synth", "--out", str(tmp_path / "z"), "--months", "1", "--start", "2025-06", "--quiet"]
    )
    assert r.exit_code == 0, r.output
    assert "Wrote 1 month folders of demo data" in r.output
    assert (tmp_path / "z" / "2025-06" / "MHS101Referral.csv").exists()
