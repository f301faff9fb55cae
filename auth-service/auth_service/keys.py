"""Typed application keys of the auth service."""

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from auth_service.passwords import Passwords
from auth_service.settings import AuthSettings
from auth_service.signing import TokenIssuer
from auth_service.storage import ThrottlePolicy

SETTINGS = web.AppKey("settings", AuthSettings)
PASSWORDS = web.AppKey("passwords", Passwords)
TOKEN_ISSUER = web.AppKey("token_issuer", TokenIssuer)
THROTTLE = web.AppKey("throttle", ThrottlePolicy)
# The time the log-in throttle counts lockouts by: the wall clock, or a test's own.
CLOCK = web.AppKey("clock", Callable[[], datetime])
