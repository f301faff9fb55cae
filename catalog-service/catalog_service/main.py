"""Builds the catalog service (``create_app``, no I/O) and runs it (``main``)."""

import logging
import secrets

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service import storage
from catalog_service.cursors import CursorCodec
from catalog_service.index import CatalogIndex
from catalog_service.keys import CURSORS, INDEX, SETTINGS
from catalog_service.routes import setup_routes
from catalog_service.settings import CatalogSettings
from service_common.app import base_app, configure_logging, run
from service_common.stores import mongo_context

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
    app[INDEX] = CatalogIndex()

    async def setup(db: AsyncDatabase) -> None:
        await storage.ensure_indexes(db, settings.indexed_columns)

    app.cleanup_ctx.append(mongo_context(settings, "catalog-service", setup=setup))
    setup_routes(app)
    return app


def main() -> None:
    settings = CatalogSettings()
    configure_logging("catalog-service", settings.log_level)
    run(create_app(settings), settings, settings.port)


if __name__ == "__main__":
    main()
