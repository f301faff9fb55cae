"""Thin handlers: parse, call storage, shape the response."""

import logging

from aiohttp import web

from auth_service import refresh_tokens, storage
from auth_service.keys import CLOCK, PASSWORDS, SETTINGS, THROTTLE, TOKEN_ISSUER
from auth_service.schemas import LoginRequest, RefreshRequest, TokenResponse, UserCreate, UserPublic
from service_common.bodies import read_model
from service_common.errors import ApiError
from service_common.stores import MONGO_DB
from service_common.tokens import require_claims, unauthorized

log = logging.getLogger(__name__)

INVALID_LOGIN = "Invalid username or password"
DUPLICATE_MESSAGES = {"username": "Username already exists", "email": "Email already registered"}


def _public(user: dict) -> dict:
    return UserPublic(
        id=user["_id"], username=user["username"], email=user["email"], created_at=user["created_at"]
    ).model_dump(mode="json")


async def signup(request: web.Request) -> web.Response:
    body = await read_model(request, UserCreate)
    db = request.app[MONGO_DB]
    password_hash = await request.app[PASSWORDS].hash(body.password)
    try:
        user = await storage.create_user(db, username=body.username, email=body.email, password_hash=password_hash)
    except storage.DuplicateUser as exc:
        raise ApiError(409, DUPLICATE_MESSAGES[exc.field]) from None
    log.info("User %s signed up", user["_id"])
    return web.json_response({"message": "User created successfully", "user": _public(user)}, status=201)


async def login(request: web.Request) -> web.Response:
    body = await read_model(request, LoginRequest)
    db = request.app[MONGO_DB]
    user = await storage.find_user_by_login(db, body.username)
    # Unknown logins are throttled under their own name, so the answers do not tell which accounts exist.
    account = f"user:{user['_id']}" if user else f"login:{body.username.strip().lower()}"
    now = request.app[CLOCK]()
    if wait := await storage.locked_for(db, account, now):
        raise _too_many_attempts(wait)

    ok, needs_rehash = await request.app[PASSWORDS].verify(user["password_hash"] if user else None, body.password)
    if not ok:
        if lockout := await storage.record_failure(db, account, now, request.app[THROTTLE]):
            log.warning("Login locked for %ss after repeated failures", lockout)
        raise ApiError(401, INVALID_LOGIN)

    await storage.reset_failures(db, account)
    if needs_rehash:
        await storage.update_password_hash(db, user["_id"], await request.app[PASSWORDS].hash(body.password))
    refresh = await refresh_tokens.issue(db, user["_id"], request.app[SETTINGS].refresh_token_ttl)
    return _tokens_response(request, user, refresh, "Login successful")


def _tokens_response(
    request: web.Request, user: dict, refresh: refresh_tokens.IssuedRefreshToken, message: str
) -> web.Response:
    issuer = request.app[TOKEN_ISSUER]
    body = TokenResponse(
        message=message,
        access_token=issuer.issue(user["_id"], user["username"]),
        expires_in=issuer.ttl_seconds,
        refresh_token=refresh.token,
        refresh_expires_in=refresh.expires_in,
    )
    return web.json_response(body.model_dump(), headers={"Cache-Control": "no-store"})


async def refresh(request: web.Request) -> web.Response:
    body = await read_model(request, RefreshRequest)
    db = request.app[MONGO_DB]
    try:
        user_id, issued = await refresh_tokens.rotate(db, body.refresh_token, request.app[SETTINGS].refresh_token_ttl)
    except refresh_tokens.RefreshRejected:
        raise ApiError(401, "Invalid or expired refresh token") from None
    user = await storage.find_user_by_id(db, user_id)
    if user is None:
        await refresh_tokens.revoke_family(db, issued.family_id)
        raise ApiError(401, "Invalid or expired refresh token")
    return _tokens_response(request, user, issued, "Token refreshed")


async def logout(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    body = await read_model(request, RefreshRequest)
    db = request.app[MONGO_DB]
    found = await refresh_tokens.owner_and_family(db, body.refresh_token)
    if found is None or found[0] != claims.user_id:
        raise ApiError(400, "Unknown refresh token", details=[{"field": "refresh_token", "message": "Unknown token"}])
    await refresh_tokens.revoke_family(db, found[1])
    return web.json_response({"message": "Logged out"})


def _too_many_attempts(wait: int) -> ApiError:
    return ApiError(429, "Too many failed login attempts, try again later", headers={"Retry-After": str(wait)})


async def me(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    user = await storage.find_user_by_id(request.app[MONGO_DB], claims.user_id)
    if user is None:
        raise unauthorized()
    return web.json_response(_public(user))


async def jwks(request: web.Request) -> web.Response:
    max_age = min(300, request.app[SETTINGS].access_token_ttl)
    return web.json_response(
        request.app[TOKEN_ISSUER].jwks, headers={"Cache-Control": f"public, max-age={max_age}"}
    )
