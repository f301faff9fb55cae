"""The MongoDB client, owned by one aiohttp ``cleanup_ctx`` generator."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from service_common.disk import STORE_VOLUME, open_store_volume_async
from service_common.settings import CommonSettings

log = logging.getLogger(__name__)

MONGO_CLIENT = web.AppKey("mongo_client", AsyncMongoClient)
MONGO_DB = web.AppKey("mongo_db", AsyncDatabase)

DatabaseSetup = Callable[[AsyncDatabase], Awaitable[None]]

# How long a query sent to the store may take to answer. A store that is down is caught within
# MONGO_TIMEOUT_MS by server selection; one that is up but busy (a burst of readers on the embedded
# SecantusDB) is worth waiting for about as long as the gateway waits for the service (60 s), less a
# margin so that a hung store still ends in the service's JSON 503 rather than nginx's 504.
STORE_ANSWER_TIMEOUT_MS = 50_000


async def wait_until_ready(name: str, probe: Callable[[], Awaitable[object]], patience: float) -> None:
    """Retry ``probe`` until it succeeds, so a service never runs ahead of its dependencies."""
    deadline = time.monotonic() + patience
    delay = 0.2
    while True:
        try:
            await probe()
            return
        except (PyMongoError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{name} not reachable after {patience:.0f}s: {exc}") from exc
            log.info("Waiting for %s: %s", name, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def new_mongo_client(settings: CommonSettings, appname: str) -> AsyncMongoClient:
    return AsyncMongoClient(
        settings.mongo_url,
        appname=appname,
        tz_aware=True,
        serverSelectionTimeoutMS=settings.mongo_timeout_ms,
        connectTimeoutMS=settings.mongo_timeout_ms,
        # Not timeoutMS: with it set, pymongo waits that long to select a server and ignores
        # serverSelectionTimeoutMS, so a request would take 10 s to learn the store is down.
        socketTimeoutMS=STORE_ANSWER_TIMEOUT_MS,
    )


def mongo_context(
    settings: CommonSettings, appname: str, setup: DatabaseSetup | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx that connects, pings, runs ``setup`` (indexes), learns where the store's free space
    can be read (``STORE_VOLUME``), and closes on shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        client = new_mongo_client(settings, appname)
        try:
            await wait_until_ready("MongoDB", lambda: client.admin.command("ping"), settings.startup_timeout)
            database = client[settings.mongo_db]
            if setup is not None:
                await setup(database)
            app[STORE_VOLUME] = await open_store_volume_async(settings, database)
            app[MONGO_CLIENT] = client
            app[MONGO_DB] = database
            yield
        finally:
            await client.close()

    return context
