"""A page is bounded in bytes, not only in items: past CATALOG_MAX_PAGE_BYTES it is refused with a 400
naming ``limit``, before the rest of its items are read, whichever path answers it."""

import asyncio
import random
import time
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient

from catalog_service.main import create_app
from ingest_service.catalog_blocks import append_items, item_document
from service_common.catalog_layout import DATASETS, new_dataset
from tests.helpers import JOB_ID

MAX_PAGE_BYTES = 16 * 1024**2
ITEM_BYTES = 600_000  # 27 items pass the page's limit, 26 do not
ITEMS = 40


@pytest.fixture
def heavy(mongo_url, mongo_db_name) -> None:
    rng = random.Random(3)
    now = datetime.now(UTC)
    with MongoClient(mongo_url, tz_aware=True) as client:
        db = client[mongo_db_name]
        db[DATASETS].insert_one(new_dataset("heavy", owner=None, key="tconst", now=now))
        documents = [
            item_document(
                "heavy",
                f"tt{n:03d}",
                seq=n + 1,
                block_id="",
                row={"tconst": f"tt{n:03d}", "plot": rng.randbytes(ITEM_BYTES // 2).hex()},
                job_id=JOB_ID,
                line=n,
                now=now,
            )
            for n in range(ITEMS)
        ]
        for start in range(0, ITEMS, 8):  # blocks carry their rows: a few a block
            append_items(db, "heavy", JOB_ID, documents[start : start + 8], now)


@pytest.fixture
async def client(settings_for, heavy):
    async with TestClient(TestServer(create_app(settings_for(max_page_bytes=MAX_PAGE_BYTES)))) as client:
        yield client


async def _get(client: TestClient, url: str):
    """The answer, once the read model holds the dataset (a 503 with Retry-After until then)."""
    deadline = time.monotonic() + 30
    while (response := await client.get(url)).status == 503:
        assert time.monotonic() < deadline, await response.text()
        await asyncio.sleep(0.1)
    return response


@pytest.mark.parametrize("query", ["", "&sort=-tconst", "&filter[tconst][startswith]=tt"])
async def test_a_page_heavier_than_the_limit_in_bytes_is_a_400_naming_limit(client, query):
    response = await _get(client, f"/datasets/heavy/contents?limit=30{query}")
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "The page's items weigh more than 16 MiB (CATALOG_MAX_PAGE_BYTES)"
    assert body["details"] == [{"field": "limit", "message": body["error"] + ": ask for fewer items"}]

    response = await _get(client, f"/datasets/heavy/contents?limit=20{query}")
    assert response.status == 200
    items = await response.json()
    assert len(items) == 20 and all(len(item["plot"]) == ITEM_BYTES for item in items)


async def test_the_blocks_kept_for_pages_stay_within_their_size_in_bytes(settings, catalog, monkeypatch):
    """Paging through the whole catalog with room for about two blocks: the pages are the same as
    with room for all, and what is kept never passes the room (but the blocks of the page at hand)."""
    from catalog_service import index
    from catalog_service.keys import INDEX

    monkeypatch.setattr(index, "CACHED_BLOCK_BYTES", 4_000)
    async with TestClient(TestServer(create_app(settings))) as client:
        kept = client.app[INDEX]
        seen = []
        for page in range(1, len(catalog) // 25 + 2):
            response = await client.get(f"/get_content?limit=25&offset={page}")
            seen += [item["show_id"] for item in await response.json()]
            assert len(kept._blocks) <= 2 or kept._cached_bytes <= index.CACHED_BLOCK_BYTES
        assert seen == [document["row"]["show_id"] for document in catalog]
