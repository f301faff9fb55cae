"""The stored layout's pure parts: item ids, column names as field names, a block's counts and summary."""

import pytest

from service_common.catalog_layout import (
    BlockSummary,
    column_name,
    field_name,
    is_dataset_name,
    item_id,
    merge_column_types,
    public_row,
    stored_row,
    types_and_columns,
)


@pytest.mark.parametrize("column", ["title", "a.b", "$where", "Box Office ($M)", "Año", "50%", "%2E", "a%2Eb.c"])
def test_every_column_name_round_trips_and_is_a_safe_field_name(column):
    stored = field_name(column)
    assert "." not in stored and not stored.startswith("$")
    assert column_name(stored) == column
    assert public_row(stored_row({column: 1})) == {column: 1}


def test_keys_are_unique_per_dataset():
    assert item_id("default", "1") != item_id("films", "1")
    assert item_id("default", "films:1") != item_id("films", "1")  # a dataset name has no ':'
    assert not is_dataset_name("films:1") and is_dataset_name("imdb-2024")


def test_a_blocks_counts_give_type_positions_and_columns_in_order():
    rows = [{"type": "Movie", "a%2Eb": 1}, {"type": "TV Show"}, {"type": "Movie"}, {"type": 1}, {"type": True}, {}]
    types, columns = types_and_columns(rows)
    assert types == [["Movie", [0, 2]], ["TV Show", [1]], [1, [3]], [True, [4]], [None, [5]]]
    assert columns == [["type", 5], ["a.b", 1]]


def test_a_block_summary_is_stored_under_the_names_existing_datasets_hold():
    block = {"_id": "films:1", "seq": 1, "keys": ["a", "b"], "types": [["Movie", [0, 1]]], "columns": [["type", 2]]}
    summary = BlockSummary.of({**block, "v": 3})
    assert (summary.block_id, summary.first_seq, summary.items, summary.type_counts) == (
        "films:1",
        1,
        2,
        [["Movie", 2]],
    )
    stored = {"b": "films:1", "s": 1, "n": 2, "t": [["Movie", 2]], "c": [["type", 2]], "v": 3}
    assert summary.stored() == stored
    assert BlockSummary.from_stored(stored) == summary


def test_a_column_typed_differently_by_two_files_is_text():
    merged = merge_column_types([["year", "integer"], ["title", "string"]], {"year": "float", "rating": "float"})
    assert merged == [["year", "string"], ["title", "string"], ["rating", "float"]]
