"""The catalog's stored layout: the contract between the ingest worker (writer) and catalog-service
(reader), described in ARCHITECTURE.md ("The catalog layout"). Pure: names, ids and the shapes of
documents, no I/O.

Items carry no secondary index. Their order and counts live in small documents written once per
batch: a *block* lists the keys one batch inserted, in import order, with the positions of each
``type`` value and how many items have each column; a *summary chunk* holds the summaries (first
``seq``, count, per-``type`` and per-column counts) of up to ``CHUNK_ENTRIES`` blocks; the
*dataset* document holds a revision per chunk. A reader that caches the summaries and checks the
revisions (one point read) maps any page number to a few blocks by prefix sums, then fetches the
page's items by ``_id``.
"""

import itertools
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

DATASETS = "datasets"
ITEMS = "catalog_items"
BLOCKS = "catalog_blocks"
CHUNKS = "catalog_block_summaries"

DEFAULT_DATASET = "default"
DATASET_NAME = re.compile(r"[a-z0-9-]{1,64}")
DATASET_NAME_RULE = "1-64 lowercase letters, digits or '-'"
# The column whose values ``type=`` filters by, counted per block so those pages and counts cost a page.
TYPE_COLUMN = "type"
# Small enough that appending a summary rewrites a small document (~2 ms on the embedded store, where
# 100 entries took 7); 11 million rows make ~440 chunks, one revision each on the dataset document.
CHUNK_ENTRIES = 25
# Ids per ``$in`` read: the embedded store answers a short ``$in`` in about a millisecond, while
# its cost grows faster than linearly with the list.
IDS_PER_READ = 50


class BlockState:
    """A block is written ``pending`` (every key its batch may insert) before the items, ``committed``
    (the keys it did insert) after them, and ``indexed`` once its summary is in a chunk."""

    PENDING = "pending"
    COMMITTED = "committed"
    INDEXED = "indexed"


def is_dataset_name(name: str) -> bool:
    return DATASET_NAME.fullmatch(name) is not None


def item_id(dataset: str, key: str) -> str:
    """Keys are unique per dataset; a dataset name has no ':', so the id is unambiguous."""
    return f"{dataset}:{key}"


def block_id(dataset: str, first_seq: int) -> str:
    return f"{dataset}:{first_seq}"


def chunk_id(dataset: str, number: int) -> str:
    return f"{dataset}:{number}"


# A column name is a document field name: '.' would read as a path and a leading '$' as an
# operator. Stored names escape those (and '%', the escape itself), so every column round-trips.
_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24"}
_ESCAPED = re.compile(r"%(25|2E|24)")
_UNESCAPES = {code[1:]: char for char, code in _ESCAPES.items()}


def field_name(column: str) -> str:
    """The stored field name of a CSV column."""
    if not any(char in column for char in _ESCAPES):
        return column
    return "".join(_ESCAPES.get(char, char) for char in column)


def column_name(field: str) -> str:
    """The CSV column a stored field name stands for."""
    if "%" not in field:
        return field
    return _ESCAPED.sub(lambda match: _UNESCAPES[match.group(1)], field)


def stored_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {field_name(column): value for column, value in row.items()}


def public_row(stored: Mapping[str, Any]) -> dict[str, Any]:
    return {column_name(field): value for field, value in stored.items()}


def type_value(row: Mapping[str, Any]) -> Any:
    """The value ``type=`` compares, from a stored row: missing reads as null, as a query sees it."""
    return row.get(field_name(TYPE_COLUMN))


def block_index(rows: Iterable[Mapping[str, Any]]) -> tuple[list[list[Any]], list[list[Any]]]:
    """For the stored rows of a block, in order: ``[[type value, [positions]], ...]`` and
    ``[[column, items having it], ...]``, both in order of first appearance."""
    rows = list(rows)
    types: dict[Any, tuple[Any, list[int]]] = {}
    type_field = field_name(TYPE_COLUMN)
    for position, row in enumerate(rows):
        value = row.get(type_field)
        marker = _hashable(value)
        if marker in types:
            types[marker][1].append(position)
        else:
            types[marker] = (value, [position])
    columns = Counter(itertools.chain.from_iterable(rows))
    return [[value, positions] for value, positions in types.values()], [
        [column_name(field), count] for field, count in columns.items()
    ]


def _hashable(value: Any) -> Any:
    # 1, 1.0 and True are one dict key in Python, while BSON tells True from the numbers (it
    # compares 1 and 1.0 as equal, as Python does); and "1" is text, apart from both already.
    if isinstance(value, bool):
        return ("bool", value)
    return value


def pack_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """A block's stored rows, in the order of its ``keys``, as one compressed value: what the
    catalog's read model is fed from, at the cost of one field in a write the batch makes anyway."""
    return zlib.compress(orjson.dumps(list(rows)), 1)


def unpack_rows(block: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The rows a block holds as of its version ``v``, in the order of its ``keys``; None for a
    block written before blocks carried their rows."""
    packed = block.get("rows")
    return None if packed is None else orjson.loads(zlib.decompress(packed))


def block_summary(block: Mapping[str, Any]) -> dict[str, Any]:
    """The entry a chunk keeps for a committed block: what readers need without the keys."""
    return {
        "b": block["_id"],
        "s": block["seq"],
        "n": len(block["keys"]),
        "t": [[value, len(positions)] for value, positions in block["types"]],
        "c": block["columns"],
        "v": block["v"],
    }


def new_dataset(
    name: str, *, owner: str | None, key: str | None, now: Any, owner_username: str | None = None
) -> dict[str, Any]:
    """A dataset as its first upload creates it. ``owner`` None: any signed-in user may write it
    (the ``default`` dataset, the seed's one shared catalog)."""
    return {
        "_id": name,
        "owner": owner,
        "owner_username": owner_username,
        "key": key,
        "status": "active",
        "column_types": [],
        "index": {},
        "last_chunk": 0,
        "created_at": now,
        "last_import_at": None,
    }


def merge_column_types(known: list[list[str]], found: Mapping[str, str]) -> list[list[str]]:
    """Column types across a dataset's files: a column typed differently by two files is a string."""
    merged = {name: kind for name, kind in known}
    for name, kind in found.items():
        merged[name] = kind if merged.get(name, kind) == kind else "string"
    return [[name, kind] for name, kind in merged.items()]
