"""Pytest fixtures and helpers shared by every suite: real servers on free ports, nothing mocked.

Load with ``pytest_plugins = ["service_common.testing"]`` in a ``conftest.py``.
Each suite starts one SecantusDB and one Redis on free ports, and each test
gets a database of its own.
"""

import csv
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymongo import MongoClient
from pymongo.database import Database

from service_common.tokens import public_jwk

TEST_ISSUER = "catalog-auth"
TEST_AUDIENCE = "catalog-api"

# The seed's twelve columns, as examples/movies.csv has them.
MOVIE_COLUMNS = ("show_id", "type", "title", "director", "cast", "country", "date_added", "release_year",
                 "rating", "duration", "listed_in", "description")  # fmt: skip


def movies_csv(
    numbers: Iterable[int] | int,
    *,
    start: int = 0,
    prefix: str = "s",
    line_end: str = "\n",
    extra_rows: Sequence[Sequence[object]] = (),
) -> bytes:
    """The CSV writer every suite uses: one row per number (``numbers`` rows from ``start`` when it is
    a count), keyed ``<prefix><number>``, in the seed's 12 columns, with quoted commas as in the seed;
    ``extra_rows`` are written as given after them."""
    if isinstance(numbers, int):
        numbers = range(start, start + numbers)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_end)
    writer.writerow(MOVIE_COLUMNS)
    for n in numbers:
        writer.writerow(
            [
                f"{prefix}{n}",
                "Movie" if n % 3 else "TV Show",
                f"Title {prefix}{n}",
                f"Director {n % 97}",
                "Actor A, Actor B",
                "India",
                "September 2, 2021",
                1990 + n % 30,
                "TV-14",
                f"{90 + n % 60} min",
                "Dramas, International Movies",
                f"Description of title {prefix}{n}, about as long as a real one is.",
            ]
        )
    writer.writerows(extra_rows)
    return out.getvalue().encode()


def zipped(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive holding ``files`` (name -> content)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def write_movies_csv(path: Path, numbers: Iterable[int], prefix: str = "s", **options) -> Path:
    """``movies_csv`` written to ``path``."""
    path.write_bytes(movies_csv(numbers, prefix=prefix, **options))
    return path


_PORTS_GIVEN: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A free port on 127.0.0.1 for a server to bind, outside the kernel's ephemeral range.

    A port found by binding to port 0 comes from the ephemeral range, the one the kernel also gives
    to outgoing connections: between choosing it and the server binding it, a client socket of the
    stack (a driver's connection to the store, a readiness probe) may take it, and the server then
    fails with "address already in use". Ports below (or above) that range are never handed out that
    way; each one is given once per process.
    """
    low, high = _ephemeral_range()
    candidates = range(10_000, low) if low > 11_000 else range(high + 1, 65_536)
    rng = random.Random()
    for _ in range(1_000):
        port = rng.choice(candidates)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError(f"no free port in {candidates.start}-{candidates.stop - 1}")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_process(
    args: list[str] | str, *, log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start a server in its own process group, its output going to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The child keeps its own copy of the descriptor; ours is closed at once.
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args,
            shell=isinstance(args, str),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def secantus_command(port: int, storage: str = ":memory:") -> list[str]:
    binary = Path(sys.executable).with_name("secantusd-py")
    # Test commands: ``configureFailPoint`` lets a test make the store answer with its own errors.
    return [
        str(binary),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        storage,
        "--standalone",
        "--log-level",
        "WARNING",
        "--enable-test-commands",
    ]


def redis_command(port: int) -> list[str]:
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    return [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]


class MongoServer:
    """A SecantusDB server that a test may stop and start again on the same port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"mongodb://127.0.0.1:{self.port}"
        self.storage = log_dir / f"secantus-{self.port}"
        self.log_path = log_dir / f"secantus-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = start_process(secantus_command(self.port, str(self.storage)), log_path=self.log_path)
        client = MongoClient(self.url, serverSelectionTimeoutMS=500)
        try:
            wait_for(lambda: client.admin.command("ping"), 60, "SecantusDB")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


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
    wait_for(lambda: port_open(port), 30, "redis-server")
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


def mint_token(private_key: Ed25519PrivateKey, *, kid: str | None = None, **claims) -> str:
    """A token signed like the auth service signs them; ``claims`` override the defaults."""
    now = int(time.time())
    payload = {
        "sub": "user-1",
        "username": "tester",
        "iat": now,
        "exp": now + 900,
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    headers = {"kid": kid or public_jwk(private_key.public_key())["kid"]}
    return jwt.encode(payload, private_key, algorithm="EdDSA", headers=headers)


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
