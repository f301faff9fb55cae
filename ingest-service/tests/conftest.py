"""Real SecantusDB, real Redis, the API in-process and real ``ingest-worker`` processes."""

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient
from pymongo.database import Database

from catalog_testkit.accounts import mint_token
from catalog_testkit.polling import poll
from catalog_testkit.processes import start_process, stop_process
from ingest_service.main import create_app
from ingest_service.settings import IngestSettings

WORKER_BINARY = Path(sys.executable).with_name("ingest-worker")


@pytest.fixture
def ingest_env(mongo_url: str, mongo_db_name: str, redis_url: str, jwks_url: str) -> dict[str, str]:
    """The environment of this test's API and workers: its own database and its own queue."""
    return {
        "ENVIRONMENT": "test",
        "MONGO_URL": mongo_url,
        "MONGO_DB": mongo_db_name,
        "REDIS_URL": redis_url,
        "JWKS_URL": jwks_url,
        "INGEST_QUEUE": f"ingest-test-{uuid.uuid4().hex[:8]}",
        "INGEST_BATCH_SIZE": "500",
        # Short, so that a killed worker's job is taken over within seconds.
        "INGEST_JOB_LEASE_SECONDS": "3",
        "INGEST_VISIBILITY_TIMEOUT": "3",
    }


@pytest.fixture
def settings(ingest_env: dict[str, str]) -> IngestSettings:
    return IngestSettings(**ingest_env)


@pytest.fixture
async def api(settings: IngestSettings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
def db(mongo_url: str, mongo_db_name: str) -> Iterator[Database]:
    client = MongoClient(mongo_url, tz_aware=True)
    yield client[mongo_db_name]
    client.close()


def _bearer(signing_key, user_id: str, *roles: str) -> dict[str, str]:
    token = mint_token(signing_key, sub=user_id, username=user_id, roles=list(roles))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(signing_key) -> dict[str, str]:
    """An editor's token: the role a development sign-up gets."""
    return _bearer(signing_key, "user-1", "editor")


@pytest.fixture
def other_auth(signing_key) -> dict[str, str]:
    return _bearer(signing_key, "user-2", "editor")


@pytest.fixture
def viewer_auth(signing_key) -> dict[str, str]:
    return _bearer(signing_key, "viewer-1", "viewer")


@pytest.fixture
def admin_auth(signing_key) -> dict[str, str]:
    return _bearer(signing_key, "admin-1", "admin")


@pytest.fixture
def start_worker(ingest_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts ``ingest-worker`` processes on this test's database and queue; stops them afterwards."""
    workers: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        log_path = tmp_path / f"worker-{len(workers)}.log"
        process = start_process([str(WORKER_BINARY)], log_path=log_path, env={**ingest_env, **env})
        workers.append(process)
        poll(lambda: b" ready." in log_path.read_bytes() or process.poll() is not None, within=60, what="ingest-worker")
        assert process.poll() is None, log_path.read_text()
        return process

    yield start
    for process in workers:
        stop_process(process)
