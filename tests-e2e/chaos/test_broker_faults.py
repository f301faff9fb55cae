"""Fault 2: Redis (the Celery broker) down at upload time, and restarted in the middle of an import.

An upload while the broker is down is refused with a JSON 503 and leaves no job and no file; once
Redis is back, uploads work again without restarting anything. An import running through a Redis
crash and restart finishes, every row once; the worker and beat reconnect by themselves. An import
that ends while Redis is down leaves a worker that takes the next imports once Redis is back.
"""

import signal
import time

import requests
from faults import eventually, job_items, key_prefix
from helpers import upload, upload_ok, wait_finished, wait_progress

from catalog_testkit.files import write_movies_csv
from catalog_testkit.store import leftovers

# Enough rows that the import is still running when Redis is back (about 10 s at this batch size); an
# import ending during the outage is the last test's case.
ROWS = 120_000
STACK_ENV = {"INGEST_BATCH_SIZE": "250"}


def test_an_upload_while_redis_is_down_is_503_and_leaves_nothing_and_uploads_work_once_it_is_back(
    stack, auth_headers, tmp_path
):
    path = write_movies_csv(tmp_path / "broker-down.csv", range(2_000), prefix=key_prefix("down"))
    with stack.database() as db:
        before = leftovers(db)
        stack.stop_service("redis")
        try:
            started = time.monotonic()
            refused = upload(stack.url, auth_headers, path)
            assert time.monotonic() - started < 5
            assert refused.status_code == 503, refused.text
            assert refused.json() == {"error": "Service temporarily unavailable, try again shortly"}
            assert refused.headers["Retry-After"]
            assert leftovers(db) == before
            listed = requests.get(f"{stack.url}/uploads", headers=auth_headers, timeout=10)
            assert (listed.status_code, listed.json()) == (200, [])
        finally:
            stack.start_service("redis")

    # The very first upload after Redis is back is taken: no service was restarted.
    task_id = upload_ok(stack.url, auth_headers, path)
    status = wait_finished(stack.url, auth_headers, task_id, within=60)
    assert (status["status"], status["rows_inserted"]) == ("Success", 2_000)


def test_an_import_running_through_a_redis_crash_and_restart_finishes_with_every_row_once(
    stack, auth_headers, tmp_path
):
    path = write_movies_csv(tmp_path / "broker-restart.csv", range(ROWS), prefix=key_prefix("restart"))
    task_id = upload_ok(stack.url, auth_headers, path)
    wait_progress(stack.url, auth_headers, task_id, at_least=10)
    stack.stop_service("redis", signal.SIGKILL)
    time.sleep(3)
    stack.start_service("redis")

    status = wait_finished(stack.url, auth_headers, task_id, within=120)
    assert status["status"] == "Success", status
    assert (status["rows_processed"], status["rows_inserted"], status["rows_duplicate"]) == (ROWS, ROWS, 0)
    with stack.database() as db:
        assert job_items(db, task_id) == (ROWS, ROWS)

    # The worker took up the broker again: a new upload is imported, and beat still runs.
    small = write_movies_csv(tmp_path / "after-restart.csv", range(500), prefix=key_prefix("after"))
    after = wait_finished(stack.url, auth_headers, upload_ok(stack.url, auth_headers, small), within=60)
    assert (after["status"], after["rows_inserted"]) == ("Success", 500)
    assert all(stack.processes[name].poll() is None for name in ("worker", "beat", "ingest"))


def test_an_import_ending_while_redis_is_down_leaves_a_worker_that_takes_the_next_imports(
    stack, auth_headers, tmp_path
):
    # Its acknowledgement fails; kombu's Redis transport alone would then never ask for another message
    # (ingest_service/broker.py).
    rows = 60_000
    worker_log = stack.log_path("worker")
    log_start = worker_log.stat().st_size
    path = write_movies_csv(tmp_path / "ends-in-outage.csv", range(rows), prefix=key_prefix("ends"))
    task_id = upload_ok(stack.url, auth_headers, path)
    wait_progress(stack.url, auth_headers, task_id, at_least=5)
    stack.stop_service("redis", signal.SIGKILL)
    try:
        status = wait_finished(stack.url, auth_headers, task_id, within=120)
        assert (status["status"], status["rows_inserted"]) == ("Success", rows), status

        def ack_failed() -> bool:
            with worker_log.open("rb") as log:
                log.seek(log_start)
                return b"Couldn't ack" in log.read()

        eventually(ack_failed, within=10, what="the worker's failed acknowledgement")
    finally:
        stack.start_service("redis")

    for number in range(2):
        small = write_movies_csv(tmp_path / f"next-{number}.csv", range(300), prefix=key_prefix(f"next{number}"))
        after = wait_finished(stack.url, auth_headers, upload_ok(stack.url, auth_headers, small), within=60)
        assert (after["status"], after["rows_inserted"]) == ("Success", 300)
