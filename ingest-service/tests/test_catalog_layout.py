"""The blocks and summaries that give the catalog its order and counts stay exact, whatever happens
to an import: duplicates, upserts that change a row's type, cancellation, and a worker that dies
between writing items and recording their block. ``audit`` compares the layout with the items."""

from datetime import timedelta

import pytest

from catalog_testkit.constants import FINISHED
from catalog_testkit.faults import Killed, dies_on_call
from catalog_testkit.files import movies_csv
from ingest_service import catalog_blocks, import_storage, importer
from ingest_service.catalog_blocks import audit
from service_common.catalog_layout import DATASETS

from .helpers import BATCH, RUN, assert_exact, dataset_counts, upload_ok, wait_finished, wait_until, wait_upload_removed


async def test_duplicates_skipped_in_insert_mode_leave_holes_and_exact_counts(api, auth, db, start_worker):
    start_worker(INGEST_BATCH_SIZE=str(BATCH))
    first = await wait_finished(api, auth, await upload_ok(api, auth, movies_csv(1200)))
    # Overlaps the first file in its middle: 600 duplicates, 600 new rows.
    second = await wait_finished(api, auth, await upload_ok(api, auth, movies_csv(1200, start=600)))

    assert (first["rows_inserted"], second["rows_inserted"], second["rows_duplicate"]) == (1200, 600, 600)
    assert_exact(db)
    assert dataset_counts(db)[0] == 1800
    order = [item["key"] for item in db.catalog_items.find({}, {"key": 1}).sort("seq", 1)]
    assert order == [f"s{n}" for n in range(1800)]


async def test_upserts_that_change_types_keep_places_and_recount_types(api, auth, db, start_worker):
    start_worker(INGEST_BATCH_SIZE=str(BATCH))
    await wait_finished(api, auth, await upload_ok(api, auth, movies_csv(1500)))
    seq_before = {item["key"]: item["seq"] for item in db.catalog_items.find({}, {"key": 1, "seq": 1})}
    # Rows 1000-1999 again, every type flipped: 500 updates spread over two old blocks, 500 new rows.
    flipped = movies_csv(1000, start=1000).replace(b",Movie,", b",Was Movie,").replace(b",TV Show,", b",Movie,")
    status = await wait_finished(api, auth, await upload_ok(api, auth, flipped, mode="upsert"))

    assert (status["rows_inserted"], status["rows_updated"]) == (500, 500)
    assert_exact(db)
    total, types = dataset_counts(db)
    assert total == 2000
    # Rows 0-999 as first imported (every third a TV show), rows 1000-1999 flipped.
    assert types == {"TV Show": 334, "Movie": 666 + 333, "Was Movie": 667}
    for key, seq in seq_before.items():
        assert db.catalog_items.find_one({"_id": f"default:{key}"})["seq"] == seq


async def test_a_cancelled_import_keeps_its_rows_in_place(api, auth, db, start_worker):
    task_id = await upload_ok(api, auth, movies_csv(30_000))
    start_worker(INGEST_BATCH_SIZE="200")
    await wait_until(api, auth, task_id, lambda s: s["rows_processed"] >= 1000 or s["status"] in FINISHED)
    assert (await api.delete(f"/uploads/{task_id}", headers=auth)).status == 200
    status = await wait_finished(api, auth, task_id)
    # The worker stops at its next batch: only once it has let go is the layout final.
    await wait_upload_removed(db, task_id)

    assert status["status"] == "Cancelled"
    assert_exact(db)
    assert dataset_counts(db)[0] == db.catalog_items.count_documents({}) > 0


# Before its block is committed, before its summary is placed, and after that but before the dataset's
# revision is bumped (the block still reads pending: the next run finishes it and bumps again).
@pytest.mark.parametrize("dies_in", ["commit", "_append_summary", "_bump"])
async def test_a_worker_dying_between_items_and_their_block_loses_and_doubles_nothing(
    api, auth, db, settings, monkeypatch, dies_in
):
    rows = 2_000
    task_id = await upload_ok(api, auth, movies_csv(rows))
    dies_on_call(monkeypatch, catalog_blocks, dies_in, 3)
    with pytest.raises(Killed):
        importer.run_import(db, task_id, worker_id="w1", **RUN)
    monkeypatch.undo()
    # The dead run wrote the third batch's items; its block is left pending or unindexed.
    assert db.catalog_items.count_documents({}) == 3 * BATCH
    assert audit(db, "default") != []

    importer.run_import(db, task_id, worker_id="w1", **RUN)

    job = db.import_jobs.find_one({"_id": task_id})
    assert (job["status"], job["attempts"], job["rows_inserted"], job["rows_duplicate"]) == ("Success", 2, rows, 0)
    assert_exact(db)
    assert dataset_counts(db)[0] == rows


# The other run finds none of the stalled batch's items (and drops the empty block), or half of them
# (and indexes the block with those): either way the rest land later and must join the block.
@pytest.mark.parametrize("written_before_takeover", [0, BATCH // 2])
async def test_a_worker_stalled_past_its_lease_leaves_no_item_outside_the_pages(
    api, auth, db, monkeypatch, written_before_takeover
):
    rows = 2_000
    task_id = await upload_ok(api, auth, movies_csv(rows))
    real = import_storage.write_items
    calls = {"n": 0}

    def stalls_in_the_third_batch(db_, dataset, job_id, mode, items):
        calls["n"] += 1
        if calls["n"] == 3:
            if written_before_takeover:
                real(db_, dataset, job_id, mode, items[:written_before_takeover])
            # Its lease runs out; another worker takes the job over and finishes the batch's pending
            # block from the items written so far.
            expired = importer.utcnow() - timedelta(seconds=1)
            db.import_jobs.update_one({"_id": task_id}, {"$set": {"lease_expires_at": expired}})
            assert import_storage.claim_job(db, task_id, "w2", importer.utcnow(), 60) is not None
            assert catalog_blocks.recover_job(db, task_id) == 1
        return real(db_, dataset, job_id, mode, items)

    monkeypatch.setattr(import_storage, "write_items", stalls_in_the_third_batch)
    # Wakes, writes the third batch, finds the job taken over and stops.
    importer.run_import(db, task_id, worker_id="w1", **RUN)
    monkeypatch.setattr(import_storage, "write_items", real)
    assert db.catalog_items.count_documents({}) == 3 * BATCH
    assert audit(db, "default") == []  # the late items are in their block, not only readable by id

    importer.run_import(db, task_id, worker_id="w2", **RUN)

    job = db.import_jobs.find_one({"_id": task_id})
    assert (job["status"], job["rows_processed"], job["rows_failed"]) == ("Success", rows, 0)
    assert_exact(db)
    assert dataset_counts(db)[0] == rows


async def test_blocks_of_a_job_that_ended_while_its_worker_was_dead_are_finished_by_the_check(
    api, auth, db, monkeypatch
):
    task_id = await upload_ok(api, auth, movies_csv(1_500))
    dies_on_call(monkeypatch, catalog_blocks, "commit", 1)
    with pytest.raises(Killed):
        importer.run_import(db, task_id, worker_id="w1", **RUN)
    monkeypatch.undo()
    assert (await api.delete(f"/uploads/{task_id}", headers=auth)).status == 200

    from ingest_service import recovery

    result = recovery.recover_abandoned_jobs(
        db, now=importer.utcnow(), send=lambda job_id: None, max_requeues=3, requeue_interval=60
    )

    assert result.blocks_finished == 1
    assert_exact(db)
    assert dataset_counts(db)[0] == BATCH


async def test_the_dataset_records_its_key_and_column_types(api, auth, db, start_worker):
    start_worker()
    await wait_finished(api, auth, await upload_ok(api, auth, movies_csv(50)))

    dataset = db[DATASETS].find_one({"_id": "default"})
    assert dataset["key"] == "show_id"
    assert dataset["owner"] is None  # the seed's shared catalog: every signed-in user may write it
    assert ["release_year", "integer"] in dataset["column_types"]
    assert ["title", "string"] in dataset["column_types"]


async def test_a_block_upserted_while_its_import_commits_it_has_a_current_summary(api, auth, db, monkeypatch):
    """An upsert changes an item of a batch between its write and its block's commit: the block, still
    pending, is recomputed from the items, and the summary its writer had already pushed follows it."""
    task_id = await upload_ok(api, auth, movies_csv(1_500))
    real = import_storage.write_items
    calls = {"n": 0}

    def upserted_before_its_commit(db_, dataset, job_id, mode, items):
        outcome = real(db_, dataset, job_id, mode, items)
        calls["n"] += 1
        if calls["n"] == 3:
            item = {"_id": f"{dataset}:{items[0].key}"}
            db_.catalog_items.update_one(item, {"$set": {"row.type": "Upserted"}, "$inc": {"w": 1}})
            catalog_blocks.refresh(db_, [items[0].document["block"]])
        return outcome

    monkeypatch.setattr(import_storage, "write_items", upserted_before_its_commit)
    importer.run_import(db, task_id, worker_id="w1", **RUN)

    assert db.import_jobs.find_one({"_id": task_id})["status"] == "Success"
    assert_exact(db)
    assert dataset_counts(db)[1].get("Upserted") == 1
