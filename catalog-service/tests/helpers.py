"""Catalog documents as the ingest worker writes them, and what the API should answer for them."""

import contextlib
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ingest_service.catalog_blocks import append_items, item_document
from service_common.catalog_layout import DATASETS, DEFAULT_DATASET, new_dataset, public_row

CURSOR_SECRET = "test-cursor-secret-0123456789abcdef"
JOB_ID = "00000000-0000-4000-8000-000000000000"
ITEM_COUNT = 300
# Titles a regex would misread; q must match them literally.
TRICKY_TITLES = {
    5: "What If...? (Part 1)",
    6: "C++ [Live] $5 ^up",
    7: "a.b.c",
    8: "Price: $9.99 | Deal*",
    9: "Back\\slash",
    10: "Regex .* literally",
}


def build_catalog(count: int = ITEM_COUNT) -> list[dict[str, Any]]:
    """Documents exactly as the ingest worker writes them (ARCHITECTURE.md), with the awkward cases real files have.

    ``seq`` has gaps (allocated in blocks), ``release_year`` is mostly an int but sometimes a string or null,
    titles repeat (so order needs its tie-breaker), some rows lack ``director`` (a file without that column).
    """
    now = datetime.now(UTC)
    seq = 1_000
    documents = []
    rng = random.Random(4)
    for n in range(count):
        seq += rng.choice([1, 1, 1, 64])
        key = f"s{n}" if n != 11 else "x/11"
        release_year: int | str | None = 2010 + n % 10
        if n % 9 == 0:
            release_year = str(release_year)
        if n % 25 == 0:
            release_year = None
        row: dict[str, Any] = {
            "show_id": key,
            "type": "TV Show" if n % 3 == 0 else "Movie",
            "title": TRICKY_TITLES.get(n, f"Title {n % 40:02d}"),
            "director": None if n % 4 == 0 else f"Director {n % 7}",
            "release_year": release_year,
            "rating": "TV-MA" if n % 2 else "PG-13",
        }
        if n % 50 == 49:
            del row["director"]
        documents.append(
            item_document(DEFAULT_DATASET, key, seq=seq, block_id="", row=row, job_id=JOB_ID, line=n + 2, now=now)
        )
    return documents


def store_catalog(db: Database, documents: list[dict[str, Any]], *, block_size: int = 40, seed: int = 7) -> None:
    """Writes the documents with their blocks as the ingest worker does, the blocks in a shuffled
    order, so that only the layout's own order gives import order."""
    batches = [documents[start : start + block_size] for start in range(0, len(documents), block_size)]
    random.Random(seed).shuffle(batches)
    now = datetime.now(UTC)
    for batch in batches:
        dataset = batch[0]["dataset"]
        with contextlib.suppress(DuplicateKeyError):
            db[DATASETS].insert_one(new_dataset(dataset, owner=None, key="show_id", now=now))
        columns = {column: "string" for document in batch for column in public_row(document["row"])}
        added = [[column, kind] for column, kind in columns.items()]
        db[DATASETS].update_one({"_id": dataset}, {"$addToSet": {"column_types": {"$each": added}}})
        append_items(db, dataset, JOB_ID, batch, now)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] if "id" in item else item["_id"] for item in items]


def bson_rank(value: Any) -> tuple:
    """MongoDB's sort order for the values a row holds: null (or missing) < numbers < strings."""
    if value is None:
        return (0,)
    if isinstance(value, int | float):
        return (1, value)
    return (2, value)


def expected(
    documents: list[dict[str, Any]],
    *,
    column: str | None = None,
    descending: bool = False,
    where: Callable[[dict[str, Any]], bool] = lambda row: True,
) -> list[str]:
    """The ids the API should list: matching rows in (column, seq) order."""
    matching = [d for d in documents if where(d["row"])]
    if column is None:
        ordered = sorted(matching, key=lambda d: d["seq"], reverse=descending)
    else:
        ordered = sorted(matching, key=lambda d: (bson_rank(d["row"].get(column)), d["seq"]), reverse=descending)
    return [d["key"] for d in ordered]
