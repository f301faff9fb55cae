"""The API's side of the broker: one Celery producer per process, and sending an import to it."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from celery import Celery
from kombu.exceptions import OperationalError

from ingest_service.celery_app import DELETE_DATASET_TASK, IMPORT_TASK, REVERT_TASK, create_celery
from ingest_service.settings import IngestSettings

log = logging.getLogger(__name__)

CELERY = web.AppKey("celery", Celery)

# A few quick tries, so that an upload answers 503 within about a second when Redis is down.
SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}


class BrokerUnavailable(Exception):
    pass


def celery_producer_context(settings: IngestSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx that waits for the broker, keeps the Celery app, and closes its connections."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        celery = create_celery(settings)
        try:
            await asyncio.to_thread(_wait_for_broker, celery, settings.startup_timeout)
            app[CELERY] = celery
            yield
        finally:
            await asyncio.to_thread(celery.close)

    return context


def _wait_for_broker(celery: Celery, timeout: float) -> None:
    with celery.connection_for_write() as connection:
        connection.ensure_connection(
            max_retries=max(1, int(timeout)),
            interval_start=0.2,
            interval_step=0.5,
            interval_max=1,
            callback=lambda: log.info("Waiting for the broker at %s", connection.as_uri()),
        )


async def enqueue_import(celery: Celery, job_id: str) -> None:
    """Sends the import task, the job id as its task id; ``BrokerUnavailable`` if the broker cannot take it."""
    await _send(celery, IMPORT_TASK, job_id, task_id=job_id)


async def enqueue_dataset_deletion(celery: Celery, name: str) -> None:
    """Sends the deletion of a dataset; ``BrokerUnavailable`` if the broker cannot take it."""
    await _send(celery, DELETE_DATASET_TASK, name)


async def enqueue_revert(celery: Celery, job_id: str) -> None:
    """Sends the revert of an ended import; ``BrokerUnavailable`` if the broker cannot take it."""
    await _send(celery, REVERT_TASK, job_id)


async def _send(celery: Celery, task: str, argument: str, *, task_id: str | None = None) -> None:
    """Off the event loop: a send may wait for the broker."""
    try:
        await asyncio.to_thread(
            celery.send_task, task, args=[argument], task_id=task_id, retry=True, retry_policy=SEND_RETRY_POLICY
        )
    except (OperationalError, OSError) as exc:
        raise BrokerUnavailable(str(exc)) from exc
