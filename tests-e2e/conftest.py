"""The end-to-end suite: the whole stack from the Procfile, on free ports, reached only through the gateway."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from service_common.stack import TEST_GATEWAY_LIMITS, LocalStack

ROOT = Path(__file__).resolve().parent.parent
SEED_CSV = ROOT.parent / "shared" / "seed" / "movies.csv"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    # Generous per-IP limits, so that only the rate-limit test itself meets them.
    local = LocalStack(
        ROOT, tmp_path_factory.mktemp("stack"), env=TEST_GATEWAY_LIMITS
    )
    with local:
        yield local


@pytest.fixture(scope="session")
def seed_csv() -> Path:
    assert SEED_CSV.exists(), f"the seed CSV is expected at {SEED_CSV}"
    return SEED_CSV


def signup_and_login(base_url: str) -> dict[str, str]:
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    user = {"username": name, "email": f"{name}@example.com", "password": "e2e-password-1"}
    response = requests.post(f"{base_url}/signup", json=user, timeout=10)
    assert response.status_code == 201, response.text
    response = requests.post(f"{base_url}/login", json={"username": name, "password": user["password"]}, timeout=10)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def auth_headers(stack) -> dict[str, str]:
    """The Authorization header of a fresh user, signed up and logged in through the gateway."""
    return signup_and_login(stack.url)


def create_admin(stack: LocalStack, prefix: str = "admin") -> dict:
    """An admin made the operator's way (``auth-admin create-admin`` next to the stack's store, the
    password piped in), then logged in through the gateway: its id, username, password and tokens."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    password = "e2e-admin-password"
    command = [str(Path(sys.executable).with_name("auth-admin")), "create-admin", "--username", name,
               "--email", f"{name}@example.com"]  # fmt: skip
    result = subprocess.run(command, input=password + "\n", env=stack.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    response = requests.post(f"{stack.url}/login", json={"username": name, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    tokens = response.json()
    me = requests.get(f"{stack.url}/me", headers=bearer(tokens), timeout=10).json()
    return {**tokens, "id": me["id"], "username": name, "password": password}


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}
