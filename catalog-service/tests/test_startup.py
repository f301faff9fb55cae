"""Settings that refuse to run half-configured, and the read indexes created at start-up."""

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError
from pymongo import MongoClient

from catalog_service.main import create_app
from catalog_service.settings import CatalogSettings


@pytest.mark.parametrize("environment", ["test", "production"])
def test_outside_development_a_cursor_secret_is_required(environment, monkeypatch):
    monkeypatch.delenv("CATALOG_CURSOR_SECRET", raising=False)

    with pytest.raises(ValidationError, match="CATALOG_CURSOR_SECRET"):
        CatalogSettings(environment=environment, mongo_url="mongodb://db:27017")


def test_a_short_cursor_secret_is_refused():
    with pytest.raises(ValidationError, match="at least 32 characters"):
        CatalogSettings(environment="production", mongo_url="mongodb://db:27017", cursor_secret="short")


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CATALOG_PORT", "9100")
    monkeypatch.setenv("CATALOG_MAX_LIMIT", "50")
    monkeypatch.setenv("CATALOG_MAX_OFFSET_ROWS", "1000")
    monkeypatch.setenv("CATALOG_CURSOR_SECRET", "s" * 32)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("MONGO_URL", "mongodb://db:27017")

    settings = CatalogSettings()

    assert (settings.port, settings.max_limit, settings.max_offset_rows) == (9100, 50, 1000)
    assert settings.cursor_secret.get_secret_value() == "s" * 32


async def test_development_signs_cursors_with_a_per_process_key(settings_for, catalog, caplog):
    async with TestClient(
        TestServer(create_app(settings_for(environment="development", cursor_secret=None)))
    ) as client:
        response = await client.get("/get_content?limit=5")
        following = await client.get(f"/get_content?limit=5&cursor={response.headers['X-Next-Cursor']}")
        assert following.status == 200

    assert "cursors will not survive a restart" in caplog.text


async def test_items_carry_no_secondary_index_and_legacy_ones_are_dropped(settings, mongo_url):
    with MongoClient(mongo_url) as mongo:
        items = mongo[settings.mongo_db]["catalog_items"]
        items.create_index([("seq", 1)], unique=True, name="seq_unique")
        items.create_index([("row.type", 1), ("seq", 1)], name="row_type_seq")
        # What CATALOG_INDEXES asked for before the read model answered sorts and filters.
        items.create_index([("dataset", 1), ("row.title", 1), ("seq", 1)], name="dataset_title_seq")
    for _ in range(2):
        async with TestClient(TestServer(create_app(settings))) as client:
            assert (await client.get("/readyz")).status == 200

        with MongoClient(mongo_url) as mongo:
            assert list(mongo[settings.mongo_db]["catalog_items"].index_information()) == ["_id_"]
