"""The value rules both services share: what the worker stores for a cell, and what a filter matches."""

import pytest

from service_common.catalog_values import (
    ColumnType,
    is_plain_decimal,
    is_plain_integer,
    is_stored_value,
    matches,
    matching_values,
    stored_number,
    stored_value,
)


@pytest.mark.parametrize("value", ["0", "7", "-12", "2021", str(2**63 - 1)])
def test_plain_integers(value):
    assert is_plain_integer(value)


@pytest.mark.parametrize("value", ["", "-", "007", "+5", "1.0", "1e3", " 5", "٣", "s120"])
def test_not_plain_integers(value):
    assert not is_plain_integer(value)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("3.14", True),
        ("-0.5", True),
        ("0.0", True),
        (".5", False),
        ("5.", False),
        ("01.5", False),
        ("1e5", False),
        ("1.2.3", False),
    ],
)
def test_plain_decimals(value, plain):
    assert is_plain_decimal(value) is plain


@pytest.mark.parametrize(
    ("text", "column_type", "stored"),
    [
        ("2019", ColumnType.INTEGER, (2019, True)),
        ("2019", ColumnType.FLOAT, (2019.0, True)),
        ("2019", ColumnType.STRING, ("2019", True)),
        ("7.5", ColumnType.INTEGER, ("7.5", False)),  # kept as text, and the import warns
        ("n/a", ColumnType.FLOAT, ("n/a", False)),
        (str(2**63), ColumnType.INTEGER, (str(2**63), False)),  # past 64 bits
        ("1" * 400 + ".5", ColumnType.FLOAT, ("1" * 400 + ".5", False)),  # not a finite float
    ],
)
def test_a_cell_is_stored_as_its_column_type_when_it_fits(text, column_type, stored):
    assert stored_value(text, column_type) == stored


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("", [None, ""]),
        ("Movie", ["Movie"]),
        ("2019", ["2019", 2019]),
        ("7.50", ["7.50", 7.5]),
        ("007", ["007"]),  # a leading zero is never stored as a number
        (str(2**63), [str(2**63)]),
    ],
)
def test_a_filter_matches_the_text_and_the_number_a_numeric_column_would_hold(text, values):
    assert matching_values(text) == values
    assert stored_number(text) == (values[1] if len(values) == 2 and text else None)


def test_matches_compares_numbers_across_int_and_float_but_never_text_with_numbers():
    assert matches("2019", 2019) and matches("2019", 2019.0) and matches("2019", "2019")
    assert not matches("2019", "2019.0") and not matches("1", True) and not matches("x", None)
    assert matches("", None) and matches("", "")


@pytest.mark.parametrize(("value", "stored"), [(None, True), (1, True), (1.5, True), ("a", True), (True, False),
                                                (float("inf"), False), (float("nan"), False), ([], False)])  # fmt: skip
def test_what_a_stored_cell_may_hold(value, stored):
    assert is_stored_value(value) is stored
