"""Logging with the request id on every line, and the middleware that sets it."""

import contextvars
import logging
import re
import sys
import uuid

from aiohttp import web

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# aiohttp's access log, with the request id the gateway passed on.
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs request_id=%{X-Request-ID}o'


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {service} [%(request_id)s] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pymongo's debug logs print whole commands and documents, password hashes included.
    logging.getLogger("pymongo").setLevel(max(logging.INFO, root.level))


def incoming_request_id(value: str | None) -> str:
    """The caller's request id when it is a sane token, a new one otherwise."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler):
    request_id = incoming_request_id(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(request_id)
    try:
        response = await handler(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        request_id_var.reset(token)
