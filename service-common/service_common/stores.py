"""The MongoDB client, owned by one aiohttp ``cleanup_ctx`` generator."""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import NetworkTimeout, PyMongoError

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


# How often a process waiting for a store that is still opening says so.
OPENING_NOTICE_SECONDS = 10.0


def store_process_alive(pid_file: Path | None) -> bool:
    """Whether the process ``pid_file`` names (the store's, written by ``scripts/run-mongo``) is running.

    A pid file left by an earlier run may name a number the system has since given to another process:
    on Linux, a process started after the file was written is not the one it names."""
    if pid_file is None:
        return False
    try:
        pid = int(pid_file.read_text().split()[0])
        written = pid_file.stat().st_mtime
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = _process_start_time(pid)
    return started is None or started <= written + 2


def _process_start_time(pid: int) -> float | None:
    """When the process started (epoch seconds), from /proc; None where there is no /proc to tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime: clock ticks after boot
        return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


class StartupWait:
    """How long a starting process waits for a dependency: ``patience`` seconds (``STARTUP_TIMEOUT``),
    except for a store whose process (``STORE_PID_FILE``) is alive, which is still opening (the embedded
    store reads its whole catalog before it listens: about a minute for ten million items). That one is
    waited for as long as its process lives, and the wait says so at once, then every
    ``OPENING_NOTICE_SECONDS``."""

    def __init__(self, name: str, patience: float, store_pid_file: Path | None = None) -> None:
        self.name = name
        self.patience = patience
        self.store_pid_file = store_pid_file
        self.started = time.monotonic()
        self.deadline = self.started + patience
        self._noticed: float | None = None

    def failed(self, exc: BaseException) -> None:
        """Called after each failed attempt: raises once it is time to give up, else logs why it waits."""
        now = time.monotonic()
        if store_process_alive(self.store_pid_file):
            if self._noticed is None or now - self._noticed >= OPENING_NOTICE_SECONDS:
                log.info("Waiting for the store to open (%.0f s)", now - self.started)
                self._noticed = now
            return
        if now >= self.deadline:
            raise RuntimeError(f"{self.name} not reachable after {self.patience:.0f}s: {exc}") from exc
        log.info("Waiting for %s: %s", self.name, exc)


async def wait_until_ready(
    name: str, probe: Callable[[], Awaitable[object]], patience: float, store_pid_file: Path | None = None
) -> None:
    """Retry ``probe`` until it succeeds, so a service never runs ahead of its dependencies (see
    ``StartupWait`` for how long)."""
    wait = StartupWait(name, patience, store_pid_file)
    delay = 0.2
    while True:
        try:
            await probe()
            return
        except (PyMongoError, OSError) as exc:
            wait.failed(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def ensure_indexes(collection: AsyncCollection, indexes: Sequence[IndexModel]) -> None:
    """Creates those of ``indexes`` that ``collection`` lacks, at start-up.

    An index already there (every start but the first) costs one ``listIndexes``, never a
    ``createIndexes``: on a store that has just opened a large catalog, or is busy, the latter may take
    longer than any request may wait. One whose build outlasts the socket timeout is waited for (the
    server goes on building it) rather than stopping the service. An index of the same name but other
    keys is still sent, so the store's own error names the conflict."""
    while True:
        try:
            existing = await collection.index_information()  # {name: {"key": [(field, kind)], ...}}
            missing = [
                index
                for index in indexes
                if _keys(existing.get(index.document["name"], {}).get("key", ()))
                != _keys(index.document["key"].items())
            ]
            if missing:
                await collection.create_indexes(missing)
            return
        except NetworkTimeout as exc:
            log.warning("Indexes of %s still being created (%s); waiting for them", collection.name, exc)


def _keys(pairs: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """An index's keys, comparable whatever number type the store answered them in."""
    return [(field, kind if isinstance(kind, str) else int(kind)) for field, kind in pairs]


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
            await wait_until_ready(
                "MongoDB", lambda: client.admin.command("ping"), settings.startup_timeout, settings.store_pid_file
            )
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
