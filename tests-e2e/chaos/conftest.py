"""The fault-injection suite (``make chaos``): one whole stack per test module, whose processes the
tests stop, kill and start again. A module tunes its stack with a ``STACK_ENV`` dict."""

from pathlib import Path

import pytest

from catalog_testkit.constants import REPO_ROOT as ROOT
from catalog_testkit.stack import TEST_GATEWAY_LIMITS, LocalStack

# Short leases and checks, so that a vanished worker is noticed within seconds, not minutes.
CHAOS_ENV = {
    **TEST_GATEWAY_LIMITS,
    "INGEST_JOB_LEASE_SECONDS": "4",
    "INGEST_STALE_CHECK_SECONDS": "2",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The stack's DATA_DIR; a module may put it elsewhere (test_disk_full.py: on a tmpfs of its own)."""
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="module")
def stack(request, data_dir):
    """Overrides the e2e suite's session stack: each module breaks its own."""
    env = {**CHAOS_ENV, **getattr(request.module, "STACK_ENV", {})}
    with LocalStack(ROOT, data_dir, env=env) as local:
        yield local
