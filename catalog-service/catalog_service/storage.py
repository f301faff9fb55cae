"""Reads of MongoDB: import-order pages from the catalog layout (``index.py``), point reads of items,
the list of datasets. Every other question goes to the read model (``read_model.py``), never to a
scan of ``catalog_items``; every query sent here carries ``maxTimeMS``.
"""

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.cursors import CursorPosition, SortValue
from catalog_service.index import ITEM_FIELDS, CatalogIndex, DatasetView, TypeMatch
from catalog_service.schemas import KEY_COLUMN, Filter, FilterOp, SortOrder
from service_common.catalog_layout import DATASETS, ITEMS, TYPE_COLUMN, item_id
from service_common.catalog_values import matches
from service_common.paging import PageQuery, cut_page

# Indexes earlier versions created on every item: each cost the embedded store about 100 µs per
# imported row, and the read model answers what they served. Dropped at start-up.
LEGACY_INDEXES = ("seq_unique", "row_type_seq", "row_title_seq")


async def drop_legacy_indexes(db: AsyncDatabase) -> None:
    """Items need no secondary index (import-order pages come from the layout, everything else from
    the read model); the indexes earlier versions made, or ``CATALOG_INDEXES`` asked for, go."""
    items = db[ITEMS]
    for name in await items.index_information():
        if name in LEGACY_INDEXES or name.startswith("dataset_"):
            await items.drop_index(name)


def sort_value(order: SortOrder, item: dict[str, Any], known: set[str]) -> SortValue:
    """The item's value of the sort column, as the API shows it; a missing column sorts as null."""
    if order.column is None:
        return item["seq"]
    if order.column == KEY_COLUMN and KEY_COLUMN not in known:
        return item["key"]
    return item["row"].get(order.column)


@dataclass(frozen=True)
class Page:
    documents: list[dict[str, Any]]
    total: int
    has_more: bool


def in_import_order(filters: list[Filter], q: str | None, order: SortOrder) -> bool:
    """Whether the blocks answer the query: import order, all items or one ``type`` value."""
    if order.column is not None or q is not None or len(filters) > 1:
        return False
    return all(f.column == TYPE_COLUMN and f.op is FilterOp.EQ for f in filters)


async def read_page(
    db: AsyncDatabase,
    index: CatalogIndex,
    view: DatasetView,
    *,
    filters: list[Filter],
    query: PageQuery,
    skip: int = 0,
    after: CursorPosition | None = None,
) -> Page:
    """One import-order page (``in_import_order``) of ``query.limit`` items, ``skip`` items in or
    after ``after``, and the number of matching items."""
    typed, total = kept_count(view, filters)
    if after is None:
        documents = await index.page_at(db, view, skip, query.fetch_size, typed)
    else:
        documents = await index.page_after(db, view, after.seq, query.fetch_size, typed)
    documents, has_more = cut_page(documents, query.limit)
    return Page(documents=documents, total=total, has_more=has_more)


def kept_count(view: DatasetView, filters: list[Filter]) -> tuple[tuple[str, TypeMatch] | None, int]:
    """For no filter or ``type`` alone: the ``type`` selection, and how many items match, from the summaries."""
    if not filters:
        return None, view.total
    text = filters[0].value
    typed = (text, lambda value: matches(text, value))
    return typed, view.typed(*typed)[1][-1]


async def find_item(db: AsyncDatabase, dataset: str, key: str, *, budget_ms: int) -> dict[str, Any] | None:
    return await db[ITEMS].find_one({"_id": item_id(dataset, key)}, ITEM_FIELDS, max_time_ms=budget_ms)


async def list_datasets(
    db: AsyncDatabase, *, budget_ms: int = 5_000, skip: int = 0, limit: int | None = None
) -> list[str]:
    """Dataset names in order: all of them (the projector's), or one page of ``limit`` after ``skip``."""
    cursor = db[DATASETS].find({}, {"_id": 1}, max_time_ms=budget_ms).sort("_id", ASCENDING).skip(skip)
    if limit is not None:
        cursor = cursor.limit(limit)
    return [document["_id"] async for document in cursor]


async def count_datasets(db: AsyncDatabase, *, budget_ms: int) -> int:
    return await db[DATASETS].count_documents({}, maxTimeMS=budget_ms)
