"""The periodic check for jobs whose worker vanished, against a real store: re-queued while there
are tries left, then ended as Failure with the reason; live, pending and ended jobs untouched."""

from datetime import UTC, datetime, timedelta

import pytest
from pymongo.database import Database

from ingest_service import import_storage
from ingest_service.parsing import CsvLayout
from ingest_service.recovery import recover_abandoned_jobs
from ingest_service.schemas import ImportMode
from ingest_service.storage import new_job

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEASE = 60
REQUEUE_INTERVAL = 600


def arrange_job(db: Database, job_id: str, *, claimed_at: datetime | None) -> None:
    layout = CsvLayout(delimiter=",", columns=("show_id", "title"))
    job = new_job(
        job_id=job_id,
        dataset="default",
        owner="user-1",
        filename="movies.csv",
        size_bytes=10,
        layout=layout,
        mode=ImportMode.INSERT,
        key="show_id",
        now=NOW - timedelta(hours=1),
    )
    db.import_jobs.insert_one(job)
    db["uploads.files"].insert_one({"_id": job_id, "length": 0, "chunkSize": 1, "filename": "movies.csv"})
    if claimed_at is not None:
        assert import_storage.claim_job(db, job_id, "worker-a:1", claimed_at, LEASE)


def check(db: Database, now: datetime = NOW, *, max_requeues: int = 2, broker=None) -> tuple[list[str], list[str]]:
    """One run of the check; ``broker`` receives each message (and may refuse it by raising)."""
    sent: list[str] = []

    def send(job_id: str) -> None:
        if broker is not None:
            broker(job_id)
        sent.append(job_id)

    recovery = recover_abandoned_jobs(
        db, now=now, send=send, max_requeues=max_requeues, requeue_interval=REQUEUE_INTERVAL
    )
    # What the check reports re-queued is exactly what reached the broker, in order.
    assert recovery.requeued == sent
    return recovery.requeued, recovery.failed


def test_a_job_without_heartbeat_for_a_lease_is_requeued_once_until_a_worker_takes_it(db):
    arrange_job(db, "stale", claimed_at=NOW - timedelta(seconds=LEASE + 1))
    assert check(db) == (["stale"], [])
    # Its new message may be waiting behind other imports: no second one meanwhile.
    assert check(db, NOW + timedelta(seconds=REQUEUE_INTERVAL - 1)) == ([], [])

    # A worker takes it, then vanishes too: the job is re-queued at once, not a visibility timeout later.
    assert import_storage.claim_job(db, "stale", "worker-b:2", NOW + timedelta(seconds=1), LEASE)
    assert check(db, NOW + timedelta(seconds=LEASE + 2)) == (["stale"], [])
    job = db.import_jobs.find_one({"_id": "stale"})
    assert (job["status"], job["attempts"], job["abandoned"]) == ("Progress", 2, 2)


def test_a_requeued_message_lost_as_well_is_sent_again_after_the_interval(db):
    arrange_job(db, "lost", claimed_at=NOW - timedelta(seconds=LEASE + 1))
    assert check(db) == (["lost"], [])
    assert check(db, NOW + timedelta(seconds=REQUEUE_INTERVAL + 1)) == (["lost"], [])


def test_live_pending_and_ended_jobs_are_left_alone(db):
    arrange_job(db, "live", claimed_at=NOW - timedelta(seconds=LEASE - 5))
    arrange_job(db, "pending", claimed_at=None)
    arrange_job(db, "done", claimed_at=NOW - timedelta(hours=1))
    assert import_storage.finish_job(db, "done", "worker-a:1", import_storage.JobStatus.SUCCESS, NOW)
    assert check(db) == ([], [])
    assert {job["_id"]: job["status"] for job in db.import_jobs.find()} == {
        "live": "Progress",
        "pending": "Pending",
        "done": "Success",
    }


def test_a_job_abandoned_more_than_max_requeues_times_fails_with_the_reason_and_its_upload_goes(db):
    arrange_job(db, "poison", claimed_at=NOW - timedelta(seconds=LEASE + 1))
    assert check(db, max_requeues=1) == (["poison"], [])
    assert import_storage.claim_job(db, "poison", "worker-b:2", NOW + timedelta(seconds=1), LEASE)
    later = NOW + timedelta(seconds=LEASE + 2)
    assert check(db, later, max_requeues=1) == ([], ["poison"])

    job = db.import_jobs.find_one({"_id": "poison"})
    assert job["status"] == "Failure"
    assert job["error"].startswith("The worker running this import stopped without finishing it, 2 times")
    assert job["finished_at"] == later and job["lease_owner"] is None
    assert db["uploads.files"].count_documents({"_id": "poison"}) == 0


def test_a_requeue_the_broker_refused_is_tried_again_at_the_next_check(db):
    arrange_job(db, "stale", claimed_at=NOW - timedelta(seconds=LEASE + 1))

    def broker_down(job_id: str) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        check(db, broker=broker_down)
    assert check(db, NOW + timedelta(seconds=1)) == (["stale"], [])


def test_a_paused_job_whose_worker_vanished_is_requeued_and_a_live_paused_one_left_alone(db):
    """A worker waiting for disk space renews its lease (``pause_job``); one that died while waiting does not."""
    arrange_job(db, "paused-dead", claimed_at=NOW - timedelta(seconds=LEASE + 30))
    arrange_job(db, "paused-live", claimed_at=NOW - timedelta(seconds=LEASE + 30))
    reason = "the store's volume has 10 MB free; waiting for 41 MB"
    assert import_storage.pause_job(db, "paused-dead", "worker-a:1", reason, NOW - timedelta(seconds=LEASE + 1), LEASE)
    assert import_storage.pause_job(db, "paused-live", "worker-a:1", reason, NOW - timedelta(seconds=1), LEASE)
    assert check(db) == (["paused-dead"], [])
    # The next run claims it back to Progress; another worker cannot claim the live one.
    assert import_storage.claim_job(db, "paused-dead", "worker-b:2", NOW, LEASE)["status"] == "Progress"
    assert import_storage.claim_job(db, "paused-live", "worker-b:2", NOW, LEASE) is None
    assert not import_storage.pause_job(db, "paused-dead", "worker-a:1", reason, NOW, LEASE)  # no longer its job
