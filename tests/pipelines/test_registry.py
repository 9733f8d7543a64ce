"""Tests for pipelines/registry.py.

The real registry is checked against the specs themselves (ids, domains, polarity, unit and method
are parsed out of spec/02's catalogue tables, the published columns out of spec/04), so the tests
fail when a spec gains an indicator we lack. The bad fixtures in data/bad_indicators/ each carry one
defect and must all be reported together, naming file and field (CONVENTIONS C2).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest
import yaml

from pipelines import registry as reg
from pipelines.registry import Registry, RegistryError, load_registry

REPO = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parent / "data" / "bad_indicators"
# The specs live beside the repo (shared/spec/); CMH_SPEC_DIR points elsewhere if needed.
SPEC_DIR = Path(os.environ.get("CMH_SPEC_DIR", REPO.parent / "shared" / "spec"))
SPEC_DIR = SPEC_DIR if SPEC_DIR.is_dir() else None
needs_spec = pytest.mark.skipif(SPEC_DIR is None, reason="shared/spec/ (the project specs) not found")

DOMAINS = {"access": "access", "waiting": "waiting", "outcomes": "outcomes", "employment": "employment",
           "data quality": "data_quality"}  # fmt: skip


def _catalogue() -> dict[str, dict]:
    """spec/02 catalogue rows, one entry per id: domain, polarity, unit/method cell, definition."""
    text = (SPEC_DIR / "02-indicators.md").read_text(encoding="utf-8")
    catalogue = text.split("## Catalogue", 1)[1].split("## Statistical methods", 1)[0]
    rows, domain = {}, None
    for line in catalogue.splitlines():
        if line.startswith("### "):
            domain = next(d for h, d in DOMAINS.items() if line[4:].lower().startswith(h))
        elif line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            ids = re.findall(r"`([a-z][a-z0-9_]*)`", cells[0])
            # companion ids are declared inside the definition cell ("Companion ids `a` (02), `b` (11).")
            if companions := re.search(r"Companion ids? (.*?)\.", line):
                ids += re.findall(r"`([a-z][a-z0-9_]*)`", companions.group(1))
            for i in ids:
                rows[i] = {"domain": domain, "definition": cells[1], "polarity": cells[-1].split()[0],
                           "unit_method": cells[2] if len(cells) == 4 else None}  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def spec() -> dict[str, dict]:
    if SPEC_DIR is None:
        pytest.skip("shared/spec/ not found")
    return _catalogue()


# --- the real registry -------------------------------------------------------------------------


@needs_spec
def test_every_spec_id_is_declared_and_no_other(registry, spec):
    assert len(spec) >= 37, "spec/02 parsing found too few ids; has the table layout changed?"
    assert sorted(set(spec) - set(registry.ids)) == [], "ids in spec/02 missing from indicators/"
    assert sorted(set(registry.ids) - set(spec)) == [], "indicators/ declares ids not in spec/02"


def test_file_name_is_id_and_one_file_per_indicator(registry):
    files = sorted(p.stem for p in reg.DEFAULT_PATH.glob("*.y*ml"))
    assert files == sorted(registry.ids)


@needs_spec
def test_domain_and_polarity_match_spec(registry, spec):
    for ind_id, row in spec.items():
        ind = registry.get(ind_id)
        assert (ind_id, ind.domain, ind.polarity) == (ind_id, row["domain"], row["polarity"])


@needs_spec
def test_unit_and_method_match_spec(registry, spec):
    for ind_id, row in spec.items():
        cell, ind = row["unit_method"], registry.get(ind_id)
        if ind_id.endswith("_pct"):
            assert (ind_id, ind.unit, ind.method) == (ind_id, "%", "wilson")
        if cell is None:
            continue
        expected_unit = {"%": "%", "rate per 10,000": "per 10,000", "count": "count", "days": "days",
                         "ratio": "ratio"}  # fmt: skip
        for prefix, unit in expected_unit.items():
            if cell.startswith(prefix):
                assert (ind_id, ind.unit) == (ind_id, unit)
        if "Wilson" in cell:
            assert ind.method == "wilson", ind_id
        if "Byar" in cell:
            assert ind.method == "byar", ind_id
        if "t interval" in cell:
            assert ind.method == "t", ind_id
        if "no limits" in cell:
            assert ind.method in ("none", "quantile_cont"), ind_id


@needs_spec
def test_wait_band_only_where_spec_says(registry, spec):
    expected = {i for i, row in spec.items() if "wait_band" in row["definition"]}
    assert expected == {"waiting_second_contact_count", "four_week_waiting_list_count"}
    assert {i.id for i in registry if "wait_band" in i.breakdowns} == expected


def test_breakdowns(registry):
    # spec/02: every indicator for `all` and each derived dimension; data quality for `all` only. The
    # representation ratio needs a population, which disability and sexual orientation lack.
    dims = {"ethnicity_group", "age_band", "gender", "imd_quintile", "disability", "sexual_orientation"}
    for ind in registry:
        if ind.domain == "data_quality":
            assert ind.breakdowns == ("all",), ind.id
        elif ind.id == "access_representation_ratio":
            assert set(ind.breakdowns) == {"all", "ethnicity_group", "age_band", "gender", "imd_quintile"}
        else:
            assert dims <= set(ind.breakdowns), ind.id


def test_headline_tiles_are_the_overview_of_spec_06(registry):
    # spec/06 Overview: access, four-week wait, second-contact wait, rejected referrals,
    # PROM completion and reliable improvement.
    assert {i.id for i in registry.headline()} == {
        "access_2plus_contacts",
        "four_week_wait_pct",
        "wait_second_contact_28d_pct",
        "referrals_rejected_pct",
        "prom_paired_pct",
        "reqol10_reliable_improvement_pct",
    }


@pytest.mark.parametrize(
    ("ind_id", "pattern"),
    [
        ("dialog_item_reliable_improvement_pct", r"not independent"),
        ("gbo_reliable_improvement_pct", r"not independent"),
        ("four_week_wait_pct", r"meaningful assessment"),
        ("four_week_waiting_list_count", r"meaningful\s+assessment"),
        ("referrals_rejected_pct", r"latest data"),
        ("access_2plus_contacts", r"[Dd]isability and sexual orientation.*count"),
        ("access_2plus_contacts", r"three age bands"),
        ("access_2plus_contacts", r"[Ee]mail, text and messaging"),
        ("wait_second_contact_28d_pct", r"[Ee]mail, text and messaging"),
        ("contacts_per_person", r"[Ee]mail, text and messaging"),
        ("reqol10_reliable_recovery_pct", r"cut-off 25"),
    ],
)
def test_required_caveats(registry, ind_id, pattern):
    assert any(re.search(pattern, c) for c in registry.get(ind_id).caveats), (ind_id, pattern)


def test_nhs_england_deviations_are_stated(registry):
    # spec/02: where the catalogue follows an NHS England measure and deviates, the caveats say so.
    for ind in registry:
        assert ind.caveats, f"{ind.id}: every indicator states at least one limitation"
        if ind.nhse_measure:
            assert any("NHS England" in c for c in ind.caveats), ind.id


def test_kind_specific_fields(registry):
    assert registry.get("wait_second_contact_p90_days").quantile_p == 0.9
    assert registry.get("wait_second_contact_median_days").quantile_p == 0.5
    assert registry.get("access_representation_ratio").derived_from == "access_2plus_contacts"
    assert registry.get("access_2plus_contacts").multiplier == 10_000
    assert all(i.sql is None for i in registry if i.kind != "custom")


# --- the API -----------------------------------------------------------------------------------


def test_iteration_is_display_order_and_get_by_id(registry):
    orders = [i.display_order for i in registry]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert [i.id for i in registry] == list(registry.ids)
    assert registry.get("dna_rate_pct").id == "dna_rate_pct" and "dna_rate_pct" in registry
    with pytest.raises(KeyError, match="did you mean dna_rate_pct"):
        registry.get("dna_rate_pc")


def test_load_is_cached_and_models_are_frozen(registry):
    assert load_registry() is registry
    assert load_registry(reg.DEFAULT_PATH) is registry
    with pytest.raises(pydantic.ValidationError):
        registry.get("dna_rate_pct").polarity = "high"


@needs_spec
def test_to_frame_has_the_spec_04_columns_first(registry):
    text = (SPEC_DIR / "04-warehouse-and-outputs.md").read_text(encoding="utf-8")
    block = re.search(r"### `indicators`[^\n]*\n(.*?)\.\n", text, re.S).group(1)
    spec_cols = [c.strip() for c in block.replace("\n", " ").split(",")]
    df = registry.to_frame()
    assert list(df.columns[: len(spec_cols)]) == spec_cols
    assert {"short_title", "domain", "kind", "headline", "display_order", "nhse_measure"} <= set(df.columns)
    assert list(df["indicator_id"]) == list(registry.ids)
    row = df.set_index("indicator_id").loc["four_week_wait_pct"]
    assert isinstance(row["caveats"], list) and row["caveats"] == list(
        registry.get("four_week_wait_pct").caveats
    )
    assert df["definition"].notna().all() and df["title"].notna().all()


def test_no_duckdb_import():
    code = "import sys, pipelines.registry as r; r.load_registry(); print('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


# --- bad registries ----------------------------------------------------------------------------

# (file, field, words the message must contain): one defect per fixture file.
EXPECTED_ISSUES = [
    ("unknown_field.yaml", "why_it_matters", "unknown field"),
    ("bad_polarity.yaml", "polarity", "'high', 'low' or 'none' (got 'up')"),
    ("id_mismatch.yaml", "id", "must equal the file name 'id_mismatch'"),
    ("missing_text.yaml", "definition", "required field is missing"),
    ("missing_text.yaml", "numerator_definition", "must not be empty"),
    ("custom_no_sql.yaml", "sql", "kind 'custom' needs sql: 'ind_custom_no_sql.sql'"),
    ("custom_missing_sql_file.yaml", "sql", "file not found"),
    ("kind_method_mismatch.yaml", "method", "kind 'proportion' needs method 'wilson', got 'byar'"),
    ("broken_yaml.yaml", "", "not valid YAML at line 5"),
    ("duplicate_order.yaml", "display_order", "also used by custom_missing_sql_file.yaml"),
]


@pytest.fixture(scope="module")
def bad_error() -> RegistryError:
    with pytest.raises(RegistryError) as exc:
        load_registry(BAD, require_sql=True)
    return exc.value


@pytest.mark.parametrize(
    ("file", "field", "words"), EXPECTED_ISSUES, ids=[f"{f}:{g}" for f, g, _ in EXPECTED_ISSUES]
)
def test_each_bad_file_names_file_and_field(bad_error, file, field, words):
    messages = [i.message for i in bad_error.issues if (i.file, i.field) == (file, field)]
    assert messages, f"no issue reported for {file} {field}"
    assert any(words in m for m in messages), messages
    prefix = f"{file}: {field}: " if field else f"{file}: "
    assert any(line.startswith(f"  - {prefix}") for line in str(bad_error).splitlines())


def test_all_bad_files_reported_together_and_nothing_else(bad_error):
    assert sorted((i.file, i.field) for i in bad_error.issues) == sorted(
        (f, g) for f, g, _ in EXPECTED_ISSUES
    )
    assert {i.file for i in bad_error.issues} == {p.name for p in BAD.glob("*.yaml")}
    assert str(bad_error).startswith(f"{len(EXPECTED_ISSUES)} problem(s)")


def test_missing_sql_file_only_checked_when_required():
    with pytest.raises(RegistryError) as exc:
        load_registry(BAD)
    assert "custom_missing_sql_file.yaml" not in {i.file for i in exc.value.issues}
    assert len(exc.value.issues) == len(EXPECTED_ISSUES) - 1


def _write(folder: Path, data: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{data['id']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_custom_indicator_with_its_sql_file_loads(tmp_path):
    data = yaml.safe_load((reg.DEFAULT_PATH / "referrals_received.yaml").read_text(encoding="utf-8"))
    data |= {"id": "my_custom", "kind": "custom", "sql": "ind_my_custom.sql"}
    _write(tmp_path / "indicators", data)
    with pytest.raises(RegistryError, match="sql: file not found"):
        load_registry(tmp_path / "indicators", require_sql=True)
    (tmp_path / "sql" / "30_indicators").mkdir(parents=True)
    (tmp_path / "sql" / "30_indicators" / "ind_my_custom.sql").write_text("select 1\n", encoding="utf-8")
    loaded = load_registry(tmp_path / "indicators", require_sql=True)
    assert loaded.get("my_custom").sql == "ind_my_custom.sql"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"sql": "select * from x"}, "sql", "only kind 'custom'"),
        ({"kind": "custom", "sql": "select * from referrals"}, "sql", "must be the file name 'ind_x.sql'"),
        ({"multiplier": 1000}, "multiplier", "does not match unit 'per 10,000'"),
        (
            {"kind": "ratio", "unit": "ratio", "method": "ratio", "multiplier": None, "derived_from": "nope"},
            "derived_from",
            "'nope' is not a non-ratio indicator",
        ),  # fmt: skip
        ({"domain": "data_quality"}, "breakdowns", "breakdown 'all' only"),
        ({"source_tables": ["MHS999Nothing"]}, "source_tables", "unknown table"),
        ({"provenance": {"authored_by": "x", "date_reviewed": "soon"}}, "provenance.date_reviewed", "date"),
        ({"caveats": ["fine", ""]}, "caveats[1]", "must not be empty"),
    ],
)
def test_cross_field_rules(tmp_path, change, field, words):
    data = yaml.safe_load((reg.DEFAULT_PATH / "referrals_received.yaml").read_text(encoding="utf-8"))
    _write(tmp_path / "indicators", data | {"id": "x"} | change)
    with pytest.raises(RegistryError) as exc:
        load_registry(tmp_path / "indicators")
    assert [(i.field, words in i.message) for i in exc.value.issues] == [(field, True)], exc.value


def test_duplicate_yaml_keys_are_rejected(tmp_path):
    (tmp_path / "x.yaml").write_text("id: x\nid: y\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="duplicate key 'id'"):
        load_registry(tmp_path)


# --- the checked-in JSON Schema and the --check command ----------------------------------------


def test_schema_file_is_up_to_date():
    assert reg.schema_is_current(), "run: python -m pipelines.registry --write-schema"


def test_check_fails_on_stale_schema_and_bad_registry(tmp_path, capsys):
    data = yaml.safe_load((reg.DEFAULT_PATH / "dna_rate_pct.yaml").read_text(encoding="utf-8"))
    _write(tmp_path, data)
    (tmp_path / reg.SCHEMA_FILE).write_text("{}\n", encoding="utf-8")
    assert reg.main(["--check", "--path", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert reg.main(["--write-schema", "--path", str(tmp_path)]) == 0
    assert reg.main(["--check", "--path", str(tmp_path)]) == 0
    _write(tmp_path, data | {"id": "other", "polarity": "up"})
    assert reg.main(["--check", "--path", str(tmp_path)]) == 1
    assert "other.yaml: polarity" in capsys.readouterr().err


def test_check_command_passes_on_the_repo():
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.registry", "--check"], capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
