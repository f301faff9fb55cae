"""Servers for the tests, each on a free port and in a process group of its own: the store, Redis,
and any command a test starts and stops."""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pymongo import MongoClient

from catalog_testkit.polling import poll

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


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, what: str, within: float = 30) -> None:
    poll(lambda: port_open(port), within=within, what=f"{what} listening on {port}")


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
            poll(lambda: client.admin.command("ping"), within=60, what="SecantusDB", ignore=(Exception,))
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
