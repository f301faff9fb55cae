"""``/healthz`` (the process answers) and ``/readyz`` (its MongoDB answers, with room on its volume) for
every service.

``stack_readyz`` answers for the whole stack behind the gateway (its ``GET /readyz``).
"""

import asyncio
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from pymongo.errors import PyMongoError

from service_common.disk import STORE_VOLUME
from service_common.errors import error_response
from service_common.stores import MONGO_CLIENT, MONGO_DB

READY_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _store_problem(app: web.Application) -> str | None:
    """Why this service is not ready, or None when its MongoDB answers with room on its volume."""
    client = app.get(MONGO_CLIENT)
    if client is None:
        return "MongoDB client not started"
    try:
        await asyncio.wait_for(client.admin.command("ping"), READY_TIMEOUT)
    except (PyMongoError, TimeoutError, OSError):
        return "MongoDB unreachable"
    volume = app.get(STORE_VOLUME)
    if volume is not None:
        try:
            space = await asyncio.wait_for(volume.space_async(app[MONGO_DB]), READY_TIMEOUT)
        except (PyMongoError, TimeoutError):
            return "MongoDB unreachable"
        except OSError as exc:
            return f"the store's volume cannot be read ({exc.strerror})"
        if volume.is_low(space):
            return volume.low_space_message(space)
    return None


async def readyz(request: web.Request) -> web.Response:
    problem = await _store_problem(request.app)
    if problem is not None:
        return error_response(503, f"Not ready: {problem}", headers={"Retry-After": "5"})
    return web.json_response({"status": "ready"})


async def _peer_ready(session: aiohttp.ClientSession, base_url: str) -> bool:
    try:
        async with session.get(f"{base_url}/readyz") as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


def stack_readyz(own_name: str, peers: Mapping[str, str]):
    """A handler answering 200 when this service and every peer (name -> base URL) answer their ``/readyz``,
    else 503 naming, in the given order, those that do not."""

    async def handler(request: web.Request) -> web.Response:
        timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT + 1)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            own, *others = await asyncio.gather(
                _store_problem(request.app), *(_peer_ready(session, url) for url in peers.values())
            )
        ready = {own_name: own is None, **dict(zip(peers, others, strict=True))}
        not_ready = [name for name, is_ready in ready.items() if not is_ready]
        if not_ready:
            return error_response(503, f"Not ready: {', '.join(not_ready)}", headers={"Retry-After": "5"})
        return web.json_response({"status": "ready"})

    return handler


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, allow_head=True)
    app.router.add_get("/readyz", readyz, allow_head=True)
