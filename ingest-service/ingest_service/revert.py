"""Undoing an ended import (``POST /uploads/{task_id}/revert``): the items it created that are still
as it wrote them are removed, with their places in the catalog's blocks and summaries
(``catalog_blocks.revert_job``); the items it updated in place keep their current values.

Run by the ``ingest.revert_import`` task, acknowledged late: safe to run again after a worker died,
the counts coming out whole (the blocks record what was taken out of them).
"""

import logging
from datetime import datetime

from pymongo.database import Database

from ingest_service import catalog_blocks, import_storage
from ingest_service.importer import JobLeased, utcnow
from ingest_service.schemas import JobStatus
from service_common.datasets import job_dataset

log = logging.getLogger(__name__)

# How often a revert looks again whether the cancelled import's worker has let go of it.
LEASE_POLL_SECONDS = 2.0


def run_revert(db: Database, job_id: str, *, now: datetime) -> None:
    """Reverts a ``Reverting`` job, or does nothing for any other.

    Raises ``JobLeased`` while a worker still holds the job's lease: a cancelled import's worker
    writes the batch it is on before it notices, and those rows must be reverted too."""
    job = import_storage.find_job(db, job_id)
    if job is None or job["status"] != JobStatus.REVERTING:
        log.info("Revert %s: the job is %s; nothing to do", job_id, job["status"] if job else "missing")
        return
    if job.get("lease_owner") and job.get("lease_expires_at") and job["lease_expires_at"] > now:
        remaining = (job["lease_expires_at"] - now).total_seconds()
        raise JobLeased(min(remaining, LEASE_POLL_SECONDS))
    import_storage.delete_upload(db, job_id)  # a job that failed early may have left its file
    import_storage.finish_in_place(db, job_id)  # blocks of items a dead run updated but did not patch
    removed, kept_created = catalog_blocks.revert_job(
        db,
        job_id,
        dataset=job_dataset(job),
        last_seq=import_storage.last_seq(db),
        rows_read=job.get("rows_processed", 0),
    )
    # Rows it updated in place (upsert, merge) keep the values they have now: counted, never changed back.
    kept = kept_created + job.get("rows_updated", 0)
    if import_storage.finish_revert(db, job_id, utcnow(), removed=removed, kept=kept):
        log.info("Revert %s: %d items removed, %d kept", job_id, removed, kept)
