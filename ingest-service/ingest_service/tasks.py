"""The Celery tasks, thin wrappers over plain functions: the import (``importer.run_import``, given
the job id only), the periodic check for abandoned jobs (``recovery.recover_abandoned_jobs``), the
deletion of a dataset and the revert of an import (``revert.run_revert``)."""

import logging
from collections.abc import Callable
from typing import NoReturn

from celery import Celery, Task
from pymongo.database import Database

from ingest_service import disk, import_storage, importer, recovery, revert
from ingest_service.celery_app import DELETE_DATASET_TASK, IMPORT_TASK, RECOVER_TASK, REVERT_TASK
from ingest_service.schemas import JobStatus
from ingest_service.settings import IngestSettings
from service_common.disk import StoreVolume
from service_common.logs import request_id_var

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60


def _backoff(retries: int) -> int:
    """Seconds before the next try of a task the store did not answer: doubling, at most a minute."""
    return min(2**retries, MAX_RETRY_DELAY)


def _retry_if_store_down(task: Task, exc: Exception, what: str) -> NoReturn:
    """Runs ``task`` again later (backing off, never giving up) when ``exc`` says the store did not
    answer; lets any other error through."""
    if not importer.is_store_unavailable(exc):
        raise exc
    delay = _backoff(task.request.retries)
    log.warning("%s: MongoDB unreachable (%s); retrying in %ss", what, exc, delay)
    raise task.retry(exc=exc, countdown=delay, max_retries=None) from None


def register_import_task(
    celery: Celery,
    settings: IngestSettings,
    database: Callable[[], Database],
    worker_id: Callable[[], str],
    store_volume: Callable[[], StoreVolume],
) -> None:
    @celery.task(name=IMPORT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def import_csv(task: Task, job_id: str) -> None:
        # The job id stands in for a request id, so every log line of the import carries it.
        token = request_id_var.set(job_id)
        try:
            importer.run_import(
                database(),
                job_id,
                worker_id=worker_id(),
                batch_size=settings.batch_size,
                in_place_batch_size=settings.in_place_batch_size,
                batch_bytes=settings.batch_bytes,
                lease_seconds=settings.job_lease_seconds,
                max_decompressed_bytes=settings.max_decompressed_bytes,
                room=disk.ImportRoom(store_volume(), settings.disk_expansion),
            )
        except importer.JobLeased as leased:
            log.info("Import %s: %s; trying again later", job_id, leased)
            raise task.retry(countdown=leased.retry_in, max_retries=None) from None
        except Exception as exc:
            if not importer.is_store_unavailable(exc):
                raise
            retries = task.request.retries
            if retries >= settings.mongo_max_retries:
                log.error("Import %s: MongoDB still unreachable after %d retries; giving up", job_id, retries)
                _fail_if_possible(database(), job_id)
                return
            delay = _backoff(retries)
            log.warning("Import %s: MongoDB unreachable (%s); retrying in %ss", job_id, exc, delay)
            raise task.retry(exc=exc, countdown=delay, max_retries=None) from None
        finally:
            request_id_var.reset(token)


def register_recover_task(celery: Celery, settings: IngestSettings, database: Callable[[], Database]) -> None:
    @celery.task(name=RECOVER_TASK, ignore_result=True)
    def recover_abandoned_jobs() -> None:
        recovery.recover_abandoned_jobs(
            database(),
            now=importer.utcnow(),
            send=lambda job_id: celery.send_task(IMPORT_TASK, args=[job_id], task_id=job_id),
            max_requeues=settings.max_requeues,
            # The re-queued message may wait behind other imports: only once it could have been lost
            # too (the broker's own redelivery delay) is the job sent again.
            requeue_interval=settings.visibility_timeout,
            send_revert=lambda job_id: celery.send_task(REVERT_TASK, args=[job_id]),
            send_deletion=lambda name: celery.send_task(DELETE_DATASET_TASK, args=[name]),
        )


def register_delete_dataset_task(
    celery: Celery, settings: IngestSettings, database: Callable[[], Database], worker_id: Callable[[], str]
) -> None:
    # Acknowledged late and idempotent: a worker dying mid-way leaves the message to the next one,
    # which deletes what is left once the dead one's lease has run out.
    @celery.task(name=DELETE_DATASET_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def delete_dataset(task: Task, name: str) -> None:
        try:
            removed = import_storage.delete_dataset(
                database(), name, worker_id=worker_id(), now=importer.utcnow(), lease_seconds=settings.job_lease_seconds
            )
        except import_storage.DeletionLeased as leased:
            log.info("Dataset %s: held by another worker or an import (%s); trying again shortly", name, leased)
            raise task.retry(countdown=min(leased.retry_in, settings.job_lease_seconds), max_retries=None) from None
        except import_storage.DeletionLost:
            log.warning("Dataset %s: another run took the deletion over; stopping", name)
            return
        except Exception as exc:
            _retry_if_store_down(task, exc, f"Dataset {name}: deletion")
        if removed is not None:
            log.info("Dataset %s deleted: %d items removed", name, removed)


def register_revert_task(celery: Celery, settings: IngestSettings, database: Callable[[], Database]) -> None:
    # Acknowledged late and idempotent, as the deletion of a dataset: the next run finishes what a dead one began.
    @celery.task(name=REVERT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def revert_import(task: Task, job_id: str) -> None:
        token = request_id_var.set(job_id)
        try:
            revert.run_revert(database(), job_id, now=importer.utcnow())
        except importer.JobLeased as leased:
            log.info("Revert %s: the cancelled import's worker still holds it; trying again shortly", job_id)
            raise task.retry(countdown=leased.retry_in, max_retries=None) from None
        except Exception as exc:
            _retry_if_store_down(task, exc, f"Revert {job_id}")
        finally:
            request_id_var.reset(token)


def _fail_if_possible(db: Database, job_id: str) -> None:
    try:
        import_storage.finish_job(
            db, job_id, None, JobStatus.FAILURE, importer.utcnow(), error="The catalog store was unreachable"
        )
    except Exception as exc:
        log.error("Import %s: could not record the failure either: %s", job_id, exc)
