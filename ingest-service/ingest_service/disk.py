"""Room on the store's volume for uploads and imports, so that our own checks trip before the store or
Redis meets a full disk (which they do not survive: WiredTiger panics, Redis refuses its writes).

An upload is refused (507) unless its bytes times ``INGEST_DISK_EXPANSION`` fit above the reserve
(``INGEST_MIN_FREE_BYTES``); one sent without a length is stopped as soon as the volume reaches the
reserve. A running import checks before each batch and, under the reserve, pauses (``Paused`` with
the reason, its lease kept alive) until space returns or its owner cancels it.
"""

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from ingest_service import import_storage
from service_common.disk import MB, DiskSpace, StoreVolume, megabytes
from service_common.errors import ApiError

log = logging.getLogger(__name__)

# How often an upload's stream looks at the free space again: about every GridFS write.
UPLOAD_CHECK_EVERY_BYTES = 1024**2


def upload_needs(size_bytes: int, expansion: float, reserve: int) -> int:
    """Free bytes an upload of ``size_bytes`` needs: its copy and catalog documents, and the reserve."""
    return math.ceil(size_bytes * expansion) + reserve


def not_enough_space(needed: int, space: DiskSpace, what: str) -> ApiError:
    return ApiError(
        507,
        f"Not enough disk space for this upload: {what} needs {megabytes(needed)} MB on the store's volume, "
        f"which has {space.free // MB} MB free",
        details=[{"field": "file", "message": f"needs {needed} bytes free; {space.free} bytes are free"}],
    )


class UploadRoom:
    """The free-space checks of one upload, all of them no-ops when the volume is not checked."""

    def __init__(self, volume: StoreVolume | None, db: AsyncDatabase, expansion: float) -> None:
        self._volume = volume
        self._db = db
        self._expansion = expansion
        self._checked_at = 0
        self._declared = False

    async def before(self, declared_bytes: int | None) -> None:
        """Before a byte is stored: a declared length must fit with its expansion, any upload above the reserve."""
        self._declared = declared_bytes is not None
        space = await self._space()
        if space is None:
            return
        needed = upload_needs(declared_bytes or 0, self._expansion, self._volume.reserve)
        if space.free < needed:
            raise not_enough_space(needed, space, "it" if declared_bytes else "any upload")

    async def while_storing(self, stored_bytes: int) -> None:
        """As the bytes arrive: stop when the volume reaches the reserve."""
        if stored_bytes - self._checked_at < UPLOAD_CHECK_EVERY_BYTES:
            return
        self._checked_at = stored_bytes
        space = await self._space()
        if space is not None and space.free < self._volume.reserve:
            raise not_enough_space(self._volume.reserve, space, f"after {stored_bytes // MB} MB of the file, it")

    async def finished(self, stored_bytes: int) -> None:
        """The whole file read, before it is made visible: one sent without a length must still leave room for
        its import's documents (a declared length was checked for them before)."""
        if self._declared:
            return
        space = await self._space()
        if space is None:
            return
        needed = upload_needs(stored_bytes, self._expansion - 1, self._volume.reserve)
        if space.free < needed:
            raise not_enough_space(needed, space, "its import")

    async def _space(self) -> DiskSpace | None:
        if self._volume is None or not self._volume.checked:
            return None
        return await self._volume.space_async(self._db)


def paused_reason(space: DiskSpace, needed: int) -> str:
    return f"the store's volume has {space.free // MB} MB free; waiting for {megabytes(needed)} MB"


def pause_interval(lease_seconds: int) -> float:
    """How often a paused import looks again, well within its lease so that the heartbeat never lapses."""
    return min(5.0, max(0.25, lease_seconds / 4))


@dataclass(frozen=True)
class ImportRoom:
    """The worker's view of the store's volume; ``volume`` None: imports are not checked."""

    volume: StoreVolume | None = None
    expansion: float = 1.0

    def gate(self, db: Database, job: dict[str, Any], worker_id: str, lease_seconds: int) -> "BatchGate":
        return BatchGate(self, db, job, worker_id, lease_seconds)


class BatchGate:
    """Lets one job's batches through while they fit above the reserve; holds the job, ``Paused``, while
    they do not."""

    def __init__(self, room: ImportRoom, db: Database, job: dict[str, Any], worker_id: str, lease_seconds: int) -> None:
        self._room = room
        self._db = db
        self._job_id: str = job["_id"]
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._offset: int = (job.get("checkpoint") or {}).get("offset", 0)

    def wait(self, end_offset: int) -> bool:
        """Returns True once the batch reading the file up to ``end_offset`` fits: its catalog documents
        above the reserve. False when the job was cancelled or taken over while it waited."""
        volume = self._room.volume
        batch_bytes = max(0, end_offset - self._offset)
        self._offset = end_offset
        if volume is None or not volume.checked:
            return True
        # The file's GridFS copy is stored already: only the documents are still to come.
        needed = upload_needs(batch_bytes, self._room.expansion - 1, volume.reserve)
        paused_since: float | None = None
        while (space := volume.space(self._db)) is not None and space.free < needed:
            reason = paused_reason(space, needed)
            now = datetime.now(UTC)
            if not import_storage.pause_job(self._db, self._job_id, self._worker_id, reason, now, self._lease_seconds):
                return False
            if paused_since is None:
                paused_since = time.monotonic()
                log.warning("Import %s paused: %s", self._job_id, reason)
            time.sleep(pause_interval(self._lease_seconds))
        if paused_since is None:
            return True
        waited = time.monotonic() - paused_since
        log.info("Import %s resumed after %.0fs: room on the store's volume again", self._job_id, waited)
        return import_storage.resume_job(
            self._db, self._job_id, self._worker_id, datetime.now(UTC), self._lease_seconds
        )
