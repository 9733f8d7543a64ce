"""The indicator registry: every indicator declared once, as data (CONVENTIONS C1-C3).

Each indicator is one YAML file in ``indicators/`` named after its id. This module is the only reader
of those files. It validates them into frozen pydantic models (``extra="forbid"``) and reports *every*
problem in one :class:`RegistryError`, so an author fixing the registry sees the whole list at once
instead of one error per run (OpenPrescribing's ``load_measure_defs`` lesson). The pipeline, the
dashboard, the API and the definitions page read indicators only through :func:`load_registry`.

It imports no DuckDB and no dashboard code, so any process (tests, CLI, gunicorn workers) can load it
cheaply without a warehouse. Trade-off: rules that tie fields together (kind -> method, unit,
multiplier) are enforced here in Python, so ``_schema.json`` (which editors use for completion)
describes the fields but not those rules.

    python -m pipelines.registry --check         # validate; fail if _schema.json is stale
    python -m pipelines.registry --write-schema  # regenerate indicators/_schema.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import functools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from pipelines.contract import REFERENCE_FILES, TABLES

if TYPE_CHECKING:
    import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = REPO_ROOT / "indicators"
SCHEMA_FILE = "_schema.json"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Domain = Literal["access", "waiting", "outcomes", "employment", "data_quality"]
Kind = Literal["proportion", "rate", "count", "mean", "quantile", "ratio", "custom"]
# `exact_poisson` is not a registry method: rows of a `byar` indicator whose count is below 10 get
# exact Poisson limits and say so in their own `method` column (spec 02/04).
Method = Literal["wilson", "byar", "t", "quantile_cont", "ratio", "none"]
Polarity = Literal["high", "low", "none"]
Unit = Literal["%", "per 10,000", "count", "days", "ratio", "contacts per person", "points"]
Breakdown = Literal[
    "all", "ethnicity_group", "age_band", "gender", "imd_quintile", "disability", "sexual_orientation",
    "wait_band",
]  # fmt: skip
SOURCE_TABLES = frozenset(TABLES) | frozenset(REFERENCE_FILES)


@dataclass(frozen=True)
class _KindRule:
    """What a typed kind implies; each kind maps onto one sql/templates/<kind>.sql."""

    methods: tuple[str, ...]
    units: tuple[str, ...] | None  # None: any unit
    multiplier: Literal["100", "required", "none", "any"]
    needs_numerator: bool
    needs_denominator: bool


KIND_RULES: dict[str, _KindRule] = {
    "proportion": _KindRule(("wilson",), ("%",), "100", True, True),
    "rate": _KindRule(("byar",), ("per 10,000",), "required", True, True),
    "count": _KindRule(("byar",), ("count",), "none", True, False),
    # a mean of per-unit values (contacts per person, change in score); `t` needs unit-level values
    "mean": _KindRule(("t", "none"), None, "none", True, True),
    # a quantile of unit-level values: there is no numerator, the denominator is the n summarised
    "quantile": _KindRule(("quantile_cont",), ("days",), "none", False, True),
    # a group's value of another indicator divided by that indicator's `all` value
    "ratio": _KindRule(("ratio",), ("ratio",), "none", True, True),
    "custom": _KindRule(Method.__args__, None, "any", True, False),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Provenance(_Frozen):
    authored_by: Text = Field(description="Who wrote or last rewrote the definition")
    date_reviewed: dt.date = Field(description="When the definition was last checked against its sources")
    sources: tuple[Text, ...] = Field((), description="Documents the definition follows (public)")


class Indicator(_Frozen):
    """One published indicator. Field order matters: later validators read earlier fields."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")] = Field(description="= file name")
    title: Text = Field(max_length=100)
    short_title: Text = Field(max_length=32, description="For tiles, table headers and axis titles")
    domain: Domain
    kind: Kind = Field(description="Calculation template: sql/templates/<kind>.sql, or custom")
    definition: Text = Field(description="Plain English, for a board audience")
    numerator_definition: Text | None = Field(None, validate_default=True)
    denominator_definition: Text | None = Field(None, validate_default=True)
    unit: Unit = Field(description="Unit of `value`; percentages are 0-100")
    multiplier: float | None = Field(None, validate_default=True, description="value = ratio x multiplier")
    polarity: Polarity = Field(description="high: higher is better; low: lower is better; none: context")
    method: Method = Field(description="Confidence-limit method (spec/04 `method` vocabulary)")
    quantile_p: float | None = Field(None, gt=0, lt=1, validate_default=True, description="kind quantile")
    derived_from: str | None = Field(None, validate_default=True, description="kind ratio: the base id")
    sql: str | None = Field(None, validate_default=True, description="kind custom: ind_<id>.sql")
    caveats: tuple[Text, ...] = Field((), description="Limitations, incl. deviations from NHS England")
    source_tables: tuple[str, ...] = Field(min_length=1, description="MHSDS tables and reference files used")
    nhse_measure: Text | None = Field(None, description="The NHS England measure id followed, if any")
    breakdowns: tuple[Breakdown, ...] = Field(min_length=1)
    headline: bool = Field(False, description="An Overview tile (spec/06)")
    display_order: int = Field(ge=0, description="Unique; sorts indicators wherever they are listed")
    provenance: Provenance

    @field_validator("numerator_definition", "denominator_definition")
    @classmethod
    def _text_needed_for_kind(cls, v: str | None, info) -> str | None:
        kind = info.data.get("kind")
        if kind is None or v is not None:
            return v
        rule = KIND_RULES[kind]
        if rule.needs_numerator if info.field_name == "numerator_definition" else rule.needs_denominator:
            raise ValueError(f"required for kind {kind!r}")
        return v

    @field_validator("multiplier")
    @classmethod
    def _multiplier_fits_kind(cls, v: float | None, info) -> float | None:
        kind, unit = info.data.get("kind"), info.data.get("unit")
        if kind is None:
            return v
        want = KIND_RULES[kind].multiplier
        if want == "100" and v != 100:
            raise ValueError(f"kind {kind!r} needs multiplier 100 (percentages are 0-100), got {v}")
        if want == "required" and (v is None or v <= 0):
            raise ValueError(f"kind {kind!r} needs a positive multiplier")
        if want == "required" and unit is not None and unit != f"per {v:,.0f}":
            raise ValueError(f"multiplier {v:,.0f} does not match unit {unit!r}")
        if want == "none" and v is not None:
            raise ValueError(f"kind {kind!r} takes no multiplier")
        return v

    @field_validator("unit", "method")
    @classmethod
    def _allowed_for_kind(cls, v: str, info) -> str:
        kind = info.data.get("kind")
        rule = KIND_RULES[kind] if kind else None
        allowed = (rule.units if info.field_name == "unit" else rule.methods) if rule else None
        if allowed is not None and v not in allowed:
            raise ValueError(
                f"kind {kind!r} needs {info.field_name} {' or '.join(map(repr, allowed))}, got {v!r}"
            )
        return v

    @field_validator("quantile_p", "derived_from")
    @classmethod
    def _parameter_of_one_kind(cls, v: object, info) -> object:
        kind, owner = (
            info.data.get("kind"),
            {"quantile_p": "quantile", "derived_from": "ratio"}[info.field_name],
        )
        if kind == owner and v is None:
            raise ValueError(f"kind {owner!r} needs {info.field_name}")
        if kind not in (None, owner) and v is not None:
            raise ValueError(f"only kind {owner!r} takes {info.field_name}")
        return v

    @field_validator("sql")
    @classmethod
    def _sql_only_for_custom(cls, v: str | None, info) -> str | None:
        kind, ind_id = info.data.get("kind"), info.data.get("id")
        expected = f"ind_{ind_id}.sql"
        if kind == "custom" and v is None:
            raise ValueError(f"kind 'custom' needs sql: {expected!r} (a file in sql/30_indicators/)")
        if kind is not None and kind != "custom" and v is not None:
            raise ValueError(f"only kind 'custom' names a sql file; kind {kind!r} uses sql/templates/")
        # A file name, never SQL text (OpenPrescribing's weak point, CONVENTIONS C1).
        if v is not None and ind_id is not None and v != expected:
            raise ValueError(f"must be the file name {expected!r}, got {v[:60]!r}")
        return v

    @field_validator("source_tables")
    @classmethod
    def _known_tables(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in v if t not in SOURCE_TABLES]
        if unknown:
            raise ValueError(
                f"unknown table(s) {unknown}; use spec/01 names, e.g. MHS101Referral, population.csv"
            )
        return v

    @field_validator("breakdowns")
    @classmethod
    def _breakdowns(cls, v: tuple[str, ...], info) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("lists a breakdown twice")
        if v[:1] != ("all",):
            raise ValueError("must start with 'all' (every indicator is produced for breakdown all)")
        if info.data.get("domain") == "data_quality" and v != ("all",):
            raise ValueError("data_quality indicators are produced for breakdown 'all' only (spec/02)")
        return v


@dataclass(frozen=True)
class RegistryIssue:
    """One problem: the file (relative to the registry folder), the field path and what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}" if self.field else f"{self.file}: {self.message}"


class RegistryError(ValueError):
    """Every problem found in one load of the registry, so they can all be fixed in one pass."""

    def __init__(self, path: Path, issues: list[RegistryIssue]):
        self.path = path
        self.issues = tuple(issues)
        lines = "\n".join(f"  - {i}" for i in self.issues)
        super().__init__(f"{len(self.issues)} problem(s) in the indicator registry {path}:\n{lines}")


# The published `indicators` table: spec/04 columns first, in spec order, then our additions.
SPEC_COLUMNS = (
    "indicator_id", "title", "definition", "numerator_definition", "denominator_definition", "unit",
    "polarity", "method", "caveats", "source_tables",
)  # fmt: skip
EXTRA_COLUMNS = (
    "short_title", "domain", "kind", "multiplier", "quantile_p", "derived_from", "headline",
    "display_order", "nhse_measure", "breakdowns",
)  # fmt: skip


class Registry:
    """The validated indicators, immutable, iterated in display order (``display_order``)."""

    def __init__(self, indicators: tuple[Indicator, ...], path: Path):
        self._items = tuple(sorted(indicators, key=lambda i: i.display_order))
        self._by_id = {i.id: i for i in self._items}
        self.path = path

    def __iter__(self) -> Iterator[Indicator]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, indicator_id: object) -> bool:
        return indicator_id in self._by_id

    def __repr__(self) -> str:
        return f"Registry({len(self)} indicators from {self.path})"

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def get(self, indicator_id: str) -> Indicator:
        """The indicator with this id; ``KeyError`` naming close matches if there is none."""
        try:
            return self._by_id[indicator_id]
        except KeyError:
            near = difflib.get_close_matches(str(indicator_id), self._by_id, n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise KeyError(f"no indicator {indicator_id!r}{hint}") from None

    def by_domain(self, domain: str) -> tuple[Indicator, ...]:
        return tuple(i for i in self._items if i.domain == domain)

    def headline(self) -> tuple[Indicator, ...]:
        return tuple(i for i in self._items if i.headline)

    def to_frame(self) -> pd.DataFrame:
        """The published ``indicators`` table: one row per indicator, in display order.

        ``caveats``, ``source_tables`` and ``breakdowns`` are lists of strings (DuckDB ``VARCHAR[]``);
        join them for flat outputs such as the Excel definitions sheet.
        """
        import pandas as pd  # deferred: the CLI check and pure-registry users need no pandas

        rows = []
        for i in self._items:
            row = i.model_dump(mode="python")
            row["indicator_id"] = row.pop("id")
            for col in ("caveats", "source_tables", "breakdowns"):
                row[col] = list(row[col])
            rows.append({c: row[c] for c in SPEC_COLUMNS + EXTRA_COLUMNS})
        return pd.DataFrame(rows, columns=list(SPEC_COLUMNS + EXTRA_COLUMNS))


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader that rejects duplicate keys, which plain YAML loading silently overwrites. With
    libyaml's parser when PyYAML has it (every run reads the 37 files: 0.22 s in pure Python)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _describe(err: dict) -> tuple[str, str]:
    """(field path, readable message) for one pydantic error."""
    loc = err["loc"]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return field, "required field is missing"
    if kind == "extra_forbidden":
        allowed = Provenance.model_fields if loc[:1] == ("provenance",) else Indicator.model_fields
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        return field, "unknown field" + (f" (did you mean {near[0]!r}?)" if near else "")
    if kind == "string_too_short":
        return field, "must not be empty"
    if kind in ("literal_error", "string_pattern_mismatch", "string_too_long"):
        msg += f" (got {err['input']!r})"
    return field, msg


def _load_file(file: Path, issues: list[RegistryIssue]) -> Indicator | None:
    found: list[RegistryIssue] = []
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (safe subclass)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        issues.append(RegistryIssue(file.name, "", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"))
        return None
    if not isinstance(data, dict):
        issues.append(RegistryIssue(file.name, "", "expected a mapping of fields at the top level"))
        return None
    if "id" in data and data["id"] != file.stem:
        found.append(
            RegistryIssue(file.name, "id", f"must equal the file name {file.stem!r}, got {data['id']!r}")
        )
    try:
        indicator = Indicator.model_validate(data)
    except ValidationError as exc:
        indicator = None
        found += [RegistryIssue(file.name, *_describe(e)) for e in exc.errors()]
    issues += found
    return None if found else indicator


def _cross_checks(found: dict[str, Indicator], sql_dir: Path, require_sql: bool) -> list[RegistryIssue]:
    """Rules that span files: unique display order, valid references, custom SQL present."""
    issues = []
    orders: dict[int, str] = {}
    for name, ind in found.items():
        if ind.display_order in orders:
            other = orders[ind.display_order]
            issues.append(
                RegistryIssue(name, "display_order", f"{ind.display_order} is also used by {other}")
            )
        orders.setdefault(ind.display_order, name)
        if ind.derived_from is not None:
            base = next((i for i in found.values() if i.id == ind.derived_from), None)
            if base is None or base.kind == "ratio":
                issues.append(
                    RegistryIssue(name, "derived_from", f"{ind.derived_from!r} is not a non-ratio indicator")
                )
        if require_sql and ind.sql is not None and not (sql_dir / ind.sql).is_file():
            issues.append(RegistryIssue(name, "sql", f"file not found: {sql_dir / ind.sql}"))
    return issues


def _read(path: Path, require_sql: bool) -> Registry:
    if not path.is_dir():
        raise RegistryError(path, [RegistryIssue(str(path), "", "registry folder not found")])
    issues: list[RegistryIssue] = []
    found: dict[str, Indicator] = {}
    for file in sorted(path.iterdir()):
        if file.name.startswith(("_", ".")) or not file.is_file():
            continue
        if file.suffix == ".yml":
            issues.append(
                RegistryIssue(file.name, "", "use the .yaml extension (file name must be <id>.yaml)")
            )
        elif file.suffix == ".yaml" and (indicator := _load_file(file, issues)) is not None:
            found[file.name] = indicator
    if not found and not issues:
        issues.append(RegistryIssue(str(path), "", "no indicator files (<id>.yaml)"))
    # sql/ sits beside indicators/ (CONVENTIONS 7.1); fixture registries get their own sibling sql/.
    issues += _cross_checks(found, path.parent / "sql" / "30_indicators", require_sql)
    if issues:
        raise RegistryError(path, issues)
    return Registry(tuple(found.values()), path)


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path, require_sql: bool) -> Registry:
    return _read(path, require_sql)


def load_registry(path: str | Path | None = None, *, require_sql: bool = False) -> Registry:
    """Load and validate ``<path>/*.yaml`` (default: the repo's ``indicators/``), cached per path.

    Raises :class:`RegistryError` listing every bad file and field. With ``require_sql`` a custom
    indicator's ``sql/30_indicators/ind_<id>.sql`` must exist beside the registry folder. The cache
    lives for the process: a changed registry needs a restart (it is code, deployed with the app).
    """
    return _load_cached(Path(path).resolve() if path is not None else DEFAULT_PATH, require_sql)


load_registry.cache_clear = _load_cached.cache_clear  # type: ignore[attr-defined]


def render_schema() -> str:
    """The JSON Schema of one indicator file, as written to ``indicators/_schema.json``."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **Indicator.model_json_schema()}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_is_current(path: str | Path | None = None) -> bool:
    file = Path(path) if path is not None else DEFAULT_PATH / SCHEMA_FILE
    return file.is_file() and file.read_text(encoding="utf-8") == render_schema()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.registry", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="validate the registry and the schema file")
    action.add_argument("--write-schema", action="store_true", help=f"regenerate indicators/{SCHEMA_FILE}")
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="registry folder [indicators/]")
    parser.add_argument("--require-sql", action="store_true", help="custom indicators' SQL files must exist")
    args = parser.parse_args(argv)
    schema_file = args.path / SCHEMA_FILE
    if args.write_schema:
        schema_file.write_text(render_schema(), encoding="utf-8")
        print(f"wrote {schema_file}")
        return 0
    status = 0
    try:
        registry = _read(args.path.resolve(), args.require_sql)  # uncached: --check must see the files now
        print(f"registry OK: {len(registry)} indicators in {args.path}")
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        status = 1
    if not schema_is_current(schema_file):
        print(
            f"{schema_file} is out of date: run python -m pipelines.registry --write-schema", file=sys.stderr
        )
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
