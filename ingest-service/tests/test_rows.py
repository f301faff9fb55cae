"""Records to catalog values: type inference, row checks, keys."""

import pytest

from ingest_service.parsing import MAX_FIELD_BYTES
from ingest_service.rows import (
    ColumnType,
    Ragged,
    RowConverter,
    RowError,
    default_key_column,
    infer_column_types,
)

COLUMNS = ("show_id", "year", "score", "title")


def test_types_inferred_from_the_sample():
    sample = [["s1", "2019", "7.5", "A"], ["119", "2020", "8", "B"], ["s3", "", "", "42"]]
    assert infer_column_types(COLUMNS, sample) == {
        "show_id": ColumnType.STRING,  # "119" alone does not make a number column
        "year": ColumnType.INTEGER,
        "score": ColumnType.FLOAT,
        "title": ColumnType.STRING,
    }


def test_rows_longer_than_the_header_do_not_count_for_types():
    sample = [["s1", "2019", "7.5", "A"], ["s2", "2020", "8", "B", "extra", "fields"], ["s3", "x", "y", "z", "w"]]
    assert infer_column_types(COLUMNS, sample)["year"] == ColumnType.INTEGER


def test_leading_zeros_and_huge_numbers_keep_a_column_text():
    types = infer_column_types(("zip", "big", "empty"), [["02134", str(2**64), ""], ["10001", "1", ""]])
    assert types == {"zip": ColumnType.STRING, "big": ColumnType.STRING, "empty": ColumnType.STRING}


def converter(types=None, key="show_id", **options):
    types = types or {"show_id": "string", "year": "integer", "score": "float", "title": "string"}
    return RowConverter(COLUMNS, {c: ColumnType(t) for c, t in types.items()}, key, **options)


def test_values_are_typed_and_empty_cells_null():
    row = converter().convert([" s1 ", "2019", "7", ""])
    assert row.key == "s1"
    assert row.values == {"show_id": " s1 ", "year": 2019, "score": 7.0, "title": None}
    assert row.warnings == 0


def test_a_value_that_does_not_fit_its_column_stays_text_with_a_warning():
    row = converter().convert(["s1", "unknown", "n/a", "x"])
    assert row.values["year"] == "unknown" and row.values["score"] == "n/a"
    assert row.warnings == 2


def test_short_rows_are_errors_naming_both_counts():
    with pytest.raises(RowError, match="The row has 2 fields, the header has 4"):
        converter().convert(["s1", "2019"])


def test_short_rows_are_padded_with_null_and_warned_when_asked():
    row = converter(ragged=Ragged.PAD).convert(["s1", "2019"])
    assert row.values == {"show_id": "s1", "year": 2019, "score": None, "title": None}
    assert row.warnings == 1
    with pytest.raises(RowError, match="The row has 5 fields, the header has 4"):
        converter(ragged=Ragged.PAD).convert(["s1", "1", "2", "t", "extra"])


def test_null_markers_are_null_and_left_out_of_type_inference():
    imdb = [["tt1", "\\N", "\\N", "NA"], ["tt2", "1994", "8.1", "Title"], ["tt3", "2001", "\\N", "\\N"]]
    types = infer_column_types(COLUMNS, imdb, null_markers=["\\N"])
    assert types == {"show_id": "string", "year": "integer", "score": "float", "title": "string"}
    row = converter(types, null_markers=["\\N", "NA"]).convert(imdb[0])
    assert row.values == {"show_id": "tt1", "year": None, "score": None, "title": None}
    assert row.warnings == 0
    # Without the markers, the same values keep the columns text.
    assert infer_column_types(COLUMNS, imdb)["year"] == "string"


def test_a_null_marker_key_is_an_empty_key():
    with pytest.raises(RowError, match="The key column 'show_id' is empty"):
        converter(null_markers=["\\N"]).convert(["\\N", "1", "2", "t"])


def test_rows_of_the_wrong_width_do_not_count_for_types_unless_padded():
    rows = [["s1", "2019", "x"], ["s2", "2020", "1.5", "t"]]
    assert infer_column_types(COLUMNS, rows)["score"] == "float"
    assert infer_column_types(COLUMNS, rows, ragged=Ragged.PAD)["score"] == "string"


def test_long_rows_are_errors():
    with pytest.raises(RowError, match="The row has 5 fields, the header has 4"):
        converter().convert(["s1", "1", "2", "t", "extra"])


def test_over_long_fields_are_errors():
    converter().convert(["s1", "1", "2", "x" * MAX_FIELD_BYTES])
    with pytest.raises(RowError, match="The value of 'title' is longer than 1 MiB"):
        converter().convert(["s1", "1", "2", "x" * (MAX_FIELD_BYTES + 1)])
    # Measured in UTF-8 bytes, not characters.
    with pytest.raises(RowError, match="'title'"):
        converter().convert(["s1", "1", "2", "é" * (MAX_FIELD_BYTES // 2 + 1)])


def test_an_empty_key_is_an_error():
    with pytest.raises(RowError, match="The key column 'show_id' is empty"):
        converter().convert(["  ", "1", "2", "t"])


def test_without_a_key_column_the_key_is_a_hash_of_the_normalised_row():
    convert = converter(key=None).convert
    first = convert(["s1", "2019", "7.5", "A"])
    assert first.key.startswith("sha256:") and len(first.key) == 7 + 64
    assert convert([" s1", "2019 ", "7.5", "A"]).key == first.key
    assert convert(["s1", "2019", "7.5", " "]).key == convert(["s1", "2019", "7.5", ""]).key
    assert convert(["s2", "2019", "7.5", "A"]).key != first.key


def test_default_key_column():
    assert default_key_column(("title", "id", "tconst")) == "tconst"
    assert default_key_column(("show_id", "id")) == "show_id"
    assert default_key_column(("title",)) is None
