"""Fault 1: the worker SIGKILLed mid-import, through the whole stack. A new worker completes the job
from its checkpoint: every row once, none lost, and the job shows the second attempt."""

import signal

from faults import import_order, job_items, key_prefix, walk_catalog
from helpers import job_status, upload_ok, wait_finished, wait_progress

from catalog_testkit.files import write_movies_csv
from ingest_service.catalog_blocks import audit

ROWS = 40_000
# Small batches, so the import runs long enough to be interrupted; a short visibility timeout, so that
# the broker's own redelivery of the killed worker's message races the abandoned-job check.
STACK_ENV = {"INGEST_BATCH_SIZE": "250", "INGEST_VISIBILITY_TIMEOUT": "5"}


def test_a_worker_killed_mid_import_is_replaced_and_every_row_is_written_once(stack, auth_headers, tmp_path):
    path = write_movies_csv(tmp_path / "killed.csv", range(ROWS), prefix=key_prefix("killed"))
    task_id = upload_ok(stack.url, auth_headers, path)
    wait_progress(stack.url, auth_headers, task_id, at_least=10)

    stack.stop_service("worker", signal.SIGKILL)
    at_kill = job_status(stack.url, auth_headers, task_id)
    assert at_kill["status"] == "Progress" and 0 < at_kill["rows_processed"] < ROWS
    stack.start_service("worker")

    status = wait_finished(stack.url, auth_headers, task_id, within=120)
    assert status["status"] == "Success", status
    assert (status["rows_processed"], status["rows_inserted"], status["rows_duplicate"], status["rows_failed"]) == (
        ROWS,
        ROWS,
        0,
        0,
    )
    assert status["attempts"] == 2
    with stack.database() as db:
        assert job_items(db, task_id) == (ROWS, ROWS)
        assert db["uploads.files"].count_documents({"_id": task_id}) == 0
        # The batch the killed worker was writing has its block finished too: pages hold each item once.
        assert audit(db, "default") == []
    assert walk_catalog(stack.url, limit=100) == import_order(stack)
