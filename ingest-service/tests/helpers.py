"""Helpers for the service tests: sample files, uploads, polling."""

import asyncio
import io
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient
from pymongo.database import Database

# The sample catalog shipped with the repository: the seed's 12 columns and its awkward cases.
SEED_CSV = Path(__file__).resolve().parents[2] / "examples" / "movies.csv"
FINISHED = {"Success", "Failure", "Cancelled"}


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
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen.append(await job_status(client, headers, task_id))
        if done(seen[-1]):
            return seen[-1], seen
        await asyncio.sleep(0.02)
    raise TimeoutError(f"job {task_id} still {seen[-1]['status']} after {within}s")


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


def leftovers(db: Database) -> dict[str, int]:
    """What an upload leaves in the store: jobs, and GridFS files and chunks."""
    return {name: db[name].count_documents({}) for name in ("import_jobs", "uploads.files", "uploads.chunks")}
