"""Builds the catalog service (``create_app``, no I/O) and runs it (``main``)."""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service import storage
from catalog_service.answers import SharedAnswers
from catalog_service.cursors import CursorCodec
from catalog_service.index import CatalogIndex
from catalog_service.keys import ANSWERS, CURSORS, INDEX, PROJECTOR, READ_MODEL, SETTINGS
from catalog_service.projector import Projector
from catalog_service.read_model import ReadModel
from catalog_service.routes import setup_routes
from catalog_service.settings import CatalogSettings
from service_common.app import base_app, configure_logging, run
from service_common.stores import MONGO_DB, mongo_context

log = logging.getLogger(__name__)


def _cursor_secret(settings: CatalogSettings) -> bytes:
    if settings.cursor_secret is not None:
        return settings.cursor_secret.get_secret_value().encode("utf-8")
    # Only reachable in development (the settings refuse to load elsewhere without a secret).
    log.warning(
        "No CATALOG_CURSOR_SECRET: signing cursors with a per-process key; "
        "cursors will not survive a restart or work across replicas (development only)"
    )
    return secrets.token_bytes(32)


def create_app(settings: CatalogSettings) -> web.Application:
    # Only GETs: no request body is expected.
    app = base_app(client_max_size=16 * 1024)
    app[SETTINGS] = settings
    app[CURSORS] = CursorCodec(_cursor_secret(settings))
    app[INDEX] = CatalogIndex(budget_ms=settings.query_budget_ms, max_page_bytes=settings.max_page_bytes)
    app[ANSWERS] = SharedAnswers()

    async def setup(db: AsyncDatabase) -> None:
        await storage.drop_legacy_indexes(db)

    app.cleanup_ctx.append(mongo_context(settings, "catalog-service", setup=setup))
    app.cleanup_ctx.append(read_model_context(settings))
    setup_routes(app)
    return app


def read_model_context(settings: CatalogSettings):
    """Opens this process's read model and runs the loop that keeps it in step with the store."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        path = None
        if settings.read_model_dir is not None:
            path = settings.read_model_dir / f"catalog-{settings.port}.duckdb"
        model = await asyncio.to_thread(
            ReadModel,
            path,
            memory_limit=settings.engine_memory,
            threads=settings.engine_threads,
            max_queries=settings.engine_queries,
        )
        projector = Projector(model, app[INDEX], store_budget_ms=settings.query_budget_ms)
        app[READ_MODEL], app[PROJECTOR] = model, projector
        loops = [
            asyncio.create_task(projector.run(app[MONGO_DB]), name="read-model"),
            asyncio.create_task(projector.keep_orders(), name="read-model-orders"),
        ]
        try:
            yield
        finally:
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            await asyncio.to_thread(model.close)

    return context


def main() -> None:
    settings = CatalogSettings()
    configure_logging("catalog-service", settings.log_level)
    run(create_app(settings), settings, settings.port)


if __name__ == "__main__":
    main()
