"""Reads of ``catalog_items`` (written by the ingest worker, see ARCHITECTURE.md) and the read indexes.

Every query is built here from checked column names and plain values: a value
is only ever an equality operand, an ``$in`` member or an escaped regex, never
an operator.
"""

import asyncio
import math
import re
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.cursors import CursorPosition, SortValue
from catalog_service.schemas import SortOrder

CATALOG_ITEMS = "catalog_items"
ITEM_FIELDS = {"row": 1, "seq": 1}
INT64 = range(-(2**63), 2**63)
# The forms the ingest worker stores as numbers: plain integers and decimals, no exponent, no leading zeros.
PLAIN_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")

# BSON's sort order puts null (and a missing field) first, then numbers, then strings, then these.
# A keyset condition needs them because $gt/$lt only compare values of the same type.
TYPES_AFTER_STRINGS = ["object", "array", "binData", "objectId", "bool", "date", "timestamp", "regex"]
TYPES_AFTER_NUMBERS = ["string", "symbol", *TYPES_AFTER_STRINGS]


async def ensure_indexes(db: AsyncDatabase) -> None:
    """The catalog's read indexes; create_index is a no-op when an index already exists."""
    items = db[CATALOG_ITEMS]
    # Import order is the default order and every order's tie-breaker: it must be unique for pages not to overlap.
    await items.create_index([("seq", ASCENDING)], unique=True, name="seq_unique")
    # The seed's one filter (type=Movie) and the likeliest sort, each walked in seq order.
    await items.create_index([("row.type", ASCENDING), ("seq", ASCENDING)], name="row_type_seq")
    await items.create_index([("row.title", ASCENDING), ("seq", ASCENDING)], name="row_title_seq")


def field_path(column: str | None) -> str:
    """Where a column lives in the document; ``id`` is the row key, as in the items the API returns."""
    if column is None:
        return "seq"
    if column == "id":
        return "_id"
    return f"row.{column}"


def _stored_number(text: str) -> int | float | None:
    """The number the ingest worker would have stored for this text, if it stores one."""
    if not PLAIN_NUMBER.fullmatch(text):
        return None
    if "." in text:
        decimal = float(text)
        return decimal if math.isfinite(decimal) else None
    integer = int(text)
    return integer if integer in INT64 else None


def _same_value(text: str) -> list[Any]:
    """What a query value matches, whether the ingest stored the cell as a number, a string or null."""
    if text == "":
        # An empty CSV cell is stored as null (or the column is missing from that file).
        return [None, ""]
    number = _stored_number(text)
    # Equal numbers match across int and double (2019 == 2019.0), as MongoDB compares them.
    return [text] if number is None else [text, number]


def match_criteria(filters: dict[str, str], q: str | None) -> dict[str, Any]:
    clauses = [{field_path(column): {"$in": _same_value(value)}} for column, value in filters.items()]
    if q is not None:
        clauses.append({"row.title": {"$regex": re.escape(q), "$options": "i"}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def sort_keys(order: SortOrder) -> list[tuple[str, int]]:
    direction = DESCENDING if order.descending else ASCENDING
    if order.column is None:
        return [("seq", direction)]
    # The tie-breaker follows the column's direction, so one (column, seq) index serves both directions.
    return [(field_path(order.column), direction), ("seq", direction)]


def sort_value(order: SortOrder, document: dict[str, Any]) -> SortValue:
    """The document's value of the sort column; a missing column sorts as null, as MongoDB sorts it."""
    if order.column is None:
        return document["seq"]
    if order.column == "id":
        return document["_id"]
    return document["row"].get(order.column)


def after_criteria(order: SortOrder, position: CursorPosition) -> dict[str, Any]:
    """Items strictly after ``position`` in ``order``, across BSON's type brackets."""
    seq_after = {"$lt" if order.descending else "$gt": position.seq}
    if order.column is None:
        return {"seq": seq_after}
    field, value = field_path(order.column), position.sort_value
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


async def read_page(
    db: AsyncDatabase,
    *,
    filters: dict[str, str],
    q: str | None,
    order: SortOrder,
    limit: int,
    skip: int = 0,
    after: CursorPosition | None = None,
) -> Page:
    """One page and the number of matching items; one item more is read to learn whether a next page exists."""
    items = db[CATALOG_ITEMS]
    criteria = match_criteria(filters, q)
    page_criteria = criteria
    if after is not None:
        after_clause = after_criteria(order, after)
        page_criteria = {"$and": [criteria, after_clause]} if criteria else after_clause
    find = items.find(page_criteria, ITEM_FIELDS).sort(sort_keys(order)).skip(skip).limit(limit + 1)
    # With no filter the collection's own count is exact and costs nothing, where counting scans an index.
    count = items.count_documents(criteria) if criteria else items.estimated_document_count()
    documents, total = await asyncio.gather(find.to_list(), count)
    return Page(documents=documents[:limit], total=total, has_more=len(documents) > limit)


async def find_item(db: AsyncDatabase, item_id: str) -> dict[str, Any] | None:
    return await db[CATALOG_ITEMS].find_one({"_id": item_id}, ITEM_FIELDS)
