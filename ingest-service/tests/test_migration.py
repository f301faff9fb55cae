"""A catalog imported before datasets existed becomes the default dataset when a worker starts."""

from datetime import UTC, datetime

import pytest
from pymongo import MongoClient, monitoring

from catalog_testkit.files import movies_csv
from ingest_service import import_storage
from ingest_service.catalog_blocks import append_items, audit, item_document
from ingest_service.migration import MIGRATIONS, migrate_legacy_catalog
from service_common.catalog_layout import DATASETS, new_dataset

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


class Commands(monitoring.CommandListener):
    """Every command a client sends, as (name, collection, command)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object, dict]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, event.command.get(event.command_name), dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def on(self, collection: str) -> list[tuple[str, dict]]:
        return [(name, command) for name, target, command in self.sent if target == collection]


@pytest.fixture
def watched(mongo_url, mongo_db_name):
    """The test's database through a client that records every command it sends."""
    commands = Commands()
    client = MongoClient(mongo_url, tz_aware=True, event_listeners=[commands])
    yield client[mongo_db_name], commands
    client.close()


def current_catalog(db, count: int, dataset: str = "imported") -> None:
    """Items as an import in the current layout writes them, from the store's first ``seq`` on."""
    now = datetime.now(UTC)
    db[DATASETS].insert_one(new_dataset(dataset, owner="user-1", key="show_id", now=now))
    db.counters.insert_one({"_id": "catalog_items.seq", "next": count})
    for first in range(1, count + 1, 500):
        documents = [
            item_document(
                dataset, f"s{n}", seq=n, block_id="", row={"show_id": f"s{n}"}, job_id="job-1", line=n, now=now
            )
            for n in range(first, min(count + 1, first + 500))
        ]
        append_items(db, dataset, "job-1", documents, now)


def test_once_migrated_a_start_reads_one_marker_and_no_item(db, watched):
    legacy_catalog(db, 1_200)
    assert migrate_legacy_catalog(db) == 1_200
    assert db[MIGRATIONS].find_one({"_id": "legacy_catalog"})["moved"] == 1_200

    watched_db, commands = watched
    assert migrate_legacy_catalog(watched_db) == 0
    assert commands.on("catalog_items") == []
    assert [(name, command["filter"]) for name, _, command in commands.sent] == [("find", {"_id": "legacy_catalog"})]


def test_a_store_begun_in_the_current_layout_is_never_scanned(db, watched):
    current_catalog(db, 1_200)
    watched_db, commands = watched

    assert migrate_legacy_catalog(watched_db) == 0  # the first start: point reads of small documents
    assert commands.on("catalog_items") == []
    (blocks,) = [command["filter"] for name, command in commands.on("catalog_blocks")]
    assert blocks == {"_id": {"$in": ["imported:1"]}}
    assert db[MIGRATIONS].find_one({"_id": "legacy_catalog"})["moved"] == 0

    commands.sent.clear()
    assert migrate_legacy_catalog(watched_db) == 0  # every later one: the marker alone
    assert [name for name, _, _ in commands.sent] == ["find"] and commands.on("catalog_items") == []
    assert db.catalog_items.count_documents({}) == 1_200


def test_a_store_that_may_hold_legacy_items_is_looked_at_once(db, watched):
    # Its first seq is in a block of the migration's: a migration cut short may have left items behind.
    legacy_catalog(db, 1_200)
    from ingest_service import migration

    db.catalog_items.drop_index("seq_unique")  # as the first run did
    first = list(db.catalog_items.find(migration.LEGACY).sort("seq", 1).limit(1000))
    import_storage.ensure_dataset(db, {"key": "show_id", "owner": None}, datetime.now(UTC))
    migration._move(db, first, datetime.now(UTC))
    assert not migration.began_in_the_current_layout(db)

    watched_db, commands = watched
    assert migrate_legacy_catalog(watched_db) == 200
    assert commands.on("catalog_items")  # it looked
    assert audit(db, "default") == []
    commands.sent.clear()
    assert migrate_legacy_catalog(watched_db) == 0
    assert commands.on("catalog_items") == []
