"""The pytest fixtures every service suite uses: real servers on free ports, nothing mocked.

Loaded with ``-p catalog_testkit.plugin`` (each suite's pytest settings): each suite starts one
SecantusDB and one Redis on free ports, and each test gets a database of its own.
"""

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# The kit's modules that assert, registered before anything imports them: their failures then say
# what was compared, as a test's own asserts do.
pytest.register_assert_rewrite("catalog_testkit.accounts", "catalog_testkit.faults", "catalog_testkit.paging")

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.database import Database  # noqa: E402

from catalog_testkit.processes import (  # noqa: E402
    MongoServer,
    free_port,
    redis_command,
    start_process,
    stop_process,
    wait_for_port,
)
from service_common.tokens import public_jwk  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "latency_budget: holds a service to a latency its users are promised (a 503 within 5 s, a query "
        "budget); `make test` runs these after the other suites, alone on the machine",
    )


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory) -> Iterator[MongoServer]:
    server = MongoServer(tmp_path_factory.mktemp("mongo"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_url(mongo_server: MongoServer) -> str:
    return mongo_server.url


@pytest.fixture
def mongo_db_name(mongo_url: str) -> Iterator[str]:
    """A database of this test's own, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield name
    client = MongoClient(mongo_url, serverSelectionTimeoutMS=2000)
    try:
        client.drop_database(name)
    except Exception:
        pass
    finally:
        client.close()


@pytest.fixture
def mongo_db(mongo_url: str, mongo_db_name: str) -> Iterator[Database]:
    """A synchronous handle on this test's database, for arranging and checking what is stored."""
    client = MongoClient(mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True)
    yield client[mongo_db_name]
    client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    process = start_process(redis_command(port), log_path=tmp_path_factory.mktemp("redis") / "redis.log")
    wait_for_port(port, "redis-server")
    yield f"redis://127.0.0.1:{port}/0"
    stop_process(process)


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def signing_key_file(signing_key: Ed25519PrivateKey, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "jwt-private.pem"
    path.write_bytes(
        signing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


@pytest.fixture(scope="session")
def jwks_url(signing_key: Ed25519PrivateKey) -> Iterator[str]:
    """A real HTTP server publishing ``signing_key`` as a JWKS, as the auth service does."""
    body = json.dumps({"keys": [public_jwk(signing_key.public_key())]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()
