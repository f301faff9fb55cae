"""Deleting a dataset holds a lease: it waits for imports still writing, a stalled run never deletes a
dataset made anew under the name, and a deletion no worker holds is sent again: never stuck ``deleting``."""

from datetime import timedelta

import pytest

from catalog_testkit.files import movies_csv
from ingest_service import catalog_blocks, import_storage, importer, recovery
from service_common.catalog_layout import new_dataset

from .helpers import RUN, assert_exact, dataset_counts, upload_ok

NAME = "doomed"


async def imported(api, auth, db, rows: int, prefix: str = "s") -> str:
    task_id = await upload_ok(api, auth, movies_csv(rows, prefix=prefix), dataset=NAME)
    importer.run_import(db, task_id, worker_id="importer", **RUN)
    return task_id


async def start_deleting(api, auth) -> None:
    # No worker runs here: the message waits in the queue, as if lost.
    response = await api.delete(f"/datasets/{NAME}", headers=auth)
    assert response.status == 202, await response.text()


def delete(db, worker_id: str, now=None):
    return import_storage.delete_dataset(db, NAME, worker_id=worker_id, now=now or importer.utcnow(), lease_seconds=60)


async def test_a_deletion_no_worker_holds_is_sent_again_by_the_periodic_check_and_ends(api, auth, db):
    await imported(api, auth, db, 30)
    await start_deleting(api, auth)
    since = db.datasets.find_one({"_id": NAME})["deleting_since"]
    sent: list[str] = []

    def check(after: float) -> list[str]:
        now = since + timedelta(seconds=after)
        found = recovery.recover_abandoned_jobs(
            db, now=now, send=lambda _: None, max_requeues=3, requeue_interval=60, send_deletion=sent.append
        )
        return found.deletions_resent

    assert check(30) == []  # its message may still be waiting behind others
    assert check(61) == [NAME]
    assert check(100) == []  # sent again just now
    # A run that died holding the lease: sent again only once the lease has run out.
    db.datasets.update_one({"_id": NAME}, {"$set": {"deletion_lease_expires_at": since + timedelta(seconds=200)}})
    assert check(190) == []
    assert check(201) == [NAME]

    assert delete(db, "w1", since + timedelta(seconds=201)) == 30
    assert db.datasets.find_one({"_id": NAME}) is None
    assert db.catalog_items.count_documents({"dataset": NAME}) == 0
    assert check(400) == []


async def test_a_deletion_waits_for_an_import_still_holding_its_lease(api, auth, db):
    task_id = await imported(api, auth, db, 10)
    await start_deleting(api, auth)
    now = importer.utcnow()
    # A cancelled import whose worker is still writing the batch it was on.
    db.import_jobs.update_one({"_id": task_id}, {"$set": {"lease_expires_at": now + timedelta(seconds=20)}})
    with pytest.raises(import_storage.DeletionLeased):
        delete(db, "w1", now)
    assert delete(db, "w1", now + timedelta(seconds=21)) == 10


async def test_a_run_that_stalled_past_its_lease_never_deletes_the_dataset_made_anew(api, auth, db, monkeypatch):
    await imported(api, auth, db, 20)
    await start_deleting(api, auth)
    real = catalog_blocks.delete_dataset

    def stalls_then_goes_on(db_, name, **rest):
        # w1 holds the lease and stalls before its first block. Its lease runs out, w2 takes the
        # deletion over and finishes it, and a new dataset is made under the name.
        monkeypatch.setattr(catalog_blocks, "delete_dataset", real)
        assert delete(db, "w2", importer.utcnow() + timedelta(seconds=61)) == 20
        now = importer.utcnow()
        db.datasets.insert_one(new_dataset(NAME, owner="user-1", key="show_id", now=now))
        documents = [
            catalog_blocks.item_document(NAME, f"n{n}", seq=10_000 + n, block_id="", row={"show_id": f"n{n}"},
                                         job_id="new-job", line=n + 2, now=now)
            for n in range(5)
        ]  # fmt: skip
        catalog_blocks.append_items(db, NAME, "new-job", documents, now)
        return real(db_, name, **rest)

    monkeypatch.setattr(catalog_blocks, "delete_dataset", stalls_then_goes_on)
    with pytest.raises(import_storage.DeletionLost):
        delete(db, "w1")
    assert dataset_counts(db, NAME)[0] == 5
    assert db.catalog_items.count_documents({"dataset": NAME}) == 5
    assert_exact(db, NAME)


async def test_a_deletion_reads_the_blocks_a_slice_of_seq_at_a_time_and_leaves_other_datasets(
    api, auth, db, monkeypatch
):
    """A find of all of a dataset's blocks makes SecantusDB hold them all before the first comes back
    (2.5 GB and 14 s of its one lock at 11M items): the deletion reads them by ranges of ``seq``.
    Every one goes, in ranges empty or shared with another dataset, and past the last ``seq`` it
    knew of; the other dataset stays whole."""
    await imported(api, auth, db, 1_000)
    other = await upload_ok(api, auth, movies_csv(300, prefix="o"), dataset="kept")
    importer.run_import(db, other, worker_id="importer", **RUN)
    await imported(api, auth, db, 500, prefix="t")
    await start_deleting(api, auth)
    assert db.catalog_blocks.count_documents({"dataset": NAME}) == 3
    monkeypatch.setattr(catalog_blocks, "SEQ_SLICE", 150)  # several slices, some empty, some of the other dataset
    last = db.counters.find_one({"_id": import_storage.SEQ_COUNTER})["next"]
    # A block past the last seq the deletion reads from the counter (written as it starts).
    db.catalog_blocks.update_one({"dataset": NAME, "seq": {"$lte": last}}, {"$inc": {"seq": 1_000}})
    assert delete(db, "w1") == 1_500
    assert db.catalog_blocks.count_documents({"dataset": NAME}) == 0
    assert db.catalog_items.count_documents({"dataset": NAME}) == 0
    assert dataset_counts(db, "kept")[0] == 300
    assert_exact(db, "kept")
