"""One import job, start to end: claim it, stream its file out of GridFS, write the rows in batches,
record progress after each batch, and finish it. Called by the Celery task with a database handle.

A job may run more than once (a worker killed mid-file, MongoDB briefly away). Every run resumes at
the last recorded batch, and documents have deterministic ids, so no row is written twice or lost.
"""

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridfs.errors import CorruptGridFile, NoFile
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, PyMongoError

from ingest_service import catalog_blocks, disk, import_storage
from ingest_service.import_storage import ItemWrite
from ingest_service.parsing import MAX_ROW_BYTES, UTF8, Quoting, Record, read_records
from ingest_service.prefetch import prefetched
from ingest_service.rows import (
    INFERENCE_ROWS,
    CatalogRow,
    ColumnType,
    Ragged,
    RowConverter,
    RowError,
    infer_column_types,
)
from ingest_service.schemas import ACTIVE_STATUSES, ImportMode, JobStatus
from ingest_service.sources import Compression, UnreadableUpload, UploadStream
from service_common.datasets import job_dataset

log = logging.getLogger(__name__)


class JobLeased(Exception):
    """Another worker holds the job and is still alive; try again once its lease may have run out."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"job leased to another worker for {retry_in:.0f}s more")
        self.retry_in = retry_in


class LeaseLost(Exception):
    """Another worker took the job over (this one stalled past its lease): stop, leave the rest to it."""


class _Cancelled(Exception):
    """The job's owner cancelled it while the worker was reading the next batch."""


def is_store_unavailable(exc: BaseException) -> bool:
    """Errors worth retrying later: MongoDB unreachable or timing out, not a bad request."""
    return isinstance(exc, ConnectionFailure) or (isinstance(exc, PyMongoError) and exc.timeout)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ImportCounts:
    rows_processed: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_duplicate: int = 0
    rows_unmatched: int = 0
    rows_failed: int = 0
    warnings: int = 0

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> "ImportCounts":
        return cls(**{name: job.get(name, 0) for name in cls.__dataclass_fields__})


def run_import(
    db: Database,
    job_id: str,
    *,
    worker_id: str,
    batch_size: int,
    lease_seconds: int,
    max_decompressed_bytes: int,
    room: disk.ImportRoom,
    in_place_batch_size: int | None = None,
    batch_bytes: int = MAX_ROW_BYTES,
) -> None:
    """Imports the job's file, or does nothing if the job has ended or is missing. An upsert or merge
    reads ``in_place_batch_size`` rows per batch (default ``batch_size``), written ``batch_size`` at a time.

    Raises ``JobLeased`` when another live worker holds the job, and lets MongoDB connection
    errors through (``is_store_unavailable``) so that the task can retry later.
    """
    job = import_storage.claim_job(db, job_id, worker_id, utcnow(), lease_seconds)
    if job is None:
        _explain_unclaimed(db, job_id)
        return
    log.info("Import %s: attempt %d of %s (%s bytes)", job_id, job["attempts"], job["filename"], job["size_bytes"])
    try:
        with import_storage.open_upload(db, job_id) as upload:
            stream = UploadStream(
                upload,
                compression=Compression(job.get("compression", Compression.NONE)),
                encoding=job.get("encoding", UTF8),
                max_content_bytes=max_decompressed_bytes,
            )
            status = JobImport(
                db, job, worker_id, batch_size, lease_seconds, room, in_place_batch_size, batch_bytes
            ).run(stream)
    except (NoFile, CorruptGridFile, UnreadableUpload) as exc:
        log.warning("Import %s: unreadable upload: %s", job_id, exc)
        # UnreadableUpload says what is wrong with the file in words meant for its uploader.
        error = str(exc) if isinstance(exc, UnreadableUpload) else f"The uploaded file could not be read: {exc}"
        import_storage.finish_job(db, job_id, worker_id, JobStatus.FAILURE, utcnow(), error=error)
        status = JobStatus.FAILURE
    except LeaseLost:
        log.warning("Import %s: taken over by another worker; stopping", job_id)
        return
    except Exception as exc:
        if is_store_unavailable(exc):
            raise
        log.exception("Import %s failed", job_id)
        import_storage.finish_job(db, job_id, worker_id, JobStatus.FAILURE, utcnow(), error="Internal error")
        status = JobStatus.FAILURE
    import_storage.delete_upload(db, job_id)
    log.info("Import %s: %s", job_id, status)


def _explain_unclaimed(db: Database, job_id: str) -> None:
    job = import_storage.find_job(db, job_id)
    if job is None:
        log.warning("Import %s: no such job; message dropped", job_id)
    elif job["status"] == JobStatus.CANCELLED:
        # Cancelled before a worker started on it: the file is the last thing left to clean up.
        import_storage.delete_upload(db, job_id)
    elif job["status"] in ACTIVE_STATUSES and job.get("lease_expires_at"):
        raise JobLeased(max(1.0, (job["lease_expires_at"] - utcnow()).total_seconds() + 1))


@dataclass
class Batch:
    """Up to ``batch_size`` records of the file (and ``batch_bytes`` of it, unless one record alone is
    longer): the rows to write, the errors of the others."""

    rows: list[tuple[int, CatalogRow]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    bytes: int = 0
    warnings: int = 0
    last: Record | None = None
    # The rows made ready to write, a block's worth each, by the thread that read them (``_prepared``).
    prepared: list["PreparedBlock"] | None = None


@dataclass(frozen=True, slots=True)
class PreparedBlock:
    """Up to ``batch_size`` rows ready to write: their ``seq`` numbers allocated, their pending block
    made and their items' documents made (an insert's encoded)."""

    items: list[ItemWrite]
    block: dict[str, Any]


class JobImport:
    """The state of one run over one job's file."""

    def __init__(
        self,
        db: Database,
        job: dict[str, Any],
        worker_id: str,
        batch_size: int,
        lease_seconds: int,
        room: disk.ImportRoom,
        in_place_batch_size: int | None = None,
        batch_bytes: int = MAX_ROW_BYTES,
    ) -> None:
        self._db = db
        self._job = job
        self._job_id: str = job["_id"]
        self._worker_id = worker_id
        self._batch_bytes = batch_bytes
        self._lease_seconds = lease_seconds
        self._mode = ImportMode(job["mode"])
        # Rows per bulk write and per block; an upsert or merge reads more per batch, so that the blocks
        # its updates touch are patched once for all of them.
        self._write_size = batch_size
        in_place = self._mode is not ImportMode.INSERT and in_place_batch_size
        self._batch_size = max(batch_size, in_place_batch_size) if in_place else batch_size
        self._dataset = job_dataset(job)
        self._counts = ImportCounts.from_job(job)
        # A run after the first may find rows that an interrupted run wrote but never recorded.
        self._reconcile = job["attempts"] > 1
        self._column_types: dict[str, str] = job.get("column_types") or {}
        self._null_markers: list[str] = job.get("null_markers") or []
        self._ragged = Ragged(job.get("ragged", Ragged.ERROR))
        # A batch is made ready to write while the one before it is written, unless its rows may still
        # be left out (a run after the first, ``_skip_rows_already_written``) or are merged.
        self._prepares = self._mode is not ImportMode.MERGE and not self._reconcile
        self._room = room.gate(db, job, worker_id, lease_seconds)
        self._lease_renewed_at = time.monotonic()

    def run(self, stream: UploadStream) -> JobStatus:
        self._stream = stream
        if self._owner_lost_access():  # queued before its owner was disabled or demoted
            return JobStatus.CANCELLED
        import_storage.ensure_dataset(self._db, self._job, utcnow())
        if self._reconcile and (recovered := catalog_blocks.recover_job(self._db, self._job_id)):
            log.info("Import %s: finished %d block(s) an earlier run left", self._job_id, recovered)
        if self._reconcile and (patched := import_storage.finish_in_place(self._db, self._job_id)):
            log.info("Import %s: patched the blocks of %d batch(es) an earlier run updated", self._job_id, patched)
        records = self._records(stream)
        import_storage.record_column_types(self._db, self._dataset, self._column_types, utcnow())
        converter = RowConverter(
            self._job["columns"],
            {c: ColumnType(t) for c, t in self._column_types.items()},
            self._job["key"],
            null_markers=self._null_markers,
            ragged=self._ragged,
        )
        # The next batch is read and converted in a thread while this one is written: the worker's
        # parsing and the store's writing overlap instead of taking turns. While a batch takes long to
        # read (one long record), the lease is renewed as a paused import's is, and a cancellation seen.
        try:
            with prefetched(
                self._prepared(self._batches(records, converter)),
                while_waiting=self._keep_lease,
                every=disk.pause_interval(self._lease_seconds),
            ) as batches:
                for batch in batches:
                    if self._owner_lost_access():
                        return JobStatus.CANCELLED
                    self._counts.rows_processed += batch.records
                    self._counts.warnings += batch.warnings
                    if not self._commit(batch.rows, batch.errors, batch.last, batch.prepared):
                        return JobStatus.CANCELLED
        except _Cancelled:
            import_storage.save_counts_after_cancel(self._db, self._job_id, asdict(self._counts), [])
            return JobStatus.CANCELLED
        if not import_storage.finish_job(self._db, self._job_id, self._worker_id, JobStatus.SUCCESS, utcnow()):
            return self._status_after_interruption()
        return JobStatus.SUCCESS

    def _owner_lost_access(self) -> bool:
        """Whether the job's owner may no longer import: the job is then ``Cancelled`` with the reason."""
        reason = import_storage.owner_lost_access(self._db, self._job.get("owner"))
        if reason is None:
            return False
        log.info("Import %s: cancelled, %s", self._job_id, reason)
        if not import_storage.cancel_for_owner(self._db, self._job_id, self._worker_id, reason, utcnow()):
            self._status_after_interruption()  # raises LeaseLost unless the owner cancelled
        return True

    def _keep_lease(self) -> None:
        if not import_storage.renew_lease(self._db, self._job_id, self._worker_id, utcnow(), self._lease_seconds):
            self._status_after_interruption()  # raises LeaseLost unless the owner cancelled
            raise _Cancelled(self._job_id)

    def _batches(self, records: Iterator[Record], converter: RowConverter) -> Iterator["Batch"]:
        """The records, converted, in batches of ``batch_size`` records or ``batch_bytes`` of the file."""
        batch = Batch()
        previous_end: int | None = None
        for record in records:
            size = record.end_offset - previous_end if previous_end is not None else 0
            previous_end = record.end_offset
            if batch.records and batch.bytes + size > self._batch_bytes:
                yield batch
                batch = Batch()
            batch.records += 1
            batch.bytes += size
            batch.last = record
            try:
                if record.error is not None:
                    raise RowError(record.error)
                row = converter.convert(record.fields)
            except RowError as exc:
                batch.errors.append({"line": record.line, "message": str(exc)})
            else:
                batch.warnings += row.warnings
                batch.rows.append((record.line, row))
            if batch.records >= self._batch_size:
                yield batch
                batch = Batch()
        if batch.records:
            yield batch

    def _prepared(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """The batches, each made ready to write (``PreparedBlock``) when it can be: run one batch ahead
        of the writes, this takes the worker's own work on a batch off the store's critical path
        (which would otherwise wait for it). A batch prepared and never written (the run stops first)
        leaves only a gap in ``seq``, whose numbers are unique, not consecutive."""
        for batch in batches:
            if self._prepares and batch.rows:
                now = utcnow()
                batch.prepared = [
                    self._prepare(batch.rows[start : start + self._write_size], now)
                    for start in range(0, len(batch.rows), self._write_size)
                ]
            yield batch

    def _prepare(self, rows: list[tuple[int, CatalogRow]], now: datetime) -> PreparedBlock:
        first_seq = import_storage.allocate_seq_block(self._db, len(rows))
        items = [
            ItemWrite(key=row.key, seq=first_seq + index, row=row.values, line=line)
            for index, (line, row) in enumerate(rows)
        ]
        block = catalog_blocks.pending_block(
            self._dataset,
            self._job_id,
            first_seq,
            [i.key for i in items],
            [i.seq for i in items],
            [i.row for i in items],
            now,
        )
        items = import_storage.prepare_items(self._dataset, block["_id"], self._job_id, self._mode, items, now)
        return PreparedBlock(items, block)

    def _records(self, stream: UploadStream) -> Iterator[Record]:
        """The data records still to import, after sampling the first ones for column types if needed.

        The checkpoint is an offset into the content as the CSV reader sees it (decompressed, in
        UTF-8): a plain UTF-8 upload is sought to it, any other is read again from its start up to it.
        """
        checkpoint = self._job.get("checkpoint")
        reading = {
            "quoting": Quoting(self._job.get("quoting", Quoting.RFC4180)),
            "encoding": self._job.get("encoding", UTF8),
        }
        if checkpoint:
            stream.seek(checkpoint["offset"])
            records = read_records(
                stream.read,
                self._job["delimiter"],
                offset=checkpoint["offset"],
                first_line=checkpoint["line"],
                **reading,
            )
        else:
            records = read_records(stream.read, self._job["delimiter"], **reading)
            next(records, None)  # the header, checked by the API already
        if not self._column_types:
            sample = list(itertools.islice(records, INFERENCE_ROWS))
            types = infer_column_types(
                self._job["columns"],
                (r.fields for r in sample if r.error is None),
                null_markers=self._null_markers,
                ragged=self._ragged,
            )
            self._column_types = {column: str(t) for column, t in types.items()}
            records = itertools.chain(sample, records)
        return records

    def _commit(
        self,
        batch: list[tuple[int, CatalogRow]],
        errors: list[dict[str, Any]],
        last: Record,
        prepared: list[PreparedBlock] | None = None,
    ) -> bool:
        """Writes a batch (``prepared``: made ready to write) and records it; False when the job was
        cancelled meanwhile."""
        if not self._room.wait(last.end_offset):  # Paused while the store's volume is under its reserve
            self._status_after_interruption()  # raises LeaseLost unless the owner cancelled
            return False
        now = utcnow()
        if self._reconcile and batch:
            batch = self._skip_rows_already_written(batch)
        in_place = None
        if batch and self._mode is not ImportMode.INSERT:
            # Before any item changes in place: should this run die before their blocks follow, the
            # next run (or the periodic check, or a revert) patches them from this mark.
            in_place = import_storage.mark_in_place(self._db, self._job_id, [row.key for _, row in batch])
        if batch:
            self._write(batch, errors, now, prepared)
        errors.sort(key=lambda error: error["line"])
        self._counts.rows_failed += len(errors)

        size = max(self._job["size_bytes"], 1)
        saved = import_storage.save_progress(
            self._db,
            self._job_id,
            self._worker_id,
            now=now,
            lease_seconds=self._lease_seconds,
            counts=asdict(self._counts),
            # Success alone reads 100, so a finished-looking job is a finished job.
            progress=min(99, self._uploaded_bytes_read(last) * 100 // size),
            checkpoint={"offset": last.end_offset, "line": last.next_line},
            column_types=self._column_types,
            new_errors=errors,
            in_place=in_place,
        )
        if saved:
            return True
        self._status_after_interruption()  # raises LeaseLost unless the job was cancelled
        import_storage.save_counts_after_cancel(self._db, self._job_id, asdict(self._counts), errors, in_place)
        return False

    def _write(
        self,
        batch: list[tuple[int, CatalogRow]],
        errors: list[dict[str, Any]],
        now: datetime,
        prepared: list[PreparedBlock] | None = None,
    ) -> None:
        """The batch's items, and the block that gives the new ones their place in the catalog's order.

        The block is written first, as ``pending``: should this run die before committing it,
        the next one learns from the items which of its keys were inserted (``catalog_blocks.finalize``).
        """
        if self._mode is ImportMode.MERGE:
            self._merge(batch, errors, now)
            return
        updated: list[str] = []
        for start in range(0, len(batch), self._write_size):
            part = (
                prepared[start // self._write_size]
                if prepared
                else self._prepare(batch[start : start + self._write_size], now)
            )
            updated += self._write_block(part, errors)
            self._keep_lease_while_writing()
        if updated:
            # Updated in place, those items keep their place; their blocks' rows and counts follow.
            catalog_blocks.patch_in_place(self._db, self._dataset, updated, between=self._keep_lease_while_writing)

    def _keep_lease_while_writing(self) -> None:
        """Renews the lease, at most every few seconds, between the bulks and block patches of a batch
        that updates items in place: one of tens of thousands of rows spread over a large dataset
        takes longer than the lease. Should the lease be lost (or the job cancelled) meanwhile, the
        batch stops there; its mark (``mark_in_place``) has its blocks patched all the same."""
        now = time.monotonic()
        if now - self._lease_renewed_at >= disk.pause_interval(self._lease_seconds):
            self._keep_lease()
            self._lease_renewed_at = now

    def _write_block(self, part: PreparedBlock, errors: list[dict[str, Any]]) -> list[str]:
        """Up to ``batch_size`` rows with their block; the keys of the items updated in place."""
        items, block = part.items, part.block
        catalog_blocks.insert_pending(self._db, block)
        outcome = import_storage.write_items(self._db, self._dataset, self._job_id, self._mode, items)
        catalog_blocks.commit(self._db, block, outcome.inserted, [i.row for i in items])
        self._counts.rows_inserted += len(outcome.inserted)
        self._counts.rows_updated += len(outcome.updated)
        self._counts.rows_duplicate += outcome.duplicates
        errors.extend({"line": items[index].line, "message": message} for index, message in outcome.failed.items())
        return [items[index].key for index in outcome.updated]

    def _merge(self, batch: list[tuple[int, CatalogRow]], errors: list[dict[str, Any]], now: datetime) -> None:
        """The file's columns set on the items that exist, which keep their place and other columns."""
        items = [ItemWrite(key=row.key, seq=0, row=row.values, line=line) for line, row in batch]
        keys: list[str] = []
        written: dict[str, dict[str, Any]] = {}
        for start in range(0, len(items), self._write_size):
            part = items[start : start + self._write_size]
            outcome = import_storage.merge_items(self._db, self._dataset, self._job_id, part, now)
            keys += [part[index].key for index in outcome.updated]
            written |= outcome.written
            self._counts.rows_updated += outcome.merged
            self._counts.rows_duplicate += outcome.duplicates
            self._counts.rows_unmatched += outcome.unmatched
            errors.extend({"line": part[index].line, "message": message} for index, message in outcome.failed.items())
            self._keep_lease_while_writing()
        # New columns (and perhaps a new type) on items in place: their blocks' rows and counts follow.
        if keys:
            catalog_blocks.patch_in_place(
                self._db, self._dataset, keys, known=written, between=self._keep_lease_while_writing
            )

    def _uploaded_bytes_read(self, last: Record) -> int:
        """How much of the upload, as sent, is behind us: exact for a plain file, as far as the
        decompressor or decoder has read for any other."""
        return last.end_offset if self._stream.seekable else self._stream.uploaded_bytes_read()

    def _status_after_interruption(self) -> JobStatus:
        job = import_storage.find_job(self._db, self._job_id)
        # A revert asked for right after the cancellation stops the import just as the cancellation does.
        if job is not None and job["status"] in (JobStatus.CANCELLED, JobStatus.REVERTING):
            log.info("Import %s: cancelled by its owner", self._job_id)
            return JobStatus.CANCELLED
        raise LeaseLost(self._job_id)

    def _skip_rows_already_written(self, batch: list[tuple[int, CatalogRow]]) -> list[tuple[int, CatalogRow]]:
        """Counts, and leaves out, the rows an earlier run of this job wrote from the same lines."""
        written = import_storage.rows_written_by_job(
            self._db, self._dataset, self._job_id, [row.key for _, row in batch]
        )
        remaining = []
        updated = []
        for line, row in batch:
            document = written.get(row.key)
            if document is None or document["source"]["line"] != line:
                remaining.append((line, row))
            elif document["created_at"] == document["updated_at"]:
                self._counts.rows_inserted += 1
            else:
                self._counts.rows_updated += 1
                updated.append(row.key)
        # The dead run may have updated these items without patching their blocks.
        if updated:
            catalog_blocks.patch_in_place(self._db, self._dataset, updated)
        return remaining
