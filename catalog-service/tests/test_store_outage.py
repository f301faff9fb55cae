"""A store that is down answers 503, quickly, and the service recovers without a restart."""

import time

import pytest

from catalog_testkit.polling import poll_async

pytestmark = pytest.mark.store_outage


RECOVERY_SECONDS = 20
# Between two tries while the store comes back: each failed try is already a quick 503, so without a
# pause the loop would flood the reconnecting driver with requests.
RETRY_PAUSE = 0.2


async def _wait_until_served(client, path: str):
    async def get():
        response = await client.get(path)
        await response.read()
        return response

    return await poll_async(
        get, lambda response: response.status == 200, within=RECOVERY_SECONDS, what=path, interval=RETRY_PAUSE
    )


async def test_store_down_is_a_503_and_the_service_recovers_when_it_is_back(client, catalog, mongo_server):
    assert (await client.get("/get_content")).status == 200
    mongo_server.stop()
    try:
        for path in ("/get_content", "/contents/s1"):
            response = await client.get(path)
            assert response.status == 503
            assert await response.json() == {"error": "Service temporarily unavailable, try again shortly"}
            assert response.headers["Retry-After"] == "5"
    finally:
        mongo_server.start()

    response = await _wait_until_served(client, "/get_content?limit=3")
    assert response.status == 200
    assert [item["id"] for item in await response.json()] == [d["key"] for d in catalog[:3]]


@pytest.mark.latency_budget
async def test_store_down_answers_within_a_few_seconds(client, catalog, mongo_server):
    assert (await client.get("/get_content")).status == 200
    mongo_server.stop()
    try:
        started = time.monotonic()
        response = await client.get("/get_content")
        elapsed = time.monotonic() - started
    finally:
        mongo_server.start()
    await _wait_until_served(client, "/get_content")

    assert response.status == 503
    assert elapsed < 5
