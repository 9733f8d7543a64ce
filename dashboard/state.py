"""The view state that every page shares, and its one serialisation: the URL query string.

Every state of every page must be a URL (spec/06), so the state is a small frozen value parsed from
and written back to the query string, never kept in a server session or a browser store. Parsing
is forgiving (an unknown dimension or a malformed date is dropped, not an error) because URLs get
hand-edited and shared; anything that reaches SQL is still bound as a parameter by queries.py.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode

# Derived dimensions of spec/01 with their groups, and spec/02's reference group per dimension.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "ethnicity_group": ("White", "Mixed", "Asian", "Black", "Other", "Not known"),
    "age_band": ("18-25", "26-64", "65+"),
    "gender": ("Male", "Female", "Non-binary or other", "Not known"),
    "imd_quintile": ("1", "2", "3", "4", "5", "Not known"),
    "disability": ("Disabled", "Not disabled", "Not known"),
    "sexual_orientation": ("Heterosexual", "Gay or lesbian", "Bisexual", "Other", "Not known"),
}
DIMENSION_LABELS = {
    "ethnicity_group": "Ethnicity group",
    "age_band": "Age band",
    "gender": "Gender",
    "imd_quintile": "Deprivation quintile (IMD)",
    "disability": "Disability",
    "sexual_orientation": "Sexual orientation",
}
REFERENCE_GROUP = {"ethnicity_group": "White", "age_band": "26-64", "imd_quintile": "5", "gender": "Female"}
# The data-quality indicator that says how complete each characteristic is (spec/02 dq_*).
COMPLETENESS_INDICATOR = {
    "ethnicity_group": "dq_ethnicity_known_pct",
    "age_band": "dq_referral_age_known_pct",
    "gender": "dq_gender_known_pct",
    "imd_quintile": "dq_imd_known_pct",
    "disability": "dq_disability_known_pct",
    "sexual_orientation": "dq_sexual_orientation_known_pct",
}
GLOBAL_KEYS = ("period", "from", "icb", "place", "pcn", "provider", "dim", "group")
PAGE_KEYS = ("ind",)  # page-specific controls (the equity explorer's indicator)
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def group_label(dimension: str | None, value: str) -> str:
    """Readable label of a group value (IMD quintiles are bare numbers in the data)."""
    if dimension == "imd_quintile" and value in "12345":
        return {"1": "Quintile 1 (most deprived)", "5": "Quintile 5 (least deprived)"}.get(
            value, f"Quintile {value}"
        )
    return value


def _date(v: object) -> str | None:
    try:
        return dt.date.fromisoformat(str(v)).isoformat()
    except ValueError:
        return None


def _code(v: object) -> str | None:
    return str(v) if v and _CODE.match(str(v)) else None


@dataclass(frozen=True)
class ViewState:
    """Global controls plus page parameters; None means "default" (latest period, whole ICB, no group)."""

    period: str | None = None  # ISO date of a month end
    trend_from: str | None = None  # first month of trend charts
    icb: str | None = None
    place: str | None = None
    pcn: str | None = None
    provider: str | None = None
    dim: str | None = None
    group: str | None = None
    page: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def from_query(cls, query: dict) -> ViewState:
        """From a parsed query string (Dash passes page layouts a dict of str or list of str)."""
        q = {k: (v[-1] if isinstance(v, list) else v) for k, v in query.items()}
        dim = q.get("dim") if q.get("dim") in DIMENSIONS else None
        group = q.get("group") if dim and q.get("group") in DIMENSIONS[dim] else None
        page = tuple((k, str(q[k])) for k in PAGE_KEYS if q.get(k) and _ID.match(str(q[k])))
        return cls(
            period=_date(q.get("period")) if q.get("period") else None,
            trend_from=_date(q.get("from")) if q.get("from") else None,
            icb=_code(q.get("icb")),
            place=_code(q.get("place")),
            pcn=_code(q.get("pcn")),
            provider=_code(q.get("provider")),
            dim=dim,
            group=group,
            page=page,
        )

    @classmethod
    def from_search(cls, search: str | None) -> ViewState:
        return cls.from_query(dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=False)))

    def param(self, key: str) -> str | None:
        return dict(self.page).get(key)

    def with_param(self, key: str, value: str | None) -> ViewState:
        page = {k: v for k, v in self.page if k != key}
        if value:
            page[key] = value
        return replace(self, page=tuple((k, page[k]) for k in PAGE_KEYS if k in page))

    def query(self, *, include_page: bool = True) -> dict[str, str]:
        pairs = {
            "period": self.period, "from": self.trend_from, "icb": self.icb, "place": self.place,
            "pcn": self.pcn, "provider": self.provider, "dim": self.dim, "group": self.group,
        }  # fmt: skip
        out = {k: v for k, v in pairs.items() if v}
        if include_page:
            out.update(dict(self.page))
        return out

    def to_search(self, *, include_page: bool = True) -> str:
        q = self.query(include_page=include_page)
        return "?" + urlencode(q) if q else ""

    @property
    def geography(self) -> tuple[str, str | None]:
        """(level, code) of the area in view: the most specific of provider, PCN, place, ICB."""
        for level in ("provider", "pcn", "place", "icb"):
            if getattr(self, level):
                return level, getattr(self, level)
        return "icb", None
