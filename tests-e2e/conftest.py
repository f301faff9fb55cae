"""The end-to-end suite: the whole stack from the Procfile, on free ports, reached only through the gateway."""

import uuid
from pathlib import Path

import pytest
import requests

from service_common.stack import TEST_GATEWAY_LIMITS, LocalStack

ROOT = Path(__file__).resolve().parent.parent
SEED_CSV = ROOT / "examples" / "movies.csv"


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
    """The sample catalog shipped in examples/: the seed's 12 columns and its awkward cases."""
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
