"""The upload API without a worker: early checks, job status, listing, cancellation, broker or store down."""

import gzip
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from catalog_testkit.files import movies_csv, zipped
from catalog_testkit.processes import MongoServer, free_port, redis_command, start_process, stop_process, wait_for_port
from catalog_testkit.store import leftovers
from ingest_service.main import create_app
from ingest_service.settings import IngestSettings

from .helpers import imdb_tsv, job_status, upload, upload_ok

NOTHING_LEFT = {"import_jobs": 0, "uploads.files": 0, "uploads.chunks": 0}


async def test_an_accepted_upload_is_stored_and_pending(api, auth, db):
    content = movies_csv(range(10))
    response = await upload(api, auth, content)
    assert response.status == 202
    body = await response.json()
    assert body["message"] == "CSV upload processing started"
    task_id = body["task_id"]

    status = await job_status(api, auth, task_id)
    assert set(status) == {
        "task_id",
        "owner",
        "status",
        "progress",
        "rows_processed",
        "rows_inserted",
        "rows_updated",
        "rows_duplicate",
        "rows_unmatched",
        "rows_failed",
        "warnings",
        "errors",
        "filename",
        "size_bytes",
        "attempts",
        "mode",
        "key",
        "dataset",
        "compression",
        "encoding",
        "quoting",
        "null_markers",
        "ragged",
        "created_at",
        "started_at",
        "finished_at",
        "error",
        "paused_reason",
        "rows_reverted",
        "rows_kept",
        "reverted_at",
    }
    assert (status["task_id"], status["owner"]) == (task_id, "user-1")
    assert status["status"] == "Pending" and status["progress"] == 0 and status["attempts"] == 0
    assert (status["filename"], status["size_bytes"], status["mode"], status["key"]) == (
        "movies.csv",
        len(content),
        "insert",
        "show_id",
    )
    assert {name: status[name] for name in ("compression", "encoding", "quoting", "null_markers", "ragged")} == {
        "compression": "none",
        "encoding": "utf-8",
        "quoting": "rfc4180",
        "null_markers": [],
        "ragged": "error",
    }
    stored = db["uploads.files"].find_one({"_id": task_id})
    assert stored["length"] == len(content)


async def test_upload_requires_a_token(api, db):
    response = await upload(api, {}, movies_csv(range(1)))
    assert response.status == 401
    assert (await response.json())["error"] == "Authorization required"
    assert leftovers(db) == NOTHING_LEFT


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 400, "The file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 400, "The file is not text: it contains NUL bytes"),
        (
            b"show_id,title\n1,caf\xe9\n",
            400,
            "The file is not UTF-8 text (invalid byte at offset 19): name its encoding in the form field 'encoding'; "
            "it looks like cp1252",
        ),
        (b"show_id,,title\n1,2,3\n", 400, "Column 2 of the header row has no name"),
        (b"show_id,title,show_id\n", 400, "Column name 'show_id' appears more than once in the header row"),
    ],
)
async def test_unusable_files_are_refused_and_nothing_is_left(api, auth, db, content, status, message):
    response = await upload(api, auth, content)
    assert response.status == status
    assert await response.json() == {"error": message}
    assert leftovers(db) == NOTHING_LEFT


async def post_raw_file(api, auth, disposition: str, content: bytes = b"show_id\n1\n"):
    """A multipart body written by hand: aiohttp's own FormData would percent-encode the file name."""
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; {disposition}\r\n\r\n'.encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return await api.post("/upload_csv", data=body, headers=headers)


async def test_a_part_header_with_a_control_character_is_400_and_nothing_is_left(api, auth, db):
    response = await post_raw_file(api, auth, 'filename="a\x01b.csv"')
    assert response.status == 400
    assert await response.json() == {"error": "Malformed multipart body"}
    assert leftovers(db) == NOTHING_LEFT


@pytest.mark.parametrize(
    ("disposition", "stored"),
    [
        ('filename="../../etc/passwd"', "passwd"),
        ("filename*=UTF-8''..%5C..%5Cboot.ini", "boot.ini"),
        # RFC 5987 form, the one way to send control characters in a part header.
        ("filename*=UTF-8''%2Ftmp%2F..%2Fx%0Afake%20log%20line%1B%5B31m.csv", "xfake log line[31m.csv"),
        ("filename*=UTF-8''evil%E2%80%AEgpj.csv", "evilgpj.csv"),
        ('filename=".."', "upload.csv"),
        ("filename*=UTF-8''%00%07", "upload.csv"),
    ],
)
async def test_the_stored_file_name_has_no_directory_and_no_control_characters(api, auth, db, disposition, stored):
    response = await post_raw_file(api, auth, disposition)
    assert response.status == 202, await response.text()
    task_id = (await response.json())["task_id"]
    assert (await job_status(api, auth, task_id))["filename"] == stored
    assert db["uploads.files"].find_one({"_id": task_id})["filename"] == stored


async def test_a_body_that_is_not_multipart_is_415(api, auth, db):
    response = await api.post("/upload_csv", data=b"show_id\n1\n", headers={**auth, "Content-Type": "text/csv"})
    assert response.status == 415
    assert "multipart/form-data" in (await response.json())["error"]
    assert leftovers(db) == NOTHING_LEFT


async def test_a_form_without_the_file_field_is_400(api, auth, db):
    form = aiohttp.FormData()
    form.add_field("mode", "insert")
    form.add_field("document", b"show_id\n1\n", filename="x.csv")
    response = await api.post("/upload_csv", data=form, headers=auth)
    assert response.status == 400
    assert (await response.json())["error"] == "No file: send the CSV in the multipart field 'file'"
    assert leftovers(db) == NOTHING_LEFT


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "replace"}, "Invalid value for: mode"),
        ({"quoting": "csv"}, "Invalid value for: quoting"),
        ({"ragged": "truncate"}, "Invalid value for: ragged"),
        ({"encoding": "klingon"}, "Invalid value for: encoding"),
        ({"encoding": "base64"}, "Invalid value for: encoding"),  # a codec, but not one for text
        ({"null": "NA,,NULL"}, "Invalid value for: null"),
        ({"key": "imdb"}, "Invalid value for: key (Column 'imdb' is not in the header row)"),
    ],
)
async def test_bad_options_are_400_naming_the_field_and_nothing_is_left(api, auth, db, fields, message):
    response = await upload(api, auth, movies_csv(range(3)), **fields)
    assert response.status == 400
    body = await response.json()
    assert body["error"] == message
    assert body["details"][0]["field"] == next(iter(fields))
    assert leftovers(db) == NOTHING_LEFT


@pytest.mark.parametrize("file_first", [True, False])
async def test_an_unknown_form_field_is_400_naming_it_and_nothing_is_left(api, auth, db, file_first):
    form = aiohttp.FormData()
    if file_first:
        form.add_field("file", movies_csv(3), filename="movies.csv")
    form.add_field("mdoe", "upsert")
    form.add_field("colour", "blue")
    if not file_first:
        form.add_field("file", movies_csv(3), filename="movies.csv")
    response = await api.post("/upload_csv", data=form, headers=auth)
    assert response.status == 400
    body = await response.json()
    assert body["error"].startswith("Unknown form field: mdoe, colour (known: mode, key, dataset, encoding, quoting")
    assert body["details"] == [
        {"field": "mdoe", "message": "Unknown form field"},
        {"field": "colour", "message": "Unknown form field"},
    ]
    assert leftovers(db) == NOTHING_LEFT


async def test_a_form_field_given_twice_is_400(api, auth, db):
    form = aiohttp.FormData()
    form.add_field("file", movies_csv(3), filename="movies.csv")
    form.add_field("quoting", "none")
    form.add_field("quoting", "rfc4180")
    response = await api.post("/upload_csv", data=form, headers=auth)
    assert response.status == 400
    assert (await response.json())["error"] == "Form field given more than once: quoting"
    assert leftovers(db) == NOTHING_LEFT


async def test_the_options_the_file_is_read_with_are_in_its_status(api, auth):
    imdb = await job_status(
        api, auth, await upload_ok(api, auth, gzip.compress(imdb_tsv()), filename="t.tsv.gz", dataset="imdb")
    )
    assert (imdb["compression"], imdb["encoding"], imdb["quoting"], imdb["null_markers"], imdb["key"]) == (
        "gzip",
        "utf-8",
        "none",
        ["\\N"],
        "tconst",
    )
    given = await upload_ok(
        api,
        auth,
        zipped({"t.tsv": imdb_tsv()}),
        filename="t.zip",
        quoting="rfc4180",
        null="NA, NULL",
        ragged="pad",
        dataset="imdb",
    )
    status = await job_status(api, auth, given)
    assert (status["compression"], status["quoting"], status["null_markers"], status["ragged"]) == (
        "zip",
        "rfc4180",
        ["NA", "NULL"],
        "pad",
    )
    utf16 = await job_status(api, auth, await upload_ok(api, auth, movies_csv(2).decode().encode("utf-16")))
    assert (utf16["encoding"], utf16["key"]) == ("utf-16", "show_id")


async def test_an_encoding_named_after_the_file_reads_its_head(api, auth, db):
    content = "id;title\r\n1;Amélie à Paris\r\n".encode("cp1252")
    form = aiohttp.FormData()
    form.add_field("file", content, filename="export.csv")
    form.add_field("encoding", "windows-1252")
    response = await api.post("/upload_csv", data=form, headers=auth)
    assert response.status == 202, await response.text()
    status = await job_status(api, auth, (await response.json())["task_id"])
    assert (status["encoding"], status["quoting"], status["key"]) == ("cp1252", "rfc4180", "id")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (zipped({"a.csv": b"a\n1\n", "b.csv": b"b\n2\n"}), "The zip file must hold exactly one CSV or TSV file"),
        (gzip.compress(movies_csv(2000))[:3000], "The gzip file is truncated"),
        (gzip.compress(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "The file is not text: it contains NUL bytes"),
        (gzip.compress(b""), "The file is empty"),
        # One CSV beside 4,000 folders: a directory the worker would have to read whole.
        (
            zipped({**{f"folder-{n}/": b"" for n in range(4000)}, "movies.csv": b"id\n1\n"}),
            "The zip file's directory is larger than 64 KiB",
        ),
    ],
)
async def test_unusable_compressed_files_are_refused_and_nothing_is_left(api, auth, db, content, message):
    response = await upload(api, auth, content, filename="upload.gz")
    assert response.status == 400
    assert (await response.json())["error"].startswith(message)
    assert leftovers(db) == NOTHING_LEFT


@pytest.fixture
async def small_limit_api(ingest_env):
    settings = IngestSettings(**ingest_env, INGEST_MAX_UPLOAD_BYTES=100_000)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_a_file_over_the_limit_is_413_and_nothing_is_left(small_limit_api, auth, db):
    response = await upload(small_limit_api, auth, movies_csv(range(3000)))
    assert response.status == 413
    assert (await response.json())["error"] == "The file is larger than the upload limit of 100000 bytes"
    assert leftovers(db) == NOTHING_LEFT


async def test_a_streamed_file_over_the_limit_is_413_once_it_passes_it(small_limit_api, auth, db):
    # Sent chunked, without a Content-Length: the limit is found while streaming into GridFS.
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    content = movies_csv(range(3000))

    async def body():
        yield head
        for start in range(0, len(content), 16 * 1024):
            yield content[start : start + 16 * 1024]
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await small_limit_api.post(
        "/upload_csv", data=body(), headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status == 413
    assert leftovers(db) == NOTHING_LEFT


async def test_status_of_another_users_job_is_404_and_a_malformed_id_400(api, auth, other_auth):
    task_id = await upload_ok(api, auth, movies_csv(range(1)))
    response = await api.get(f"/fetch_csv_status/{task_id}", headers=other_auth)
    assert response.status == 404
    assert await response.json() == {"error": "No such upload"}
    unknown = await api.get("/fetch_csv_status/00000000-0000-4000-8000-000000000000", headers=auth)
    assert unknown.status == 404
    malformed = await api.get("/fetch_csv_status/not-a-uuid", headers=auth)
    assert malformed.status == 400
    assert (await api.get(f"/fetch_csv_status/{task_id}")).status == 401


async def test_uploads_are_listed_newest_first_a_page_at_a_time(api, auth, other_auth):
    task_ids = [await upload_ok(api, auth, movies_csv([n])) for n in range(5)]
    await upload_ok(api, other_auth, movies_csv(range(1)))

    response = await api.get("/uploads", headers=auth, params={"limit": 2, "offset": 2})
    assert response.status == 200
    assert [job["task_id"] for job in await response.json()] == [task_ids[2], task_ids[1]]
    assert response.headers["X-Total-Count"] == "5"
    # Absolute, as the client reached the service (through the gateway: its Host and scheme), like /get_content's.
    page = api.make_url("/uploads?limit=2")
    assert response.headers["Link"] == (
        f'<{page}&offset=1>; rel="first", <{page}&offset=1>; rel="prev", '
        f'<{page}&offset=3>; rel="next", <{page}&offset=3>; rel="last"'
    )
    assert response.headers["X-Max-Limit"] == "100"
    everything = await (await api.get("/uploads", headers=auth)).json()
    assert [job["task_id"] for job in everything] == task_ids[::-1]
    assert await (await api.get("/uploads", headers=auth, params={"offset": 9})).json() == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "abc"}, {"limit": "0"}, {"limit": "101"}, {"limit": "1.5"}, {"limit": " 5"}, {"limit": ""},
        {"offset": "0"}, {"offset": "-1"}, {"offset": "99999999999999999999"}, {"offset": "1e3"},
        [("limit", "5"), ("limit", "6")], [("offset", "1"), ("offset", "2")], {"limt": "5"}, {"page": "2"},
    ],
)  # fmt: skip
async def test_bad_paging_is_400_naming_the_parameter(api, auth, params):
    response = await api.get("/uploads", headers=auth, params=params)
    assert response.status == 400
    assert (await response.json())["details"][0]["field"] == next(iter(dict(params)))


async def test_a_limit_over_the_listing_s_cap_is_refused_in_the_words_it_always_was(api, auth):
    response = await api.get("/uploads", headers=auth, params={"limit": "101"})
    assert await response.json() == {
        "error": "Invalid value for: limit",
        "details": [{"field": "limit", "message": "Input should be less than or equal to 100"}],
    }


async def test_an_unknown_paging_parameter_is_refused_as_get_content_refuses_it(api, auth):
    response = await api.get("/uploads", headers=auth, params={"limt": "5"})
    assert response.status == 400
    assert await response.json() == {
        "error": "Unknown parameter: limt",
        "details": [{"field": "limt", "message": "Unknown parameter"}],
    }


async def test_the_owner_cancels_a_pending_upload_and_its_file_goes(api, auth, other_auth, db):
    task_id = await upload_ok(api, auth, movies_csv(range(5)))
    assert (await api.delete(f"/uploads/{task_id}", headers=other_auth)).status == 404

    response = await api.delete(f"/uploads/{task_id}", headers=auth)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "Cancelled" and body["finished_at"] is not None
    assert db["uploads.files"].count_documents({}) == 0

    again = await api.delete(f"/uploads/{task_id}", headers=auth)
    assert again.status == 409
    assert (await again.json())["error"] == "The upload has already ended (Cancelled)"


async def test_broker_down_is_503_and_the_job_and_file_are_removed(ingest_env, auth, db, tmp_path):
    port = free_port()
    broker = start_process(redis_command(port), log_path=tmp_path / "redis.log")
    try:
        wait_for_port(port, "redis-server")
        settings = IngestSettings(**{**ingest_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        async with TestClient(TestServer(create_app(settings))) as client:
            stop_process(broker)
            response = await upload(client, auth, movies_csv(range(20)))
            assert response.status == 503
            assert response.headers["Retry-After"] == "5"
            assert "unavailable" in (await response.json())["error"]
    finally:
        stop_process(broker)
    assert leftovers(db) == NOTHING_LEFT


@pytest.mark.latency_budget
async def test_store_down_is_503_within_5_seconds_and_uploads_work_once_it_is_back(ingest_env, auth, tmp_path):
    store = MongoServer(tmp_path)
    store.start()
    try:
        settings = IngestSettings(**{**ingest_env, "MONGO_URL": store.url})
        async with TestClient(TestServer(create_app(settings))) as client:
            store.stop()
            started = time.monotonic()
            response = await upload(client, auth, movies_csv(range(20)))
            elapsed = time.monotonic() - started
            assert response.status == 503
            assert await response.json() == {"error": "Service temporarily unavailable, try again shortly"}
            assert elapsed < 5
            store.start()
            assert (await upload(client, auth, movies_csv(range(20)))).status == 202
    finally:
        store.stop()
