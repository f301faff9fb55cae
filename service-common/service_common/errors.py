"""One JSON error shape for every 4xx and 5xx: ``{"error": str, "details"?: [...]}``."""

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pymongo.errors import ConnectionFailure, PyMongoError

log = logging.getLogger(__name__)

UNAVAILABLE = "Service temporarily unavailable, try again shortly"


class ApiError(Exception):
    """An error the client can act on, turned into a JSON response by ``error_middleware``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def bad_parameter(name: str, message: str, summary: str | None = None) -> ApiError:
    """A 400 naming the parameter, form field or body field at fault: ``details`` says what is wrong with it."""
    return ApiError(400, summary or f"Invalid value for: {name}", details=[{"field": name, "message": message}])


def error_response(
    status: int,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status, headers=headers)


# aiohttp's own reasons are fine for the client, but a few read better spelled out.
_HTTP_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
}


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, details=exc.details, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.content_type == "application/json" and exc.text:
            try:
                json.loads(exc.text)
                return web.Response(
                    status=exc.status, text=exc.text, content_type="application/json", headers=_kept_headers(exc)
                )
            except ValueError:
                pass
        message = _HTTP_MESSAGES.get(exc.status, exc.reason)
        return error_response(exc.status, message, headers=_kept_headers(exc))
    except ConnectionFailure:  # server selection timed out, connection lost (AutoReconnect), network timeout
        log.warning("MongoDB unreachable while serving %s %s", request.method, request.path)
        return error_response(503, UNAVAILABLE, headers={"Retry-After": "5"})
    except PyMongoError as exc:
        # The store answered with an error of its own (InternalError, a write error, an operation timed
        # out, a full disk): the request may well succeed later, and the client has nothing to fix.
        log.error("MongoDB failed while serving %s %s: %r", request.method, request.path, exc, exc_info=exc)
        return error_response(503, UNAVAILABLE, headers={"Retry-After": "5"})
    except Exception:
        log.exception("Unhandled error while serving %s %s", request.method, request.path)
        return error_response(500, "Internal server error")


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    kept = {}
    for name in ("Allow", "WWW-Authenticate", "Retry-After"):
        if name in exc.headers:
            kept[name] = exc.headers[name]
    return kept
