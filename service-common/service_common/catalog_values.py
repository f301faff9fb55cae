"""What a catalog value is, decided once: the ingest worker stores cells by these rules, and
catalog-service matches filters and checks cursor positions by the same ones.

A stored value is null (an empty or missing cell), an integer (64-bit), a finite float, or text.
A cell becomes a number only in a column typed ``integer`` or ``float`` and only in its plain form:
digits with an optional minus and no leading zero, and for a float an optional dot and digits; no
exponent, no ``+``, no spaces, no other script's digits. Adding a column type is one edit here.
"""

import math
from enum import StrEnum

StoredValue = None | int | float | str

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ColumnType(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    STRING = "string"


def is_plain_integer(text: str) -> bool:
    """Digits with an optional minus and no leading zero (``0`` itself is fine): ``42``, ``-7``."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and (digits == "0" or digits[0] != "0")


def is_plain_decimal(text: str) -> bool:
    """A plain integer, a dot, and digits: ``3.14``, ``-0.5``; no exponent, no bare ``.5``."""
    whole, dot, fraction = text.partition(".")
    return bool(dot) and is_plain_integer(whole) and fraction.isascii() and fraction.isdigit()


def fits_int64(text: str) -> bool:
    """For a plain integer: whether BSON can store it as a 64-bit integer (a longer one stays text)."""
    return INT64_MIN <= int(text) <= INT64_MAX


def stored_value(text: str, column_type: ColumnType) -> tuple[StoredValue, bool]:
    """The value stored for a non-empty cell of a column of ``column_type``, and whether the cell fit
    that type (one that does not is kept as text, and the import counts a warning)."""
    if column_type is ColumnType.INTEGER and is_plain_integer(text) and fits_int64(text):
        return int(text), True
    if column_type is ColumnType.FLOAT and (is_plain_decimal(text) or is_plain_integer(text)):
        decimal = float(text)
        if math.isfinite(decimal):
            return decimal, True
    return text, column_type is ColumnType.STRING


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


def matches(text: str, value: object) -> bool:
    """Whether a stored value is one ``matching_values(text)`` holds, compared as MongoDB would."""
    if isinstance(value, bool):
        return False
    wanted = matching_values(text)
    return any(value == other and isinstance(value, str) == isinstance(other, str) for other in wanted)


def is_stored_value(value: object) -> bool:
    """Whether ``value`` is one a stored cell may hold (a cursor's position must be)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or (isinstance(value, int | str) and not isinstance(value, bool))
