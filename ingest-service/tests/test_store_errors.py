"""The store answering with an error of its own (not unreachable): every endpoint a JSON 503 with
``Retry-After``, never a 500, nothing left behind, and all well again once the store is.

The errors are the store's real answers, injected with its ``failCommand`` fail point (the test store
runs with test commands on), scoped to the API's own connections.
"""

from collections.abc import Iterator

import pytest
from pymongo import MongoClient

from catalog_testkit.files import movies_csv
from catalog_testkit.store import leftovers

from .helpers import upload, upload_ok

UNAVAILABLE = {"error": "Service temporarily unavailable, try again shortly"}


class StoreFailure:
    def __init__(self, client: MongoClient) -> None:
        self._client = client

    def fail(self, commands: list[str], **error) -> None:
        """The API's ``commands`` fail with ``error`` until ``heal``."""
        data = {"failCommands": commands, "appName": "ingest-service", **error}
        self._client.admin.command({"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": data})

    def heal(self) -> None:
        self._client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


@pytest.fixture
def store(mongo_url: str) -> Iterator[StoreFailure]:
    client = MongoClient(mongo_url)
    failure = StoreFailure(client)
    yield failure
    failure.heal()
    client.close()


@pytest.mark.parametrize(
    "error",
    [
        {"errorCode": 1},  # InternalError: what a store meeting a full disk answered in issue 14
        {"errorCode": 50},  # MaxTimeMSExpired: an operation timed out
        {"errorCode": 14031},  # OutOfDiskSpace
        {"closeConnection": True},  # the connection dropped: AutoReconnect
    ],
    ids=["InternalError", "MaxTimeMSExpired", "OutOfDiskSpace", "connection-closed"],
)
async def test_a_store_error_on_a_read_is_a_json_503_with_retry_after_on_every_endpoint(api, auth, store, error):
    task_id = await upload_ok(api, auth, movies_csv(3))
    store.fail(["find", "aggregate", "count", "findAndModify"], **error)
    for method, path in [
        ("GET", f"/fetch_csv_status/{task_id}"),
        ("GET", "/uploads"),
        ("DELETE", f"/uploads/{task_id}"),
    ]:
        response = await api.request(method, path, headers=auth)
        assert response.status == 503, (path, await response.text())
        assert await response.json() == UNAVAILABLE
        assert int(response.headers["Retry-After"]) >= 1
    store.heal()  # nothing restarted
    status = await api.get(f"/fetch_csv_status/{task_id}", headers=auth)
    assert (status.status, (await status.json())["status"]) == (200, "Pending")


async def test_a_write_error_during_an_upload_is_a_503_that_leaves_nothing(api, auth, db, store):
    store.fail(["insert"], errorCode=14031)
    response = await upload(api, auth, movies_csv(2_000))
    assert response.status == 503
    assert await response.json() == UNAVAILABLE
    assert response.headers["Retry-After"]
    assert leftovers(db) == {"import_jobs": 0, "uploads.files": 0, "uploads.chunks": 0}

    store.heal()
    assert (await upload(api, auth, movies_csv(5))).status == 202
