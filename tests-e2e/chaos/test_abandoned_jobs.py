"""Fault 3: a job whose worker vanished and whose message is gone too never stays ``Progress``.

The worker is SIGKILLed and the message it held is deleted from Redis, so Celery can never deliver
it again (the visibility timeout is left at its default, far beyond the test, to be sure of that).
The job's lease runs out without a heartbeat; the check that ``ingest-beat`` sends every couple of
seconds re-queues it and a new worker resumes it, or, abandoned once more than
``INGEST_MAX_REQUEUES`` allows, ends it as ``Failure`` with the reason.
"""

import signal

import redis
from faults import job_items, key_prefix
from helpers import job_status, upload_ok, wait_finished, wait_for_status, wait_progress

from catalog_testkit.files import write_movies_csv

ROWS = 40_000
STACK_ENV = {"INGEST_BATCH_SIZE": "250", "INGEST_MAX_REQUEUES": "1"}


def kill_worker_and_lose_its_message(stack, task_id: str) -> None:
    stack.stop_service("worker", signal.SIGKILL)
    broker = redis.Redis(port=stack.ports["redis"])
    try:
        # kombu keeps the messages workers hold, unacknowledged, in this hash (and restores them from it).
        held = broker.hvals("unacked")
        assert any(task_id.encode() in message for message in held), "the killed worker held no message of the job"
        broker.delete("unacked", "unacked_index")
    finally:
        broker.close()


def test_a_job_whose_worker_and_message_vanished_is_requeued_and_completes(stack, auth_headers, tmp_path):
    path = write_movies_csv(tmp_path / "abandoned.csv", range(ROWS), prefix=key_prefix("abandoned"))
    task_id = upload_ok(stack.url, auth_headers, path)
    wait_progress(stack.url, auth_headers, task_id, at_least=10)
    kill_worker_and_lose_its_message(stack, task_id)
    stack.start_service("worker")

    status = wait_finished(stack.url, auth_headers, task_id, within=120)
    assert status["status"] == "Success", status
    assert (status["rows_processed"], status["rows_inserted"], status["rows_duplicate"]) == (ROWS, ROWS, 0)
    assert status["attempts"] == 2
    with stack.database() as db:
        assert job_items(db, task_id) == (ROWS, ROWS)
        assert db.import_jobs.find_one({"_id": task_id})["abandoned"] == 1
    assert "re-queued (1 of 1)" in stack.log_path("worker").read_text()


def test_a_job_abandoned_more_often_than_allowed_ends_in_failure_with_the_reason(stack, auth_headers, tmp_path):
    path = write_movies_csv(tmp_path / "poison.csv", range(ROWS), prefix=key_prefix("poison"))
    task_id = upload_ok(stack.url, auth_headers, path)
    first = wait_progress(stack.url, auth_headers, task_id, at_least=10)
    kill_worker_and_lose_its_message(stack, task_id)
    stack.start_service("worker")

    # Re-queued once: a second attempt resumes and gets further, then its worker vanishes as well.
    wait_for_status(
        stack.url,
        auth_headers,
        task_id,
        lambda s: s["attempts"] == 2 and s["rows_processed"] > first["rows_processed"],
        within=60,
    )
    assert job_status(stack.url, auth_headers, task_id)["status"] == "Progress"
    kill_worker_and_lose_its_message(stack, task_id)
    stack.start_service("worker")

    status = wait_finished(stack.url, auth_headers, task_id, within=60)
    assert status["status"] == "Failure", status
    assert status["error"].startswith("The worker running this import stopped without finishing it, 2 times")
    assert status["finished_at"] is not None and status["progress"] < 100
    with stack.database() as db:
        written, distinct_seqs = job_items(db, task_id)
        # The rows written before the last crash stay, each once.
        assert status["rows_inserted"] <= written < ROWS and distinct_seqs == written
        assert db["uploads.files"].count_documents({"_id": task_id}) == 0
