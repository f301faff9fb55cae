"""Rows that change items in place (``mode=merge``, ``mode=upsert``) keep the catalog's layout exact:
each touched block's rows, ``type`` positions and column counts are patched from the items, whatever
the spread of the keys, when a worker dies in any step of a batch, when the job ends while its worker
is dead, and when another import writes the same dataset (or the same keys) at the same time.
``audit`` compares the layout with the items; the summaries' counts are compared with the items'."""

import random
import time

import pytest

from catalog_testkit.faults import Killed, dies_on_call, run_in_threads
from catalog_testkit.files import movies_csv
from ingest_service import catalog_blocks, import_storage, importer, recovery, revert
from ingest_service.catalog_blocks import audit

from .helpers import RUN, assert_exact, dataset_counts, upload_ok

BASE_ROWS = 3_000  # six blocks of 500
SPREAD = [n for n in range(0, BASE_ROWS, 7)]  # every 7th key, 429 of them ...
random.Random(7).shuffle(SPREAD)  # ... in an order that has every batch of 100 touch every block
NEW_KEYS = 150
IN_PLACE_BATCH = 100


def merge_file(numbers: list[int]) -> bytes:
    """A ratings-shaped file: the key, a changed type, and a column the items do not have yet."""
    lines = ["show_id,type,score"] + [f"s{n},{'Was Movie' if n % 3 else 'Was Show'},{n % 100 / 10}" for n in numbers]
    return ("\n".join(lines) + "\n").encode()


def retype_file(numbers: list[int]) -> bytes:
    """A merge of a column the items have: the key and a changed type."""
    lines = ["show_id,type"] + [f"s{n},{'Was Movie' if n % 3 else 'Was Show'}" for n in numbers]
    return ("\n".join(lines) + "\n").encode()


def upsert_file(numbers: list[int]) -> bytes:
    """The rows of these keys with their type changed, then ``NEW_KEYS`` rows no item has."""
    changed = movies_csv(numbers).replace(b",Movie,", b",Was Movie,").replace(b",TV Show,", b",Was Show,")
    return changed + b"".join(movies_csv(NEW_KEYS, prefix="n").splitlines(keepends=True)[1:])


def in_place_file(mode: str) -> bytes:
    return merge_file(SPREAD) if mode == "merge" else upsert_file(SPREAD)


async def base_import(api, auth, db) -> None:
    task_id = await upload_ok(api, auth, movies_csv(BASE_ROWS))
    importer.run_import(db, task_id, worker_id="w0", **RUN)
    assert_exact(db)


def assert_in_place_done(db, job_id: str, mode: str) -> None:
    """The job's counts, every changed row in the items, and the layout exact."""
    job = db.import_jobs.find_one({"_id": job_id})
    inserted = NEW_KEYS if mode == "upsert" else 0
    assert (job["status"], job["rows_updated"], job["rows_inserted"]) == ("Success", len(SPREAD), inserted)
    assert job.get("in_place") == []
    assert_exact(db)
    total, types = dataset_counts(db)
    assert total == BASE_ROWS + inserted
    changed = sum(1 for n in SPREAD if n % 3)
    assert (types["Was Movie"], types["Was Show"]) == (changed, len(SPREAD) - changed)
    if mode == "merge":
        assert db.catalog_items.count_documents({"row.score": {"$exists": True}}) == len(SPREAD)


def half_of_the_merge(real, db, dataset, job_id, items, now):
    """The bulk write dies half-way: half of the batch's rows reach the items."""
    real(db, dataset, job_id, items[: len(items) // 2], now)


def half_of_the_write(real, db, dataset, job_id, mode, items):
    """The same, for an upsert's bulk write."""
    real(db, dataset, job_id, mode, items[: len(items) // 2])


# Where the worker dies, on the second batch (or its blocks): in the bulk write of the items, after it
# and before any block is patched, after some of the batch's blocks are patched, after all of them and
# before their summaries, and after the summaries but before the batch's progress is saved.
STEPS = {
    "write": lambda mode: (
        (import_storage, "merge_items", 2, half_of_the_merge)
        if mode == "merge"
        else (import_storage, "write_items", 2, half_of_the_write)
    ),
    "patch_in_place": lambda mode: (catalog_blocks, "patch_in_place", 2, None),
    "_patch_once": lambda mode: (catalog_blocks, "_patch_once", 9, None),
    "_sync_summaries": lambda mode: (catalog_blocks, "_sync_summaries", 2, None),
    "save_progress": lambda mode: (import_storage, "save_progress", 2, None),
}


@pytest.mark.parametrize("mode", ["merge", "upsert"])
@pytest.mark.parametrize("dies_in", list(STEPS))
async def test_an_in_place_import_whose_worker_dies_in_any_step_ends_exact(api, auth, db, monkeypatch, mode, dies_in):
    await base_import(api, auth, db)
    task_id = await upload_ok(api, auth, in_place_file(mode), mode=mode)
    module, name, call, partly = STEPS[dies_in](mode)
    dies_on_call(monkeypatch, module, name, call, partly=partly)
    run = dict(RUN, batch_size=IN_PLACE_BATCH)
    with pytest.raises(Killed):
        importer.run_import(db, task_id, worker_id="w1", **run)
    monkeypatch.undo()
    if dies_in != "save_progress":
        assert audit(db, "default") != []  # items changed that their blocks (or summaries) do not show yet

    importer.run_import(db, task_id, worker_id="w1", **run)

    assert db.import_jobs.find_one({"_id": task_id})["attempts"] == 2
    assert_in_place_done(db, task_id, mode)


@pytest.mark.parametrize("mode", ["merge", "upsert"])
async def test_a_worker_dying_before_patching_a_batch_written_in_several_bulks_loses_nothing(
    api, auth, db, monkeypatch, mode
):
    await base_import(api, auth, db)
    task_id = await upload_ok(api, auth, in_place_file(mode), mode=mode)
    dies_on_call(monkeypatch, catalog_blocks, "patch_in_place", 2)
    # Batches of 300 rows, each written 100 at a time (upsert: three blocks for the rows it inserts).
    run = dict(RUN, batch_size=IN_PLACE_BATCH, in_place_batch_size=3 * IN_PLACE_BATCH)
    with pytest.raises(Killed):
        importer.run_import(db, task_id, worker_id="w1", **run)
    monkeypatch.undo()
    assert audit(db, "default") != []

    importer.run_import(db, task_id, worker_id="w1", **run)

    assert_in_place_done(db, task_id, mode)


@pytest.mark.parametrize("mode", ["merge", "upsert"])
async def test_an_in_place_import_cancelled_while_its_worker_is_dead_is_finished_by_the_check_and_reverted(
    api, auth, db, monkeypatch, mode
):
    await base_import(api, auth, db)
    task_id = await upload_ok(api, auth, in_place_file(mode), mode=mode)
    dies_on_call(monkeypatch, catalog_blocks, "patch_in_place", 2)
    with pytest.raises(Killed):
        importer.run_import(db, task_id, worker_id="w1", **dict(RUN, batch_size=IN_PLACE_BATCH))
    monkeypatch.undo()
    assert (await api.delete(f"/uploads/{task_id}", headers=auth)).status == 200

    result = recovery.recover_abandoned_jobs(
        db, now=importer.utcnow(), send=lambda job_id: None, max_requeues=3, requeue_interval=60
    )

    assert result.blocks_finished >= 1
    assert db.import_jobs.find_one({"_id": task_id})["in_place"] == []
    assert_exact(db)
    # Reverted: the values it set stay (a revert never brings values back), the rows it created go.
    # The dead worker's lease runs out; only then may the revert start.
    db.import_jobs.update_one({"_id": task_id}, {"$set": {"lease_owner": None, "lease_expires_at": None}})
    assert (await api.post(f"/uploads/{task_id}/revert", headers=auth)).status == 202
    revert.run_revert(db, task_id, now=importer.utcnow())
    assert db.import_jobs.find_one({"_id": task_id})["status"] == "Reverted"
    assert_exact(db)
    assert dataset_counts(db)[0] == BASE_ROWS


def run_side_by_side(db, *job_ids: str) -> None:
    """The jobs' imports in threads at once, as two workers would run them: written 100 rows at a
    time, an upsert or merge patching its blocks every 200."""
    run = dict(RUN, batch_size=IN_PLACE_BATCH, in_place_batch_size=2 * IN_PLACE_BATCH)
    run_in_threads(
        {
            job_id: lambda job_id=job_id: importer.run_import(db, job_id, worker_id=f"w-{job_id}", **run)
            for job_id in job_ids
        },
        within=120,
    )


async def test_a_merge_and_an_insert_into_the_same_dataset_at_once_keep_counts_exact(api, auth, db):
    await base_import(api, auth, db)
    merge = await upload_ok(api, auth, merge_file(SPREAD), mode="merge")
    insert = await upload_ok(api, auth, movies_csv(1_000, prefix="i"))

    run_side_by_side(db, merge, insert)

    assert db.import_jobs.find_one({"_id": merge})["rows_updated"] == len(SPREAD)
    assert db.import_jobs.find_one({"_id": insert})["rows_inserted"] == 1_000
    assert_exact(db)
    total, types = dataset_counts(db)
    assert total == BASE_ROWS + 1_000
    assert types["Was Movie"] + types["Was Show"] == len(SPREAD)


async def test_a_merge_and_an_upsert_of_the_same_keys_at_once_leave_blocks_as_the_items_are(api, auth, db):
    await base_import(api, auth, db)
    merge = await upload_ok(api, auth, merge_file(SPREAD), mode="merge")
    upsert = await upload_ok(api, auth, upsert_file(SPREAD[::-1]), mode="upsert")

    run_side_by_side(db, merge, upsert)

    assert db.import_jobs.find_one({"_id": merge})["rows_updated"] == len(SPREAD)
    assert db.import_jobs.find_one({"_id": upsert})["rows_updated"] == len(SPREAD)
    # Whichever write landed last for a key stands, and its block shows exactly that.
    assert_exact(db)
    assert dataset_counts(db)[0] == BASE_ROWS + NEW_KEYS


async def test_a_row_read_before_a_later_write_of_its_item_never_replaces_the_later_row(api, auth, db):
    """Two writers of one item patch its block in the opposite order to their writes: the block keeps
    the second write's row, as the item does."""
    await base_import(api, auth, db)
    item = {"_id": "default:s7"}
    db.catalog_items.update_one(item, {"$set": {"row.type": "First"}, "$inc": {"w": 1}})
    first = db.catalog_items.find_one(item)  # what the first writer read back, before the second write
    db.catalog_items.update_one(item, {"$set": {"row.type": "Second"}, "$inc": {"w": 1}})
    catalog_blocks.patch_in_place(db, "default", ["s7"])  # the second writer, first

    block = db.catalog_blocks.find_one({"_id": first["block"]})
    assert catalog_blocks._patch_once(db, block, {"s7": first}) == block  # nothing to write: only a sync
    assert_exact(db)
    assert dataset_counts(db)[1]["Second"] == 1


async def test_a_merge_of_columns_the_items_have_patches_their_blocks_without_reading_them_back(
    api, auth, db, monkeypatch
):
    await base_import(api, auth, db)
    patched_after_reading = []
    real_patch = catalog_blocks.patch_in_place

    def patch(db, dataset, keys, known=None, **options):
        patched_after_reading.extend(key for key in keys if key not in (known or {}))
        real_patch(db, dataset, keys, known, **options)

    monkeypatch.setattr(catalog_blocks, "patch_in_place", patch)
    task_id = await upload_ok(api, auth, retype_file(SPREAD), mode="merge")
    importer.run_import(db, task_id, worker_id="w1", **dict(RUN, in_place_batch_size=IN_PLACE_BATCH))

    job = db.import_jobs.find_one({"_id": task_id})
    assert (job["status"], job["rows_updated"]) == ("Success", len(SPREAD))
    assert patched_after_reading == []  # every row known as written
    assert_exact(db)
    changed = sum(1 for n in SPREAD if n % 3)
    types = dataset_counts(db)[1]
    assert (types["Was Movie"], types["Was Show"]) == (changed, len(SPREAD) - changed)


async def test_a_merge_that_loses_its_compare_and_set_to_another_write_merges_again_onto_that_write(
    api, auth, db, monkeypatch
):
    """Between the merge's read of its items and its write, another writer changes some of them: those
    are read again and merged onto what the other writer left, and every block shows the items."""
    await base_import(api, auth, db)
    real_read = catalog_blocks.read_items
    raced = [f"s{n}" for n in SPREAD[:40]]

    def read_then_race(db, dataset, keys, projection):
        found = real_read(db, dataset, keys, projection)
        if "w" in projection and raced and raced[0] in keys:
            other, raced[:] = list(raced), []
            for key in other:  # another import's merge of a column, as it writes it
                db.catalog_items.update_one(
                    {"_id": f"default:{key}"}, {"$set": {"row.director": "Other"}, "$inc": {"w": 1}}
                )
            catalog_blocks.patch_in_place(db, dataset, other)
        return found

    monkeypatch.setattr(catalog_blocks, "read_items", read_then_race)
    task_id = await upload_ok(api, auth, retype_file(SPREAD), mode="merge")
    importer.run_import(db, task_id, worker_id="w1", **dict(RUN, in_place_batch_size=IN_PLACE_BATCH))

    assert not raced  # the race happened
    job = db.import_jobs.find_one({"_id": task_id})
    assert (job["status"], job["rows_updated"]) == ("Success", len(SPREAD))
    for n in SPREAD[:40]:
        row = db.catalog_items.find_one({"_id": f"default:s{n}"})["row"]
        assert (row["director"], row["type"]) == ("Other", "Was Movie" if n % 3 else "Was Show")
    assert_exact(db)
    changed = sum(1 for n in SPREAD if n % 3)
    types = dataset_counts(db)[1]
    assert (types["Was Movie"], types["Was Show"]) == (changed, len(SPREAD) - changed)


@pytest.mark.parametrize("mode", ["merge", "upsert"])
async def test_an_in_place_batch_longer_than_the_lease_keeps_its_job_from_another_worker(
    api, auth, db, monkeypatch, mode
):
    """A batch spread over many blocks of a large dataset takes longer than the lease: the worker
    renews it between its bulks and block patches, so another worker never takes the job over."""
    await base_import(api, auth, db)
    name = "merge_items" if mode == "merge" else "write_items"
    real_write = getattr(import_storage, name)

    def slow_write(*args):
        time.sleep(0.5)  # a bulk of updates on a busy store
        return real_write(*args)

    monkeypatch.setattr(import_storage, name, slow_write)
    task_id = await upload_ok(api, auth, in_place_file(mode), mode=mode)
    taken_over = []

    def other_worker():
        time.sleep(1.8)  # past the 1 s lease, in the middle of the one batch (five bulks or more)
        taken_over.append(import_storage.claim_job(db, task_id, "w-other", importer.utcnow(), 1))

    run = dict(RUN, batch_size=100, lease_seconds=1, in_place_batch_size=len(SPREAD) + NEW_KEYS)
    run_in_threads(
        {"import": lambda: importer.run_import(db, task_id, worker_id="w1", **run), "other": other_worker}, within=120
    )

    assert taken_over == [None]
    assert_in_place_done(db, task_id, mode)
