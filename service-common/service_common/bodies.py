"""Reading request bodies and query strings into typed models, refusing bad input with a 4xx."""

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from service_common.errors import ApiError

Model = TypeVar("Model", bound=BaseModel)

DEFAULT_MAX_JSON_BYTES = 64 * 1024


async def read_json_object(request: web.Request, *, max_bytes: int = DEFAULT_MAX_JSON_BYTES) -> dict[str, Any]:
    """The request body as a JSON object, or an ``ApiError`` that says what is wrong with it."""
    if request.content_type != "application/json":
        raise ApiError(415, "Content-Type must be application/json")
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"Request body too large (limit {max_bytes} bytes)")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ApiError(413, f"Request body too large (limit {max_bytes} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "Request body is not valid UTF-8") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON") from None
    except RecursionError:  # "[[[[..." 64 KiB deep: the parser gives up before the limit does
        raise ApiError(400, "Request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return data


def parse_model(model: type[Model], data: Any, *, context: dict[str, Any] | None = None) -> Model:
    """Validate ``data`` with ``model`` (its validators given ``context``); a 400 naming every bad field otherwise."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        details = [_field_error(err) for err in exc.errors(include_url=False, include_input=False)]
        fields = ", ".join(dict.fromkeys(d["field"] for d in details))
        raise ApiError(400, f"Invalid value for: {fields}", details=details) from None


async def read_model(request: web.Request, model: type[Model], *, max_bytes: int = DEFAULT_MAX_JSON_BYTES) -> Model:
    return parse_model(model, await read_json_object(request, max_bytes=max_bytes))


def _field_error(err: dict[str, Any]) -> dict[str, str]:
    field = ".".join(str(part) for part in err["loc"]) or "body"
    message = err["msg"]
    if err["type"] == "missing":
        message = "Field required"
    elif err["type"] in {"string_type", "int_type", "int_parsing", "bool_type", "float_type"}:
        message = message.replace("Input should be", "Must be")
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return {"field": field, "message": message}
