"""The CLI against the whole stack from the Procfile, on free ports: real gateway, services, store and worker.

Each test runs the installed ``catalogctl`` console script in a subprocess, as a user would, with
its own config directory (``XDG_CONFIG_HOME``), so stored tokens never leak between tests.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from catalog_testkit.constants import FINISHED, REPO_ROOT, SEED_CSV
from catalog_testkit.files import write_movies_csv
from catalog_testkit.polling import poll
from catalog_testkit.stack import TEST_GATEWAY_LIMITS, LocalStack

CATALOGCTL = str(Path(sys.executable).with_name("catalogctl"))
PASSWORD = "cli-password-1"


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    # Generous per-IP limits: every test signs up and logs in from the same address.
    local = LocalStack(REPO_ROOT, tmp_path_factory.mktemp("stack"), env=TEST_GATEWAY_LIMITS)
    with local:
        yield local


@pytest.fixture
def config_home(tmp_path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def cli_env(stack, config_home) -> dict[str, str]:
    return {
        **os.environ,
        "CATALOG_URL": stack.url,
        "XDG_CONFIG_HOME": str(config_home),
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def catalogctl(cli_env) -> Callable[..., Result]:
    """Runs the console script, off a terminal; no output of it may ever be a traceback."""

    def run(*args: str, input: str | None = None, timeout: float = 120) -> Result:
        completed = subprocess.run(
            [CATALOGCTL, *args],
            capture_output=True,
            text=True,
            env=cli_env,
            input=input,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        assert "Traceback" not in completed.stderr, completed.stderr
        return Result(completed.returncode, completed.stdout, completed.stderr)

    return run


def new_username() -> str:
    return f"cli_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def user(catalogctl) -> str:
    """A fresh account, logged in through the CLI."""
    name = new_username()
    result = catalogctl("signup", "--username", name, "--email", f"{name}@example.com", "--password", PASSWORD)
    assert result.exit_code == 0, result.stderr
    result = catalogctl("login", "--username", name, "--password", PASSWORD)
    assert result.exit_code == 0, result.stderr
    return name


def write_csv(path: Path, rows: int, *, prefix: str | None = None, extra_rows: list[list[str]] = ()) -> Path:
    """A CSV in the seed's twelve columns, its keys unique to this file (the stack is shared by every test)."""
    return write_movies_csv(path, range(rows), prefix=f"{prefix or uuid.uuid4().hex[:8]}-", extra_rows=extra_rows)


def wait_for_job(base_url: str, headers: dict[str, str], task_id: str, timeout: float = 60) -> dict:
    def status() -> dict:
        return requests.get(f"{base_url}/fetch_csv_status/{task_id}", headers=headers, timeout=10).json()

    return poll(status, lambda job: job["status"] in FINISHED, within=timeout, what=f"import {task_id}", interval=0.2)


@pytest.fixture(scope="session")
def seeded(stack) -> str:
    """The seed's movies.csv imported once, through the API (the CLI's own upload is tested on its own files)."""
    name = new_username()
    requests.post(
        f"{stack.url}/signup", json={"username": name, "email": f"{name}@example.com", "password": PASSWORD}, timeout=10
    ).raise_for_status()
    token = requests.post(f"{stack.url}/login", json={"username": name, "password": PASSWORD}, timeout=10).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    with SEED_CSV.open("rb") as file:
        answer = requests.post(
            f"{stack.url}/upload_csv", files={"file": ("movies.csv", file)}, headers=headers, timeout=30
        )
    assert answer.status_code == 202, answer.text
    assert wait_for_job(stack.url, headers, answer.json()["task_id"])["status"] == "Success"
    return stack.url
