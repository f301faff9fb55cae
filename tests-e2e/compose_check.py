"""compose.yaml is valid for a real Compose implementation and runs what the local stack runs.

Docker cannot run here, so this is what can be checked without it: the file
passes `docker-compose config`, every built service's Dockerfile exists and
names its command, each service's command is the Procfile's, and its port is
the local stack's default.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from catalog_testkit.constants import REPO_ROOT as ROOT
from catalog_testkit.stack import read_procfile

# compose service -> (Procfile process, port variable, default port)
SERVICES = {
    "auth": ("auth", "AUTH_PORT", 8001),
    "ingest": ("ingest", "INGEST_PORT", 8002),
    "worker": ("worker", None, None),
    "beat": ("beat", None, None),
    "catalog": ("catalog", "CATALOG_PORT", 8003),
}


@pytest.fixture(scope="module")
def compose() -> dict:
    env = {**os.environ, "CATALOG_CURSOR_SECRET": "validation-only"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_required_settings_are_enforced(compose):
    env = {k: v for k, v in os.environ.items() if k != "CATALOG_CURSOR_SECRET"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode != 0
    assert "CATALOG_CURSOR_SECRET" in result.stderr or "Variable not set" in result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_the_local_stacks_command_and_port(compose, name):
    process, port_variable, default_port = SERVICES[name]
    service = compose["services"][name]
    procfile = read_procfile(ROOT / "Procfile")
    assert service["command"] == [procfile[process]]
    if port_variable:
        assert service["environment"][port_variable] == str(default_port)
        assert re.search(rf"\b{port_variable}\b.*\b{default_port}\b", (ROOT / "Makefile").read_text())


@pytest.mark.parametrize("name", ["auth", "ingest", "catalog"])
def test_each_built_service_has_a_dockerfile_with_a_healthcheck_and_a_non_root_user(compose, name):
    build = compose["services"][name]["build"]
    dockerfile = Path(build["context"]) / build["dockerfile"]
    assert dockerfile.exists(), dockerfile
    text = dockerfile.read_text()
    assert "HEALTHCHECK" in text
    assert re.search(r"^USER (?!root)", text, re.MULTILINE)


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_the_worker_and_beat_share_the_ingest_image(compose, name):
    assert compose["services"][name]["image"] == compose["services"]["ingest"]["image"]
    assert "build" not in compose["services"][name]


def test_the_gateway_uses_the_same_template_and_cannot_reach_the_databases(compose):
    gateway = compose["services"]["gateway"]
    # docker-compose 1.x prints short "source:target:mode" volume strings.
    mounts = {target: source for source, target, *_ in (volume.split(":") for volume in gateway["volumes"])}
    assert Path(mounts["/etc/nginx/templates"]) == ROOT / "gateway" / "templates"
    assert set(gateway["networks"]) == {"front"}
    for database in ("mongo", "redis"):
        assert "front" not in compose["services"][database]["networks"]
    assert gateway["ports"] == ["127.0.0.1:5000:5000/tcp"]


def test_dependencies_wait_for_health(compose):
    for name, service in compose["services"].items():
        assert "healthcheck" in service or name in ("auth", "ingest", "catalog"), name
        for dependency in service.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy", name
