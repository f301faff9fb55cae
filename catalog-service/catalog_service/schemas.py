"""The query string of ``GET /get_content``, validated into a ``ContentQuery`` or refused with a 400."""

import dataclasses
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from multidict import MultiMapping
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service_common.catalog_layout import DATASET_NAME, DEFAULT_DATASET, TYPE_COLUMN, public_row
from service_common.errors import bad_parameter
from service_common.paging import PageQuery, repeated_parameter, unknown_parameter, validate_page

# Any column a file may have, as the CSV header names it: checked against the dataset's own columns
# (``check_columns``), and stored under an escaped field name, so no name can become a path or an operator.
MAX_COLUMN_LENGTH = 256
FILTER_PARAMETER = re.compile(r"filter\[(.*)\]", re.DOTALL)
PLAIN_PARAMETERS = frozenset({"limit", "offset", "cursor", "sort", "q", "type", "dataset"})
MAX_FILTERS = 16
MAX_IN_VALUES = 100
MAX_VALUE_LENGTH = 1024
MAX_Q_LENGTH = 256
# What ``id`` means when a dataset has no column of that name: each item's key.
KEY_COLUMN = "id"
COLUMN_NAME_RULE = f"Must be a column name: 1-{MAX_COLUMN_LENGTH} characters, no control characters"


class FilterOp(StrEnum):
    """``filter[<column>][<op>]=<value>``; ``filter[<column>]=<value>`` is ``eq``."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOTIN = "notin"
    CONTAINS = "contains"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    ISNULL = "isnull"
    # One of the value's comma-separated items (spaces around each trimmed) is exactly this one: what a
    # list column (IMDB's genres, ``Drama,Comedy``) is filtered by, and what ``facet_split`` counts.
    HAS = "has"


# The separator of a list column's items, for ``filter[<column>][has]`` and ``facet_split``.
ITEM_SEPARATOR = ","


_OPERATOR_SUFFIX = re.compile(r"(.*)\]\[(" + "|".join(op.value for op in FilterOp) + r")", re.DOTALL)


class Filter(BaseModel):
    model_config = ConfigDict(frozen=True)

    column: str
    op: FilterOp = FilterOp.EQ
    value: str


def is_column_name(name: str) -> bool:
    return 0 < len(name) <= MAX_COLUMN_LENGTH and name.isprintable()


class SortOrder(BaseModel):
    """``column`` ascending or descending, ``seq`` breaking ties; no column means import order."""

    model_config = ConfigDict(frozen=True)

    column: str | None = None
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> "SortOrder":
        column = text.removeprefix("-")
        if not is_column_name(column):
            raise ValueError(f"Must be <column> or -<column>. {COLUMN_NAME_RULE}")
        return cls(column=column, descending=text.startswith("-"))


class ContentQuery(PageQuery):
    """A page of a dataset's items: ``PageQuery``'s ``limit`` and ``offset`` (or a ``cursor``), and what
    selects and orders the items."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    OVER_MAXIMUM: ClassVar[str] = "Must be a whole number from 1 to {maximum}"

    dataset: str = Field(DEFAULT_DATASET, pattern=f"^{DATASET_NAME.pattern}$")
    cursor: str | None = Field(None, min_length=1)
    sort: SortOrder = SortOrder()
    q: str | None = Field(None, min_length=1, max_length=MAX_Q_LENGTH)
    # Each already checked by ``parse_content_query``; all of them hold for a row to match.
    filters: list[Filter] = []

    @field_validator("sort", mode="before")
    @classmethod
    def _sort(cls, value: object) -> object:
        return SortOrder.parse(value) if isinstance(value, str) else value

    def fingerprint(self) -> str:
        """Identifies the order and the matching set, which a cursor must keep across pages."""
        canonical = json.dumps(
            [
                self.dataset,
                self.sort.column,
                self.sort.descending,
                sorted([f.column, f.op.value, f.value] for f in self.filters),
                self.q,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def parse_content_query(
    params: MultiMapping[str], *, max_limit: int, extra: Collection[str] = (), plain: Collection[str] = PLAIN_PARAMETERS
) -> tuple[ContentQuery, dict[str, list[str]]]:
    """Every parameter checked, each problem a 400 naming the parameter; never a silent default.
    ``plain``: the plain parameters this endpoint takes; ``extra``: the names of its own, returned
    as given (each a list) for it to check."""
    fields: dict[str, object] = {}
    own: dict[str, list[str]] = {}
    filters: list[Filter] = []
    for name in params:
        values = params.getall(name)
        if name in extra:
            own[name] = values
            continue
        if len(values) > 1:
            raise repeated_parameter(name)
        value = values[0]
        if name in plain:
            fields[name] = value
        elif match := FILTER_PARAMETER.fullmatch(name):
            filters.append(_filter(name, match.group(1), value))
        else:
            raise unknown_parameter(name)
    if "type" in fields:
        if any(f.column == TYPE_COLUMN and f.op is FilterOp.EQ for f in filters):
            raise bad_parameter("type", "Give either type or filter[type], not both")
        # The seed's one filter, kept as a shorthand for filter[type].
        filters.append(_filter("type", TYPE_COLUMN, fields.pop("type")))
    if len(filters) > MAX_FILTERS:
        raise bad_parameter("filter", f"At most {MAX_FILTERS} filters", f"Too many filters (at most {MAX_FILTERS})")
    query = validate_page(ContentQuery, {**fields, "filters": filters}, max_limit=max_limit)
    if query.offset is not None and query.cursor is not None:
        message = "Give either offset or cursor, not both"
        raise bad_parameter("offset", message, message)
    return query, own


def _filter(parameter: str, inside: str, value: str) -> Filter:
    """``inside`` is what stands between ``filter[`` and the last ``]``: a column, or a column then
    ``][<op>`` (a column whose own name ends so is filtered by ``filter[<column>][eq]``)."""
    column, op = inside, FilterOp.EQ
    if match := _OPERATOR_SUFFIX.fullmatch(inside):
        column, op = match.group(1), FilterOp(match.group(2))
    if not is_column_name(column):
        raise bad_parameter(parameter, COLUMN_NAME_RULE)
    if len(value) > MAX_VALUE_LENGTH:
        raise bad_parameter(parameter, f"At most {MAX_VALUE_LENGTH} characters")
    if op is FilterOp.ISNULL and value not in ("true", "false"):
        raise bad_parameter(parameter, "Must be true or false")
    if op in (FilterOp.IN, FilterOp.NOTIN) and value.count(",") >= MAX_IN_VALUES:
        raise bad_parameter(parameter, f"At most {MAX_IN_VALUES} comma-separated values")
    if op in (FilterOp.CONTAINS, FilterOp.STARTSWITH, FilterOp.ENDSWITH) and not value:
        raise bad_parameter(parameter, "Must not be empty")
    if op is FilterOp.HAS and (value.strip(" ") != value or not value or ITEM_SEPARATOR in value):
        raise bad_parameter(parameter, "Must be one item: not empty, no comma, no leading or trailing space")
    return Filter(column=column, op=op, value=value)


def check_columns(query: ContentQuery, known: Collection[str]) -> None:
    """Filters and sorts name columns the dataset has (``id``, its key, always exists)."""
    for column, parameter in [*((f.column, f"filter[{f.column}]") for f in query.filters), (query.sort.column, "sort")]:
        if column is None or column in known or column in (KEY_COLUMN, TYPE_COLUMN):
            continue
        raise bad_parameter(parameter, f"No column {column!r} in this dataset")


FACET_PARAMETERS = frozenset({"facet", "facet_size", "facet_bins", "facet_split"})
EXPORT_PARAMETERS = frozenset({"format"})
MAX_FACETS = 16
MAX_FACET_SIZE = 100
MAX_FACET_BINS = 100


@dataclass(frozen=True)
class FacetQuery:
    columns: list[str]
    size: int
    bins: int | None
    # Columns whose text values count as comma-separated lists: each item once per row.
    split: list[str] = dataclasses.field(default_factory=list)


def parse_facet_query(own: Mapping[str, list[str]], known: Collection[str]) -> FacetQuery:
    """``facet`` (repeated: one per column), ``facet_size``, ``facet_bins`` and ``facet_split`` (repeated:
    a ``facet`` column to count item by item)."""
    columns = list(dict.fromkeys(own.get("facet", [])))
    if not columns:
        raise bad_parameter("facet", "Name at least one column: facet=<column>")
    if len(columns) > MAX_FACETS:
        raise bad_parameter("facet", f"At most {MAX_FACETS} columns")
    for column in columns:
        if not is_column_name(column):
            raise bad_parameter("facet", COLUMN_NAME_RULE)
        if column not in known and column not in (KEY_COLUMN, TYPE_COLUMN):
            raise bad_parameter("facet", f"No column {column!r} in this dataset")
    split = list(dict.fromkeys(own.get("facet_split", [])))
    for column in split:
        if column not in columns:
            raise bad_parameter("facet_split", f"Must name a facet column; {column!r} is not one")
    size = _whole_number(own, "facet_size", MAX_FACET_SIZE)
    bins = _whole_number(own, "facet_bins", MAX_FACET_BINS)
    return FacetQuery(columns, 10 if size is None else size, bins, split)


def _whole_number(own: Mapping[str, list[str]], name: str, highest: int) -> int | None:
    values = own.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise repeated_parameter(name)
    if not (values[0].isascii() and values[0].isdigit() and 1 <= int(values[0]) <= highest):
        raise bad_parameter(name, f"Must be a whole number from 1 to {highest}")
    return int(values[0])


def parse_export_format(own: Mapping[str, list[str]]) -> str:
    values = own.get("format", ["csv"])
    if len(values) > 1:
        raise repeated_parameter("format")
    if values[0] not in ("csv", "ndjson"):
        raise bad_parameter("format", "Must be csv or ndjson")
    return values[0]


def check_offset_depth(query: ContentQuery, max_offset_rows: int) -> None:
    """Offset pages of a sorted or searched query skip through a scan: their depth is capped."""
    if query.skip > max_offset_rows:
        raise bad_parameter(
            "offset",
            f'offset pages may start at most {max_offset_rows} items deep; follow the Link rel="next" '
            "or X-Next-Cursor cursor for deeper pages",
            "Invalid value for: offset (too deep, use cursor)",
        )


def public_item(document: Mapping[str, Any]) -> dict[str, Any]:
    """The row's own columns, every one as the file named it, plus ``id`` (the row key) when the file
    has no column of that name: a row's own ``id`` is never hidden."""
    item = public_row(document["row"])
    item.setdefault(KEY_COLUMN, document["key"])
    return item


class PageTooLarge(Exception):
    """A page's items passed ``CATALOG_MAX_PAGE_BYTES``: refused before more of them were read."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self.max_bytes = max_bytes
