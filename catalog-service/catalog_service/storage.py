"""Reads of ``catalog_items`` (written by the ingest worker, see ARCHITECTURE.md) and the read indexes.

Every query is built here from checked column names and plain values: a value
is only ever an equality operand, an ``$in`` member or an escaped regex, never
an operator.
"""

import asyncio
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.cursors import CursorPosition, SortValue
from catalog_service.index import CatalogIndex, DatasetView, TypeMatch
from catalog_service.schemas import SortOrder
from service_common.catalog_layout import DATASETS, ITEMS, TYPE_COLUMN, field_name, item_id
from service_common.catalog_values import matches, matching_values

CATALOG_ITEMS = ITEMS
ITEM_FIELDS = {"row": 1, "seq": 1, "key": 1}
TITLE_COLUMN = "title"

# BSON's sort order puts null (and a missing field) first, then numbers, then strings, then these.
# A keyset condition needs them because $gt/$lt only compare values of the same type.
TYPES_AFTER_STRINGS = ["object", "array", "binData", "objectId", "bool", "date", "timestamp", "regex"]
TYPES_AFTER_NUMBERS = ["string", "symbol", *TYPES_AFTER_STRINGS]


# Indexes earlier versions created on every item: each cost the embedded store about 100 µs per
# imported row, and none made a page cheaper there. Dropped at start-up unless asked for again.
LEGACY_INDEXES = ("seq_unique", "row_type_seq", "row_title_seq")


def opt_in_index_name(column: str | None) -> str:
    return "dataset_seq" if column is None else f"dataset_{field_name(column)}_seq"


async def ensure_indexes(db: AsyncDatabase, indexed_columns: Sequence[str]) -> None:
    """Items need no secondary index for import-order and ``type=`` pages (``index.py``). On MongoDB,
    sorts and filters by column scan without one: ``CATALOG_INDEXES`` names the columns worth one."""
    items = db[CATALOG_ITEMS]
    wanted = {}
    if indexed_columns:
        wanted[opt_in_index_name(None)] = [("dataset", ASCENDING), ("seq", ASCENDING)]
    for column in indexed_columns:
        wanted[opt_in_index_name(column)] = [
            ("dataset", ASCENDING),
            (field_path(column), ASCENDING),
            ("seq", ASCENDING),
        ]
    existing = await items.index_information()
    for name in existing:
        if name != "_id_" and name not in wanted and (name in LEGACY_INDEXES or name.startswith("dataset_")):
            await items.drop_index(name)
    for name, keys in wanted.items():
        await items.create_index(keys, name=name)


def field_path(column: str | None, known: Collection[str] = ()) -> str:
    """Where a column lives in an item: a column of the dataset in ``row``; ``id``, when the dataset
    has no such column, is the row key; no column is import order."""
    if column is None:
        return "seq"
    if column == "id" and column not in known:
        return "key"
    return f"row.{field_name(column)}"


def type_matcher(text: str) -> Callable[[Any], bool]:
    """Whether a stored value is one ``filter[<column>]=text`` matches, as ``match_criteria`` would."""
    return lambda value: matches(text, value)


def match_criteria(dataset: str, filters: dict[str, str], q: str | None, known: Collection[str]) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [{"dataset": dataset}]
    clauses += [{field_path(column, known): {"$in": matching_values(value)}} for column, value in filters.items()]
    if q is not None:
        clauses.append({field_path(TITLE_COLUMN, known): {"$regex": re.escape(q), "$options": "i"}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def sort_keys(order: SortOrder, known: Collection[str]) -> list[tuple[str, int]]:
    direction = DESCENDING if order.descending else ASCENDING
    if order.column is None:
        return [("seq", direction)]
    # The tie-breaker follows the column's direction, so one (column, seq) index serves both directions.
    return [(field_path(order.column, known), direction), ("seq", direction)]


def sort_value(order: SortOrder, document: dict[str, Any], known: Collection[str]) -> SortValue:
    """The document's value of the sort column; a missing column sorts as null, as MongoDB sorts it."""
    path = field_path(order.column, known)
    if path.startswith("row."):
        return document["row"].get(path.removeprefix("row."))
    return document[path]


def after_criteria(order: SortOrder, position: CursorPosition, known: Collection[str]) -> dict[str, Any]:
    """Items strictly after ``position`` in ``order``, across BSON's type brackets."""
    seq_after = {"$lt" if order.descending else "$gt": position.seq}
    if order.column is None:
        return {"seq": seq_after}
    field, value = field_path(order.column, known), position.sort_value
    ties = {field: value, "seq": seq_after}
    if order.descending:
        if value is None:
            return ties
        beyond = [{field: {"$lt": value}}, {field: None}]
        if isinstance(value, str):
            beyond.append({field: {"$type": "number"}})
        return {"$or": [ties, *beyond]}
    if value is None:
        return {"$or": [ties, {field: {"$ne": None}}]}
    later_types = TYPES_AFTER_STRINGS if isinstance(value, str) else TYPES_AFTER_NUMBERS
    return {"$or": [ties, {field: {"$gt": value}}, {field: {"$type": later_types}}]}


@dataclass(frozen=True)
class Page:
    documents: list[dict[str, Any]]
    total: int
    has_more: bool


def in_import_order(filters: dict[str, str], q: str | None, order: SortOrder) -> bool:
    """Whether the blocks answer the query: import order, all items or one ``type``."""
    return order.column is None and q is None and set(filters) <= {TYPE_COLUMN}


async def read_page(
    db: AsyncDatabase,
    index: CatalogIndex,
    view: DatasetView,
    *,
    filters: dict[str, str],
    q: str | None,
    order: SortOrder,
    limit: int,
    skip: int = 0,
    after: CursorPosition | None = None,
) -> Page:
    """One page and the number of matching items; one item more is read to learn whether a next page exists."""
    if in_import_order(filters, q, order):
        typed, total = _kept_count(view, filters)
        if after is None:
            documents = await index.page_at(db, view, skip, limit + 1, typed)
        else:
            documents = await index.page_after(db, view, after.seq, limit + 1, typed)
        return Page(documents=documents[:limit], total=total, has_more=len(documents) > limit)
    return await _scan_page(db, view, filters=filters, q=q, order=order, limit=limit, skip=skip, after=after)


def _kept_count(view: DatasetView, filters: dict[str, str]) -> tuple[tuple[str, TypeMatch] | None, int]:
    """For no filter or ``type`` alone: the ``type`` selection, and how many items match, from the summaries."""
    if TYPE_COLUMN not in filters:
        return None, view.total
    typed = (filters[TYPE_COLUMN], type_matcher(filters[TYPE_COLUMN]))
    return typed, view.typed(*typed)[1][-1]


async def _scan_page(
    db: AsyncDatabase,
    view: DatasetView,
    *,
    filters: dict[str, str],
    q: str | None,
    order: SortOrder,
    limit: int,
    skip: int,
    after: CursorPosition | None,
) -> Page:
    """Sorts, filters on other columns and ``q``: a query over the dataset's items (a scan on the
    embedded store; on MongoDB, served by the indexes ``CATALOG_INDEXES`` asks for)."""
    items = db[CATALOG_ITEMS]
    known = view.column_names
    criteria = match_criteria(view.name, filters, q, known)
    page_criteria = criteria
    if after is not None:
        page_criteria = {"$and": [criteria, after_criteria(order, after, known)]}
    find = items.find(page_criteria, ITEM_FIELDS).sort(sort_keys(order, known)).skip(skip).limit(limit + 1)
    if set(filters) <= {TYPE_COLUMN} and q is None:
        documents = await find.to_list()
        _, total = _kept_count(view, filters)
    else:
        documents, total = await asyncio.gather(find.to_list(), items.count_documents(criteria))
    return Page(documents=documents[:limit], total=total, has_more=len(documents) > limit)


async def find_item(db: AsyncDatabase, dataset: str, key: str) -> dict[str, Any] | None:
    return await db[CATALOG_ITEMS].find_one({"_id": item_id(dataset, key)}, ITEM_FIELDS)


async def list_datasets(db: AsyncDatabase) -> list[str]:
    return [document["_id"] async for document in db[DATASETS].find({}, {"_id": 1}).sort("_id", ASCENDING)]
