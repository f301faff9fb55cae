"""Catalogs imported before datasets and blocks existed become the ``default`` dataset, at the
worker's start-up, once.

Such an item is keyed by its bare row key and has no ``dataset``. Read in import order, each run of
``BATCH`` items is inserted again in the current layout (dataset-qualified id, escaped column
names, its own ``seq`` kept) with its block, and only then are the old documents deleted. A
migration cut short goes on where it stopped: the old documents still there are the ones left to
do, and a batch done twice finds its items and block already in place.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from ingest_service import import_storage
from service_common import catalog_blocks
from service_common.catalog_layout import DEFAULT_DATASET, ITEMS, stored_row

log = logging.getLogger(__name__)

BATCH = 1000
MIGRATION_JOB = "migration"
LEGACY = {"dataset": {"$exists": False}}


def migrate_legacy_catalog(db: Database) -> int:
    """Moves every legacy item into the ``default`` dataset; returns how many there were."""
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
            block="",
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
