"""Room on the store's volume: the arithmetic, uploads refused with a 507 that leave nothing, /readyz,
and a running import that pauses (its lease kept) under the reserve until its owner cancels it.

The volume here is the test machine's own: a reserve above its free space stands for a full disk,
and a reserve of 0 for a roomy one. Filling a real volume, and growing it again, is the chaos suite's
``test_disk_full.py``.
"""

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from catalog_testkit.files import movies_csv
from catalog_testkit.store import leftovers
from ingest_service.disk import UploadRoom, pause_interval, paused_reason, upload_needs
from ingest_service.main import create_app
from ingest_service.settings import IngestSettings
from service_common.disk import DiskSpace, StoreVolume, db_stats_space, megabytes, path_space
from service_common.errors import ApiError

from .helpers import job_status, upload, upload_ok, wait_until, wait_upload_removed

MB = 1_000_000
NOTHING_LEFT = {"import_jobs": 0, "uploads.files": 0, "uploads.chunks": 0}
NOT_ENOUGH = re.compile(
    r"Not enough disk space for this upload: (it|any upload) needs (\d+) MB on the store's volume, "
    r"which has (\d+) MB free"
)


def test_an_upload_needs_its_expansion_plus_the_reserve_rounded_up():
    assert upload_needs(4 * MB, 7, 40 * MB) == 68 * MB
    assert upload_needs(3, 6.5, 0) == 20  # 19.5 bytes is 20: never less than it needs
    assert upload_needs(0, 7, 40 * MB) == 40 * MB
    # A paused import waits for its batch's documents only: the file's copy is stored already.
    assert upload_needs(250_000, 7 - 1, 40 * MB) == 41_500_000


def test_megabytes_are_rounded_up_so_a_message_never_asks_for_less_than_needed():
    assert [megabytes(n) for n in (0, 1, MB, MB + 1, 41_500_000)] == [0, 1, 1, 2, 42]


def test_the_paused_reason_says_what_is_free_and_what_the_import_waits_for():
    assert paused_reason(DiskSpace(free=12_999_999, total=10**9), 41_500_000) == (
        "the store's volume has 12 MB free; waiting for 42 MB"
    )


def test_a_paused_import_looks_again_well_within_its_lease():
    assert [pause_interval(seconds) for seconds in (1, 4, 60, 3600)] == [0.25, 1.0, 5.0, 5.0]


def test_free_space_comes_from_dbstats_only_where_the_server_reports_it():
    assert db_stats_space({"fsTotalSize": 100.0, "fsUsedSize": 30.0}) == DiskSpace(free=70, total=100)
    assert db_stats_space({"fsTotalSize": 100, "fsUsedSize": 130}) == DiskSpace(free=0, total=100)
    for stats in (
        {},
        {"dataSize": 5},
        {"fsTotalSize": 0, "fsUsedSize": 0},
        {"fsTotalSize": True, "fsUsedSize": 1},
        {"fsTotalSize": 100, "fsUsedSize": "30"},
    ):
        assert db_stats_space(stats) is None, stats


def test_a_path_reads_the_free_space_of_its_filesystem(tmp_path: Path):
    space = path_space(tmp_path)
    assert 0 < space.free <= space.total
    volume = StoreVolume(reserve=space.free + 10**12, path=tmp_path)
    assert volume.is_low(volume.space(None)) and not StoreVolume(reserve=0, path=tmp_path).is_low(space)
    assert not volume.is_low(None)  # not checked: never low


def test_the_disk_settings_have_their_defaults_and_limits(ingest_env: dict[str, str], tmp_path: Path):
    settings = IngestSettings(**ingest_env)
    assert (settings.store_disk_path, settings.min_free_bytes, settings.disk_expansion) == (None, 512 * 1024**2, 7.0)
    assert IngestSettings(**ingest_env, STORE_DISK_PATH="").store_disk_path is None
    assert IngestSettings(**ingest_env, STORE_DISK_PATH=str(tmp_path)).store_disk_path == tmp_path
    with pytest.raises(ValueError, match="INGEST_DISK_EXPANSION"):
        IngestSettings(**ingest_env, INGEST_DISK_EXPANSION="0.5")
    with pytest.raises(ValueError, match="INGEST_MIN_FREE_BYTES"):
        IngestSettings(**ingest_env, INGEST_MIN_FREE_BYTES="-1")


@pytest.fixture
def full_disk_env(ingest_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A reserve above what the volume has free: a disk as good as full."""
    return {
        **ingest_env,
        "STORE_DISK_PATH": str(tmp_path),
        "INGEST_MIN_FREE_BYTES": str(path_space(tmp_path).free + 10**12),
    }


@pytest.fixture
async def full_disk_api(full_disk_env: dict[str, str]) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(IngestSettings(**full_disk_env)))) as client:
        yield client


async def test_an_upload_the_volume_cannot_hold_is_507_saying_what_it_needs_and_leaves_nothing(
    full_disk_api, auth, db, full_disk_env
):
    content = movies_csv(50)
    response = await upload(full_disk_api, auth, content)
    assert response.status == 507
    body = await response.json()
    match = NOT_ENOUGH.fullmatch(body["error"])
    assert match and match[1] == "it", body
    needed, free = int(match[2]), int(match[3])
    reserve = int(full_disk_env["INGEST_MIN_FREE_BYTES"])
    # The whole request's length (the file and its multipart envelope) times 7, plus the reserve.
    assert megabytes(reserve + 7 * len(content)) <= needed <= megabytes(reserve + 7 * (len(content) + 1024))
    assert free < needed
    assert body["details"][0]["field"] == "file"
    assert re.fullmatch(r"needs \d+ bytes free; \d+ bytes are free", body["details"][0]["message"])
    assert leftovers(db) == NOTHING_LEFT


async def test_an_upload_streamed_without_a_length_onto_a_full_volume_is_507_and_leaves_nothing(
    full_disk_api, auth, db
):
    boundary = uuid.uuid4().hex
    content = movies_csv(2_000)

    async def body() -> AsyncIterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\n'.encode()
        yield content
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = await full_disk_api.post("/upload_csv", data=body(), headers=headers)
    assert response.status == 507
    match = NOT_ENOUGH.fullmatch((await response.json())["error"])
    assert match and match[1] == "any upload"
    assert leftovers(db) == NOTHING_LEFT


async def test_a_stream_reaching_the_reserve_is_stopped_with_a_507_saying_how_far_it_got(tmp_path):
    """The check an upload's stream makes as its bytes are stored (the chaos suite fills a real volume)."""
    volume = StoreVolume(reserve=path_space(tmp_path).free + 10**12, path=tmp_path)
    room = UploadRoom(volume, None, 7)
    await room.while_storing(1024**2 - 1)  # looked at once per megabyte stored, not per chunk
    with pytest.raises(ApiError) as refused:
        await room.while_storing(3 * 1024**2)
    assert refused.value.status == 507
    assert re.fullmatch(
        NOT_ENOUGH.pattern.replace("(it|any upload)", "(after 3 MB of the file, it)"), refused.value.message
    ), refused.value.message


async def test_readyz_is_503_naming_low_disk_space_under_the_reserve_and_healthz_stays_200(full_disk_api, api):
    response = await full_disk_api.get("/readyz")
    assert response.status == 503
    error = (await response.json())["error"]
    assert re.fullmatch(
        r"Not ready: low disk space: the store's volume has \d+ MB free, under the \d+ MB reserve", error
    ), error
    assert (await full_disk_api.get("/healthz")).status == 200
    # The store here (SecantusDB) does not report its volume, and no STORE_DISK_PATH is set: ready.
    assert (await api.get("/readyz")).status == 200


async def test_without_a_way_to_read_free_space_uploads_are_taken_and_the_start_up_log_says_so(
    ingest_env, auth, caplog
):
    # SecantusDB's dbStats has no fsTotalSize; a reserve that no volume has would refuse every upload.
    settings = IngestSettings(**ingest_env, INGEST_MIN_FREE_BYTES=str(10**18))
    with caplog.at_level(logging.WARNING, logger="service_common.disk"):
        async with TestClient(TestServer(create_app(settings))) as client:
            assert (await upload(client, auth, movies_csv(5))).status == 202
    assert any("without a free-space check" in record.getMessage() for record in caplog.records)


async def test_an_import_under_the_reserve_pauses_keeping_its_lease_until_its_owner_cancels_it(
    api, auth, db, start_worker, full_disk_env
):
    task_id = await upload_ok(api, auth, movies_csv(2_000))
    start_worker(
        STORE_DISK_PATH=full_disk_env["STORE_DISK_PATH"], INGEST_MIN_FREE_BYTES=full_disk_env["INGEST_MIN_FREE_BYTES"]
    )
    status, _ = await wait_until(api, auth, task_id, lambda s: s["status"] == "Paused", within=30)
    waiting_for = megabytes(int(full_disk_env["INGEST_MIN_FREE_BYTES"]))
    assert re.fullmatch(
        rf"the store's volume has \d+ MB free; waiting for ({waiting_for}|{waiting_for + 1}) MB",
        status["paused_reason"],
    ), status
    assert status["rows_processed"] == 0 and status["attempts"] == 1

    # Twice the lease (3 s) later it is still this worker's, still paused, its heartbeat fresh, nothing written.
    first_beat = db.import_jobs.find_one({"_id": task_id})["heartbeat_at"]
    await asyncio.sleep(6)
    job = db.import_jobs.find_one({"_id": task_id})
    assert (job["status"], job["attempts"]) == ("Paused", 1)
    assert job["heartbeat_at"] > first_beat and job["lease_expires_at"].timestamp() > time.time()
    assert db.catalog_items.count_documents({"source.job_id": task_id}) == 0

    cancelled = await api.delete(f"/uploads/{task_id}", headers=auth)
    assert cancelled.status == 200 and (await cancelled.json())["paused_reason"] is None
    # The worker notices within a pause interval (here 0.75 s), lets go and removes the file.
    await wait_upload_removed(db, task_id, within=10)
    final = await job_status(api, auth, task_id)
    assert (final["status"], final["rows_inserted"], final["paused_reason"]) == ("Cancelled", 0, None)
