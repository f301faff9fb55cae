"""The ingest suite's helpers: uploads and job status through the in-process API, the worker's own
arguments, and the layout's counts checked against the items. Sample files, the poller and the fault
helpers are the test kit's (``catalog_testkit``)."""

import io
from collections.abc import Callable

import aiohttp
from aiohttp.test_utils import TestClient
from pymongo.database import Database

from catalog_testkit.constants import FINISHED
from catalog_testkit.polling import poll_async
from ingest_service import disk
from ingest_service.catalog_blocks import audit
from service_common.catalog_layout import SUMMARY_CHUNKS

BATCH = 500
# The worker's own arguments, with no free-space check (no store volume to watch).
RUN = {"batch_size": BATCH, "lease_seconds": 60, "max_decompressed_bytes": 2**30, "room": disk.ImportRoom()}


async def upload(
    client: TestClient, headers: dict[str, str], content: bytes, filename: str = "movies.csv", **fields: str
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    # A file object, not bytes: aiohttp warns about (and the suite errors on) large bytes bodies.
    form.add_field("file", io.BytesIO(content), filename=filename, content_type="text/csv")
    for name, value in fields.items():
        form.add_field(name, value)
    return await client.post("/upload_csv", data=form, headers=headers)


async def upload_ok(client: TestClient, headers: dict[str, str], content: bytes, **fields: str) -> str:
    response = await upload(client, headers, content, **fields)
    assert response.status == 202, await response.text()
    return (await response.json())["task_id"]


async def job_status(client: TestClient, headers: dict[str, str], task_id: str) -> dict:
    response = await client.get(f"/fetch_csv_status/{task_id}", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def wait_until(
    client: TestClient, headers: dict[str, str], task_id: str, done: Callable[[dict], bool], within: float = 60
) -> tuple[dict, list[dict]]:
    """Polls the status until ``done``; returns the last status and every one seen."""
    seen: list[dict] = []

    async def read() -> dict:
        seen.append(await job_status(client, headers, task_id))
        return seen[-1]

    return await poll_async(read, done, within=within, what=f"job {task_id}"), seen


async def wait_upload_removed(db: Database, task_id: str, within: float = 30) -> None:
    """Waits until the job's upload is gone: the last write of a worker's run, after its counts are saved,
    so a cancelled job's counts and items hold still from then on."""

    async def removed() -> bool:
        return db["uploads.files"].count_documents({"_id": task_id}) == 0

    await poll_async(removed, within=within, what=f"job {task_id}'s upload removed by its worker")


async def wait_finished(client: TestClient, headers: dict[str, str], task_id: str, within: float = 60) -> dict:
    status, _ = await wait_until(client, headers, task_id, lambda s: s["status"] in FINISHED, within)
    return status


IMDB_COLUMNS = ["tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear", "endYear",
                "runtimeMinutes", "genres"]  # fmt: skip
# IMDB's title.basics layout: tab-separated, quotes are ordinary characters, \N for a missing value.
IMDB_TRICKY_ROWS = [
    ["tt0000001", "short", "Carmencita", "Carmencita", "0", "1894", "\\N", "1", "Documentary,Short"],
    ["tt0000002", "movie", '"Rolling in the Deep Dish"', '"Rolling in the Deep Dish"', "0", "2019", "\\N", "\\N",
     "Comedy"],
    ['tt0000003', "movie", '"Unbalanced start', '"Unbalanced start', "0", "2001", "\\N", "94", "Drama"],
    ["tt0000004", "tvSeries", 'The "Inner" Quote', 'The "Inner" Quote', "0", "1999", "2003", "\\N", "\\N"],
]  # fmt: skip


def imdb_tsv(filler_rows: int = 0) -> bytes:
    """The tricky rows, then ``filler_rows`` ordinary ones."""
    lines = ["\t".join(IMDB_COLUMNS), *("\t".join(row) for row in IMDB_TRICKY_ROWS)]
    lines += [
        f"tt1{n:07d}\tmovie\tFiller {n}\tFiller {n}\t0\t{1950 + n % 70}\t\\N\t{60 + n % 90}\tDrama"
        for n in range(filler_rows)
    ]
    return ("\n".join(lines) + "\n").encode()


# Catalog items are read through these two, so that a change of the stored layout is one edit here.
def catalog_rows(db: Database) -> dict[str, dict]:
    """Every stored row (the file's columns), by its row key."""
    return {document["key"]: document["row"] for document in db.catalog_items.find()}


def catalog_count(db: Database) -> int:
    return db.catalog_items.count_documents({})


def catalog_seqs(db: Database) -> list[int]:
    """The distinct import-order numbers of the stored rows."""
    return db.catalog_items.distinct("seq")


def dataset_counts(db: Database, dataset: str = "default") -> tuple[int, dict]:
    """What readers see: the number of items and of each type, summed from the summaries."""
    total, types = 0, {}
    for chunk in db[SUMMARY_CHUNKS].find({"dataset": dataset}):
        for entry in chunk["entries"]:
            total += entry["n"]
            for value, count in entry["t"]:
                types[value] = types.get(value, 0) + count
    return total, types


def real_counts(db: Database, dataset: str = "default") -> tuple[int, dict]:
    items = list(db.catalog_items.find({"dataset": dataset}, {"row.type": 1}))
    types = {}
    for item in items:
        types[item["row"].get("type")] = types.get(item["row"].get("type"), 0) + 1
    return len(items), types


def assert_exact(db: Database, dataset: str = "default") -> None:
    """The layout agrees with the items: ``audit`` finds nothing, and the summaries count what is stored."""
    assert audit(db, dataset) == []
    assert dataset_counts(db, dataset) == real_counts(db, dataset)
