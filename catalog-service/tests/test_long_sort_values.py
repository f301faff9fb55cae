"""Cursors over long text sort values: short tokens, every item once, in order."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient
from yarl import URL

from catalog_service.cursors import MAX_TOKEN_LENGTH
from catalog_service.main import create_app
from catalog_testkit.paging import links
from ingest_service.catalog_blocks import item_document
from service_common.catalog_layout import DEFAULT_DATASET
from tests.helpers import JOB_ID, expected, ids, store_catalog

# 3,000 characters: past any cursor's limit, and the first 2,000 the same for every title.
SHARED = "A long title " * 154


def long_titles() -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    documents = []
    for n in range(60):
        # Five titles appear twice, so that the order needs its tie-breaker on long values too.
        title = f"{SHARED}{(n % 55):03d}" + "x" * 1000
        row = {"show_id": f"s{n}", "title": title, "type": "Movie"}
        documents.append(
            item_document(
                DEFAULT_DATASET, f"s{n}", seq=100 + n, block_id="", row=row, job_id=JOB_ID, line=n + 2, now=now
            )
        )
    return documents


@pytest.fixture
async def long_client(settings, mongo_url, mongo_db_name) -> AsyncIterator[tuple[TestClient, list[dict[str, Any]]]]:
    documents = long_titles()
    with MongoClient(mongo_url, tz_aware=True) as mongo:
        store_catalog(mongo[mongo_db_name], documents, block_size=13)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client, documents


@pytest.mark.parametrize("sort", ["title", "-title"])
async def test_cursors_over_long_text_sort_values_stay_short_and_walk_every_item_once(long_client, sort):
    client, documents = long_client
    seen: list[str] = []
    path: str | None = str(URL("/get_content").with_query(sort=sort, limit=4))
    while path is not None:
        response = await client.get(path)
        assert response.status == 200, await response.text()
        seen += ids(await response.json())
        following = links(response).get("next")
        if following is not None:
            assert len(following.query["cursor"]) <= MAX_TOKEN_LENGTH // 2
        path = following.raw_path_qs if following is not None else None
        assert len(seen) <= len(documents)
    assert seen == expected(documents, column="title", descending=sort.startswith("-"))
