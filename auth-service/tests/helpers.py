"""The auth suite's account helpers: each test module imports these, none keeps its own copy."""

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient


async def signup(client: TestClient, user: dict) -> dict:
    """Signs ``user`` up; the public user the service answers with."""
    response = await client.post("/signup", json=user)
    assert response.status == 201, await response.text()
    return (await response.json())["user"]


async def login(client: TestClient, username: str, password: str) -> ClientResponse:
    return await client.post("/login", json={"username": username, "password": password})


async def signup_and_login(client: TestClient, user: dict) -> dict:
    """The public user and its log-in answer (``access_token``, ``refresh_token``...) in one dict."""
    created = await signup(client, user)
    response = await login(client, user["username"], user["password"])
    assert response.status == 200, await response.text()
    return {**created, **(await response.json())}
