"""Catalogs imported before datasets and blocks existed become the ``default`` dataset, at the
worker's start-up, once.

Such an item is keyed by its bare row key and has no ``dataset``. Read in import order, each run of
``BATCH`` items is inserted again in the current layout (dataset-qualified id, escaped column
names, its own ``seq`` kept) with its block, and only then are the old documents deleted. A
migration cut short goes on where it stopped: the old documents still there are the ones left to
do, and a batch done twice finds its items and block already in place.

Finding legacy items takes a query on a field no index covers, which the embedded store answers by
reading every item into memory (ten million items: 24 GB). So it is asked at most once per store,
and only of a store that may hold them: once the migration has finished, or found nothing to do, a
marker in ``migrations`` says so and every later start reads that one document. A store whose first
``seq`` (1, the counter's first) went to an import in the current layout, block ``<dataset>:1``,
began after datasets existed and holds no legacy item: that is point reads of a few small documents.
"""

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ingest_service import catalog_blocks, import_storage
from service_common.catalog_layout import BLOCKS, DATASETS, DEFAULT_DATASET, ITEMS, block_id, stored_row

log = logging.getLogger(__name__)

BATCH = 1000
MIGRATION_JOB = "migration"
LEGACY = {"dataset": {"$exists": False}}
# The ingest service's record of the migrations it has finished, one document each.
MIGRATIONS = "migrations"
LEGACY_CATALOG = "legacy_catalog"
FIRST_SEQ = 1  # what ``import_storage.allocate_seq_block`` gives first, as every earlier version did


def migrate_legacy_catalog(db: Database) -> int:
    """Moves every legacy item into the ``default`` dataset; returns how many there were."""
    if db[MIGRATIONS].find_one({"_id": LEGACY_CATALOG}, {"_id": 1}) is not None:
        return 0
    if began_in_the_current_layout(db):
        log.info("The catalog holds no items from before datasets: nothing to migrate")
        moved = 0
    else:
        log.info("Looking for items from before datasets (once per store)")
        moved = _migrate(db)
    with contextlib.suppress(DuplicateKeyError):  # another worker starting at the same time said it first
        db[MIGRATIONS].insert_one({"_id": LEGACY_CATALOG, "finished_at": datetime.now(UTC), "moved": moved})
    return moved


def began_in_the_current_layout(db: Database) -> bool:
    """Whether the store's items were all written in the current layout, told by point reads alone.

    Every version allocated ``seq`` from one counter, starting at 1. A store a version from before
    datasets wrote gave 1 to an item of its own, which has no block (or, migrated, a block of the
    migration's). Where an import's block ``<dataset>:1`` stands, the first item ever written was
    that import's. Not knowing (the counter is there but that block is not: a legacy store, or the
    dataset of the first import was deleted) is False, and the caller looks."""
    if db[import_storage.COUNTERS].find_one({"_id": import_storage.SEQ_COUNTER}, {"_id": 1}) is None:
        return True  # no item was ever written
    datasets = [document["_id"] for document in db[DATASETS].find({}, {"_id": 1})]
    first = db[BLOCKS].find_one({"_id": {"$in": [block_id(name, FIRST_SEQ) for name in datasets]}}, {"job_id": 1})
    return first is not None and first.get("job_id") != MIGRATION_JOB


def _migrate(db: Database) -> int:
    if db[ITEMS].find_one(LEGACY, {"_id": 1}) is None:
        return 0
    now = datetime.now(UTC)
    first_job = db[import_storage.JOBS].find_one({}, {"key": 1, "owner": 1}, sort=[("created_at", 1)]) or {}
    import_storage.ensure_dataset(db, {"key": first_job.get("key"), "owner": None}, now)
    log.info("Migrating the catalog's items into the default dataset")
    # The old unique index on ``seq`` would refuse each new document beside the old one it replaces.
    if "seq_unique" in db[ITEMS].index_information():
        db[ITEMS].drop_index("seq_unique")
    moved = 0
    batch: list[dict[str, Any]] = []
    for legacy in db[ITEMS].find(LEGACY).sort("seq", 1):
        batch.append(legacy)
        if len(batch) == BATCH:
            moved += _move(db, batch, now)
            batch = []
    if batch:
        moved += _move(db, batch, now)
    log.info("Migrated %d items into the default dataset", moved)
    return moved


def _move(db: Database, legacy: list[dict[str, Any]], now: datetime) -> int:
    documents = []
    for old in legacy:
        key = str(old["_id"])
        document = catalog_blocks.item_document(
            DEFAULT_DATASET,
            key,
            seq=old["seq"],
            block_id="",
            row=stored_row(old.get("row", {})),
            job_id=old.get("source", {}).get("job_id", MIGRATION_JOB),
            line=old.get("source", {}).get("line", 0),
            now=old.get("created_at", now),
        )
        document["updated_at"] = old.get("updated_at", now)
        documents.append(document)
    catalog_blocks.append_items(db, DEFAULT_DATASET, MIGRATION_JOB, documents, now)
    # Only what now stands in the new layout is removed from the old one.
    moved = catalog_blocks.read_items(db, DEFAULT_DATASET, [d["key"] for d in documents], {"seq": 1})
    done = [old["_id"] for old, new in zip(legacy, documents, strict=True) if new["key"] in moved]
    if len(done) < len(legacy):
        missing = len(legacy) - len(done)
        raise RuntimeError(f"{missing} legacy item(s) could not be migrated; they were left as they are")
    db[ITEMS].delete_many({"_id": {"$in": done}, **LEGACY})
    return len(done)
