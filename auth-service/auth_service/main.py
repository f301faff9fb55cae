"""Builds the auth service (``create_app``, no I/O) and runs it (``main``)."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service import storage
from auth_service.keys import CLOCK, PASSWORDS, SETTINGS, THROTTLE, TOKEN_ISSUER
from auth_service.passwords import Passwords
from auth_service.routes import setup_routes
from auth_service.settings import AuthSettings
from auth_service.signing import TokenIssuer, load_private_key, load_public_key
from service_common.app import base_app, configure_logging, run
from service_common.stores import mongo_context
from service_common.tokens import TOKEN_VERIFIER, TokenVerifier

log = logging.getLogger(__name__)


def _credentials_context(settings: AuthSettings):
    """Loads the signing key and prepares the password hasher before the first request."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        if settings.private_key_file is not None:
            private_key = await asyncio.to_thread(
                load_private_key, settings.private_key_file, production=settings.is_production
            )
        else:
            log.warning("No AUTH_PRIVATE_KEY_FILE: signing with a throw-away key (development only)")
            private_key = Ed25519PrivateKey.generate()
        previous = [await asyncio.to_thread(load_public_key, p) for p in settings.previous_public_key_paths]
        issuer = TokenIssuer(
            private_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl,
            previous_public_keys=previous,
        )
        app[TOKEN_ISSUER] = issuer
        app[TOKEN_VERIFIER] = TokenVerifier(
            issuer=settings.jwt_issuer, audience=settings.jwt_audience, keys=issuer.jwks["keys"]
        )
        app[PASSWORDS] = await asyncio.to_thread(Passwords, settings)
        yield

    return context


def wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(settings: AuthSettings, *, clock: Callable[[], datetime] = wall_clock) -> web.Application:
    if settings.is_production and settings.open_signup:
        log.warning(
            "Open sign-up: AUTH_ALLOW_OPEN_SIGNUP=true and anyone who signs up gets the %s role", settings.signup_role
        )
    app = base_app(client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[THROTTLE] = storage.ThrottlePolicy(
        max_failures=settings.login_max_failures,
        lockout_seconds=settings.login_lockout_seconds,
        lockout_max_seconds=settings.login_lockout_max_seconds,
    )
    app.cleanup_ctx.append(_credentials_context(settings))
    app.cleanup_ctx.append(mongo_context(settings, "auth-service", setup=storage.ensure_indexes))
    setup_routes(app)
    return app


def main() -> None:
    settings = AuthSettings()
    configure_logging("auth-service", settings.log_level)
    run(create_app(settings), settings, settings.port)


if __name__ == "__main__":
    main()
