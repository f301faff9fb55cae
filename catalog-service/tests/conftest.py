from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient

from catalog_service.main import create_app
from catalog_service.settings import CatalogSettings
from tests.helpers import CURSOR_SECRET, build_catalog, store_catalog


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop the session's SecantusDB run last, so no other test sees it down."""
    items.sort(key=lambda item: item.get_closest_marker("store_outage") is not None)


@pytest.fixture
def settings_for(mongo_url: str, mongo_db_name: str) -> Callable[..., CatalogSettings]:
    def make(**overrides: Any) -> CatalogSettings:
        values = {
            "environment": "test",
            "mongo_url": mongo_url,
            "mongo_db": mongo_db_name,
            "mongo_timeout_ms": 1000,
            "cursor_secret": CURSOR_SECRET,
            **overrides,
        }
        return CatalogSettings(**values)

    return make


@pytest.fixture
def settings(settings_for) -> CatalogSettings:
    return settings_for()


@pytest.fixture
def catalog(mongo_url: str, mongo_db_name: str) -> list[dict[str, Any]]:
    """The catalog as the ingest worker writes it, its blocks stored out of order."""
    documents = build_catalog()
    with MongoClient(mongo_url, tz_aware=True) as client:
        store_catalog(client[mongo_db_name], documents)
    return documents


@pytest.fixture
async def client(settings: CatalogSettings, catalog) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client
