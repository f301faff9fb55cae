"""Checks a real response against gateway/openapi.yaml: its status is documented for the operation, its
media type is the documented one, its body matches the schema and its documented headers are there
and well formed. The e2e tests call ``CONTRACT.check(response)`` on what the gateway answered."""

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "gateway" / "openapi.yaml"
SPEC_URI = "urn:catalog-platform:openapi"


class ContractViolation(AssertionError):
    pass


class Contract:
    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.spec: dict[str, Any] = yaml.safe_load(path.read_text())
        self._registry = Registry().with_resource(SPEC_URI, Resource(self.spec, DRAFT202012))
        # Literal segments before parameters, so that /uploads/{task_id} never swallows a fixed path.
        self._paths = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"), template)
            for template in self.spec["paths"]
        ]

    @cached_property
    def operations(self) -> set[tuple[str, str]]:
        return {(method.upper(), path) for path, item in self.spec["paths"].items() for method in item}

    def operation_of(self, method: str, url: str) -> tuple[str, dict[str, Any]]:
        path = urlsplit(url).path
        for pattern, template in self._paths:
            if pattern.match(path) and method.lower() in self.spec["paths"][template]:
                return template, self.spec["paths"][template][method.lower()]
        raise ContractViolation(f"{method} {path} is not a documented operation")

    def documents(self, method: str, url: str) -> bool:
        try:
            self.operation_of(method, url)
        except ContractViolation:
            return False
        return True

    def check(self, response: requests.Response) -> str:
        """Raises ``ContractViolation`` unless ``response`` is one the description allows; returns
        the ``"METHOD /template"`` it was checked as."""
        method = response.request.method
        template, operation = self.operation_of(method, response.request.url)
        where = f"{method} {template} -> {response.status_code}"
        documented, pointer = self._response_for(operation, response.status_code, template, method)
        if documented is None:
            raise ContractViolation(f"{where}: status not documented ({sorted(operation['responses'])})")
        documented, pointer = self._resolve(documented, pointer)
        self._check_headers(where, response, documented)
        content = documented.get("content")
        if not content:
            return f"{method} {template}"
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type not in content:
            raise ContractViolation(f"{where}: Content-Type {media_type!r}, documented {sorted(content)}")
        if not _is_json(media_type):
            # An export's CSV or NDJSON: its media type is what the description can hold it to.
            return f"{method} {template}"
        try:
            body = response.json()
        except ValueError:
            raise ContractViolation(f"{where}: body is not JSON: {response.text[:200]!r}") from None
        escaped = media_type.replace("~", "~0").replace("/", "~1")
        self._validate(where, body, f"{pointer}/content/{escaped}/schema")
        return f"{method} {template}"

    def _response_for(
        self, operation: dict[str, Any], status: int, template: str, method: str
    ) -> tuple[dict[str, Any] | None, str]:
        base = f"#/paths/{template.replace('~', '~0').replace('/', '~1')}/{method.lower()}/responses"
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in operation["responses"]:
                return operation["responses"][key], f"{base}/{key}"
        return None, base

    def _resolve(self, node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
        while "$ref" in node:
            pointer = node["$ref"]
            node = self._registry.resolver(SPEC_URI).lookup(f"{SPEC_URI}{pointer}").contents
        return node, pointer

    def _check_headers(self, where: str, response: requests.Response, documented: dict[str, Any]) -> None:
        for name, header in documented.get("headers", {}).items():
            header, _ = self._resolve(header, "")
            value = response.headers.get(name)
            if value is None:
                if header.get("required"):
                    raise ContractViolation(f"{where}: required header {name} missing")
                continue
            schema = header.get("schema", {})
            if schema.get("type") == "integer":
                if not re.fullmatch(r"[0-9]+", value):
                    raise ContractViolation(f"{where}: header {name}={value!r} is not an integer")
                parsed: Any = int(value)
            else:
                parsed = value
            errors = list(Draft202012Validator(schema).iter_errors(parsed))
            if errors:
                raise ContractViolation(f"{where}: header {name}={value!r}: {errors[0].message}")

    def _validate(self, where: str, body: Any, pointer: str) -> None:
        validator = Draft202012Validator(
            {"$ref": f"{SPEC_URI}{pointer}"},
            registry=self._registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        error = next(iter(sorted(validator.iter_errors(body), key=lambda e: e.path)), None)
        if error is not None:
            location = "/".join(str(part) for part in error.absolute_path) or "(body)"
            raise ContractViolation(f"{where}: body at {location}: {error.message}\nbody: {json.dumps(body)[:500]}")


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


CONTRACT = Contract()
