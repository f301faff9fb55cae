"""CSV records to catalog values: column types, row keys, and the checks a row must pass. Pure."""

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ingest_service.parsing import MAX_FIELD_BYTES, MAX_ROW_BYTES
from service_common.catalog_layout import field_name
from service_common.catalog_values import ColumnType, cell_converter, fits_int64, is_plain_decimal, is_plain_integer

INFERENCE_ROWS = 1000
KEY_CANDIDATES = ("show_id", "tconst", "imdb_id", "id")
# UTF-8 spends at most 4 bytes on a character: shorter strings need no encoding to be measured.
MAX_UTF8_BYTES_PER_CHAR = 4


class Ragged(StrEnum):
    """What becomes of a record with fewer fields than the header."""

    ERROR = "error"  # a row error, as a record with more fields always is
    PAD = "pad"  # the missing trailing cells are null, and the row counts one warning


class RowError(ValueError):
    """A row that cannot be imported; the message is recorded against its line."""


@dataclass(frozen=True, slots=True)
class CatalogRow:
    key: str
    values: dict[str, int | float | str | None]  # by stored field name (``catalog_layout.field_name``)
    warnings: int


def infer_column_types(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    null_markers: Collection[str] = (),
    ragged: Ragged = Ragged.ERROR,
) -> dict[str, ColumnType]:
    """Integer when every sample value is a plain integer, float when each is a plain integer or
    decimal, string otherwise (and for a column with no values in the sample). Empty cells and
    missing-value markers (``null_markers``) are no values.

    Rows that will be errors (a field count other than the header's) do not count.
    """
    seen_value = [False] * len(columns)
    all_integers = [True] * len(columns)
    all_numbers = [True] * len(columns)
    nulls = frozenset(null_markers)
    for fields in rows:
        if len(fields) > len(columns) or (len(fields) < len(columns) and ragged is Ragged.ERROR):
            continue
        for index, value in enumerate(fields):
            if not value or value in nulls:
                continue
            seen_value[index] = True
            if not all_numbers[index]:
                continue
            if is_plain_integer(value):
                if not fits_int64(value):
                    all_integers[index] = all_numbers[index] = False
            elif is_plain_decimal(value):
                all_integers[index] = False
            else:
                all_integers[index] = all_numbers[index] = False
    types = {}
    for index, column in enumerate(columns):
        if seen_value[index] and all_integers[index]:
            types[column] = ColumnType.INTEGER
        elif seen_value[index] and all_numbers[index]:
            types[column] = ColumnType.FLOAT
        else:
            types[column] = ColumnType.STRING
    return types


def default_key_column(columns: Sequence[str]) -> str | None:
    return next((name for name in KEY_CANDIDATES if name in columns), None)


def _utf8_length_over(value: str, limit: int) -> bool:
    return len(value) * MAX_UTF8_BYTES_PER_CHAR > limit and len(value.encode("utf-8", "replace")) > limit


class RowConverter:
    """Turns the fields of one record into a ``CatalogRow``, or raises ``RowError``."""

    def __init__(
        self,
        columns: Sequence[str],
        types: dict[str, ColumnType],
        key_column: str | None,
        *,
        null_markers: Collection[str] = (),
        ragged: Ragged = Ragged.ERROR,
    ) -> None:
        self._columns = tuple(columns)
        # The empty cell is always a missing value; the markers are the file's own ways to write one.
        self._nulls = frozenset(null_markers) | {""}
        self._ragged = ragged
        self._types = [types[c] for c in self._columns]
        self._converters = [cell_converter(t) for t in self._types]
        # The stored field names (a '.' or '$' in a column name escaped), worked out once per file.
        self._fields = [field_name(column) for column in self._columns]
        self._key_column = key_column
        self._key_index = self._columns.index(key_column) if key_column is not None else None

    def convert(self, fields: list[str]) -> CatalogRow:
        width = len(self._columns)
        # Never a value under another column's name: a record of the wrong width is refused whole.
        if len(fields) > width or (len(fields) < width and self._ragged is Ragged.ERROR):
            raise RowError(f"The row has {len(fields)} fields, the header has {width}")
        self._check_sizes(fields)
        warnings = 0
        if len(fields) < width:
            # Asked for (ragged=pad): the missing trailing cells are null, and the row is flagged.
            fields = fields + [""] * (width - len(fields))
            warnings += 1

        values: dict[str, int | float | str | None] = {}
        nulls = self._nulls
        for column, convert, raw in zip(self._fields, self._converters, fields, strict=True):
            if raw in nulls:
                values[column] = None
            elif convert is None:
                values[column] = raw
            else:
                values[column], fits = convert(raw)
                warnings += not fits
        return CatalogRow(key=self._key(fields), values=values, warnings=warnings)

    def _check_sizes(self, fields: list[str]) -> None:
        if max(map(len, fields), default=0) * MAX_UTF8_BYTES_PER_CHAR > MAX_FIELD_BYTES:
            for column, raw in zip(self._columns, fields, strict=False):
                if _utf8_length_over(raw, MAX_FIELD_BYTES):
                    raise RowError(f"The value of {column!r} is longer than {MAX_FIELD_BYTES // 1024**2} MiB")
        if sum(map(len, fields)) * MAX_UTF8_BYTES_PER_CHAR > MAX_ROW_BYTES and _utf8_length_over(
            "".join(fields), MAX_ROW_BYTES
        ):
            raise RowError(f"The row is longer than {MAX_ROW_BYTES // 1024**2} MiB")

    def _key(self, fields: list[str]) -> str:
        if self._key_index is not None:
            key = fields[self._key_index].strip()
            if not key or key in self._nulls:
                raise RowError(f"The key column {self._key_column!r} is empty")
            return key
        # No key column: the row's identity is its content, so re-importing it finds the same document.
        normalised = [None if value in self._nulls else value.strip() or None for value in fields]
        digest = hashlib.sha256(
            json.dumps([self._columns, normalised], ensure_ascii=False, separators=(",", ":")).encode()
        )
        return f"sha256:{digest.hexdigest()}"
