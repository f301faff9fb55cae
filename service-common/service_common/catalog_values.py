"""What a catalog value is, decided once: the ingest worker stores cells by these rules, and
catalog-service matches filters and checks cursor positions by the same ones.

A stored value is null (an empty or missing cell), an integer (64-bit), a finite float, or text.
A cell becomes a number only in a column typed ``integer`` or ``float`` and only in its plain form:
digits with an optional minus and no leading zero, and for a float an optional dot and digits; no
exponent, no ``+``, no spaces, no other script's digits. Adding a column type is one edit here.
"""

import hashlib
import math
import re
from collections.abc import Callable
from enum import StrEnum

StoredValue = None | int | float | str

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ColumnType(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    STRING = "string"


# [0-9] is ASCII digits only, where int() and str.isdigit() would take other scripts' digits too.
_PLAIN_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_PLAIN_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+")
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def is_plain_integer(text: str) -> bool:
    """Digits with an optional minus and no leading zero (``0`` itself is fine): ``42``, ``-7``."""
    return _PLAIN_INTEGER.fullmatch(text) is not None


def is_plain_decimal(text: str) -> bool:
    """A plain integer, a dot, and digits: ``3.14``, ``-0.5``; no exponent, no bare ``.5``."""
    return _PLAIN_DECIMAL.fullmatch(text) is not None


def fits_int64(text: str) -> bool:
    """For a plain integer: whether BSON can store it as a 64-bit integer (a longer one stays text)."""
    return INT64_MIN <= int(text) <= INT64_MAX


def stored_value(text: str, column_type: ColumnType) -> tuple[StoredValue, bool]:
    """The value stored for a non-empty cell of a column of ``column_type``, and whether the cell fit
    that type (one that does not is kept as text, and the import counts a warning)."""
    if column_type is ColumnType.STRING:
        return text, True
    return _CONVERTERS[column_type](text)


def _integer(text: str) -> tuple[StoredValue, bool]:
    if _PLAIN_INTEGER.fullmatch(text) is not None:
        value = int(text)
        if INT64_MIN <= value <= INT64_MAX:
            return value, True
    return text, False


def _float(text: str) -> tuple[StoredValue, bool]:
    if _PLAIN_NUMBER.fullmatch(text) is not None:
        value = float(text)
        if math.isfinite(value):
            return value, True
    return text, False


_CONVERTERS = {ColumnType.INTEGER: _integer, ColumnType.FLOAT: _float}


def cell_converter(column_type: ColumnType) -> Callable[[str], tuple[StoredValue, bool]] | None:
    """``stored_value`` for one column type, looked up once per column; None for text, kept as it is."""
    return _CONVERTERS.get(column_type)


def stored_number(text: str) -> int | float | None:
    """The number a numeric column would have stored for this text, if it stores one."""
    if is_plain_integer(text):
        return int(text) if fits_int64(text) else None
    if is_plain_decimal(text):
        decimal = float(text)
        return decimal if math.isfinite(decimal) else None
    return None


def matching_values(text: str) -> list[StoredValue]:
    """The stored values an exact-match filter ``text`` finds: the text itself, the number it reads
    as (equal numbers match across int and float, as MongoDB compares them), and for an empty text
    null (an empty cell, or a column the item's file did not have)."""
    if text == "":
        return [None, ""]
    number = stored_number(text)
    return [text] if number is None else [text, number]


# A ``type`` value longer than this is summarised by its digest (``summarised_type``): a block's
# summary, and so its chunk, stays small whatever its rows' ``type`` cells hold.
SUMMARY_TYPE_CHARS = 64


def summarised_type(value: object) -> object:
    """A ``type`` value as a block summary lists it: itself, or for a long text ``{"sha256": digest}``,
    which ``matches`` compares with the digest of the text asked for: still exact."""
    if isinstance(value, str) and len(value) > SUMMARY_TYPE_CHARS:
        return {"sha256": hashlib.sha256(value.encode("utf-8")).hexdigest()}
    return value


def matches(text: str, value: object) -> bool:
    """Whether a stored value (or a summarised one) is one ``matching_values(text)`` holds, compared
    as MongoDB would."""
    if isinstance(value, bool):
        return False
    if isinstance(value, dict):
        return summarised_type(text) == value
    wanted = matching_values(text)
    return any(value == other and isinstance(value, str) == isinstance(other, str) for other in wanted)


def is_stored_value(value: object) -> bool:
    """Whether ``value`` is one a stored cell may hold (a cursor's position must be)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or (isinstance(value, int | str) and not isinstance(value, bool))
