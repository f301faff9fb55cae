"""A block's summary lists a long ``type`` value by its digest: summary chunks stay far below the
store's 16 MiB document limit whatever the rows' ``type`` cells hold, and ``type=`` pages stay exact."""

from datetime import UTC, datetime

import bson
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient

from catalog_service.main import create_app
from ingest_service.catalog_blocks import append_items, item_document
from service_common.catalog_layout import CHUNK_ENTRIES, DATASETS, SUMMARY_CHUNKS, BlockSummary, new_dataset
from tests.helpers import JOB_ID

LONG = 1_000  # characters of each type value (a filter value may have 1,024)


def long_type(n: int) -> str:
    return f"{n:05d}" + "x" * (LONG - 5)


def test_a_summary_of_a_block_of_long_types_stays_small():
    keys = [f"k{n}" for n in range(1_000)]
    block = {"_id": "d:1", "seq": 1, "keys": keys, "v": 1, "columns": [["type", 1_000]]}
    block["types"] = [[long_type(n), [n]] for n in range(1_000)]  # 1 MB of distinct types
    summary = BlockSummary.of(block).stored()
    # A chunk holds CHUNK_ENTRIES of them: far below 16 MiB (it was ~1 MB a summary).
    assert CHUNK_ENTRIES * len(bson.encode(summary)) < 4 * 1024**2


async def test_type_pages_of_long_values_are_exact(settings, mongo_url, mongo_db_name):
    now = datetime.now(UTC)
    with MongoClient(mongo_url, tz_aware=True) as client:
        db = client[mongo_db_name]
        db[DATASETS].insert_one(new_dataset("long", owner=None, key="id", now=now))
        documents = [
            item_document(
                "long",
                f"i{n}",
                seq=n + 1,
                block_id="",
                row={"id": f"i{n}", "type": long_type(n % 7)},
                job_id=JOB_ID,
                line=n,
                now=now,
            )
            for n in range(300)
        ]
        for start in range(0, 300, 100):
            append_items(db, "long", JOB_ID, documents[start : start + 100], now)
        chunk = db[SUMMARY_CHUNKS].find_one({"dataset": "long"})
        assert len(bson.encode(chunk)) < 64 * 1024
    async with TestClient(TestServer(create_app(settings))) as client:
        for n in (0, 3):
            response = await client.get("/datasets/long/contents", params={"type": long_type(n), "limit": "100"})
            assert response.status == 200, await response.text()
            assert [item["id"] for item in await response.json()] == [f"i{k}" for k in range(n, 300, 7)]
            assert response.headers["X-Total-Count"] == str(len(range(n, 300, 7)))
        response = await client.get("/datasets/long/contents", params={"type": long_type(8)})
        assert await response.json() == [] and response.headers["X-Total-Count"] == "0"
