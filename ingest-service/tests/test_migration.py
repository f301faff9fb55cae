"""A catalog imported before datasets existed becomes the default dataset when a worker starts."""

from datetime import UTC, datetime

from ingest_service.migration import migrate_legacy_catalog
from service_common.catalog_blocks import audit
from service_common.catalog_layout import DATASETS
from service_common.testing import movies_csv

from .helpers import upload_ok, wait_finished


def legacy_catalog(db, count: int) -> list[dict]:
    """Items as the previous version wrote them: bare keys, no dataset, no blocks, its indexes."""
    now = datetime.now(UTC)
    documents = [
        {
            "_id": f"s{n}" if n != 7 else "119",
            "seq": 10 + 3 * n,
            "row": {"show_id": f"s{n}", "type": "TV Show" if n % 3 == 0 else "Movie", "a.b": n, "title": f"T{n}"},
            "source": {"job_id": "old-job", "line": n + 2},
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    db.catalog_items.insert_many(documents[::-1])
    db.catalog_items.create_index([("seq", 1)], unique=True, name="seq_unique")
    db.counters.insert_one({"_id": "catalog_items.seq", "next": 10 + 3 * count})
    db.import_jobs.insert_one({"_id": "old-job", "owner": "user-1", "key": "show_id", "created_at": now})
    return documents


def test_legacy_items_become_the_default_dataset_in_order_once(db):
    legacy = legacy_catalog(db, 2_500)

    assert migrate_legacy_catalog(db) == 2_500
    assert migrate_legacy_catalog(db) == 0  # idempotent: nothing left to move

    assert audit(db, "default") == []
    items = list(db.catalog_items.find().sort("seq", 1))
    assert [item["key"] for item in items] == [str(document["_id"]) for document in legacy]
    assert items[7]["_id"] == "default:119"
    # A dotted column is stored escaped, so it can be filtered by its own name.
    assert items[5]["row"] == {"show_id": "s5", "type": "Movie", "a%2Eb": 5, "title": "T5"}
    assert db[DATASETS].find_one({"_id": "default"})["key"] == "show_id"


def test_a_migration_cut_short_goes_on_where_it_stopped(db):
    legacy_catalog(db, 2_500)
    # As if the first run died after moving the first 1,000 items but before deleting them.
    from ingest_service import migration

    db.catalog_items.drop_index("seq_unique")  # as the first run did
    first = list(db.catalog_items.find(migration.LEGACY).sort("seq", 1).limit(1000))
    migration._move(db, first, datetime.now(UTC))
    db.catalog_items.insert_many(first)

    assert migrate_legacy_catalog(db) == 2_500
    assert audit(db, "default") == []
    assert db.catalog_items.count_documents({}) == 2_500


async def test_imports_after_the_migration_follow_the_migrated_items(api, auth, db, start_worker):
    legacy_catalog(db, 100)
    start_worker()  # migrates at start-up
    status = await wait_finished(api, auth, await upload_ok(api, auth, movies_csv(50, start=1000)))

    assert status["rows_inserted"] == 50
    assert audit(db, "default") == []
    keys = [item["key"] for item in db.catalog_items.find({}, {"key": 1}).sort("seq", 1)]
    assert keys[:100] == [f"s{n}" if n != 7 else "119" for n in range(100)]
    assert keys[100:] == [f"s{n}" for n in range(1000, 1050)]
