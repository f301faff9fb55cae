"""The one Celery app both sides use: the API sends import tasks with it, the worker runs them."""

from celery import Celery

from ingest_service.broker import transport_for
from ingest_service.settings import IngestSettings

IMPORT_TASK = "ingest.import_csv"
RECOVER_TASK = "ingest.recover_abandoned_jobs"
DELETE_DATASET_TASK = "ingest.delete_dataset"
REVERT_TASK = "ingest.revert_import"


def create_celery(settings: IngestSettings) -> Celery:
    """A Celery app for the Redis broker; no connection is made until it is used."""
    app = Celery("ingest_service", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        # Job status lives in MongoDB: nothing reads task results, so none are stored.
        task_ignore_result=True,
        result_backend=None,
        # A message is acknowledged only once its import has ended, and goes back to the queue
        # when the process running it dies, so an import is never lost with a worker.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time per process: a long import must not hold other jobs back.
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        # However long the broker is down: a worker that gave up would need a person to restart it.
        broker_connection_max_retries=None,
        # Kombu's Redis transport, repaired so that an import ending while Redis is down does not leave
        # the worker consuming nothing once Redis is back (broker.py).
        broker_transport=transport_for(settings.redis_url),
        # An import keeps running through a broker outage (it needs only MongoDB); its message, which cannot be
        # acknowledged on the lost connection, comes back after the visibility timeout and finds the job ended.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Read by ``ingest-beat`` only: the check for jobs whose worker vanished runs on a worker. A check
        # still queued when the next one is due is dropped, so a busy queue never piles them up.
        beat_schedule={
            "recover-abandoned-jobs": {
                "task": RECOVER_TASK,
                "schedule": float(settings.stale_check_seconds),
                "options": {"expires": float(settings.stale_check_seconds)},
            }
        },
        broker_connection_timeout=3,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # Look for messages of dead workers often enough to honour a short visibility timeout.
            "unacked_restore_interval": min(10, settings.visibility_timeout),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 3,
            "socket_timeout": 10,
        },
    )
    return app
