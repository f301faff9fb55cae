"""The whole local stack, started from the repository's Procfile on free ports.

The e2e suite and the benchmarks use it, so they run exactly the commands
``make dev`` runs, but on their own ports and data folder, never touching a
running dev stack. Each process can be stopped and started again, which the
fault tests need.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from pymongo import MongoClient
from pymongo.database import Database

from service_common.keygen import write_signing_key
from service_common.testing import free_port, port_open, start_process, stop_process, wait_for

# Per-IP limits on /signup, /login and /token/refresh for suites that sign up a user per test from one
# address, so that only a test aimed at the limit itself meets it.
TEST_GATEWAY_LIMITS = {"GATEWAY_AUTH_RATE": "50r/s", "GATEWAY_AUTH_BURST": "100"}

START_ORDER = ("mongo", "redis", "auth", "ingest", "worker", "beat", "catalog", "gateway")


def read_procfile(path: Path) -> dict[str, str]:
    commands = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


class LocalStack:
    def __init__(
        self, root: Path, data_dir: Path, env: dict[str, str] | None = None, *, start_timeout: float = 60
    ) -> None:
        self.root = root
        # Each process's seconds to ready when the stack starts, the store's included: one over a
        # catalog of millions of items takes minutes to open.
        self.start_timeout = start_timeout
        self.data_dir = data_dir
        self.commands = read_procfile(root / "Procfile")
        self.ports = {name: free_port() for name in ("gateway", "auth", "ingest", "catalog", "mongo", "redis")}
        key_file = data_dir / "keys" / "jwt-private.pem"
        write_signing_key(key_file, development=True)
        venv_bin = str(Path(sys.executable).parent)
        self.env = {
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "ENVIRONMENT": "development",
            "DATA_DIR": str(data_dir),
            # As the Makefile says when the embedded store runs: its free space is read there.
            "STORE_DISK_PATH": str(data_dir),
            # As the Makefile says too: scripts/run-mongo writes the store's process id there, and while
            # it lives the services wait for the store to open, however long a large catalog takes.
            "STORE_PID_FILE": str(data_dir / "mongo.pid"),
            # The suites' stacks share the machine's disk with everything else on it: keep a reserve
            # small enough for a test machine, which the disk-full suite sets for itself.
            "INGEST_MIN_FREE_BYTES": str(32 * 1024**2),
            "GATEWAY_PORT": str(self.ports["gateway"]),
            "AUTH_PORT": str(self.ports["auth"]),
            "INGEST_PORT": str(self.ports["ingest"]),
            "CATALOG_PORT": str(self.ports["catalog"]),
            "MONGO_PORT": str(self.ports["mongo"]),
            "REDIS_PORT": str(self.ports["redis"]),
            "MONGO_URL": f"mongodb://127.0.0.1:{self.ports['mongo']}",
            "MONGO_DB": "catalog_platform",
            "REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "JWKS_URL": f"http://127.0.0.1:{self.ports['auth']}/.well-known/jwks.json",
            "AUTH_UPSTREAM": f"127.0.0.1:{self.ports['auth']}",
            "INGEST_UPSTREAM": f"127.0.0.1:{self.ports['ingest']}",
            "CATALOG_UPSTREAM": f"127.0.0.1:{self.ports['catalog']}",
            "AUTH_PRIVATE_KEY_FILE": str(key_file),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def log_path(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def start(self, names: tuple[str, ...] = START_ORDER) -> "LocalStack":
        for name in names:
            self.start_service(name, self.start_timeout)
        return self

    def start_service(self, name: str, timeout: float = 60, *, instance: int = 1) -> str:
        """Starts a Procfile process and waits until it is ready; returns the key that stops it.

        ``instance`` > 1 runs one more copy of the same command (a second worker), kept and
        logged under ``<name>-<instance>``.
        """
        key = name if instance == 1 else f"{name}-{instance}"
        log_path = self.log_path(key)
        # A restarted process appends to its old log: only what it writes from now on tells it is ready.
        log_start = log_path.stat().st_size if log_path.exists() else 0
        # exec: the server replaces the shell, so a signal reaches it directly.
        process = start_process(f"exec {self.commands[name]}", log_path=log_path, env=self.env, cwd=self.root)
        self.processes[key] = process
        try:
            wait_for(lambda: self._ready(name, key, process, log_start), timeout, key)
        except TimeoutError:
            raise TimeoutError(f"{key} not ready; its log:\n{self.log_tail(key)}") from None
        return key

    def stop_service(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            stop_process(process, sig)

    def stop(self) -> None:
        extra_instances = [key for key in self.processes if key not in START_ORDER]
        for name in [*extra_instances, *reversed(START_ORDER)]:
            self.stop_service(name)

    @contextmanager
    def database(self) -> Iterator[Database]:
        """The stack's own database, read directly to check what the product wrote, or did not."""
        client = MongoClient(self.env["MONGO_URL"], serverSelectionTimeoutMS=10_000, tz_aware=True)
        try:
            yield client[self.env["MONGO_DB"]]
        finally:
            client.close()

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_path(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _ready(self, name: str, key: str, process: subprocess.Popen, log_start: int) -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{key} exited with {process.returncode}; its log:\n{self.log_tail(key)}")
        if name in ("mongo", "redis"):
            return port_open(self.ports[name])
        if name in ("auth", "ingest", "catalog"):
            return requests.get(f"http://127.0.0.1:{self.ports[name]}/readyz", timeout=2).status_code == 200
        if name == "gateway":
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        # The worker and beat have no port: ready once they have logged that they are.
        with self.log_path(key).open("rb") as log:
            log.seek(log_start)
            return b"ready" in log.read()

    def __enter__(self) -> "LocalStack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()
