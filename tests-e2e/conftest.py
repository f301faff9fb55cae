"""The end-to-end suite: the whole stack from the Procfile, on free ports, reached only through the gateway."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import signup_and_login
from pages import chromium
from playwright.sync_api import Browser

from catalog_testkit.constants import REPO_ROOT as ROOT
from catalog_testkit.constants import SEED_CSV
from catalog_testkit.stack import TEST_GATEWAY_LIMITS, LocalStack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    # Generous per-IP limits, so that only the rate-limit test itself meets them.
    local = LocalStack(ROOT, tmp_path_factory.mktemp("stack"), env=TEST_GATEWAY_LIMITS)
    with local:
        yield local


@pytest.fixture(scope="session")
def seed_csv() -> Path:
    """The sample catalog shipped in examples/: the seed's 12 columns and its awkward cases."""
    return SEED_CSV


@pytest.fixture
def auth_headers(stack) -> dict[str, str]:
    """The Authorization header of a fresh user, signed up and logged in through the gateway."""
    return signup_and_login(stack.url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright (which never downloads a browser here): one per module."""
    with chromium() as browser:
        yield browser
