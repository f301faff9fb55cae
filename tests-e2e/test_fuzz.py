"""Contract fuzzing: schemathesis generates requests for every operation of gateway/openapi.yaml (valid
and invalid ones), sends them through the gateway of a running stack and checks every answer: never a
5xx, and status, media type, headers and body as documented. Deterministic, so a run repeats exactly."""

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from helpers import bearer, import_file
from openapi_contract import CONTRACT

from catalog_testkit.accounts import create_admin
from catalog_testkit.constants import REPO_ROOT as ROOT
from catalog_testkit.stack import LocalStack

SPEC = ROOT / "gateway" / "openapi.yaml"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    # A request the description says is invalid is refused with a 4xx.
    "negative_data_rejection",
]
MAX_EXAMPLES = 50


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack of its own, whose per-address limits on /signup, /login and /token/refresh are far
    above what the fuzzer sends, so that its requests reach the services."""
    local = LocalStack(
        ROOT, tmp_path_factory.mktemp("stack"), env={"GATEWAY_AUTH_RATE": "2000r/s", "GATEWAY_AUTH_BURST": "2000"}
    )
    try:
        local.start()
        yield local
    finally:
        local.stop()


def test_every_operation_survives_fuzzing_and_answers_as_documented(stack, seed_csv, tmp_path):
    # An admin's token, so that every operation (the user management ones too) is reached, not only refused.
    headers = bearer(create_admin(stack, "fuzz_admin"))
    # A catalog to read, so that reads meet items and not only empty pages.
    import_file(stack.url, headers, seed_csv)

    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(SPEC),
        "--url",
        stack.url,
        "--header",
        f"Authorization: {headers['Authorization']}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        # One worker: with two threads, hypothesis describing its filters parses lambda source in both
        # at once, which CPython 3.11 can fail with "AST constructor recursion depth mismatch"
        # (python/cpython#106905), a runtime error that is schemathesis's, not the server's.
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--output-truncate",
        "true",
    ]
    # Its own working directory: schemathesis reads its schemathesis.toml, and writes reports, there.
    # An invalid request may also be refused by the gateway as too long (414): a long filter value in
    # four-byte characters passes nginx's limit on the request line before the service's own on the value.
    rejections = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "5xx"]
    config = "[checks.negative_data_rejection]\nexpected-statuses = [" + ", ".join(f'"{s}"' for s in rejections) + "]\n"
    (tmp_path / "schemathesis.toml").write_text(config)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    assert result.returncode == 0, f"schemathesis found failures:\n{result.stdout[-20_000:]}\n{result.stderr[-5_000:]}"
    assert f"Tested: {len(CONTRACT.operations)}" in result.stdout
    assert requests.get(f"{stack.url}/healthz", timeout=10).status_code == 200
