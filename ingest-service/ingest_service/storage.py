"""The API's queries: ``import_jobs`` and the GridFS bucket ``uploads``.

The worker's side of the same collections is in ``import_storage.py``.
"""

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, ServerSelectionTimeoutError

from ingest_service.parsing import CsvLayout
from ingest_service.rows import Ragged
from ingest_service.schemas import ACTIVE_STATUSES, REVERTIBLE_STATUSES, ImportMode, JobStatus
from ingest_service.sources import Compression
from service_common import stores
from service_common.catalog_layout import BLOCKS, DATASETS
from service_common.datasets import DatasetStatus

JOBS = "import_jobs"
COUNTERS = "counters"
UPLOADS_BUCKET = "uploads"
UPLOAD_FILES = f"{UPLOADS_BUCKET}.files"
UPLOAD_CHUNKS = f"{UPLOADS_BUCKET}.chunks"
UPLOAD_CHUNK_BYTES = 255 * 1024  # GridFS's default chunk size
CHUNKS_PER_INSERT = 4
# A query's time budget (maxTimeMS): past it the store stops, and the request fails rather than waits.
COUNT_TIME_MS = 5_000


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Run at every start: indexes already there are left alone (``service_common.stores.ensure_indexes``)."""
    await stores.ensure_indexes(
        db[JOBS],
        [
            IndexModel([("owner", 1), ("created_at", DESCENDING), ("_id", DESCENDING)], name="owner_newest"),
            # An admin's listing of everyone's jobs.
            IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="newest"),
        ],
    )
    # The worker finds a job's unfinished blocks, and the periodic check every unfinished block: few
    # documents (one per batch), so these cost imports nothing worth measuring.
    await stores.ensure_indexes(
        db[BLOCKS],
        [
            IndexModel([("job_id", ASCENDING), ("state", ASCENDING)], name="job_state"),
            IndexModel([("state", ASCENDING)], name="state"),
            IndexModel([("dataset", ASCENDING), ("seq", ASCENDING)], name="dataset_seq"),
        ],
    )
    # The indexes GridFS drivers expect on a bucket (``UploadWriter`` writes without a driver's GridIn).
    await stores.ensure_indexes(
        db[UPLOAD_CHUNKS], [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)]
    )
    await stores.ensure_indexes(db[UPLOAD_FILES], [IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)])])
    # How many datasets an account owns (INGEST_MAX_DATASETS_PER_USER), counted at an upload that creates one.
    await stores.ensure_indexes(db[DATASETS], [IndexModel([("owner", ASCENDING)], name="owner")])


class UploadWriter:
    """Writes an upload into the GridFS bucket ``uploads`` as it arrives, laid out as the GridFS spec says,
    so that any driver's GridFS reader (the worker's) can stream it back.

    pymongo's own GridIn holds up to 48 MB of chunks before writing them; this writes every
    ``CHUNKS_PER_INSERT`` chunks, so an upload of any size costs about a megabyte of memory.
    """

    def __init__(self, db: AsyncDatabase, file_id: str, filename: str, metadata: dict[str, Any]) -> None:
        self._db = db
        self._file_id = file_id
        self._filename = filename
        self._metadata = metadata
        self._pending = bytearray()
        self._next_chunk = 0
        self._may_have_written = False
        self.length = 0

    async def write(self, data: bytes) -> None:
        self._pending += data
        self.length += len(data)
        if len(self._pending) >= UPLOAD_CHUNK_BYTES * CHUNKS_PER_INSERT:
            await self._write_chunks(final=False)

    async def close(self) -> None:
        """Writes the last chunks, then the file document that makes the file visible to readers."""
        await self._write_chunks(final=True)
        await self._db[UPLOAD_FILES].insert_one(
            {
                "_id": self._file_id,
                "length": self.length,
                "chunkSize": UPLOAD_CHUNK_BYTES,
                "uploadDate": datetime.now(UTC),
                "filename": self._filename,
                "metadata": self._metadata,
            }
        )

    async def abort(self) -> None:
        """Deletes the chunks written so far. None written, none to delete: an upload refused because
        the store is down then answers after one server selection timeout, not two."""
        if self._may_have_written:
            await self._db[UPLOAD_CHUNKS].delete_many({"files_id": self._file_id})

    async def _write_chunks(self, *, final: bool) -> None:
        whole = len(self._pending) // UPLOAD_CHUNK_BYTES * UPLOAD_CHUNK_BYTES
        end = len(self._pending) if final else whole
        chunks = []
        for start in range(0, end, UPLOAD_CHUNK_BYTES):
            data = bytes(self._pending[start : min(start + UPLOAD_CHUNK_BYTES, end)])
            chunks.append({"files_id": self._file_id, "n": self._next_chunk, "data": Binary(data)})
            self._next_chunk += 1
        if chunks:
            written_before = self._may_have_written
            self._may_have_written = True  # a write cut short may have stored some of them
            try:
                await self._db[UPLOAD_CHUNKS].insert_many(chunks)
            except ServerSelectionTimeoutError:
                # No server was selected, so nothing was sent.
                self._may_have_written = written_before
                raise
        del self._pending[:end]


def uploads_bucket(db: AsyncDatabase) -> AsyncGridFSBucket:
    return AsyncGridFSBucket(db, bucket_name=UPLOADS_BUCKET)


async def delete_upload(db: AsyncDatabase, file_id: str) -> None:
    with contextlib.suppress(NoFile):
        await uploads_bucket(db).delete(file_id)


def new_job(
    *,
    job_id: str,
    dataset: str,
    owner: str,
    filename: str,
    size_bytes: int,
    layout: CsvLayout,
    mode: ImportMode,
    key: str | None,
    now: datetime,
    compression: Compression = Compression.NONE,
    null_markers: Sequence[str] = (),
    ragged: Ragged = Ragged.ERROR,
    owner_username: str | None = None,
) -> dict[str, Any]:
    """A ``Pending`` job; the upload it imports is the GridFS file with the same id. It carries
    everything the worker needs to read the file as the API judged it, and to create its dataset
    as the API would (``owner_username``) should the dataset be gone when it starts."""
    return {
        "_id": job_id,
        "owner": owner,
        "owner_username": owner_username,
        "status": JobStatus.PENDING.value,
        "filename": filename,
        "size_bytes": size_bytes,
        "compression": compression.value,
        "encoding": layout.encoding,
        "quoting": layout.quoting.value,
        "delimiter": layout.delimiter,
        "null_markers": list(null_markers),
        "ragged": ragged.value,
        "columns": list(layout.columns),
        "mode": mode.value,
        "key": key,
        "dataset": dataset,
        "progress": 0,
        "rows_processed": 0,
        "rows_inserted": 0,
        "rows_updated": 0,
        "rows_duplicate": 0,
        "rows_unmatched": 0,
        "rows_failed": 0,
        "warnings": 0,
        "errors": [],
        "error": None,
        "attempts": 0,
        "created_at": now,
        "finished_at": None,
    }


async def insert_job(db: AsyncDatabase, job: dict[str, Any]) -> None:
    await db[JOBS].insert_one(job)


async def delete_job(db: AsyncDatabase, job_id: str) -> None:
    await db[JOBS].delete_one({"_id": job_id})


def _owned(owner: str | None, **query: Any) -> dict[str, Any]:
    """``query`` limited to ``owner``'s jobs; ``None`` (an admin) means everyone's."""
    return query if owner is None else {**query, "owner": owner}


async def find_job(db: AsyncDatabase, job_id: str, owner: str | None) -> dict[str, Any] | None:
    """The job, if ``owner`` uploaded it (any job for ``None``): another user's job reads as missing."""
    return await db[JOBS].find_one(_owned(owner, _id=job_id))


async def list_jobs(db: AsyncDatabase, owner: str | None, *, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the owner's jobs (everyone's for ``None``), newest first, and how many there are in all."""
    query = _owned(owner)
    cursor = db[JOBS].find(query, max_time_ms=COUNT_TIME_MS).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
    jobs = await cursor.skip(skip).limit(limit).to_list()
    total = await db[JOBS].count_documents(query, maxTimeMS=COUNT_TIME_MS)
    return jobs, total


async def cancel_job(
    db: AsyncDatabase, job_id: str, owner: str | None, now: datetime
) -> tuple[dict[str, Any] | None, JobStatus | None]:
    """Marks an active job ``Cancelled``: (the job after, the status it had) or (None, None) if it
    had already ended. The worker notices at its next batch."""
    before = await db[JOBS].find_one_and_update(
        _owned(owner, _id=job_id, status={"$in": [s.value for s in ACTIVE_STATUSES]}),
        {"$set": {"status": JobStatus.CANCELLED.value, "finished_at": now}},
        return_document=ReturnDocument.BEFORE,
    )
    if before is None:
        return None, None
    after = {**before, "status": JobStatus.CANCELLED.value, "finished_at": now}
    return after, JobStatus(before["status"])


async def start_revert(
    db: AsyncDatabase, job_id: str, owner: str | None, now: datetime
) -> tuple[dict[str, Any] | None, JobStatus | None]:
    """Marks an ended job ``Reverting``: (the job after, the status it had), or (None, None) if it is
    still active, reverted already, or not the owner's."""
    reverting = {"status": JobStatus.REVERTING.value, "rows_reverted": 0, "rows_kept": 0, "revert_requested_at": now}
    before = await db[JOBS].find_one_and_update(
        _owned(owner, _id=job_id, status={"$in": [s.value for s in REVERTIBLE_STATUSES]}),
        {"$set": reverting},
        return_document=ReturnDocument.BEFORE,
    )
    if before is None:
        return None, None
    return {**before, **reverting}, JobStatus(before["status"])


async def undo_start_revert(db: AsyncDatabase, job_id: str, previous: JobStatus) -> None:
    """The revert could not be queued: the job reads as it did, and may be reverted again."""
    reverting = {"_id": job_id, "status": JobStatus.REVERTING.value}
    await db[JOBS].update_one(reverting, {"$set": {"status": previous.value}})


async def find_dataset(db: AsyncDatabase, name: str) -> dict[str, Any] | None:
    projection = {"owner": 1, "key": 1, "status": 1, "index": 1, "column_types": 1}
    return await db[DATASETS].find_one({"_id": name}, projection)


async def count_owned_datasets(db: AsyncDatabase, owner: str, *, at_most: int) -> int:
    """How many datasets ``owner`` owns, counted up to ``at_most``."""
    return await db[DATASETS].count_documents({"owner": owner}, limit=at_most, maxTimeMS=COUNT_TIME_MS)


async def create_dataset(db: AsyncDatabase, dataset: dict[str, Any]) -> bool:
    """Creates the dataset (``datasets.new_dataset_for``) unless it exists; whether this call created it."""
    try:
        await db[DATASETS].insert_one(dataset)
    except DuplicateKeyError:
        return False
    return True


async def delete_empty_dataset(db: AsyncDatabase, name: str) -> None:
    """Withdraws a dataset an upload created but could not queue, unless something was imported into it."""
    await db[DATASETS].delete_one({"_id": name, "index": {}})


async def active_jobs_of_dataset(db: AsyncDatabase, name: str) -> int:
    active = {"dataset": name, "status": {"$in": [s.value for s in ACTIVE_STATUSES]}}
    return await db[JOBS].count_documents(active, maxTimeMS=COUNT_TIME_MS)


async def mark_dataset_deleting(db: AsyncDatabase, name: str, now: datetime) -> bool:
    result = await db[DATASETS].update_one(
        {"_id": name, "status": DatasetStatus.ACTIVE.value},
        {"$set": {"status": DatasetStatus.DELETING.value, "deleting_since": now}},
    )
    return result.matched_count == 1


async def unmark_dataset_deleting(db: AsyncDatabase, name: str) -> None:
    deleting = {"_id": name, "status": DatasetStatus.DELETING.value}
    await db[DATASETS].update_one(deleting, {"$set": {"status": DatasetStatus.ACTIVE.value}})
