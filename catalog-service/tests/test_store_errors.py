"""The store answering with an error of its own, or its volume under the reserve: the catalog's
endpoints are JSON 503s with ``Retry-After`` (never a 500) and its ``/readyz`` names the cause."""

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient

from catalog_service.main import create_app
from service_common.disk import path_space

UNAVAILABLE = {"error": "Service temporarily unavailable, try again shortly"}


@pytest.fixture
def failing_store(mongo_url: str):
    """The store fails the catalog's reads with InternalError (code 1) until the test ends."""
    client = MongoClient(mongo_url)
    data = {"failCommands": ["find", "aggregate", "count"], "appName": "catalog-service", "errorCode": 1}
    client.admin.command({"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": data})
    yield
    client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    client.close()


async def test_a_store_error_is_a_json_503_with_retry_after_not_a_500(client, failing_store):
    for path in ("/get_content", "/get_content?sort=-title&limit=5", "/contents/s1"):
        response = await client.get(path)
        assert response.status == 503, (path, await response.text())
        assert await response.json() == UNAVAILABLE
        assert response.headers["Retry-After"] == "5"


async def test_readyz_is_503_naming_low_disk_space_under_the_reserve(settings_for, catalog, tmp_path):
    settings = settings_for(store_disk_path=tmp_path, min_free_bytes=path_space(tmp_path).free + 10**12)
    async with TestClient(TestServer(create_app(settings))) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert re.fullmatch(
            r"Not ready: low disk space: the store's volume has \d+ MB free, under the \d+ MB reserve",
            (await response.json())["error"],
        )
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/get_content")).status == 200  # reads go on
