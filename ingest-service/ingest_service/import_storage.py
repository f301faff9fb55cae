"""The worker's queries: claiming and updating ``import_jobs``, allocating ``seq`` from ``counters``,
writing ``catalog_items`` in bulk, and reading and deleting the uploaded file. Synchronous pymongo:
a Celery task runs in a plain process.
"""

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gridfs import GridFSBucket
from gridfs.errors import NoFile
from gridfs.synchronous.grid_file import GridOut
from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ingest_service.schemas import ACTIVE_STATUSES, RUNNING_STATUSES, ImportMode, JobStatus
from ingest_service.storage import COUNTERS, ITEMS, JOBS, UPLOADS_BUCKET

SEQ_COUNTER = "catalog_items.seq"
DUPLICATE_KEY = 11000
MAX_KEPT_ERRORS = 100

_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_RUNNING = {"$in": [s.value for s in RUNNING_STATUSES]}


@dataclass(frozen=True, slots=True)
class ItemWrite:
    """One catalog document to write, in the shape ARCHITECTURE.md fixes."""

    key: str
    seq: int
    row: dict[str, Any]
    line: int


@dataclass
class BatchOutcome:
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # index in the batch -> why


def find_job(db: Database, job_id: str) -> dict[str, Any] | None:
    return db[JOBS].find_one({"_id": job_id})


def claim_job(db: Database, job_id: str, worker_id: str, now: datetime, lease_seconds: int) -> dict[str, Any] | None:
    """Takes an active job whose lease is free, expired, or already ours, and counts the attempt.

    ``None`` when the job is missing, ended, or leased to a worker that is still alive.
    """
    return db[JOBS].find_one_and_update(
        {
            "_id": job_id,
            "status": {"$in": _ACTIVE},
            "$or": [{"lease_expires_at": None}, {"lease_expires_at": {"$lt": now}}, {"lease_owner": worker_id}],
        },
        {
            "$set": {
                "status": JobStatus.PROGRESS.value,
                "lease_owner": worker_id,
                "lease_expires_at": now + timedelta(seconds=lease_seconds),
                "heartbeat_at": now,
                # A worker has the job again: if it vanishes too, the job may be re-queued at once.
                "requeued_at": None,
            },
            "$min": {"started_at": now},
            "$inc": {"attempts": 1},
        },
        return_document=ReturnDocument.AFTER,
    )


def save_progress(
    db: Database,
    job_id: str,
    worker_id: str,
    *,
    now: datetime,
    lease_seconds: int,
    counts: dict[str, int],
    progress: int,
    checkpoint: dict[str, int],
    column_types: dict[str, str],
    new_errors: list[dict[str, Any]],
) -> bool:
    """Records a committed batch and renews the lease; False if the job was cancelled or taken over."""
    result = db[JOBS].update_one(
        {"_id": job_id, "status": {"$in": _ACTIVE}, "lease_owner": worker_id},
        {
            "$set": {
                **counts,
                "status": JobStatus.PROGRESS.value,
                "progress": progress,
                "checkpoint": checkpoint,
                "column_types": column_types,
                "heartbeat_at": now,
                "lease_expires_at": now + timedelta(seconds=lease_seconds),
            },
            "$push": {"errors": {"$each": new_errors, "$slice": MAX_KEPT_ERRORS}},
        },
    )
    return result.matched_count == 1


def pause_job(db: Database, job_id: str, worker_id: str, reason: str, now: datetime, lease_seconds: int) -> bool:
    """Marks the job ``Paused`` with the reason and renews its lease: the heartbeat of a worker waiting
    for disk space. False if the job was cancelled or taken over meanwhile."""
    return _set_running_status(db, job_id, worker_id, JobStatus.PAUSED, reason, now, lease_seconds)


def resume_job(db: Database, job_id: str, worker_id: str, now: datetime, lease_seconds: int) -> bool:
    """A paused job's worker goes on writing: ``Progress`` again, the reason cleared, the lease renewed."""
    return _set_running_status(db, job_id, worker_id, JobStatus.PROGRESS, None, now, lease_seconds)


def _set_running_status(
    db: Database, job_id: str, worker_id: str, status: JobStatus, reason: str | None, now: datetime, lease_seconds: int
) -> bool:
    result = db[JOBS].update_one(
        {"_id": job_id, "status": {"$in": _ACTIVE}, "lease_owner": worker_id},
        {
            "$set": {
                "status": status.value,
                "paused_reason": reason,
                "heartbeat_at": now,
                "lease_expires_at": now + timedelta(seconds=lease_seconds),
            }
        },
    )
    return result.matched_count == 1


def save_counts_after_cancel(
    db: Database, job_id: str, counts: dict[str, int], new_errors: list[dict[str, Any]]
) -> None:
    """The rows written before the worker noticed a cancellation stay, so they are counted."""
    db[JOBS].update_one(
        {"_id": job_id, "status": JobStatus.CANCELLED.value},
        {
            "$set": {**counts, "lease_owner": None, "lease_expires_at": None},
            "$push": {"errors": {"$each": new_errors, "$slice": MAX_KEPT_ERRORS}},
        },
    )


def finish_job(
    db: Database, job_id: str, worker_id: str | None, status: JobStatus, now: datetime, *, error: str | None = None
) -> bool:
    """Ends an active job (held by ``worker_id``, when given); False if it had ended already."""
    query: dict[str, Any] = {"_id": job_id, "status": {"$in": _ACTIVE}}
    if worker_id is not None:
        query["lease_owner"] = worker_id
    update: dict[str, Any] = {
        "status": status.value,
        "finished_at": now,
        "error": error,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if status is JobStatus.SUCCESS:
        update["progress"] = 100
    return db[JOBS].update_one(query, {"$set": update}).matched_count == 1


def find_abandoned_jobs(db: Database, now: datetime, requeued_before: datetime) -> list[dict[str, Any]]:
    """Running jobs whose lease ran out (no heartbeat for a lease), and that were not re-queued
    since ``requeued_before``."""
    return list(
        db[JOBS].find(
            {
                "status": _RUNNING,
                "lease_expires_at": {"$lt": now},
                "$or": [{"requeued_at": None}, {"requeued_at": {"$lt": requeued_before}}],
            },
            {"lease_expires_at": 1, "heartbeat_at": 1, "abandoned": 1},
        )
    )


def mark_abandoned(
    db: Database, job: dict[str, Any], now: datetime, requeued_before: datetime
) -> dict[str, Any] | None:
    """Counts one more abandonment of ``job`` as found by ``find_abandoned_jobs``; None if a worker
    claimed it meanwhile (a new lease) or another check got there first."""
    return db[JOBS].find_one_and_update(
        {
            "_id": job["_id"],
            "status": _RUNNING,
            "lease_expires_at": job["lease_expires_at"],
            "$or": [{"requeued_at": None}, {"requeued_at": {"$lt": requeued_before}}],
        },
        {"$set": {"requeued_at": now}, "$inc": {"abandoned": 1}},
        return_document=ReturnDocument.AFTER,
    )


def unmark_requeued(db: Database, job_id: str) -> None:
    """The re-queue could not be sent: let the next check try again."""
    db[JOBS].update_one({"_id": job_id, "status": _RUNNING}, {"$set": {"requeued_at": None}})


def fail_abandoned_job(db: Database, job_id: str, now: datetime, error: str) -> bool:
    """Ends a job as Failure unless a worker claimed it since; False then."""
    return (
        db[JOBS]
        .update_one(
            {"_id": job_id, "status": _RUNNING, "lease_expires_at": {"$lt": now}},
            {
                "$set": {
                    "status": JobStatus.FAILURE.value,
                    "finished_at": now,
                    "error": error,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
            },
        )
        .matched_count
        == 1
    )


def allocate_seq_block(db: Database, size: int) -> int:
    """The first of ``size`` consecutive ``seq`` numbers no other writer will ever get."""
    for _ in range(2):
        counter = db[COUNTERS].find_one_and_update(
            {"_id": SEQ_COUNTER}, {"$inc": {"next": size}}, return_document=ReturnDocument.AFTER
        )
        if counter is not None:
            return counter["next"] - size + 1
        # The very first allocation creates the counter. Not by an upsert: two workers racing to
        # upsert it may see one of them fail, or (SecantusDB) get no document back. Here the loser's
        # insert is a duplicate, and both then increment the one counter.
        with contextlib.suppress(DuplicateKeyError):
            db[COUNTERS].insert_one({"_id": SEQ_COUNTER, "next": 0})
    raise RuntimeError(f"The {SEQ_COUNTER} counter vanished while allocating from it")


def rows_written_by_job(db: Database, job_id: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The documents among ``keys`` that this job wrote last, by key: after a crash, these tell
    which rows of the interrupted batch reached the store."""
    cursor = db[ITEMS].find(
        {"_id": {"$in": keys}, "source.job_id": job_id}, {"source": 1, "created_at": 1, "updated_at": 1}
    )
    return {doc["_id"]: doc for doc in cursor}


def write_items(db: Database, job_id: str, mode: ImportMode, items: list[ItemWrite], now: datetime) -> BatchOutcome:
    """One unordered bulk write for the batch; a failed row does not stop the others."""
    if mode is ImportMode.INSERT:
        operations = [
            InsertOne(
                {
                    "_id": item.key,
                    "seq": item.seq,
                    "row": item.row,
                    "source": {"job_id": job_id, "line": item.line},
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for item in items
        ]
    else:
        operations = [
            UpdateOne(
                {"_id": item.key},
                {
                    "$set": {"row": item.row, "source": {"job_id": job_id, "line": item.line}, "updated_at": now},
                    "$setOnInsert": {"seq": item.seq, "created_at": now},
                },
                upsert=True,
            )
            for item in items
        ]
    try:
        summary = db[ITEMS].bulk_write(operations, ordered=False).bulk_api_result
    except BulkWriteError as exc:
        summary = exc.details

    outcome = BatchOutcome(inserted=summary["nInserted"] + summary["nUpserted"], updated=summary["nMatched"])
    for error in summary.get("writeErrors", []):
        if error["code"] == DUPLICATE_KEY and mode is ImportMode.INSERT:
            outcome.duplicates += 1
        else:
            outcome.failed[error["index"]] = f"The row could not be stored: {error.get('errmsg', 'write error')}"
    return outcome


def open_upload(db: Database, job_id: str) -> GridOut:
    return GridFSBucket(db, bucket_name=UPLOADS_BUCKET).open_download_stream(job_id)


def delete_upload(db: Database, job_id: str) -> None:
    with contextlib.suppress(NoFile):
        GridFSBucket(db, bucket_name=UPLOADS_BUCKET).delete(job_id)
