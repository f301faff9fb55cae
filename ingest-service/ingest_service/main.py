"""Builds the upload API (``create_app``, no I/O) and runs it (``main``, the ``ingest-api`` command)."""

from aiohttp import web

from ingest_service import storage
from ingest_service.keys import SETTINGS
from ingest_service.producer import celery_producer_context
from ingest_service.routes import setup_routes
from ingest_service.settings import IngestSettings
from service_common.app import base_app, configure_logging, run
from service_common.stores import mongo_context
from service_common.tokens import jwks_verifier_context


def create_app(settings: IngestSettings) -> web.Application:
    # Uploads are read as a stream, part by part; the body size limit applies to the rest.
    app = base_app(client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(jwks_verifier_context(settings.jwks_url, settings.jwt_issuer, settings.jwt_audience))
    app.cleanup_ctx.append(mongo_context(settings, "ingest-service", setup=storage.ensure_indexes))
    app.cleanup_ctx.append(celery_producer_context(settings))
    setup_routes(app, settings)
    return app


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest-api", settings.log_level)
    run(create_app(settings), settings, settings.port)


if __name__ == "__main__":
    main()
