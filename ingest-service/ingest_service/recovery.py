"""Jobs whose worker vanished: the periodic check Celery beat (``ingest-beat``) has a worker run.

A worker renews its job's lease after every batch, so a ``Progress`` job whose lease ran out has lost
its worker (killed, out of memory, its machine gone). Usually its message comes back to the queue once
the broker's visibility timeout passes; but when the message is gone too (a broker that lost its data,
a purged queue), nothing else would ever finish the job. The check sends such a job to the queue again
(the next run resumes at its checkpoint), and once a job has been abandoned more than ``max_requeues``
times, ends it as ``Failure`` with the reason rather than handing a worker-killing file out forever.
It also finishes the catalog blocks that a job which ended without its worker (cancelled or failed
while the worker was gone) left unindexed, so the rows that job wrote take their place in the pages.
A revert (``Reverting``) whose message may have been lost the same way is sent again once per
``requeue_interval``: a revert run twice, even at once, removes and counts the same. So is a dataset
deletion no worker holds (its message lost, or its run gave up): a dataset never stays ``deleting``.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pymongo.database import Database

from ingest_service import import_storage

log = logging.getLogger(__name__)


@dataclass
class Recovery:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    blocks_finished: int = 0
    reverts_resent: list[str] = field(default_factory=list)
    deletions_resent: list[str] = field(default_factory=list)


def abandoned_error(times: int, heartbeat_at: datetime | None) -> str:
    last = f" (last heartbeat {heartbeat_at.isoformat(timespec='seconds')})" if heartbeat_at else ""
    return f"The worker running this import stopped without finishing it, {times} times{last}; not retried again"


def recover_abandoned_jobs(
    db: Database,
    *,
    now: datetime,
    send: Callable[[str], None],
    max_requeues: int,
    requeue_interval: float,
    send_revert: Callable[[str], None] | None = None,
    send_deletion: Callable[[str], None] | None = None,
) -> Recovery:
    """Re-queues (``send``) or fails every abandoned job.

    A job re-queued less than ``requeue_interval`` seconds ago, whose message may still be waiting
    behind others, is left alone.
    """
    recovery = Recovery()
    recovery.blocks_finished = import_storage.recover_blocks_of_ended_jobs(db)
    requeued_before = now - timedelta(seconds=requeue_interval)
    for stale in import_storage.find_abandoned_jobs(db, now, requeued_before):
        job = import_storage.mark_abandoned(db, stale, now, requeued_before)
        if job is None:
            continue
        job_id = job["_id"]
        if job["abandoned"] > max_requeues:
            error = abandoned_error(job["abandoned"], job.get("heartbeat_at"))
            if import_storage.fail_abandoned_job(db, job_id, now, error):
                import_storage.delete_upload(db, job_id)
                log.error("Import %s: %s", job_id, error)
                recovery.failed.append(job_id)
            continue
        try:
            send(job_id)
        except BaseException:
            import_storage.unmark_requeued(db, job_id)
            raise
        log.warning(
            "Import %s: no heartbeat since %s, its worker is gone; re-queued (%d of %d)",
            job_id,
            job.get("heartbeat_at"),
            job["abandoned"],
            max_requeues,
        )
        recovery.requeued.append(job_id)
    if send_revert is not None:
        for job_id in import_storage.find_stalled_reverts(db, requeued_before):
            if import_storage.mark_revert_resent(db, job_id, now, requeued_before):
                send_revert(job_id)
                log.warning("Revert %s: not done after %ss; sent again", job_id, requeue_interval)
                recovery.reverts_resent.append(job_id)
    if send_deletion is not None:
        for name in import_storage.find_stalled_deletions(db, now, requeued_before):
            if import_storage.mark_deletion_resent(db, name, now, requeued_before):
                send_deletion(name)
                log.warning(
                    "Dataset %s: still deleting after %ss and no worker on it; sent again", name, requeue_interval
                )
                recovery.deletions_resent.append(name)
    return recovery
