"""Imports run by real ``ingest-worker`` processes against real SecantusDB and Redis."""

import itertools
import signal

from catalog_testkit.constants import SEED_CSV
from catalog_testkit.files import movies_csv
from catalog_testkit.processes import stop_process
from catalog_testkit.store import leftovers

from .helpers import job_status, upload_ok, wait_finished, wait_until, wait_upload_removed


async def test_status_goes_pending_progress_success_with_exact_counts(api, auth, db, start_worker):
    rows = 20_000
    task_id = await upload_ok(api, auth, movies_csv(range(rows)))
    assert (await job_status(api, auth, task_id))["status"] == "Pending"

    start_worker()
    final, seen = await wait_until(api, auth, task_id, lambda s: s["status"] == "Success", within=120)
    # Pending (seen above, and until the ready worker takes the message), then Progress batch after
    # batch, then Success: never back to Pending, never anything else.
    statuses = list(itertools.dropwhile(lambda status: status == "Pending", (s["status"] for s in seen)))
    assert statuses[0] == "Progress" and set(statuses) == {"Progress", "Success"}
    progress = [s["progress"] for s in seen if s["status"] == "Progress"]
    assert progress == sorted(progress) and max(progress) < 100
    assert final["progress"] == 100
    assert (final["rows_processed"], final["rows_inserted"], final["rows_failed"]) == (rows, rows, 0)
    assert final["started_at"] is not None and final["finished_at"] is not None

    assert db.catalog_items.count_documents({}) == rows
    document = db.catalog_items.find_one({"_id": "default:s7"})
    assert document["row"]["release_year"] == 1997  # an integer column
    assert document["row"]["cast"] == "Actor A, Actor B"
    assert document["source"] == {"job_id": task_id, "line": 9}
    seqs = [d["seq"] for d in db.catalog_items.find({}, {"seq": 1}).sort("source.line", 1)]
    assert seqs == sorted(set(seqs)), "seq follows the file's order and never repeats"
    # The upload is gone once the job has ended.
    assert leftovers(db)["uploads.chunks"] == 0 and leftovers(db)["uploads.files"] == 0


async def test_seed_file_then_reuploads_in_insert_and_upsert_mode(api, auth, db, start_worker):
    start_worker()
    seed = SEED_CSV.read_bytes()
    first = await wait_finished(api, auth, await upload_ok(api, auth, seed))
    assert first["status"] == "Success"
    assert (first["rows_processed"], first["rows_inserted"], first["key"]) == (50, 50, "show_id")
    assert db.catalog_items.count_documents({}) == 50
    assert db.catalog_items.find_one({"_id": "default:7"})["row"]["title"] == "Paper Lanterns, Stone Bridges"
    seq_before = {d["key"]: d["seq"] for d in db.catalog_items.find({}, {"seq": 1, "key": 1})}

    again = await wait_finished(api, auth, await upload_ok(api, auth, seed))
    assert (again["status"], again["rows_inserted"], again["rows_duplicate"]) == ("Success", 0, 50)
    assert db.catalog_items.count_documents({}) == 50

    upsert_id = await upload_ok(api, auth, seed, mode="upsert")
    upserted = await wait_finished(api, auth, upsert_id)
    assert (upserted["status"], upserted["rows_inserted"], upserted["rows_updated"]) == ("Success", 0, 50)
    assert db.catalog_items.count_documents({}) == 50
    assert {d["key"]: d["seq"] for d in db.catalog_items.find({}, {"seq": 1, "key": 1})} == seq_before
    assert db.catalog_items.count_documents({"source.job_id": upsert_id}) == 50


async def test_awkward_files_import_with_row_errors_and_warnings_recorded(api, auth, db, start_worker):
    start_worker()
    lines = [
        "\ufeffcode;name;score",  # BOM, semicolons, CRLF
        'a1;"Semi; colon";1.5',
        'a2;"Quote ""q"" and\r\nnewline";2',
        "a3;short",  # an error: too few fields (ragged=pad would keep it)
        "a4;too;many;fields",  # an error
        ";no key;3",  # an error: the key is empty
    ]
    # Invalid UTF-8 within the first 64 KiB refuses the upload; further on it spoils only its own row.
    filler = "".join(f"f{n};filler;{n}\r\n" for n in range(5000))
    # Past the first 1,000 rows, which set the column types, "n/a" does not fit the float column: a warning.
    late = "a5;x;n/a\r\n"
    content = ("\r\n".join(lines) + "\r\n" + filler + late).encode() + b"a6;\xff\xfe;4\r\na7;last;5"
    status = await wait_finished(api, auth, await upload_ok(api, auth, content, key="code"))
    assert status["status"] == "Success"
    assert status["key"] == "code"
    assert (status["rows_processed"], status["rows_inserted"], status["rows_failed"], status["warnings"]) == (
        5008,
        5004,
        4,
        1,
    )
    assert status["errors"] == [
        {"line": 5, "message": "The row has 2 fields, the header has 3"},
        {"line": 6, "message": "The row has 4 fields, the header has 3"},
        {"line": 7, "message": "The key column 'code' is empty"},
        {"line": 5009, "message": "The line is not valid UTF-8"},
    ]
    rows = {d["key"]: d["row"] for d in db.catalog_items.find()}
    assert rows["a1"] == {"code": "a1", "name": "Semi; colon", "score": 1.5}
    assert rows["a2"]["name"] == 'Quote "q" and\r\nnewline'
    assert "a3" not in rows
    assert rows["a5"]["score"] == "n/a"
    assert rows["a7"]["score"] == 5.0


async def test_first_hundred_errors_are_kept_and_all_counted(api, auth, start_worker):
    start_worker()
    content = b"id,v\n" + b"".join(b"%d,x,extra\n" % n if n % 2 else b"%d,ok\n" % n for n in range(300))
    status = await wait_finished(api, auth, await upload_ok(api, auth, content))
    assert (status["rows_failed"], status["rows_inserted"]) == (150, 150)
    assert len(status["errors"]) == 100
    assert status["errors"][0]["line"] == 3 and status["errors"][-1]["line"] == 201


async def test_a_file_without_a_key_column_is_keyed_by_content(api, auth, db, start_worker):
    start_worker()
    content = b"title,year\nA,2001\nB,2002\nA,2001\n"
    first = await wait_finished(api, auth, await upload_ok(api, auth, content))
    assert (first["key"], first["rows_inserted"], first["rows_duplicate"]) == (None, 2, 1)
    assert all(d["key"].startswith("sha256:") for d in db.catalog_items.find())


async def test_cancelling_stops_the_worker_at_a_batch_boundary(api, auth, db, start_worker):
    rows = 40_000
    task_id = await upload_ok(api, auth, movies_csv(range(rows)))
    start_worker(INGEST_BATCH_SIZE="200")
    await wait_until(api, auth, task_id, lambda s: s["status"] == "Progress" and s["rows_processed"] > 0)
    response = await api.delete(f"/uploads/{task_id}", headers=auth)
    assert response.status == 200

    # The worker notices at its next batch, records what it wrote, and removes the upload: only then
    # do the counts hold still.
    await wait_upload_removed(db, task_id)
    status = await job_status(api, auth, task_id)
    assert status["status"] == "Cancelled"
    assert 0 < status["rows_processed"] < rows
    assert db.catalog_items.count_documents({}) == status["rows_inserted"] == status["rows_processed"]


async def test_a_missing_upload_ends_in_failure_with_the_reason(api, auth, db, start_worker):
    task_id = await upload_ok(api, auth, movies_csv(range(10)))
    db["uploads.chunks"].delete_many({})
    db["uploads.files"].delete_many({})
    start_worker()
    status = await wait_finished(api, auth, task_id)
    assert status["status"] == "Failure"
    assert status["error"].startswith("The uploaded file could not be read")


async def test_a_worker_killed_mid_file_is_replaced_and_no_row_is_lost_or_doubled(api, auth, db, start_worker):
    rows = 50_000
    task_id = await upload_ok(api, auth, movies_csv(range(rows)))
    first = start_worker()
    await wait_until(api, auth, task_id, lambda s: s["status"] == "Progress" and s["progress"] >= 15, within=120)
    stop_process(first, signal.SIGKILL)
    killed_at = (await job_status(api, auth, task_id))["rows_processed"]
    assert killed_at < rows

    start_worker()
    status = await wait_finished(api, auth, task_id, within=180)
    assert status["status"] == "Success"
    assert (status["rows_processed"], status["rows_inserted"], status["rows_duplicate"]) == (rows, rows, 0)
    assert db.catalog_items.count_documents({}) == rows
    assert status["attempts"] == 2
    seqs = db.catalog_items.distinct("seq")
    assert len(seqs) == rows
