"""The catalog's stored layout: the names, ids and document shapes that the ingest worker writes
(``ingest_service.catalog_blocks``) and catalog-service reads. Pure: no I/O. ARCHITECTURE.md ("The
catalog layout") draws the documents and says why they are shaped so.

Items carry no secondary index; their order and counts live in small documents written once per
batch. A *block* (``BLOCKS``) lists the keys one batch inserted, in import order, with their rows;
a *summary chunk* (``SUMMARY_CHUNKS``) holds the ``BlockSummary`` of up to ``CHUNK_ENTRIES`` blocks;
the *dataset* document holds a revision per chunk (``CHUNK_REVISIONS``). A reader caches the
summaries, re-reads a chunk when its revision moves, maps a page to a few blocks by prefix sums and
fetches the page's items by ``_id``.

The invariant. It holds whenever no writer is midway through a batch, a patch or a revert; one
that dies midway leaves blocks ``pending`` or ``committed`` (or in-place writes marked on its job),
which its job's next run, the periodic check or a revert finishes by rule 1.
``ingest_service.catalog_blocks.audit`` is its executable form and names the rule each problem breaks.

1. Membership: a block lists a key at a ``seq`` only while the key's item carries that ``seq``.
   Every writer recovers by it: a block's candidate was inserted by the block, and still stands,
   exactly when its item carries the ``seq`` the block gave it.
2. Every item is listed by exactly one block, and the blocks, taken in order of their first
   ``seq``, list the items in import order.
3. A block's ``types``, ``columns`` and ``rows`` are those of its items' rows in the order of its
   ``keys``, and its ``ws`` holds no write its item never had.
4. Every block is ``indexed``: its summary is in a chunk and is ``BlockSummary.of`` the block at its
   current version ``v``; every summary in a chunk is an indexed block's.
5. Every chunk has a revision on the dataset document, bumped after each change to the chunk: a
   reader holding the revisions it read the chunks at holds the current summaries.
"""

import itertools
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

import orjson

from service_common.catalog_values import summarised_type

DATASETS = "datasets"
ITEMS = "catalog_items"
BLOCKS = "catalog_blocks"
SUMMARY_CHUNKS = "catalog_block_summaries"
# The dataset document's field holding a revision per summary chunk (``{"c0": 17, "c1": 3}``); its
# stored name predates this constant and stays, for the datasets already stored under it.
CHUNK_REVISIONS = "index"

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
    (the keys it did insert) after them, and ``indexed`` once its summary is placed in a chunk."""

    PENDING = "pending"
    COMMITTED = "committed"
    INDEXED = "indexed"


class DatasetStatus(StrEnum):
    """A dataset document's ``status``; ``service_common.datasets`` holds the rules that read it."""

    ACTIVE = "active"
    # ``DELETE /datasets/{name}`` was answered: its items are being removed, then the document; no
    # upload may write to it meanwhile.
    DELETING = "deleting"


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


def types_and_columns(rows: Iterable[Mapping[str, Any]]) -> tuple[list[list[Any]], list[list[Any]]]:
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


@dataclass(frozen=True, slots=True)
class BlockSummary:
    """A block's entry in its summary chunk: what readers need of it without its keys.

    Stored under one-letter names (``{"b", "s", "n", "t", "c", "v"}``, in every dataset stored so
    far); ``stored`` and ``from_stored`` are the only code that spells them."""

    block_id: str
    first_seq: int
    items: int
    type_counts: list[list[Any]]  # [[type value (a long one by its digest: summarised_type), items having it], ...]
    column_counts: list[list[Any]]  # [[column, items having it], ...]
    version: int  # the block's ``v`` it was taken at

    @classmethod
    def of(cls, block: Mapping[str, Any]) -> Self:
        """The summary of a committed block as it stands."""
        return cls(
            block_id=block["_id"],
            first_seq=block["seq"],
            items=len(block["keys"]),
            type_counts=[[summarised_type(value), len(positions)] for value, positions in block["types"]],
            column_counts=block["columns"],
            version=block["v"],
        )

    @classmethod
    def from_stored(cls, entry: Mapping[str, Any]) -> Self:
        return cls(
            block_id=entry["b"],
            first_seq=entry["s"],
            items=entry["n"],
            type_counts=entry["t"],
            column_counts=entry["c"],
            version=entry["v"],
        )

    def stored(self) -> dict[str, Any]:
        return {
            "b": self.block_id,
            "s": self.first_seq,
            "n": self.items,
            "t": self.type_counts,
            "c": self.column_counts,
            "v": self.version,
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
        "status": DatasetStatus.ACTIVE.value,
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
