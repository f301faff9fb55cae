"""The pieces every service's ``create_app`` and ``main`` have in common."""

import errno
import logging

from aiohttp import web

from service_common.errors import error_middleware
from service_common.health import add_health_routes
from service_common.logs import ACCESS_LOG_FORMAT, configure_logging, request_id_middleware
from service_common.settings import CommonSettings

log = logging.getLogger(__name__)


def base_app(*, client_max_size: int = 1024**2) -> web.Application:
    """An application with the shared middlewares and health routes; no I/O."""
    app = web.Application(
        middlewares=[request_id_middleware, error_middleware],
        client_max_size=client_max_size,
    )
    add_health_routes(app)
    return app


def run(app: web.Application, settings: CommonSettings, port: int) -> None:
    """Serves ``app`` until stopped; a port already taken is one line in the log and exit status 1."""
    log.info("Starting on http://%s:%d (%s)", settings.host, port, settings.environment)
    try:
        web.run_app(
            app,
            host=settings.host,
            port=port,
            access_log_format=ACCESS_LOG_FORMAT,
            print=None,
            shutdown_timeout=10,
        )
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        log.error(
            "Port %d on %s is already in use: stop what holds it, or give this service another port",
            port,
            settings.host,
        )
        raise SystemExit(1) from None


__all__ = ["base_app", "configure_logging", "run"]
