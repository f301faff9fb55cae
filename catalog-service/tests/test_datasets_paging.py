"""GET /datasets is paged as /uploads is: limit, a 1-based offset page, X-Total-Count and Link."""

from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient

from catalog_service.main import create_app
from catalog_testkit.paging import links
from service_common.catalog_layout import DATASETS, new_dataset

NAMES = [f"set-{n:02d}" for n in range(25)]


@pytest.fixture
def many(mongo_url: str, mongo_db_name: str) -> None:
    now = datetime.now(UTC)
    with MongoClient(mongo_url, tz_aware=True) as mongo:
        mongo[mongo_db_name][DATASETS].insert_many(
            [new_dataset(name, owner="user-1", key="id", now=now) for name in NAMES]
        )


async def test_the_dataset_list_is_paged_like_the_uploads(client, many):
    first = await client.get("/datasets")
    assert first.status == 200
    assert first.headers["X-Total-Count"] == "26"  # and default, which the catalog fixture holds
    assert [d["name"] for d in await first.json()] == sorted(["default", *NAMES])[:20]
    assert set(links(first)) == {"first", "next", "last"}

    last = await client.get(links(first)["next"].raw_path_qs)
    assert [d["name"] for d in await last.json()] == sorted(["default", *NAMES])[20:]
    page = await client.get("/datasets?limit=10&offset=3")
    assert [d["name"] for d in await page.json()] == sorted(["default", *NAMES])[20:]
    assert (await client.get("/datasets?offset=9")).status == 200


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=0", "size=3", "limit=1&limit=2"])
async def test_bad_paging_of_the_dataset_list_is_400_naming_the_parameter(client, query):
    response = await client.get(f"/datasets?{query}")
    assert response.status == 400
    assert (await response.json())["details"][0]["field"] in query


async def test_the_dataset_list_states_its_own_cap_whatever_the_catalog_page_s(settings_for, catalog, many):
    async with TestClient(TestServer(create_app(settings_for(max_limit=7)))) as client:
        first = await client.get("/datasets")
        assert len(await first.json()) == 20
        assert first.headers["X-Max-Limit"] == "100"
        over = await client.get("/datasets?limit=101")
        assert await over.json() == {
            "error": "Invalid value for: limit",
            "details": [{"field": "limit", "message": "Input should be less than or equal to 100"}],
        }
