"""``ingest-worker``: the Celery worker that runs imports, with a MongoDB client per worker process."""

import logging
import os
import socket
import time

from celery.signals import worker_process_shutdown
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from ingest_service.celery_app import create_celery
from ingest_service.migration import migrate_legacy_catalog
from ingest_service.settings import IngestSettings
from ingest_service.tasks import (
    register_delete_dataset_task,
    register_import_task,
    register_recover_task,
    register_revert_task,
)
from service_common.disk import StoreVolume, open_store_volume
from service_common.logs import configure_logging
from service_common.stores import StartupWait

log = logging.getLogger(__name__)


class WorkerDatabase:
    """The MongoDB database of the current process, connected on first use.

    Celery forks its pool processes from the main one, and a MongoClient must not cross a fork:
    each process makes its own, on first use after the fork.
    """

    def __init__(self, settings: IngestSettings) -> None:
        self._settings = settings
        self._client: MongoClient | None = None
        self._pid: int | None = None
        self._volume: StoreVolume | None = None

    def client(self) -> MongoClient:
        if self._client is None or self._pid != os.getpid():
            self._client = MongoClient(
                self._settings.mongo_url,
                appname="ingest-worker",
                tz_aware=True,
                serverSelectionTimeoutMS=self._settings.mongo_timeout_ms,
                connectTimeoutMS=self._settings.mongo_timeout_ms,
                # Not timeoutMS, which would override serverSelectionTimeoutMS; a bulk write of a
                # whole batch may legitimately take a while on a busy store.
                socketTimeoutMS=max(self._settings.mongo_timeout_ms * 20, 60_000),
            )
            self._pid = os.getpid()
        return self._client

    def __call__(self) -> Database:
        return self.client()[self._settings.mongo_db]

    def store_volume(self) -> StoreVolume:
        """Where this process reads the store's free space from, decided on first use."""
        if self._volume is None or self._pid != os.getpid():
            self._volume = open_store_volume(self._settings, self())
        return self._volume

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None
        self._volume = None

    def wait_until_ready(self) -> None:
        """Block until MongoDB answers, so the worker never takes a message it cannot process; a store
        still opening is waited for as long as its process lives (``StartupWait``)."""
        wait = StartupWait("MongoDB", self._settings.startup_timeout, self._settings.store_pid_file)
        while True:
            try:
                self.client().admin.command("ping")
                # Said once at start-up: where free space is read from, or that it is not checked.
                open_store_volume(self._settings, self())
                return
            except PyMongoError as exc:
                wait.failed(exc)
                time.sleep(1)
            finally:
                # The main process only checks; the pool processes connect for themselves.
                self.close()


def worker_id() -> str:
    """Names the process holding a job's lease; a retry in the same process keeps its lease."""
    return f"{socket.gethostname()}:{os.getpid()}"


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest-worker", settings.log_level)
    database = WorkerDatabase(settings)
    database.wait_until_ready()
    try:
        migrate_legacy_catalog(database())
    finally:
        database.close()  # the pool processes connect for themselves

    celery = create_celery(settings)
    register_import_task(celery, settings, database, worker_id, database.store_volume)
    register_recover_task(celery, settings, database)
    register_delete_dataset_task(celery, settings, database, worker_id)
    register_revert_task(celery, settings, database)
    worker_process_shutdown.connect(lambda **_: database.close(), weak=False)
    celery.worker_main(
        [
            "worker",
            f"--queues={settings.queue}",
            f"--concurrency={settings.worker_concurrency}",
            "--pool=prefork",
            "--prefetch-multiplier=1",
            f"--loglevel={settings.log_level}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


if __name__ == "__main__":
    main()
