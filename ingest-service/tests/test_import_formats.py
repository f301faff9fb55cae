"""Files as their publishers ship them, imported by real ``ingest-worker`` processes: IMDB's TSV
(plain, gzipped, zipped), spreadsheet exports in UTF-16 and Windows-1252, ragged rows, a gzip
bomb, and a compressed import resumed after its worker is killed."""

import gzip
import signal

import pytest

from catalog_testkit.files import movies_csv, zipped
from catalog_testkit.processes import stop_process

from .helpers import (
    IMDB_COLUMNS,
    catalog_count,
    catalog_rows,
    catalog_seqs,
    imdb_tsv,
    job_status,
    upload_ok,
    wait_finished,
    wait_until,
)

IMDB_FILLER = 3000
IMDB_ROWS = 4 + IMDB_FILLER
# The tricky rows exactly as stored: quotes kept as written, \N a missing value, years numbers.
IMDB_STORED = {
    "tt0000001": {"primaryTitle": "Carmencita", "startYear": 1894, "endYear": None, "runtimeMinutes": 1,
                  "genres": "Documentary,Short", "isAdult": 0},
    "tt0000002": {"primaryTitle": '"Rolling in the Deep Dish"', "startYear": 2019, "endYear": None,
                  "runtimeMinutes": None, "genres": "Comedy", "isAdult": 0},
    "tt0000003": {"primaryTitle": '"Unbalanced start', "originalTitle": '"Unbalanced start', "startYear": 2001,
                  "endYear": None, "runtimeMinutes": 94, "genres": "Drama", "isAdult": 0},
    "tt0000004": {"primaryTitle": 'The "Inner" Quote', "titleType": "tvSeries", "startYear": 1999, "endYear": 2003,
                  "runtimeMinutes": None, "genres": None},
}  # fmt: skip


def assert_imdb_rows_stored(db) -> None:
    rows = catalog_rows(db)
    assert len(rows) == IMDB_ROWS
    for key, expected in IMDB_STORED.items():
        assert list(rows[key]) == IMDB_COLUMNS, "every column, in the file's order"
        assert {column: rows[key][column] for column in expected} == expected, key
    assert rows["tt10000042"]["startYear"] == 1992 and rows["tt10000042"]["runtimeMinutes"] == 102


@pytest.mark.parametrize(
    ("filename", "pack"),
    [
        ("title.basics.tsv", lambda data: data),
        ("title.basics.tsv.gz", gzip.compress),
        # Named .bin: gzip is known by its magic bytes, not the name.
        ("download.bin", gzip.compress),
        ("title.basics.zip", lambda data: zipped({"title.basics.tsv": data})),
    ],
)
async def test_an_imdb_tsv_imports_with_no_option_plain_gzipped_or_zipped(api, auth, db, start_worker, filename, pack):
    start_worker()
    status = await wait_finished(api, auth, await upload_ok(api, auth, pack(imdb_tsv(IMDB_FILLER)), filename=filename))
    assert status["status"] == "Success", status
    assert (status["quoting"], status["null_markers"], status["key"]) == ("none", ["\\N"], "tconst")
    assert (status["rows_processed"], status["rows_inserted"], status["rows_failed"], status["warnings"]) == (
        IMDB_ROWS,
        IMDB_ROWS,
        0,
        0,
    )
    assert_imdb_rows_stored(db)


async def test_utf16_with_a_bom_imports_as_a_spreadsheet_wrote_it(api, auth, db, start_worker):
    start_worker()
    text = 'id\ttitle\tyear\r\n1\tAmélie\t2001\r\n2\t東京物語\t1953\r\n3\t"Tab\tinside"\t1999\r\n'
    content = text.encode("utf-16-le")
    status = await wait_finished(api, auth, await upload_ok(api, auth, b"\xff\xfe" + content, filename="u.txt"))
    assert (status["status"], status["encoding"], status["quoting"]) == ("Success", "utf-16", "rfc4180")
    assert (status["rows_inserted"], status["rows_failed"]) == (3, 0)
    assert catalog_rows(db) == {
        "1": {"id": 1, "title": "Amélie", "year": 2001},
        "2": {"id": 2, "title": "東京物語", "year": 1953},
        "3": {"id": 3, "title": "Tab\tinside", "year": 1999},
    }


async def test_a_cp1252_export_imports_with_its_encoding_named(api, auth, db, start_worker):
    start_worker()
    content = "id;title;price\r\n1;Amélie à Paris;9,50 €\r\n2;“Smart” quotes \u2013 dash;3\r\n".encode("cp1252")
    content += b"".join(b"f%d;filler;%d\r\n" % (n, n) for n in range(4000))
    # 0x81 is not a Windows-1252 character: past the head the API checks, that line alone is an error.
    content += b"3;bad \x81 byte;4\r\n4;Na\xefve;5\r\n"
    status = await wait_finished(api, auth, await upload_ok(api, auth, content, encoding="cp1252"))
    assert (status["status"], status["encoding"]) == ("Success", "cp1252")
    assert (status["rows_processed"], status["rows_inserted"], status["rows_failed"]) == (4004, 4003, 1)
    assert status["errors"] == [{"line": 4004, "message": "The line is not valid cp1252"}]
    rows = catalog_rows(db)
    assert rows["1"] == {"id": "1", "title": "Amélie à Paris", "price": "9,50 €"}
    assert rows["2"]["title"] == "“Smart” quotes \u2013 dash"
    assert rows["4"]["title"] == "Naïve"


async def test_ragged_rows_are_errors_naming_the_line_and_both_counts(api, auth, db, start_worker):
    start_worker()
    content = b"id,title,year\n1,One,2001\n2,Short\n3,Long,2003,extra\n4,Four,2004\n"
    status = await wait_finished(api, auth, await upload_ok(api, auth, content))
    assert (status["rows_processed"], status["rows_inserted"], status["rows_failed"]) == (4, 2, 2)
    assert status["errors"] == [
        {"line": 3, "message": "The row has 2 fields, the header has 3"},
        {"line": 4, "message": "The row has 4 fields, the header has 3"},
    ]
    assert set(catalog_rows(db)) == {"1", "4"}


async def test_ragged_pad_keeps_short_rows_with_nulls_and_still_refuses_long_ones(api, auth, db, start_worker):
    start_worker()
    content = b"id,title,year\n1,One,2001\n2,Short\n3,Long,2003,extra\n"
    status = await wait_finished(api, auth, await upload_ok(api, auth, content, ragged="pad"))
    assert (status["rows_processed"], status["rows_inserted"], status["rows_failed"], status["warnings"]) == (
        3,
        2,
        1,
        1,
    )
    assert status["errors"] == [{"line": 4, "message": "The row has 4 fields, the header has 3"}]
    assert catalog_rows(db)["2"] == {"id": 2, "title": "Short", "year": None}


async def test_an_imdb_file_read_with_rfc4180_quoting_never_shifts_a_column(api, auth, db, start_worker):
    # The quote opening tt0000003's title swallows the lines up to the next quote: that record has the
    # wrong field count and is refused whole, never stored with its values under other columns.
    start_worker()
    status = await wait_finished(api, auth, await upload_ok(api, auth, imdb_tsv(), quoting="rfc4180", null="\\N"))
    assert status["status"] == "Success"
    assert status["rows_failed"] >= 1
    assert status["rows_inserted"] + status["rows_failed"] == status["rows_processed"]
    for row in catalog_rows(db).values():
        assert row["startYear"] is None or isinstance(row["startYear"], int), row


async def test_null_markers_given_replace_the_default(api, auth, db, start_worker):
    start_worker()
    content = b"id\tyear\tnote\n1\tNA\t\\N\n2\t1994\tNULL\n"
    status = await wait_finished(api, auth, await upload_ok(api, auth, content, null="NA,NULL"))
    assert status["null_markers"] == ["NA", "NULL"]
    # \N is text here: the markers given replace the default one.
    assert catalog_rows(db) == {"1": {"id": 1, "year": None, "note": "\\N"}, "2": {"id": 2, "year": 1994, "note": None}}


async def test_a_gzip_bomb_ends_in_failure_at_the_limit_and_nothing_past_it_is_stored(api, auth, db, start_worker):
    limit = 2_000_000
    content = movies_csv(40_000)  # about 7 MB, a few hundred KB gzipped
    lines = content.split(b"\n")
    lines_within_limit = next(n for n in range(len(lines)) if len(b"\n".join(lines[: n + 1])) + 1 > limit)
    start_worker(INGEST_MAX_DECOMPRESSED_BYTES=str(limit))
    status = await wait_finished(api, auth, await upload_ok(api, auth, gzip.compress(content), filename="bomb.csv.gz"))
    assert status["status"] == "Failure"
    assert status["error"] == f"The decompressed file is larger than the limit of {limit} bytes"
    stored = catalog_count(db)
    assert 0 < stored == status["rows_inserted"] < lines_within_limit
    # The rows stored are the file's first ones, each wholly inside the limit.
    assert set(catalog_rows(db)) == {f"s{n}" for n in range(stored)}


async def test_a_gzipped_import_resumes_after_its_worker_is_killed(api, auth, db, start_worker):
    rows = 50_000
    content = gzip.compress(movies_csv(rows))
    task_id = await upload_ok(api, auth, content, filename="movies.csv.gz")
    first = start_worker()
    _, seen = await wait_until(
        api, auth, task_id, lambda s: s["status"] == "Progress" and s["rows_processed"] >= 5000, within=120
    )
    stop_process(first, signal.SIGKILL)
    killed_at = (await job_status(api, auth, task_id))["rows_processed"]
    assert killed_at < rows

    start_worker()
    status, more = await wait_until(api, auth, task_id, lambda s: s["status"] in {"Success", "Failure"}, within=180)
    assert status["status"] == "Success", status
    assert (status["rows_processed"], status["rows_inserted"], status["rows_duplicate"]) == (rows, rows, 0)
    assert status["attempts"] == 2
    assert catalog_count(db) == rows
    assert len(catalog_seqs(db)) == rows
    # Progress is a share of the compressed bytes read: below 100 until the end.
    progress = [s["progress"] for s in seen + more if s["status"] == "Progress"]
    assert progress and max(progress) < 100
