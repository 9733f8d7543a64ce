"""Typing and validating rows of extract files in DuckDB SQL, set-wise.

Every column arrives as text. One query parses each declared column with TRY_CAST (a bad value
becomes NULL, never an exception) and collects the reasons a row must be rejected, next to the raw
text columns (for the quarantine's raw_record): `_kerr` (the row cannot be placed in a submission)
and `_err` (any other reason). Both the MHSDS tables and the reference files go through here; the
duplicate-key helpers at the end serve the reference files, whose rows are not written before
their fate is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipelines.load_source import ident, sql_str

SQL_TYPES = {
    "str": "VARCHAR",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "date": "DATE",
    "ts": "TIMESTAMP",
    "dec": "DECIMAL(18,6)",
}
_TYPE_WORD = {"int": "integer", "bigint": "integer", "date": "date", "ts": "timestamp", "dec": "number"}
# Dates outside this window are typing errors (0025 for 2025, 9999 placeholders), not real events.
_DATE_MIN, _DATE_MAX = "1900-01-01", "2099-12-31"


@dataclass(frozen=True)
class Col:
    name: str
    type: str = "str"  # a key of SQL_TYPES
    required: bool = False
    aliases: tuple[str, ...] = ()
    pattern: str | None = None  # a well-formed value matches this regex in full
    lo: float | None = None  # plausible range; outside it the value is invalid
    hi: float | None = None
    strict: bool = False  # an invalid optional value rejects the row (else it is loaded as NULL)
    recode: dict[str, str] = field(default_factory=dict)  # value map applied when read via an alias
    recode_always: bool = False  # apply `recode` whatever the column was called

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]


@dataclass
class Resolution:
    """Which file column feeds each declared column."""

    index: dict[str, int]  # declared name -> position of the file column
    via_alias: set[str]  # declared names read from an older (alias) column name
    unexpected: list[str]  # file columns nobody asked for
    missing_required: list[str]
    missing_optional: list[str]


def resolve(cols: Sequence[Col], file_columns: Sequence[str]) -> Resolution:
    """Match file columns to declared ones by name or alias (case and surrounding blanks ignored)."""
    pos = {c.strip().casefold(): i for i, c in enumerate(file_columns)}
    index: dict[str, int] = {}
    via_alias: set[str] = set()
    for col in cols:
        for j, name in enumerate((col.name, *col.aliases)):
            if name.casefold() in pos:
                index[col.name] = pos[name.casefold()]
                if j:
                    via_alias.add(col.name)
                break
    used = set(index.values())
    return Resolution(
        index=index,
        via_alias=via_alias,
        unexpected=[c for i, c in enumerate(file_columns) if i not in used],
        missing_required=[c.name for c in cols if c.required and c.name not in index],
        missing_optional=[c.name for c in cols if not c.required and c.name not in index],
    )


def known_names(cols: Sequence[Col]) -> set[str]:
    return {n.casefold() for c in cols for n in (c.name, *c.aliases)}


def _v(name: str) -> str:
    return ident(f"v_{name}")


def _parse(col: Col, res: Resolution) -> str:
    if col.name not in res.index:
        return f"NULL::{col.sql_type}"
    v = _v(col.name)
    if col.type == "str":
        if col.recode and (col.recode_always or col.name in res.via_alias):
            cases = " ".join(f"WHEN {sql_str(a)} THEN {sql_str(b)}" for a, b in col.recode.items())
            return f"CASE {v} {cases} ELSE {v} END"
        return v
    if col.type in ("int", "bigint"):
        # TRY_CAST alone would round '5.5' to 6: a decimal point makes it not an integer
        return f"CASE WHEN NOT contains({v}, '.') THEN TRY_CAST({v} AS {col.sql_type}) END"
    return f"TRY_CAST({v} AS {col.sql_type})"


def _check(col: Col) -> str | None:
    """A condition the parsed value must meet, or None."""
    x = ident(col.name)
    conds = []
    if col.type in ("date", "ts"):
        lit = "DATE" if col.type == "date" else "TIMESTAMP"
        conds.append(f"{x} BETWEEN {lit} '{_DATE_MIN}' AND {lit} '{_DATE_MAX}'")
    if col.type == "dec":
        conds.append(f"isfinite({x}::DOUBLE)")
    if col.pattern:
        conds.append(f"regexp_full_match({x}, {sql_str(col.pattern)})")
    if col.lo is not None:
        conds.append(f"{x} >= {col.lo}")
    if col.hi is not None:
        conds.append(f"{x} <= {col.hi}")
    return " AND ".join(conds) or None


def _reason(col: Col) -> str:
    word = _TYPE_WORD.get(col.type, "value")
    bad = f"'{col.name} invalid {word}: ' || to_json(left({_v(col.name)}, 60))::VARCHAR"
    if col.required:
        return (
            f"CASE WHEN {_v(col.name)} IS NULL THEN 'missing required {col.name}' "
            f"WHEN {ident(col.name)} IS NULL THEN {bad} END"
        )
    return f"CASE WHEN {_v(col.name)} IS NOT NULL AND {ident(col.name)} IS NULL THEN {bad} END"


def _concat(parts: Sequence[str]) -> str:
    return f"NULLIF(concat_ws('; ', {', '.join(parts)}), '')" if parts else "NULL::VARCHAR"


def soft_columns(cols: Sequence[Col], res: Resolution) -> list[str]:
    """Optional columns whose invalid values are loaded as NULL (and counted) instead of rejecting."""
    return [
        c.name
        for c in cols
        if c.name in res.index and not (c.required or c.strict) and (c.type != "str" or c.pattern)
    ]


def soft_count(name: str) -> str:
    """Invalid values of optional column `name`, counted from the `_warn` list."""
    return f"count(*) FILTER (list_contains(string_split(_warn, ','), {sql_str(name)}))"


def validate_query(
    source_sql: str,
    cols: Sequence[Col],
    res: Resolution,
    *,
    context: Sequence[str] = (),
    kerr_cols: Sequence[str] = (),
    kerr_extra: Sequence[str] = (),
    err_extra: Sequence[str] = (),
    layers: Sequence[Sequence[str]] = (),
) -> str:
    """A query giving typed columns, raw c0…cN and v_*, _line, _fi, _kerr, _err, _warn and _ok.

    `_warn` lists the optional columns whose value was invalid and is loaded as NULL.
    context: select items computed per row before typing (e.g. the folder's month by _fi);
    kerr_cols/kerr_extra: reasons that stop a row being placed in a submission (checked first);
    err_extra: further reason expressions (NULL when fine) over the typed columns;
    layers: extra select-list items added in successive steps (later items may use earlier ones).
    """
    # NULLIF also shields the TRY_CASTs from DuckDB 2.0 pushing them into read_csv, where a bad
    # value raises a conversion error instead of giving NULL.
    vs = [f"NULLIF(c{res.index[c.name]}, '') AS {_v(c.name)}" for c in cols if c.name in res.index]
    parsed = [f"{_parse(c, res)} AS {ident(c.name)}" for c in cols]
    checks = [(c, _check(c)) for c in cols if c.name in res.index]
    replace = [f"CASE WHEN {cond} THEN {ident(c.name)} END AS {ident(c.name)}" for c, cond in checks if cond]
    reasons = {c.name: _reason(c) for c in cols if c.name in res.index}
    kerr = [reasons[n] for n in kerr_cols if n in reasons] + list(kerr_extra)
    hard = [c for c in cols if (c.required or c.strict) and c.name not in kerr_cols and c.name in reasons]
    err = [reasons[c.name] for c in hard] + list(err_extra)

    ctes = [f"src AS ({source_sql})", f"v AS (SELECT {', '.join(['*', *context, *vs])} FROM src)"]
    ctes.append(f"p AS (SELECT *, {', '.join(parsed)} FROM v)")
    ctes.append(
        f"q AS (SELECT * REPLACE ({', '.join(replace)}) FROM p)" if replace else "q AS (SELECT * FROM p)"
    )
    prev = "q"
    for i, items in enumerate(layers):
        ctes.append(f"l{i} AS (SELECT *, {', '.join(items)} FROM {prev})")
        prev = f"l{i}"
    warn = [
        f"CASE WHEN {_v(n)} IS NOT NULL AND {ident(n)} IS NULL THEN '{n}' END"
        for n in soft_columns(cols, res)
    ]
    ctes.append(
        f"e AS (SELECT *, {_concat(kerr)} AS _kerr, {_concat(err)} AS _err, "
        f"NULLIF(concat_ws(',', {', '.join(warn) or 'NULL'}), '') AS _warn FROM {prev})"
    )
    return f"WITH {', '.join(ctes)} SELECT *, (_kerr IS NULL AND _err IS NULL) AS _ok FROM e"


def dup_key_sql(key: Sequence[str]) -> str:
    """A row value over the columns that identify a row within a file (for count(DISTINCT …))."""
    return "(" + ", ".join(["_fi", *(ident(k) for k in key)]) + ")"


def dups_table_sql(table: str, view: str, key: Sequence[str]) -> str:
    """Keys that occur more than once among valid rows of a file, with their first line."""
    cols = ", ".join(["_fi", *(ident(k) for k in key)])
    return (
        f"CREATE OR REPLACE TEMP TABLE {ident(table)} AS SELECT {cols}, min(_line) AS _first "
        f"FROM {ident(view)} WHERE _ok GROUP BY ALL HAVING count(*) > 1"
    )


def dups_join(alias: str, table: str, key: Sequence[str]) -> str:
    on = " AND ".join(
        [f"{alias}._fi = v._fi", *(f"{alias}.{ident(k)} IS NOT DISTINCT FROM v.{ident(k)}" for k in key)]
    )
    return f"LEFT JOIN {ident(table)} {alias} ON {on}"


def raw_json(columns: Sequence[str]) -> str:
    """The raw record as JSON text, keyed by the file's own column names."""
    pairs = ", ".join(f"{sql_str(name)}, c{i}" for i, name in enumerate(columns))
    return f"json_object({pairs})::VARCHAR"
