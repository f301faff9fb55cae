"""Fault 7: the store's volume running out of room.

``DATA_DIR`` (SecantusDB's files, Redis's append-only file, the logs) sits on a small tmpfs this module
mounts itself; a ballast file beside it plays whatever else fills a real disk. An upload the volume
cannot hold is refused with a 507 and leaves nothing; an import that reaches the reserve pauses
(``Paused``, with the reason) instead of letting the store meet a full disk, while every endpoint keeps
answering without a 5xx and every service's ``/readyz`` says "low disk space"; once the tmpfs is grown,
the same import ends ``Success`` with every row once, and the services are ready again: nothing restarted.

The reserve (40 MB) is larger than what SecantusDB may claim at once (a 10 MB journal segment, and a
checkpoint of the few batches written since the last one, every 2 s here), so our own checks trip
first and the store never sees a full disk.
"""

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from faults import eventually, job_items, key_prefix
from helpers import job_status, upload, upload_ok, wait_finished, wait_for_status, wait_progress
from openapi_contract import CONTRACT

from catalog_testkit.files import write_movies_csv
from catalog_testkit.stack import LocalStack
from catalog_testkit.store import leftovers
from service_common.disk import path_space

MB = 1_000_000
RESERVE = 40 * MB
EXPANSION = 7  # INGEST_DISK_EXPANSION's default
VOLUME_SIZE = "160m"
GROWN_SIZE = "400m"
ROWS = 40_000  # about 6.4 MB of CSV
STACK_ENV = {
    "INGEST_MIN_FREE_BYTES": str(RESERVE),
    "INGEST_BATCH_SIZE": "250",
    # Checkpoints every 2 s: SecantusDB's journal is then freed within seconds, not after a minute.
    "SECANTUS_CHECKPOINT_SECONDS": "2",
}
PAUSED_REASON = re.compile(r"^the store's volume has (\d+) MB free; waiting for (\d+) MB$")


@pytest.fixture(scope="module")
def volume(tmp_path_factory) -> Iterator[Path]:
    """A tmpfs of its own; a test that cannot mount one fails, saying why, rather than skipping."""
    mount_point = tmp_path_factory.mktemp("volume")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={VOLUME_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"this suite puts DATA_DIR on a tmpfs it mounts itself (as root), and mounting one was refused: "
            f"{mounted.stderr.strip() or mounted.returncode}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


@pytest.fixture(scope="module")
def data_dir(volume: Path) -> Path:
    """The stack's DATA_DIR, on the tmpfs."""
    return volume / "data"


def leave_free(volume: Path, free_bytes: int) -> None:
    """Grows or shrinks the ballast file until the volume has about ``free_bytes`` free."""
    ballast = volume / "ballast"
    ballast.touch()
    change = path_space(volume).free - free_bytes
    if change < 0:
        os.truncate(ballast, max(0, ballast.stat().st_size + change))
        return
    block = b"\0" * MB
    with ballast.open("ab") as file:
        for _ in range(change // MB):
            file.write(block)
        file.write(b"\0" * (change % MB))


def grow(volume: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(volume)], check=True)


def readiness(stack: LocalStack) -> dict[str, requests.Response]:
    return {
        name: requests.get(f"http://127.0.0.1:{stack.ports[name]}/readyz", timeout=10)
        for name in ("auth", "ingest", "catalog")
    }


def chunked_multipart(filename: str, total_bytes: int) -> tuple[str, Iterator[bytes]]:
    """A multipart upload sent as it is generated: no Content-Length, as a streaming client sends it."""
    boundary = uuid.uuid4().hex
    row = b"x1,Movie,A title long enough to fill the stream,Someone,2021\n"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: text/csv\r\n\r\nshow_id,type,title,director,release_year\n"
        ).encode()
        chunk = row * (256 * 1024 // len(row))
        for _ in range(total_bytes // len(chunk)):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    return f"multipart/form-data; boundary={boundary}", body()


def test_an_upload_the_volume_cannot_hold_is_refused_with_507_and_leaves_nothing(stack, volume, auth_headers, tmp_path):
    path = write_movies_csv(tmp_path / "too-big.csv", range(25_000), prefix=key_prefix("big"))  # about 4 MB
    body_bytes = path.stat().st_size
    with stack.database() as db:
        before = leftovers(db)
        leave_free(volume, RESERVE + 12 * MB)  # room for the file itself, not for its expansion
        refused = upload(stack.url, auth_headers, path)
        assert refused.status_code == 507, refused.text
        error = refused.json()
        match = re.fullmatch(
            r"Not enough disk space for this upload: it needs (\d+) MB on the store's volume, which has (\d+) MB free",
            error["error"],
        )
        assert match, error
        needed, free = int(match[1]), int(match[2])
        assert abs(needed - (body_bytes * EXPANSION + RESERVE) / MB) <= 1, (needed, body_bytes)
        assert RESERVE // MB <= free < needed
        assert error["details"][0]["field"] == "file"
        CONTRACT.check(refused)  # the 507 as gateway/openapi.yaml documents it
        assert leftovers(db) == before

        # Sent without a length, the same volume takes bytes until it reaches the reserve, then stops
        # and removes what it had stored.
        content_type, body = chunked_multipart("stream.csv", 200 * MB)
        started = time.monotonic()
        stopped = requests.post(
            f"{stack.url}/upload_csv", headers={**auth_headers, "Content-Type": content_type}, data=body, timeout=120
        )
        assert stopped.status_code == 507, stopped.text
        assert "after" in stopped.json()["error"] and "MB of the file" in stopped.json()["error"], stopped.text
        assert time.monotonic() - started < 60
        eventually(lambda: leftovers(db) == before, 10, "the stopped stream's chunks removed")
        assert path_space(volume).free > 0
    for name in ("mongo", "redis"):
        assert stack.processes[name].poll() is None, f"{name} died:\n{stack.log_tail(name)}"

    leave_free(volume, 10**12)  # the ballast gone: the same file fits now
    task_id = upload_ok(stack.url, auth_headers, path)
    assert wait_finished(stack.url, auth_headers, task_id)["status"] == "Success"


def test_an_import_reaching_the_reserve_pauses_without_a_5xx_and_ends_once_the_volume_grows(
    stack, volume, auth_headers, tmp_path
):
    leave_free(volume, 10**12)
    path = write_movies_csv(tmp_path / "paused.csv", range(ROWS), prefix=key_prefix("paused"))
    task_id = upload_ok(stack.url, auth_headers, path)
    wait_progress(stack.url, auth_headers, task_id, at_least=5)
    leave_free(volume, RESERVE + 3 * MB)  # something else fills the disk; the import goes on until the reserve

    paused = wait_for_status(stack.url, auth_headers, task_id, lambda s: s["status"] != "Progress", within=60)
    assert paused["status"] == "Paused", paused
    match = PAUSED_REASON.fullmatch(paused["paused_reason"] or "")
    assert match, paused["paused_reason"]
    assert int(match[1]) < int(match[2]) and int(match[2]) >= RESERVE // MB
    assert 0 < paused["rows_processed"] < ROWS
    # The disk goes on filling. Well under the reserve at first: the store's checkpoint may yet free a
    # journal segment or two (10 MB each), which must not hand the import room again; once it has run,
    # the volume holds still and the ballast leaves 5 MB under the reserve.
    leave_free(volume, RESERVE - 25 * MB)
    time.sleep(3 * int(STACK_ENV["SECANTUS_CHECKPOINT_SECONDS"]))
    leave_free(volume, RESERVE - 5 * MB)
    paused = wait_for_status(stack.url, auth_headers, task_id, lambda s: s["status"] == "Paused", within=10)

    # While it waits: every endpoint answers, none with a 5xx but the upload's own 507; the services
    # say they are not ready, and why; the job keeps its lease (no second attempt), and nothing is written.
    with stack.database() as db:
        written = job_items(db, task_id)[0]
        credentials = {"username": f"pause_{uuid.uuid4().hex[:8]}", "password": "chaos-password-1"}
        signup = {**credentials, "email": f"{credentials['username']}@example.com"}
        probes = {
            "POST /signup": lambda: requests.post(f"{stack.url}/signup", json=signup, timeout=10),
            "POST /login": lambda: requests.post(f"{stack.url}/login", json=credentials, timeout=10),
            "GET /fetch_csv_status": lambda: requests.get(
                f"{stack.url}/fetch_csv_status/{task_id}", headers=auth_headers, timeout=10
            ),
            "GET /uploads": lambda: requests.get(f"{stack.url}/uploads", headers=auth_headers, timeout=10),
            "GET /get_content": lambda: requests.get(f"{stack.url}/get_content?limit=5", timeout=10),
            "GET /healthz": lambda: requests.get(f"{stack.url}/healthz", timeout=10),
        }
        # Longer than a few leases: a pause that let its lease lapse would be taken over (attempts 2).
        deadline = time.monotonic() + 3 * int(stack.env["INGEST_JOB_LEASE_SECONDS"])
        while time.monotonic() < deadline:
            for name, probe in probes.items():
                response = probe()
                assert response.status_code < 500, (name, response.status_code, response.text)
            refused = upload(stack.url, auth_headers, path)
            assert refused.status_code == 507 and "Not enough disk space" in refused.json()["error"], refused.text
            for name, ready in readiness(stack).items():
                assert ready.status_code == 503, (name, ready.text)
                assert "low disk space" in ready.json()["error"], (name, ready.text)
            answer = requests.get(f"{stack.url}/fetch_csv_status/{task_id}", headers=auth_headers, timeout=10)
            CONTRACT.check(answer)  # Paused and paused_reason as documented
            status = answer.json()
            assert (status["status"], status["attempts"]) == ("Paused", 1), status
            time.sleep(0.5)
        for name in ("auth", "ingest", "catalog"):
            health = requests.get(f"http://127.0.0.1:{stack.ports[name]}/healthz", timeout=10)
            assert health.status_code == 200, name
        assert job_items(db, task_id)[0] == written
        assert path_space(volume).free > 0
        for name in ("mongo", "redis", "worker"):
            assert stack.processes[name].poll() is None, f"{name} died:\n{stack.log_tail(name)}"

        grow(volume, GROWN_SIZE)
        status = wait_finished(stack.url, auth_headers, task_id, within=90)
        assert status["status"] == "Success", status
        assert (status["rows_processed"], status["rows_inserted"], status["rows_duplicate"]) == (ROWS, ROWS, 0)
        assert (status["attempts"], status["paused_reason"]) == (1, None)
        assert job_items(db, task_id) == (ROWS, ROWS)
    for name in ("auth", "ingest", "catalog"):
        eventually(lambda name=name: readiness(stack)[name].status_code == 200, 10, f"{name} ready again")


def test_a_paused_import_cancelled_by_its_owner_stops_and_removes_its_file(stack, volume, auth_headers, tmp_path):
    leave_free(volume, 10**12)
    path = write_movies_csv(tmp_path / "cancelled.csv", range(ROWS), prefix=key_prefix("cancel"))
    task_id = upload_ok(stack.url, auth_headers, path)
    wait_progress(stack.url, auth_headers, task_id, at_least=5)
    leave_free(volume, RESERVE - 25 * MB)  # room for the store's checkpoint; the job pauses at its next batch
    wait_for_status(stack.url, auth_headers, task_id, lambda s: s["status"] == "Paused", within=30)

    cancelled = requests.delete(f"{stack.url}/uploads/{task_id}", headers=auth_headers, timeout=10)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "Cancelled"), cancelled.text
    with stack.database() as db:
        # The worker notices within a pause interval and removes the file; it holds the job no longer.
        eventually(lambda: db["uploads.files"].count_documents({"_id": task_id}) == 0, 15, "the file removed")
        status = job_status(stack.url, auth_headers, task_id)
        assert status["status"] == "Cancelled" and status["rows_processed"] < ROWS

    leave_free(volume, 10**12)
    small = write_movies_csv(tmp_path / "after.csv", range(500), prefix=key_prefix("after"))
    next_id = upload_ok(stack.url, auth_headers, small)
    assert wait_finished(stack.url, auth_headers, next_id)["status"] == "Success"
