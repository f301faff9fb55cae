"""Fault 5: two overlapping files uploaded at once, imported side by side by two worker processes.

No row is stored twice, ``seq`` values stay unique across both imports, and the counts of the two
jobs add up: every key of the union once, every overlapping row counted once as a duplicate (insert)
or an update (upsert).
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
from faults import import_order, key_prefix, walk_catalog
from helpers import upload_ok, wait_finished

from catalog_testkit.files import write_movies_csv
from ingest_service.catalog_blocks import audit

STACK_ENV = {"INGEST_BATCH_SIZE": "250"}
FIRST, SECOND = range(0, 12_000), range(6_000, 18_000)
OVERLAP = len(range(SECOND.start, FIRST.stop))
UNION = len(range(FIRST.start, SECOND.stop))


@pytest.fixture(scope="module")
def second_worker(stack):
    key = stack.start_service("worker", instance=2)
    yield key
    stack.stop_service(key)


@pytest.mark.parametrize("mode", ["insert", "upsert"])
def test_overlapping_files_on_two_workers_store_each_row_once_with_unique_seqs(
    stack, second_worker, auth_headers, tmp_path, mode
):
    prefix = key_prefix(mode)
    files = [write_movies_csv(tmp_path / f"{name}.csv", rows, prefix) for name, rows in (("a", FIRST), ("b", SECOND))]
    logs_before = {key: stack.log_path(key).read_text() for key in ("worker", second_worker)}
    with ThreadPoolExecutor(2) as pool:
        task_ids = list(pool.map(lambda path: upload_ok(stack.url, auth_headers, path, mode=mode), files))
    statuses = [wait_finished(stack.url, auth_headers, task_id, within=120) for task_id in task_ids]

    assert [s["status"] for s in statuses] == ["Success", "Success"], statuses
    assert [s["rows_processed"] for s in statuses] == [len(FIRST), len(SECOND)]
    assert sum(s["rows_failed"] for s in statuses) == 0, [s["errors"][:3] for s in statuses]
    assert sum(s["rows_inserted"] for s in statuses) == UNION
    overlap_counted = sum(s["rows_duplicate" if mode == "insert" else "rows_updated"] for s in statuses)
    assert overlap_counted == OVERLAP
    with stack.database() as db:
        mine = {"key": {"$regex": f"^{prefix}"}}
        assert db.catalog_items.count_documents(mine) == UNION
        assert len(db.catalog_items.distinct("seq", mine)) == UNION
        assert len(db.catalog_items.distinct("row.title", mine)) == UNION
        # Across everything imported so far, too; and the pages' layout places each item once, in order.
        assert len(db.catalog_items.distinct("seq")) == db.catalog_items.count_documents({})
        assert audit(db, "default") == []
    assert walk_catalog(stack.url) == import_order(stack)
    # Side by side: each worker process ran one of the two imports.
    new_lines = {key: stack.log_path(key).read_text()[len(before) :] for key, before in logs_before.items()}
    ran = {key: [job for job in task_ids if f"Import {job}: attempt 1" in text] for key, text in new_lines.items()}
    assert sorted(len(jobs) for jobs in ran.values()) == [1, 1], ran
