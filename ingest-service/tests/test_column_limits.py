"""Bounded dataset metadata: a cap on a dataset's columns and on a column name's length, a 400 at upload."""

import pytest
from aiohttp.test_utils import TestClient, TestServer

from catalog_testkit.store import leftovers
from ingest_service import importer
from ingest_service.main import create_app
from ingest_service.settings import IngestSettings

from .helpers import RUN, upload, upload_ok


async def refused(api, auth, db, content: bytes, message: str, **fields: str) -> None:
    before = leftovers(db)
    response = await upload(api, auth, content, **fields)
    assert response.status == 400, await response.text()
    assert await response.json() == {"error": message, "details": [{"field": "file", "message": message}]}
    assert leftovers(db) == before


async def test_a_file_with_more_columns_than_allowed_is_400_naming_the_limit(api, auth, db):
    header = ",".join(f"c{n}" for n in range(1001)).encode()
    message = "Too many columns: the file has 1001, at most 1000 are allowed (INGEST_MAX_COLUMNS)"
    await refused(api, auth, db, header + b"\n" + b",".join([b"1"] * 1001) + b"\n", message)


async def test_a_column_name_longer_than_allowed_is_400_naming_the_limit(api, auth, db):
    name = "n" * 300
    message = f"Column name {name[:40]!r}... is longer than 256 characters (INGEST_MAX_COLUMN_NAME_CHARS)"
    await refused(api, auth, db, f"id,{name}\n1,2\n".encode(), message)


@pytest.fixture
async def five_columns_api(ingest_env):
    async with TestClient(TestServer(create_app(IngestSettings(**ingest_env, INGEST_MAX_COLUMNS=5)))) as client:
        yield client


async def test_a_file_that_would_take_its_dataset_past_the_limit_is_400(five_columns_api, auth, db):
    first = await upload_ok(five_columns_api, auth, b"id,a,b\n1,2,3\n", dataset="wide")
    importer.run_import(db, first, worker_id="w1", **RUN)
    # Columns it already has count once.
    second = await upload_ok(five_columns_api, auth, b"id,a,c,d\n2,2,3,4\n", dataset="wide")
    importer.run_import(db, second, worker_id="w1", **RUN)
    message = "Too many columns: the dataset would have 7, at most 5 are allowed (INGEST_MAX_COLUMNS)"
    await refused(five_columns_api, auth, db, b"id,e,f\n3,1,2\n", message, dataset="wide")


@pytest.fixture
async def two_datasets_api(ingest_env):
    settings = IngestSettings(**ingest_env, INGEST_MAX_DATASETS_PER_USER=2)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_an_upload_that_would_create_one_dataset_too_many_is_403_and_leaves_nothing(
    two_datasets_api, auth, admin_auth, db
):
    for name in ("first", "second"):
        await upload_ok(two_datasets_api, auth, b"id,a\n1,2\n", dataset=name)
    before = leftovers(db)
    response = await upload(two_datasets_api, auth, b"id,a\n1,2\n", dataset="third")
    assert response.status == 403, await response.text()
    assert await response.json() == {
        "error": "You already own 2 datasets, the most an account may (INGEST_MAX_DATASETS_PER_USER): "
        "delete one, or upload to one of yours"
    }
    assert leftovers(db) == before
    assert db.datasets.find_one({"_id": "third"}) is None
    # Into a dataset of one's own: still fine. An admin may own any number.
    await upload_ok(two_datasets_api, auth, b"id,a\n3,4\n", dataset="second")
    for name in ("third", "fourth", "fifth"):
        await upload_ok(two_datasets_api, admin_auth, b"id,a\n1,2\n", dataset=name)
