"""Undoing an import: exactly the items it created and no one changed since go, with their places in
the catalog's blocks and summaries; who may ask for it; and a revert that is interrupted or that
finds the cancelled import's last block unfinished."""

import threading
from datetime import timedelta

import pytest

from catalog_testkit.faults import Killed, dies_on_call, run_in_threads
from catalog_testkit.files import movies_csv
from ingest_service import catalog_blocks, import_storage, importer, revert

from .helpers import RUN, assert_exact, dataset_counts, job_status, upload_ok, wait_finished, wait_until

BATCH = 200


def reverted(status: dict) -> bool:
    return status["status"] == "Reverted"


class TakingTurns:
    """Two imports run side by side in threads named after their jobs, taking turns to allocate their
    batches' ``seq`` numbers: their blocks alternate in the catalog's order."""

    def __init__(self, first: str, second: str) -> None:
        self._order = [first, second]
        self._turn = 0
        self._finished: set[str] = set()
        self._changed = threading.Condition()
        self._allocate = import_storage.allocate_seq_block

    def allocate_seq_block(self, db, size: int) -> int:
        me = threading.current_thread().name.removesuffix(" prefetch")  # the import's, or its reader's
        with self._changed:
            self._changed.wait_for(lambda: self._order[self._turn % 2] == me or self._finished, timeout=30)
            first = self._allocate(db, size)
            self._turn += 1
            self._changed.notify_all()
            return first

    def run(self, db) -> None:
        def run_one(job_id: str) -> None:
            try:
                importer.run_import(db, job_id, worker_id=f"w-{job_id}", **dict(RUN, batch_size=BATCH))
            finally:
                with self._changed:
                    self._finished.add(job_id)
                    self._changed.notify_all()

        # Each thread is named after its job: ``allocate_seq_block`` tells whose turn it is by that name.
        run_in_threads({job_id: lambda job_id=job_id: run_one(job_id) for job_id in self._order}, within=60)


def rows_after(content: bytes, more: bytes) -> bytes:
    """``content`` then the data rows of ``more`` (its header left out)."""
    return content + b"".join(more.splitlines(keepends=True)[1:])


async def test_a_revert_removes_exactly_the_rows_its_import_created_and_no_one_changed_since(
    api, auth, other_auth, db, monkeypatch, start_worker
):
    # A and B insert the even and the odd keys, their batches interleaved.
    first = await upload_ok(api, auth, movies_csv(range(0, 2400, 2)))
    second = await upload_ok(api, other_auth, movies_csv(range(1, 2400, 2)))
    turns = TakingTurns(first, second)
    monkeypatch.setattr(import_storage, "allocate_seq_block", turns.allocate_seq_block)
    turns.run(db)
    monkeypatch.undo()
    blocks = list(db.catalog_blocks.find({}, {"job_id": 1}).sort("seq", 1))
    assert [block["job_id"] for block in blocks] == [first, second] * 6
    # C, another user, upserts keys 0-299 of both (their type flipped) and adds 100 keys of its own.
    start_worker()
    flipped = movies_csv(300).replace(b",Movie,", b",Was Movie,").replace(b",TV Show,", b",Movie,")
    upsert = await upload_ok(api, other_auth, rows_after(flipped, movies_csv(100, prefix="x")), mode="upsert")
    status = await wait_finished(api, other_auth, upsert)
    assert (status["rows_inserted"], status["rows_updated"]) == (100, 300)
    upserted = {key: row for key, row in _rows(db).items() if key in {f"s{n}" for n in range(300)}}
    pages_before = _keys_in_order(db)

    response = await api.post(f"/uploads/{first}/revert", headers=auth)
    assert response.status == 202
    body = await response.json()
    assert (body["task_id"], body["status"], body["rows_reverted"], body["rows_kept"]) == (first, "Reverting", 0, 0)
    status, _ = await wait_until(api, auth, first, reverted)

    # A's 1,200 rows, but for the 150 that C updated since: those stay, with C's values.
    assert (status["rows_reverted"], status["rows_kept"], status["rows_inserted"]) == (1050, 150, 1200)
    assert status["reverted_at"] is not None
    expected = (
        {f"s{n}" for n in range(1, 2400, 2)} | {f"s{n}" for n in range(0, 300, 2)} | {f"x{n}" for n in range(100)}
    )
    rows = _rows(db)
    assert rows.keys() == expected
    assert {key: rows[key] for key in upserted} == upserted
    assert_exact(db)
    assert dataset_counts(db)[0] == 1450
    # What stays keeps its place: the order is the one before, less the removed rows.
    assert _keys_in_order(db) == [key for key in pages_before if key in expected]

    # C's revert takes out the 100 rows it created; the 300 it updated keep C's values, never B's or A's.
    response = await api.post(f"/uploads/{upsert}/revert", headers=other_auth)
    assert response.status == 202
    status, _ = await wait_until(api, other_auth, upsert, reverted)
    assert (status["rows_reverted"], status["rows_kept"]) == (100, 300)
    rows = _rows(db)
    assert rows.keys() == expected - {f"x{n}" for n in range(100)}
    assert {key: rows[key] for key in upserted} == upserted
    assert_exact(db)

    again = await api.post(f"/uploads/{first}/revert", headers=auth)
    assert again.status == 409
    assert await again.json() == {"error": "The upload has already been reverted (Reverted)"}


def _rows(db) -> dict[str, dict]:
    return {item["key"]: item["row"] for item in db.catalog_items.find({}, {"key": 1, "row": 1})}


def _keys_in_order(db) -> list[str]:
    return [item["key"] for item in db.catalog_items.find({}, {"key": 1}).sort("seq", 1)]


async def test_who_may_revert_an_import_and_when(api, auth, other_auth, viewer_auth, admin_auth, db):
    task_id = await upload_ok(api, auth, movies_csv(3))

    # Still Pending (no worker runs here): it must end first.
    response = await api.post(f"/uploads/{task_id}/revert", headers=auth)
    assert response.status == 409
    assert await response.json() == {"error": "The upload is still running (Pending): cancel it or wait for it to end"}

    assert (await api.delete(f"/uploads/{task_id}", headers=auth)).status == 200
    response = await api.post(f"/uploads/{task_id}/revert", headers=viewer_auth)
    assert response.status == 403
    assert await response.json() == {"error": "Forbidden: this needs the editor role"}
    response = await api.post(f"/uploads/{task_id}/revert", headers=other_auth)
    assert response.status == 404
    assert await response.json() == {"error": "No such upload"}
    response = await api.post(f"/uploads/{task_id}/revert")
    assert response.status == 401
    assert (await job_status(api, auth, task_id))["status"] == "Cancelled"

    response = await api.post(f"/uploads/{task_id}/revert", headers=admin_auth)
    assert response.status == 202
    assert (await response.json())["status"] == "Reverting"
    assert (await job_status(api, auth, task_id))["status"] == "Reverting"
    # Reverting is no import: a cancellation has nothing to stop, and no worker claims it.
    assert (await api.delete(f"/uploads/{task_id}", headers=auth)).status == 409
    assert import_storage.claim_job(db, task_id, "w1", importer.utcnow(), 60) is None

    response = await api.post("/uploads/not-a-uuid/revert", headers=auth)
    assert response.status == 400
    assert await response.json() == {"error": "Malformed task id: expected a UUID"}


async def test_a_cancelled_import_is_reverted_once_its_worker_lets_go_with_its_unfinished_block(
    api, auth, db, monkeypatch
):
    task_id = await upload_ok(api, auth, movies_csv(1_500))
    dies_on_call(monkeypatch, catalog_blocks, "commit", 3)
    with pytest.raises(Killed):
        importer.run_import(db, task_id, worker_id="w1", **RUN)
    monkeypatch.undo()
    assert (await api.delete(f"/uploads/{task_id}", headers=auth)).status == 200
    assert (await api.post(f"/uploads/{task_id}/revert", headers=auth)).status == 202

    # The dead worker's lease has not run out: it might still be writing a batch.
    with pytest.raises(importer.JobLeased):
        revert.run_revert(db, task_id, now=importer.utcnow())
    assert db.catalog_items.count_documents({}) == 1_500
    db.import_jobs.update_one(
        {"_id": task_id}, {"$set": {"lease_expires_at": importer.utcnow() - timedelta(seconds=1)}}
    )
    revert.run_revert(db, task_id, now=importer.utcnow())

    job = await job_status(api, auth, task_id)
    assert (job["status"], job["rows_reverted"], job["rows_kept"]) == ("Reverted", 1_500, 0)
    assert db.catalog_items.count_documents({}) == 0
    assert_exact(db)
    assert dataset_counts(db) == (0, {})


@pytest.mark.parametrize("blocks_found_by", ["the job's index", "slices of the dataset's"])
async def test_a_revert_that_dies_midway_is_finished_by_the_next_run_with_whole_counts(
    api, auth, db, monkeypatch, blocks_found_by
):
    def find_blocks() -> None:
        if blocks_found_by != "the job's index":  # as for an import of more than 200,000 rows
            monkeypatch.setattr(catalog_blocks, "BLOCKS_BY_JOB_ROWS", 0)
            monkeypatch.setattr(catalog_blocks, "SEQ_SLICE", 700)  # some slices empty, some shared

    keep = await upload_ok(api, auth, movies_csv(10, prefix="k"))
    importer.run_import(db, keep, worker_id="w1", **RUN)
    task_id = await upload_ok(api, auth, movies_csv(1_500))
    importer.run_import(db, task_id, worker_id="w1", **RUN)
    assert (await api.post(f"/uploads/{task_id}/revert", headers=auth)).status == 202
    # Dies after removing the second block's items and rewriting it, before its summary follows.
    find_blocks()
    dies_on_call(monkeypatch, catalog_blocks, "sync_summary", 2)
    with pytest.raises(Killed):
        revert.run_revert(db, task_id, now=importer.utcnow())
    monkeypatch.undo()
    assert db.catalog_items.count_documents({}) == 10 + 500
    assert catalog_blocks.audit(db, "default") != []

    find_blocks()
    revert.run_revert(db, task_id, now=importer.utcnow())

    job = await job_status(api, auth, task_id)
    assert (job["status"], job["rows_reverted"], job["rows_kept"]) == ("Reverted", 1_500, 0)
    assert sorted(_rows(db)) == sorted(f"k{n}" for n in range(10))
    assert_exact(db)
    assert dataset_counts(db)[0] == 10


async def test_a_revert_racing_an_upsert_of_the_same_keys_loses_no_upserted_row(api, auth, other_auth, db):
    first = await upload_ok(api, auth, movies_csv(3_000))
    importer.run_import(db, first, worker_id="w1", **RUN)
    # Keys 1000-2499 again, every type flipped, written while the revert runs.
    flipped = movies_csv(1_500, start=1_000).replace(b",Movie,", b",Was Movie,").replace(b",TV Show,", b",Movie,")
    upsert = await upload_ok(api, other_auth, flipped, mode="upsert")
    assert (await api.post(f"/uploads/{first}/revert", headers=auth)).status == 202

    run_in_threads(
        {
            "revert": lambda: revert.run_revert(db, first, now=importer.utcnow()),
            "upsert": lambda: importer.run_import(db, upsert, **dict(RUN, worker_id="w2", batch_size=100)),
        },
        within=120,
    )

    reverted_job, upsert_job = db.import_jobs.find_one({"_id": first}), db.import_jobs.find_one({"_id": upsert})
    assert (reverted_job["status"], upsert_job["status"]) == ("Reverted", "Success")
    # Whichever came first for each key, the upsert's row stands: updated in place (kept by the revert)
    # or inserted anew after the revert removed the item (then counted as removed).
    rows = _rows(db)
    assert rows.keys() == {f"s{n}" for n in range(1_000, 2_500)}
    # Every row flipped: a movie is now "Was Movie" and a TV show "Movie" (a row left as first imported fails).
    assert {key: row["type"] for key, row in rows.items()} == {
        f"s{n}": "Was Movie" if n % 3 else "Movie" for n in range(1_000, 2_500)
    }
    assert sum(row["type"] == "Was Movie" for row in rows.values()) == sum(1 for n in range(1_000, 2_500) if n % 3)
    assert reverted_job["rows_reverted"] + reverted_job["rows_kept"] == 3_000
    assert reverted_job["rows_kept"] == upsert_job["rows_updated"]
    assert_exact(db)


async def test_a_revert_whose_message_was_lost_is_sent_again_by_the_periodic_check(api, auth, db):
    from ingest_service import recovery

    task_id = await upload_ok(api, auth, movies_csv(20))
    importer.run_import(db, task_id, worker_id="w1", **RUN)
    assert (await api.post(f"/uploads/{task_id}/revert", headers=auth)).status == 202
    # No worker runs here: as if the broker had lost the message.
    asked = db.import_jobs.find_one({"_id": task_id})["revert_requested_at"]
    sent: list[str] = []

    def check(after: float) -> list[str]:
        result = recovery.recover_abandoned_jobs(
            db,
            now=asked + timedelta(seconds=after),
            send=lambda job_id: None,
            max_requeues=3,
            requeue_interval=60,
            send_revert=sent.append,
        )
        return result.reverts_resent

    assert check(30) == []  # its message may still be waiting behind others
    assert check(61) == [task_id]
    assert check(100) == []  # sent again just now
    assert check(122) == [task_id]
    assert sent == [task_id, task_id]

    revert.run_revert(db, task_id, now=importer.utcnow())
    assert (await job_status(api, auth, task_id))["status"] == "Reverted"
    assert check(300) == []
