"""Free space on the store's volume, and the reserve kept on it (``INGEST_MIN_FREE_BYTES``).

Two sources, chosen once at start-up: a directory on the volume (``STORE_DISK_PATH``: the embedded
store's ``DATA_DIR``, read with ``statvfs``), else MongoDB's own ``dbStats`` (``fsTotalSize`` and
``fsUsedSize``, which mongod reports and SecantusDB does not). With neither, nothing is checked and the
start-up log says so.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from service_common.settings import CommonSettings

log = logging.getLogger(__name__)

MB = 1_000_000


def megabytes(size: float) -> int:
    """Whole megabytes, rounded up: "needs 3 MB" must never read less than it needs."""
    return -(-int(size) // MB)


@dataclass(frozen=True, slots=True)
class DiskSpace:
    free: int
    total: int


def path_space(path: Path) -> DiskSpace:
    """The space of the filesystem holding ``path``, as an unprivileged writer sees it."""
    stats = os.statvfs(path)
    return DiskSpace(free=stats.f_bavail * stats.f_frsize, total=stats.f_blocks * stats.f_frsize)


def db_stats_space(stats: dict[str, Any]) -> DiskSpace | None:
    """The store's volume from a ``dbStats`` answer; None when the server does not report it."""
    total, used = stats.get("fsTotalSize"), stats.get("fsUsedSize")
    if isinstance(total, bool) or not isinstance(total, int | float) or total <= 0:
        return None
    if isinstance(used, bool) or not isinstance(used, int | float):
        return None
    return DiskSpace(free=max(0, int(total - used)), total=int(total))


@dataclass(frozen=True, slots=True)
class StoreVolume:
    """Where the store's free space is read from, and how much of it to keep free."""

    reserve: int
    path: Path | None = None
    from_db_stats: bool = False

    @property
    def checked(self) -> bool:
        return self.path is not None or self.from_db_stats

    def describe(self) -> str:
        if self.path is not None:
            return f"free space of the store's volume read at {self.path}; reserve {megabytes(self.reserve)} MB"
        if self.from_db_stats:
            return f"free space of the store's volume read from MongoDB's dbStats; reserve {megabytes(self.reserve)} MB"
        return (
            "the store does not report its free space (no fsTotalSize in dbStats) and STORE_DISK_PATH is unset: "
            "uploads and imports run without a free-space check"
        )

    def space(self, db: Database) -> DiskSpace | None:
        if self.path is not None:
            return path_space(self.path)
        if self.from_db_stats:
            return db_stats_space(db.command("dbStats"))
        return None

    async def space_async(self, db: AsyncDatabase) -> DiskSpace | None:
        if self.path is not None:
            return path_space(self.path)
        if self.from_db_stats:
            return db_stats_space(await db.command("dbStats"))
        return None

    def is_low(self, space: DiskSpace | None) -> bool:
        return space is not None and space.free < self.reserve

    def low_space_message(self, space: DiskSpace) -> str:
        return (
            f"low disk space: the store's volume has {space.free // MB} MB free, "
            f"under the {megabytes(self.reserve)} MB reserve"
        )


def _configured(settings: CommonSettings) -> StoreVolume | None:
    if settings.store_disk_path is None:
        return None
    volume = StoreVolume(settings.min_free_bytes, path=settings.store_disk_path)
    try:
        path_space(settings.store_disk_path)
    except OSError as exc:
        raise RuntimeError(f"STORE_DISK_PATH {settings.store_disk_path} cannot be read: {exc}") from exc
    return volume


def open_store_volume(settings: CommonSettings, db: Database) -> StoreVolume:
    """Decides, once, where free space comes from (a synchronous client: the worker)."""
    volume = _configured(settings) or StoreVolume(
        settings.min_free_bytes, from_db_stats=db_stats_space(db.command("dbStats")) is not None
    )
    _log_choice(volume)
    return volume


async def open_store_volume_async(settings: CommonSettings, db: AsyncDatabase) -> StoreVolume:
    """Decides, once, where free space comes from (an asynchronous client: the services)."""
    volume = _configured(settings) or StoreVolume(
        settings.min_free_bytes, from_db_stats=db_stats_space(await db.command("dbStats")) is not None
    )
    _log_choice(volume)
    return volume


def _log_choice(volume: StoreVolume) -> None:
    if volume.checked:
        log.info("Disk space: %s", volume.describe())
    else:
        log.warning("Disk space: %s", volume.describe())


STORE_VOLUME = web.AppKey("store_volume", StoreVolume)
