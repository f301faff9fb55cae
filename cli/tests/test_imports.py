"""upload, status, uploads, cancel and revert against the real ingest service and worker; each ending's exit code."""

import gzip
import json
import re
import subprocess
import uuid

import pytest
from conftest import CATALOGCTL, write_csv
from gridfs import GridFSBucket
from pymongo import MongoClient

ANSI_ESCAPE = re.compile(r"\x1b\[")


def test_upload_wait_reaches_success_with_plain_progress_lines_off_a_terminal(catalogctl, user, tmp_path):
    csv_path = write_csv(tmp_path / "films.csv", 300)
    result = catalogctl("upload", str(csv_path), "--wait")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Success: 300 processed: 300 inserted, 0 updated, 0 duplicate, 0 failed")
    lines = result.stderr.splitlines()
    assert lines[0] == f"Uploading films.csv ({csv_path.stat().st_size / 1000:.1f} kB)"
    assert re.fullmatch(r"Task [0-9a-f-]{36}", lines[2])
    assert lines[-1] == "Success: 100%, 300 rows processed"
    assert not ANSI_ESCAPE.search(result.stdout + result.stderr)

    # The same file again, in each mode.
    assert "300 duplicate" in catalogctl("upload", str(csv_path), "--wait").stdout
    assert "300 updated" in catalogctl("upload", str(csv_path), "--mode", "upsert", "--wait").stdout


def test_upload_without_wait_prints_the_task_id_for_scripts(catalogctl, user, tmp_path):
    csv_path = write_csv(tmp_path / "films.csv", 20)
    result = catalogctl("upload", str(csv_path), "--key", "title", "--dataset", "films-by-title")
    assert result.exit_code == 0, result.stderr
    task_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", task_id)
    assert f"catalogctl status {task_id} --watch" in result.stderr

    watched = catalogctl("status", task_id, "--watch")
    assert watched.exit_code == 0
    assert watched.stdout.startswith("Success: 20 processed: 20 inserted")

    status = json.loads(catalogctl("status", task_id, "--format", "json").stdout)
    assert (status["task_id"], status["status"], status["key"], status["dataset"]) == (
        task_id,
        "Success",
        "title",
        "films-by-title",
    )
    assert status["rows_inserted"] == 20

    shown = catalogctl("status", task_id).stdout
    assert f"Task      {task_id}" in shown
    assert "Status    Success (100%)" in shown
    assert "key title" in shown

    listed = json.loads(catalogctl("uploads", "--format", "json").stdout)
    assert listed[0]["task_id"] == task_id
    table = catalogctl("uploads")
    assert task_id in table.stdout and "films.csv" in table.stdout
    assert table.stderr.strip() == "Items 1-1 of 1"


def test_row_errors_are_listed_after_the_import(catalogctl, user, tmp_path):
    csv_path = write_csv(tmp_path / "ragged.csv", 5, extra_rows=[["too", "many", *["x"] * 12]])
    result = catalogctl("upload", str(csv_path), "--wait")
    assert result.exit_code == 0
    assert "5 inserted" in result.stdout and "1 failed" in result.stdout
    assert "Row errors (1):\n  line 7: " in result.stdout


def test_revert_removes_an_import_and_says_how_many_rows_went(catalogctl, user, tmp_path):
    dataset = f"cli-revert-{uuid.uuid4().hex[:8]}"
    first = catalogctl("upload", str(write_csv(tmp_path / "first.csv", 30)), "--dataset", dataset).stdout.strip()
    assert catalogctl("status", first, "--watch").exit_code == 0

    started = catalogctl("revert", first)
    assert (started.exit_code, started.stdout) == (0, f"Task {first}: Reverting\n")
    assert f"catalogctl status {first} --watch" in started.stderr
    watched = catalogctl("status", first, "--watch")
    assert watched.exit_code == 0
    assert watched.stdout.startswith("Reverted: 30 processed: 30 inserted")
    assert "; 30 reverted, 0 kept" in watched.stdout
    shown = catalogctl("status", first).stdout
    assert "Status    Reverted" in shown and "Reverted  " in shown
    assert "Reverted" in catalogctl("uploads").stdout

    second = catalogctl("upload", str(write_csv(tmp_path / "second.csv", 12)), "--dataset", dataset, "--wait")
    task_id = re.search(r"Task ([0-9a-f-]{36})", second.stderr).group(1)
    waited = catalogctl("revert", task_id, "--wait")
    assert waited.exit_code == 0, waited.stderr
    assert waited.stdout == "Reverted: 12 reverted, 0 kept\n"
    again = catalogctl("revert", task_id)
    assert again.exit_code == 1
    assert again.stderr == "Error: The upload has already been reverted (Reverted) [HTTP 409]\n"


def stored_job_files(stack):
    client = MongoClient(f"mongodb://127.0.0.1:{stack.ports['mongo']}", serverSelectionTimeoutMS=5000)
    return client, GridFSBucket(client[stack.env["MONGO_DB"]], bucket_name="uploads")


@pytest.fixture
def worker_stopped(stack):
    """No worker: uploads stay Pending until the test starts one again."""
    stack.stop_service("worker")
    try:
        yield stack
    finally:
        if "worker" not in stack.processes:
            stack.start_service("worker")


def test_a_cancelled_import_exits_4_and_the_wait_says_so(catalogctl, cli_env, user, tmp_path, worker_stopped):
    csv_path = write_csv(tmp_path / "films.csv", 50)
    waiting = subprocess.Popen(
        [CATALOGCTL, "upload", str(csv_path), "--wait"],
        env=cli_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        task_id = None
        for line in waiting.stderr:
            if match := re.fullmatch(r"Task ([0-9a-f-]{36})\n", line):
                task_id = match.group(1)
                break
        assert task_id, "upload --wait never printed its task id"
        cancelled = catalogctl("cancel", task_id)
        assert cancelled.exit_code == 0
        assert cancelled.stdout.startswith(f"Task {task_id}: Cancelled")
        stdout, stderr = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 4
    assert stdout.startswith("Cancelled: 0 processed")
    assert f"Error: The import of task {task_id} ended in Cancelled" in stderr

    assert catalogctl("status", task_id, "--watch").exit_code == 4
    watched = catalogctl("status", task_id, "--watch", "--format", "json")
    assert (watched.exit_code, json.loads(watched.stdout)["status"]) == (4, "Cancelled")
    again = catalogctl("cancel", task_id)
    assert again.exit_code == 1
    assert again.stderr == "Error: The upload has already ended (Cancelled) [HTTP 409]\n"


def test_a_failed_import_exits_3_with_the_reason(catalogctl, user, tmp_path, worker_stopped):
    csv_path = write_csv(tmp_path / "films.csv", 10)
    task_id = catalogctl("upload", str(csv_path)).stdout.strip()
    # The upload vanishes from storage before any worker reads it: the import can only fail.
    client, bucket = stored_job_files(worker_stopped)
    try:
        bucket.delete(task_id)
    finally:
        client.close()
    worker_stopped.start_service("worker")

    result = catalogctl("status", task_id, "--watch")
    assert result.exit_code == 3
    assert result.stdout.startswith("Failure: 0 processed")
    assert re.fullmatch(
        rf"Failure: 0%, 0 rows processed\nError: The import of task {task_id} ended in Failure: "
        r"The uploaded file could not be read: .+\n",
        result.stderr.split("Pending: 0%, 0 rows processed\n")[-1],
    )


def test_import_errors_are_one_line_with_their_exit_codes(catalogctl, user, tmp_path, config_home):
    csv_path = write_csv(tmp_path / "films.csv", 3)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    unknown_task = "3f2c4f1e-0000-4000-8000-000000000000"
    cases = [
        # (arguments, exit code, what stderr says)
        (("upload", str(tmp_path / "missing.csv")), 2, "does not exist"),
        (("upload", str(csv_path), "--mode", "replace"), 2, "'replace' is not one of 'insert', 'upsert', 'merge'"),
        (("upload", str(csv_path), "--key", "no_such_column"), 1, "no_such_column"),
        (("upload", str(empty)), 1, "[HTTP 400]"),
        (("status", "not-a-uuid"), 1, "Error: Malformed task id: expected a UUID [HTTP 400]"),
        (("status", unknown_task), 1, "Error: No such upload [HTTP 404]"),
        (("status", unknown_task, "--watch"), 1, "Error: No such upload [HTTP 404]"),
        (("cancel", unknown_task), 1, "Error: No such upload [HTTP 404]"),
        (("revert", unknown_task), 1, "Error: No such upload [HTTP 404]"),
        (("revert", "not-a-uuid", "--wait"), 1, "Error: Malformed task id: expected a UUID [HTTP 400]"),
        (("uploads", "--limit", "1000"), 1, "limit"),
        (("uploads", "--limit", "0"), 2, "--limit"),
    ]
    for arguments, exit_code, message in cases:
        result = catalogctl(*arguments)
        assert result.exit_code == exit_code, (arguments, result.stderr)
        assert message in result.stderr, (arguments, result.stderr)
        if exit_code == 1:
            # One line of error, the last thing printed (an upload's progress lines may come before it).
            last_line = result.stderr.splitlines()[-1]
            assert last_line.startswith("Error: ") and result.stderr.count("Error") == 1, (arguments, result.stderr)

    assert catalogctl("logout").exit_code == 0
    for arguments in (
        ("upload", str(csv_path)),
        ("status", unknown_task),
        ("uploads",),
        ("cancel", unknown_task),
        ("revert", unknown_task),
    ):
        result = catalogctl(*arguments)
        assert result.exit_code == 1
        assert "Not logged in" in result.stderr


def test_an_imdb_tsv_gz_and_a_cp1252_export_upload_with_their_options(catalogctl, user, tmp_path):
    imdb = tmp_path / "title.basics.tsv.gz"
    imdb.write_bytes(
        gzip.compress(b'tconst\tprimaryTitle\tstartYear\ntt0000001\t"Unbalanced title\t1894\ntt0000002\tNo year\t\\N\n')
    )
    result = catalogctl("upload", str(imdb), "--dataset", "imdb", "--wait")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Success: 2 processed: 2 inserted")
    ratings = tmp_path / "title.ratings.tsv"
    ratings.write_bytes(b"tconst\taverageRating\ntt0000002\t7.5\ntt0000009\t1.0\n")
    merged = catalogctl("upload", str(ratings), "--dataset", "imdb", "--mode", "merge", "--key", "tconst", "--wait")
    assert merged.exit_code == 0, merged.stderr
    listed = catalogctl("datasets")
    assert re.search(r"imdb\s+2\s+tconst", listed.stdout), listed.stdout
    rated = catalogctl("content", "--dataset", "imdb", "--sort", "-averageRating", "--format", "json")
    rated = json.loads(rated.stdout)
    assert [(item["tconst"], item.get("averageRating")) for item in rated] == [("tt0000002", 7.5), ("tt0000001", None)]

    export = tmp_path / "export.csv"
    export.write_bytes("id;title;year\r\n1;Amélie;NA\r\n2;Short\r\n".encode("cp1252"))
    result = catalogctl(
        "upload", str(export), "--dataset", "export", "--encoding", "cp1252", "--null", "NA", "--ragged", "pad"
    )
    task_id = result.stdout.strip()
    assert catalogctl("status", task_id, "--watch").stdout.startswith("Success: 2 processed: 2 inserted")
    status = json.loads(catalogctl("status", task_id, "--format", "json").stdout)
    assert (status["encoding"], status["null_markers"], status["ragged"]) == ("cp1252", ["NA"], "pad")
    assert "Read as   cp1252, quoting rfc4180, null NA, short rows pad" in catalogctl("status", task_id).stdout

    refused = catalogctl("upload", str(export), "--encoding", "klingon")
    assert refused.exit_code == 1 and "encoding" in refused.stderr
    assert catalogctl("upload", str(export), "--quoting", "csv").exit_code == 2


def test_a_paused_import_shows_why_in_status_uploads_and_the_wait(catalogctl, user, tmp_path, worker_stopped):
    csv_path = write_csv(tmp_path / "films.csv", 10)
    task_id = catalogctl("upload", str(csv_path)).stdout.strip()
    reason = "the store's volume has 310 MB free; waiting for 513 MB"
    # What a worker writes when the store's volume is under its reserve (the chaos suite fills a real one).
    client, _ = stored_job_files(worker_stopped)
    try:
        jobs = client[worker_stopped.env["MONGO_DB"]]["import_jobs"]
        jobs.update_one({"_id": task_id}, {"$set": {"status": "Paused", "progress": 40, "paused_reason": reason}})
    finally:
        client.close()

    shown = catalogctl("status", task_id)
    assert shown.exit_code == 0
    assert "Status    Paused (40%)" in shown.stdout and f"Paused    {reason}" in shown.stdout
    listed = catalogctl("uploads")
    assert re.search(rf"{task_id}\s+Paused 40%", listed.stdout), listed.stdout
    as_json = catalogctl("status", task_id, "--format", "json")
    assert json.loads(as_json.stdout)["paused_reason"] == reason
    # A paused import is still going: cancelling it ends it.
    cancelled = catalogctl("cancel", task_id)
    assert (cancelled.exit_code, cancelled.stdout.startswith(f"Task {task_id}: Cancelled")) == (0, True)
