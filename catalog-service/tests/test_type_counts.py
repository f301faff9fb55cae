"""``type=`` pages count their items from the block summaries; a value nobody stored must stay cheap."""

import random

from catalog_service.index import DatasetView
from service_common.catalog_layout import BlockSummary
from service_common.catalog_values import matches

BLOCKS = 3_000
STORED = ["movie", "short", "tvEpisode", 1994, "1994"]


def view_of(blocks: int) -> DatasetView:
    rng = random.Random(7)
    entries = []
    for number in range(blocks):
        types = [[value, rng.randint(1, 50)] for value in rng.sample(STORED, 3)]
        first_seq = number * 1_000
        entries.append(
            BlockSummary(f"imdb:{first_seq}", first_seq, sum(n for _, n in types), types, column_counts=[], version=1)
        )
    return DatasetView(head={"_id": "imdb"}, chunks={"0": entries})


def test_a_type_is_counted_exactly_per_block():
    view = view_of(BLOCKS)
    for text in ["movie", "1994", "tvepisode", "nothing"]:
        counts, before = view.typed(text, lambda value, text=text: matches(text, value))
        expected = [sum(n for value, n in entry.type_counts if matches(text, value)) for entry in view.entries]
        assert counts == expected
        assert before[-1] == sum(expected)
        assert before[1:4] == [sum(expected[:1]), sum(expected[:2]), sum(expected[:3])]


def test_a_new_type_value_asks_each_distinct_stored_value_once_not_each_block():
    view = view_of(BLOCKS)
    view.typed("movie", lambda value: matches("movie", value))  # the summaries are read once per view

    for request in range(20):  # an anonymous client asking a new value each time
        text = f"no-such-type-{request}"
        asked: list[object] = []

        def match(value: object, text: str = text, asked: list[object] = asked) -> bool:
            asked.append(value)
            return matches(text, value)

        counts, before = view.typed(text, match)
        assert before[-1] == 0 and not any(counts)
        assert len(asked) == len(STORED)
