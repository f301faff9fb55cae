"""``/healthz`` (the process answers) and ``/readyz`` (its MongoDB answers, with room on its volume) for
every service."""

import asyncio

from aiohttp import web
from pymongo.errors import PyMongoError

from service_common.disk import STORE_VOLUME
from service_common.errors import error_response
from service_common.stores import MONGO_CLIENT, MONGO_DB

READY_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    client = request.app.get(MONGO_CLIENT)
    if client is None:
        return error_response(503, "Not ready: MongoDB client not started")
    try:
        await asyncio.wait_for(client.admin.command("ping"), READY_TIMEOUT)
    except (PyMongoError, TimeoutError, OSError):
        return error_response(503, "Not ready: MongoDB unreachable", headers={"Retry-After": "5"})
    volume = request.app.get(STORE_VOLUME)
    if volume is not None:
        try:
            space = await asyncio.wait_for(volume.space_async(request.app[MONGO_DB]), READY_TIMEOUT)
        except (PyMongoError, TimeoutError):
            return error_response(503, "Not ready: MongoDB unreachable", headers={"Retry-After": "5"})
        except OSError as exc:
            return error_response(503, f"Not ready: the store's volume cannot be read ({exc.strerror})")
        if volume.is_low(space):
            return error_response(503, f"Not ready: {volume.low_space_message(space)}", headers={"Retry-After": "30"})
    return web.json_response({"status": "ready"})


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, allow_head=True)
    app.router.add_get("/readyz", readyz, allow_head=True)
