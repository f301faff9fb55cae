"""The stack says when it is ready: the gateway's GET /readyz, and `make dev`'s ready line and port check."""

import os
import socket
import subprocess

import requests

from catalog_testkit.constants import REPO_ROOT as ROOT


def readiness(base_url: str) -> requests.Response:
    return requests.get(f"{base_url}/readyz", timeout=10)


def test_readyz_is_200_only_when_every_service_is_and_503_names_who_is_not(stack):
    ready = readiness(stack.url)
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert ready.headers["X-Request-ID"]

    stack.stop_service("catalog")
    stack.stop_service("auth")
    try:
        both = readiness(stack.url)
        assert (both.status_code, both.json()) == (503, {"error": "Not ready: auth, catalog"})
        assert both.headers["Retry-After"] == "5" and both.headers["X-Request-ID"]
        # The gateway itself is up all along.
        assert requests.get(f"{stack.url}/healthz", timeout=10).status_code == 200
        stack.start_service("auth")
        assert readiness(stack.url).json() == {"error": "Not ready: catalog"}
    finally:
        for name in ("auth", "catalog"):
            if name not in stack.processes:
                stack.start_service(name)
    assert readiness(stack.url).status_code == 200

    # The service that answers for the others is named when it is the one missing.
    stack.stop_service("ingest")
    try:
        gone = readiness(stack.url)
        assert (gone.status_code, gone.json()) == (503, {"error": "Not ready: ingest"})
        assert gone.headers["Retry-After"] == "5" and gone.headers["X-Request-ID"]
    finally:
        stack.start_service("ingest")
    assert readiness(stack.url).status_code == 200


def test_make_devs_ready_process_prints_one_line_with_the_url_once_the_stack_is_ready(stack):
    env = {**os.environ, "GATEWAY_PORT": str(stack.ports["gateway"]), "STARTUP_TIMEOUT": "1"}
    stack.stop_service("catalog")
    try:
        with subprocess.Popen([ROOT / "scripts" / "wait-ready"], stdout=subprocess.PIPE, text=True, env=env) as ready:
            try:
                # Not ready within STARTUP_TIMEOUT: one line says who is missing...
                assert ready.stdout.readline() == "Stack not ready after 1s: Not ready: catalog\n"
                stack.start_service("catalog")
                # ...and one more once it is there.
                assert ready.stdout.readline() == f"Stack ready: {stack.url} (Ctrl-C stops it)\n"
                # It stays up (honcho would stop the whole stack were it to exit) until told to stop.
                assert ready.poll() is None
            finally:
                ready.terminate()
        assert ready.returncode == 0
    finally:
        if "catalog" not in stack.processes:
            stack.start_service("catalog")


def test_a_port_in_use_is_one_line_naming_it_and_the_variable_that_moves_it():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        check = subprocess.run(
            [str(ROOT / "scripts" / "check-ports"), f"AUTH_PORT={free}", f"GATEWAY_PORT={busy}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert check.returncode == 1
    assert check.stdout == ""
    lines = check.stderr.splitlines()
    assert len(lines) == 1, check.stderr
    assert lines[0].startswith(f"Port {busy} is already in use") and "GATEWAY_PORT=" in lines[0]
    assert "Traceback" not in check.stderr


def test_the_ready_process_says_when_the_store_is_still_opening(tmp_path):
    # The store's process lives (a stand-in here) but does not listen yet: a large catalog opening.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        store_port = probe.getsockname()[1]
    with subprocess.Popen(["sleep", "60"]) as store:
        pid_file = tmp_path / "mongo.pid"
        pid_file.write_text(f"{store.pid}\n")
        env = {
            **os.environ,
            "GATEWAY_PORT": str(store_port),  # nothing there either
            "MONGO_URL": f"mongodb://127.0.0.1:{store_port}",
            "STORE_PID_FILE": str(pid_file),
            "STARTUP_TIMEOUT": "1",
        }
        wait_ready = [ROOT / "scripts" / "wait-ready"]
        try:
            with subprocess.Popen(wait_ready, stdout=subprocess.PIPE, text=True, env=env) as ready:
                try:
                    assert ready.stdout.readline() == "Waiting for the store to open (5 s)\n"
                    assert ready.poll() is None
                finally:
                    ready.terminate()
        finally:
            store.kill()
