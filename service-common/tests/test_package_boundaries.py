"""Services never import each other, and the shared package imports none of them: each image holds
only its own service and ``service_common``, so such an import would fail there, not in the tests
(where every package shares one virtual environment)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(path.name for path in ROOT.glob("*-service/*_service"))


def imports_among(package: Path, packages: set[str]) -> dict[str, set[str]]:
    """Which of ``packages`` each module of ``package`` imports, for the modules that import any."""
    found: dict[str, set[str]] = {}
    for module in sorted(package.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        if names & packages:
            found[str(module.relative_to(ROOT))] = names & packages
    return found


def test_every_service_package_is_found():
    assert SERVICES == ["auth_service", "catalog_service", "ingest_service"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service):
    (package,) = ROOT.glob(f"*-service/{service}")
    assert imports_among(package, set(SERVICES) - {service}) == {}


def test_the_shared_package_imports_no_service():
    assert imports_among(ROOT / "service-common" / "service_common", set(SERVICES)) == {}
