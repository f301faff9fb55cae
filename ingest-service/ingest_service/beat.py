"""``ingest-beat``: Celery beat, which sends the check for abandoned jobs (``recovery.py``) to the
workers every ``INGEST_STALE_CHECK_SECONDS``. Run exactly one per deployment.

It only sends messages, so it needs the broker and nothing else. The schedule is a single fixed
interval, kept in memory: nothing to persist, nothing written to disk.
"""

import logging

from celery.signals import beat_init

from ingest_service.celery_app import create_celery
from ingest_service.settings import IngestSettings
from service_common.logs import configure_logging

log = logging.getLogger(__name__)


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest-beat", settings.log_level)
    celery = create_celery(settings)
    interval = settings.stale_check_seconds
    beat_init.connect(
        lambda **_: log.info("ingest-beat ready: checking for abandoned imports every %ss", interval), weak=False
    )
    celery.Beat(scheduler="celery.beat:Scheduler", loglevel=settings.log_level, max_interval=interval).run()


if __name__ == "__main__":
    main()
