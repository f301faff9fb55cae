from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from auth_service.main import create_app
from auth_service.settings import AuthSettings
from catalog_testkit.constants import TEST_AUDIENCE, TEST_ISSUER


@pytest.fixture
def make_settings(mongo_url, mongo_db_name, signing_key_file):
    def make(**overrides) -> AuthSettings:
        values = {
            "environment": "test",
            "mongo_url": mongo_url,
            "mongo_db": mongo_db_name,
            "mongo_timeout_ms": 1000,
            "private_key_file": signing_key_file,
            "jwt_issuer": TEST_ISSUER,
            "jwt_audience": TEST_AUDIENCE,
            **overrides,
        }
        return AuthSettings(**values)

    return make


@pytest.fixture
def settings(make_settings) -> AuthSettings:
    return make_settings()


@dataclass
class FakeClock:
    """The time the app reads, moved only by the test: no sleeping, and no load can make it late."""

    now: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def start_client():
    """Starts a test client for an app built with ``create_app``; all are closed after the test."""
    clients = []

    async def start(settings: AuthSettings, clock: FakeClock | None = None) -> TestClient:
        app = create_app(settings) if clock is None else create_app(settings, clock=clock)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def client(start_client, settings) -> TestClient:
    return await start_client(settings)


@pytest.fixture
def new_user():
    counter = iter(range(1_000_000))

    def make(**overrides) -> dict:
        n = next(counter)
        user = {"username": f"user{n}", "email": f"user{n}@example.com", "password": "correct horse battery"}
        return {**user, **overrides}

    return make
