"""The worker's queries: claiming and updating ``import_jobs``, allocating ``seq`` from ``counters``,
writing ``catalog_items`` in bulk, and reading and deleting the uploaded file. Synchronous pymongo:
a Celery task runs in a plain process.
"""

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import encode
from bson.raw_bson import RawBSONDocument
from gridfs import GridFSBucket
from gridfs.errors import NoFile
from gridfs.synchronous.grid_file import GridOut
from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ingest_service import catalog_blocks
from ingest_service.catalog_blocks import QUERY_TIME_MS
from ingest_service.schemas import ACTIVE_STATUSES, RUNNING_STATUSES, ImportMode, JobStatus
from ingest_service.storage import COUNTERS, JOBS, UPLOADS_BUCKET
from service_common.catalog_layout import BLOCKS, DATASETS, ITEMS, BlockState, item_id, merge_column_types
from service_common.datasets import DatasetStatus, job_dataset, new_dataset_for
from service_common.roles import Role, grants

# auth-service's accounts: the worker reads an import's owner (roles, disabled) once per batch, nothing else.
USERS = "users"
SEQ_COUNTER = "catalog_items.seq"
DUPLICATE_KEY = 11000
MAX_KEPT_ERRORS = 100
# On a job: the keys of batches being updated in place whose blocks may not be patched yet.
IN_PLACE = "in_place"

_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_RUNNING = {"$in": [s.value for s in RUNNING_STATUSES]}

# The most jobs or datasets the periodic check takes up at once; the rest, a minute later.
STALE_PER_CHECK = 100


@dataclass(frozen=True, slots=True)
class ItemWrite:
    """One catalog document to write, in the shape ARCHITECTURE.md fixes."""

    key: str
    seq: int
    row: dict[str, Any]
    line: int
    # Its item's document, made by ``prepare_items`` ahead of ``write_items``, which sends it (a merge's: none).
    document: Any = None


@dataclass
class BatchOutcome:
    inserted: list[int] = field(default_factory=list)  # indexes in the batch of the items created
    updated: list[int] = field(default_factory=list)  # ... and of those that existed and were updated
    duplicates: int = 0
    unmatched: int = 0  # mode=merge: rows whose key no item has
    failed: dict[int, str] = field(default_factory=dict)  # index in the batch -> why
    merged: int = 0  # mode=merge: rows whose item was updated


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
    in_place: str | None = None,
) -> bool:
    """Records a committed batch and renews the lease; False if the job was cancelled or taken over.
    ``in_place``: the batch's mark (``mark_in_place``), its blocks patched."""
    result = db[JOBS].update_one(
        {"_id": job_id, "status": {"$in": _ACTIVE}, "lease_owner": worker_id},
        {
            **({"$pull": {IN_PLACE: {"id": in_place}}} if in_place else {}),
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


def renew_lease(db: Database, job_id: str, worker_id: str, now: datetime, lease_seconds: int) -> bool:
    """The heartbeat of a worker still reading its next batch; False if the job was cancelled or taken over."""
    result = db[JOBS].update_one(
        {"_id": job_id, "status": {"$in": _ACTIVE}, "lease_owner": worker_id},
        {"$set": {"heartbeat_at": now, "lease_expires_at": now + timedelta(seconds=lease_seconds)}},
    )
    return result.matched_count == 1


def owner_lost_access(db: Database, owner: str | None) -> str | None:
    """Why the job's owner may no longer import (its account disabled, or without the ``editor`` role),
    or None. An account the store does not hold, or one stored without roles (whose role the sign-up
    setting decides, which only auth knows), is left to the checks its token passed at upload."""
    if owner is None:
        return None
    user = db[USERS].find_one({"_id": owner}, {"roles": 1, "disabled": 1}, max_time_ms=QUERY_TIME_MS)
    if user is None:
        return None
    if user.get("disabled") is True:
        return "the owner's account was disabled"
    roles = user.get("roles")
    if isinstance(roles, list) and roles and not grants(roles, Role.EDITOR):
        return "the owner's account no longer has the editor role"
    return None


def cancel_for_owner(db: Database, job_id: str, worker_id: str, reason: str, now: datetime) -> bool:
    """Ends the running job ``Cancelled`` with the reason; False if it was cancelled or taken over meanwhile."""
    result = db[JOBS].update_one(
        {"_id": job_id, "status": {"$in": _ACTIVE}, "lease_owner": worker_id},
        {
            "$set": {
                "status": JobStatus.CANCELLED.value,
                "finished_at": now,
                "error": f"Cancelled: {reason}",
                "lease_owner": None,
                "lease_expires_at": None,
            }
        },
    )
    return result.matched_count == 1


def save_counts_after_cancel(
    db: Database, job_id: str, counts: dict[str, int], new_errors: list[dict[str, Any]], in_place: str | None = None
) -> None:
    """The rows written before the worker noticed a cancellation stay, so they are counted. Its lease
    ends here: a revert asked for meanwhile (``Reverting``) waits for that before it starts."""
    db[JOBS].update_one(
        {"_id": job_id, "status": {"$in": [JobStatus.CANCELLED.value, JobStatus.REVERTING.value]}},
        {
            **({"$pull": {IN_PLACE: {"id": in_place}}} if in_place else {}),
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
        db[JOBS]
        .find(
            {
                "status": _RUNNING,
                "lease_expires_at": {"$lt": now},
                "$or": [{"requeued_at": None}, {"requeued_at": {"$lt": requeued_before}}],
            },
            {"lease_expires_at": 1, "heartbeat_at": 1, "abandoned": 1},
            max_time_ms=QUERY_TIME_MS,
        )
        .limit(STALE_PER_CHECK)
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


def last_seq(db: Database) -> int:
    """The highest ``seq`` given out so far (0 before the first)."""
    return (db[COUNTERS].find_one({"_id": SEQ_COUNTER}) or {}).get("next", 0)


def rows_written_by_job(db: Database, dataset: str, job_id: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The documents among ``keys`` that this job wrote last, by key: after a crash, these tell
    which rows of the interrupted batch reached the store."""
    written = catalog_blocks.read_items(db, dataset, keys, {"source": 1, "created_at": 1, "updated_at": 1, "block": 1})
    return {key: document for key, document in written.items() if document["source"]["job_id"] == job_id}


def prepare_items(
    dataset: str, block_id: str, job_id: str, mode: ImportMode, items: list[ItemWrite], now: datetime
) -> list[ItemWrite]:
    """``items`` with the documents ``write_items`` sends, made ahead of it (by the thread that reads
    the next batch while this one is written): an insert's already encoded, as the store receives it."""
    prepared = []
    for item in items:
        document = catalog_blocks.item_document(
            dataset, item.key, seq=item.seq, block_id=block_id, row=item.row, job_id=job_id, line=item.line, now=now
        )
        if mode is ImportMode.INSERT:
            document = RawBSONDocument(encode(document))
        prepared.append(ItemWrite(item.key, item.seq, item.row, item.line, document))
    return prepared


def write_items(db: Database, dataset: str, job_id: str, mode: ImportMode, items: list[ItemWrite]) -> BatchOutcome:
    """One unordered bulk write of the batch's items (made by ``prepare_items``); a failed row does not
    stop the others."""
    documents = [item.document for item in items]
    summary = _bulk_write(db, [InsertOne(d) if mode is ImportMode.INSERT else _upsert(d) for d in documents])
    outcome = BatchOutcome()
    for error in summary.get("writeErrors", []):
        if error["code"] == DUPLICATE_KEY and mode is ImportMode.INSERT:
            outcome.duplicates += 1
        else:
            outcome.failed[error["index"]] = _write_error(error)
    duplicates = {error["index"] for error in summary.get("writeErrors", [])}
    if mode is ImportMode.INSERT:
        outcome.inserted = [index for index in range(len(items)) if index not in duplicates]
        if outcome.duplicates:
            matched = [items[error["index"]].key for error in summary["writeErrors"] if error["code"] == DUPLICATE_KEY]
            catalog_blocks.mark_relied_on(db, dataset, job_id, matched)
    else:
        outcome.inserted = sorted(upserted["index"] for upserted in summary.get("upserted", []))
        new = set(outcome.inserted)
        outcome.updated = [index for index in range(len(items)) if index not in new and index not in duplicates]
    return outcome


def _bulk_write(db: Database, operations: list[Any]) -> dict[str, Any]:
    """One unordered bulk write of the items; its summary, with the rows that failed in ``writeErrors``."""
    try:
        return db[ITEMS].bulk_write(operations, ordered=False).bulk_api_result
    except BulkWriteError as exc:
        return exc.details


def _write_error(error: dict[str, Any]) -> str:
    return f"The row could not be stored: {error.get('errmsg', 'write error')}"


# What a write in place sets on an item; the rest of ``item_document`` is the item's from its creation on.
REWRITTEN_FIELDS = ("row", "source", "updated_at")


def _upsert(document: dict[str, Any]) -> UpdateOne:
    """The item ``document`` (``catalog_blocks.item_document``) written over the one with its id,
    keeping that one's place (``seq``, ``block``) and creation, or inserted as it is."""
    rewritten = {name: document[name] for name in REWRITTEN_FIELDS}
    created = {name: value for name, value in document.items() if name not in REWRITTEN_FIELDS and name != "_id"}
    # ``w`` counts the item's in-place writes, which orders its rows (patch_in_place).
    return UpdateOne(
        {"_id": document["_id"]}, {"$set": rewritten, "$inc": {"w": 1}, "$setOnInsert": created}, upsert=True
    )


def ensure_dataset(db: Database, job: dict[str, Any], now: datetime) -> None:
    """The job's dataset exists from its first import on: the upload API creates it, and this again,
    as the API would have, when it is gone (a job from before datasets, the migration's)."""
    dataset = new_dataset_for(
        job_dataset(job), user_id=job["owner"], username=job.get("owner_username"), key=job["key"], now=now
    )
    with contextlib.suppress(DuplicateKeyError):
        db[DATASETS].insert_one(dataset)


def record_column_types(db: Database, dataset: str, column_types: dict[str, str], now: datetime) -> None:
    document = db[DATASETS].find_one({"_id": dataset}, {"column_types": 1}) or {}
    merged = merge_column_types(document.get("column_types", []), column_types)
    db[DATASETS].update_one({"_id": dataset}, {"$set": {"column_types": merged, "last_import_at": now}})


def recover_blocks_of_ended_jobs(db: Database) -> int:
    """Finishes the unindexed blocks of jobs that have ended (cancelled or failed while their worker
    was gone): no run of theirs will come back for them. Unindexed blocks are few: those of the
    batches being written right now, and these."""
    finished = 0
    # Named states, found by the ``state`` index: ``$ne`` made the store read every block (31 s of
    # every minute at 11,000,000 items, beside the reads and other workers' imports it holds up).
    unfinished = {"state": {"$in": [BlockState.PENDING, BlockState.COMMITTED]}}
    for job_id in db[BLOCKS].distinct("job_id", unfinished, maxTimeMS=QUERY_TIME_MS):
        job = db[JOBS].find_one({"_id": job_id}, {"status": 1})
        if job is None or job["status"] not in _ACTIVE:
            finished += catalog_blocks.recover_job(db, job_id)
    # Batches updated in place by runs that died before patching their items' blocks.
    patched = {f"{IN_PLACE}.0": {"$exists": True}, "status": {"$nin": _ACTIVE}}
    for job in list(db[JOBS].find(patched, {"_id": 1}, max_time_ms=QUERY_TIME_MS).limit(STALE_PER_CHECK)):
        finished += finish_in_place(db, job["_id"])
    return finished


class DeletionLeased(Exception):
    """Another worker is deleting the dataset, or an import still holds a lease on it; retry later."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"the dataset is held for {retry_in:.0f}s more")
        self.retry_in = retry_in


class DeletionLost(Exception):
    """This worker's lease on the deletion ran out and another run took it over (or finished it)."""


def delete_dataset(db: Database, name: str, *, worker_id: str, now: datetime, lease_seconds: int) -> int | None:
    """A dataset marked ``deleting``: its items and layout, then the files its jobs may have left;
    how many items it removed, or None when there is no such deletion (the dataset is gone, or was
    made anew and is not being deleted).

    The deletion holds a lease on the dataset, as an import holds one on its job, renewed before each
    block: a second delivery of its message waits for it (``DeletionLeased``), and a run that stalled
    past its lease stops at its next block (``DeletionLost``), so it never deletes a dataset made anew
    under the name. It starts only once no import holds a lease on the dataset: a cancelled import
    writes the batch it is on before it notices."""
    busy = db[JOBS].find_one(
        {"dataset": name, "lease_expires_at": {"$gt": now}}, {"lease_expires_at": 1}, max_time_ms=QUERY_TIME_MS
    )
    if busy is not None:
        raise DeletionLeased(max(1.0, (busy["lease_expires_at"] - now).total_seconds()))
    free = [{"deletion_lease_expires_at": None}, {"deletion_lease_expires_at": {"$lt": now}}]
    claimed = db[DATASETS].find_one_and_update(
        {"_id": name, "status": DatasetStatus.DELETING.value, "$or": [*free, {"deletion_lease_owner": worker_id}]},
        {
            "$set": {
                "deletion_lease_owner": worker_id,
                "deletion_lease_expires_at": now + timedelta(seconds=lease_seconds),
            }
        },
        {"_id": 1},
    )
    if claimed is None:
        deleting = {"_id": name, "status": DatasetStatus.DELETING.value}
        held = db[DATASETS].find_one(deleting, {"deletion_lease_expires_at": 1})
        if held is not None and held.get("deletion_lease_expires_at"):
            raise DeletionLeased(max(1.0, (held["deletion_lease_expires_at"] - now).total_seconds()))
        return None
    ours = {"status": DatasetStatus.DELETING.value, "deletion_lease_owner": worker_id}

    def renew() -> None:
        renewed = datetime.now(UTC) + timedelta(seconds=lease_seconds)
        result = db[DATASETS].update_one({"_id": name, **ours}, {"$set": {"deletion_lease_expires_at": renewed}})
        if result.matched_count != 1:
            raise DeletionLost(name)

    for job in list(db[JOBS].find({"dataset": name}, {"_id": 1}, max_time_ms=QUERY_TIME_MS)):
        delete_upload(db, job["_id"])
    return catalog_blocks.delete_dataset(db, name, last_seq=last_seq(db), renew=renew, held=ours)


def find_stalled_deletions(db: Database, now: datetime, resent_before: datetime) -> list[str]:
    """Datasets ``deleting`` since before ``resent_before``, with no live lease and not sent again
    since: their message may be lost, or their last run gave up."""
    query = _stalled_deletion(now, resent_before)
    return [d["_id"] for d in db[DATASETS].find(query, {"_id": 1}, max_time_ms=QUERY_TIME_MS).limit(STALE_PER_CHECK)]


def mark_deletion_resent(db: Database, name: str, now: datetime, resent_before: datetime) -> bool:
    query = {"_id": name, **_stalled_deletion(now, resent_before)}
    return db[DATASETS].update_one(query, {"$set": {"deletion_sent_at": now}}).matched_count == 1


def _stalled_deletion(now: datetime, resent_before: datetime) -> dict[str, Any]:
    return {
        "status": DatasetStatus.DELETING.value,
        "deleting_since": {"$lt": resent_before},
        "$and": [
            {"$or": [{"deletion_lease_expires_at": None}, {"deletion_lease_expires_at": {"$lt": now}}]},
            {"$or": [{"deletion_sent_at": None}, {"deletion_sent_at": {"$lt": resent_before}}]},
        ],
    }


def finish_revert(db: Database, job_id: str, now: datetime, *, removed: int, kept: int) -> bool:
    """A ``Reverting`` job reads ``Reverted`` with its counts; False if it was not reverting."""
    result = db[JOBS].update_one(
        {"_id": job_id, "status": JobStatus.REVERTING.value},
        {"$set": {"status": JobStatus.REVERTED.value, "rows_reverted": removed, "rows_kept": kept, "reverted_at": now}},
    )
    return result.matched_count == 1


def find_stalled_reverts(db: Database, resent_before: datetime) -> list[str]:
    """``Reverting`` jobs asked for, and last sent, before ``resent_before``: their message may be lost."""
    query = _stalled_revert(resent_before)
    return [job["_id"] for job in db[JOBS].find(query, {"_id": 1}, max_time_ms=QUERY_TIME_MS).limit(STALE_PER_CHECK)]


def mark_revert_resent(db: Database, job_id: str, now: datetime, resent_before: datetime) -> bool:
    """Claims the re-sending of a stalled revert; False if another check did meanwhile, or it ended."""
    query = {"_id": job_id, **_stalled_revert(resent_before)}
    return db[JOBS].update_one(query, {"$set": {"revert_sent_at": now}}).matched_count == 1


def _stalled_revert(resent_before: datetime) -> dict[str, Any]:
    return {
        "status": JobStatus.REVERTING.value,
        "revert_requested_at": {"$lt": resent_before},
        "$or": [{"revert_sent_at": None}, {"revert_sent_at": {"$lt": resent_before}}],
    }


@dataclass
class MergeOutcome(BatchOutcome):
    # The items of the rows merged whose stored state the merge knows without reading it back (key
    # -> ``block``, ``seq``, ``row``, ``w``), for ``catalog_blocks.patch_in_place``.
    written: dict[str, dict[str, Any]] = field(default_factory=dict)


# What a merge reads of an item: its row to merge onto, and its place and count of in-place writes,
# which the write compares and sets.
_MERGED_FIELDS = {"row": 1, "block": 1, "seq": 1, "w": 1}


def merge_items(db: Database, dataset: str, job_id: str, items: list[ItemWrite], now: datetime) -> MergeOutcome:
    """Sets each row's columns on the item with its key, if there is one; never creates an item.

    Columns the item has keep their place, new ones are added after them, and the others stay. The
    batch's items are read once: an item that already holds every value of its row is not written (it
    counts as a duplicate, and is kept by a revert of the import that created it), the others are
    updated in one unordered bulk write, each a compare-and-set on the item as read (its ``seq`` and
    its count of in-place writes ``w``). When every one lands, each item's row is the one read with
    the row's values set on it, and its ``w`` one more: a row that sets only columns the item has is
    then known without reading it back (``written``; new columns take the store's order, so those
    items are read). Should any lose (a concurrent write, or the item deleted), the batch's items
    say which landed (they carry this write's ``source``), and the others are merged again, read anew.
    """
    outcome = MergeOutcome()
    pending = list(range(len(items)))
    for _ in range(catalog_blocks.MAX_RACES):
        existing = catalog_blocks.read_items(db, dataset, [items[index].key for index in pending], _MERGED_FIELDS)
        operations, written, unchanged = [], [], []
        for index in pending:
            item = items[index]
            stored = existing.get(item.key)
            if stored is None:
                outcome.unmatched += 1
                continue
            row = stored.get("row") or {}
            if _holds(row, item.row):
                unchanged.append(item.key)
                continue
            update = {f"row.{field}": value for field, value in item.row.items()}
            update |= {"source": {"job_id": job_id, "line": item.line}, "updated_at": now}
            read_as = {"_id": item_id(dataset, item.key), "seq": stored["seq"], "w": stored.get("w")}
            operations.append(UpdateOne(read_as, {"$set": update, "$inc": {"w": 1}}))
            known = stored.get("block") and item.row.keys() <= row.keys()
            after = {"block": stored.get("block"), "seq": stored["seq"], "row": {**row, **item.row}}
            written.append((index, {**after, "w": (stored.get("w") or 0) + 1} if known else None))
        outcome.duplicates += len(unchanged)
        catalog_blocks.mark_relied_on(db, dataset, job_id, unchanged)
        if not operations:
            break
        summary = _bulk_write(db, operations)
        failed = set()
        for error in summary.get("writeErrors", []):
            failed.add(error["index"])
            outcome.failed[written[error["index"]][0]] = _write_error(error)
        tried = [pair for position, pair in enumerate(written) if position not in failed]
        if summary["nMatched"] == len(tried):
            outcome.updated += [index for index, _ in tried]
            outcome.written |= {items[index].key: after for index, after in tried if after is not None}
            break
        # Some compare-and-sets lost: the items that carry this write's source took it.
        now_stored = catalog_blocks.read_items(db, dataset, [items[index].key for index, _ in tried], {"source": 1})
        pending = []
        for index, _ in tried:
            found = now_stored.get(items[index].key)
            if found is None:
                outcome.unmatched += 1  # deleted since it was read (its dataset being deleted)
            elif found.get("source") == {"job_id": job_id, "line": items[index].line}:
                outcome.updated.append(index)
            else:
                pending.append(index)
        if not pending:
            break
    else:
        raise RuntimeError(f"items of {dataset} kept changing while being merged")
    outcome.updated.sort()
    outcome.merged = len(outcome.updated)
    return outcome


def mark_in_place(db: Database, job_id: str, keys: list[str]) -> str:
    """Records, before a batch updates items in place, the keys it may update, so that the blocks of
    those items are brought up to them even if this run dies before it does (``finish_in_place``);
    ``save_progress`` (or the cancellation's count) clears the mark. Returns the mark's id."""
    mark = uuid.uuid4().hex
    db[JOBS].update_one({"_id": job_id}, {"$push": {IN_PLACE: {"id": mark, "keys": keys}}})
    return mark


def finish_in_place(db: Database, job_id: str) -> int:
    """Patches the blocks of the items that runs of this job updated in place and died before
    patching (their marks, ``mark_in_place``); how many batches there were."""
    job = db[JOBS].find_one({"_id": job_id}, {IN_PLACE: 1, "dataset": 1})
    marks = (job or {}).get(IN_PLACE) or []
    for mark in marks:
        catalog_blocks.patch_in_place(db, job_dataset(job), mark["keys"])
        db[JOBS].update_one({"_id": job_id}, {"$pull": {IN_PLACE: {"id": mark["id"]}}})
    return len(marks)


def _holds(stored: dict[str, Any], values: dict[str, Any]) -> bool:
    """Whether a stored row already has each of ``values``, of the same type (1 is not 1.0)."""
    missing = object()
    return all(
        type(stored.get(field, missing)) is type(value) and stored[field] == value for field, value in values.items()
    )


def open_upload(db: Database, job_id: str) -> GridOut:
    return GridFSBucket(db, bucket_name=UPLOADS_BUCKET).open_download_stream(job_id)


def delete_upload(db: Database, job_id: str) -> None:
    with contextlib.suppress(NoFile):
        GridFSBucket(db, bucket_name=UPLOADS_BUCKET).delete(job_id)
