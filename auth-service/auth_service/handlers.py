"""Thin handlers: parse, call storage, shape the response."""

import logging
import uuid

from aiohttp import web

from auth_service import refresh_tokens, storage
from auth_service.keys import CLOCK, PASSWORDS, SETTINGS, THROTTLE, TOKEN_ISSUER
from auth_service.schemas import (
    AccountUpdate,
    LoginRequest,
    RefreshRequest,
    TokenResponse,
    UserAccount,
    UserCreate,
    UserPublic,
)
from service_common.bodies import read_model
from service_common.errors import ApiError, bad_parameter
from service_common.paging import page_headers, parse_page_query
from service_common.roles import Role, grants
from service_common.stores import MONGO_DB
from service_common.tokens import Claims, forbidden, require_claims, require_role, unauthorized

log = logging.getLogger(__name__)

INVALID_LOGIN = "Invalid username or password"
INVALID_REFRESH = "Invalid or expired refresh token"
ACCOUNT_DISABLED = "This account is disabled"
DUPLICATE_MESSAGES = {"username": "Username already exists", "email": "Email already registered"}


def _roles(request: web.Request, user: dict) -> list[str]:
    return storage.roles_of(user, request.app[SETTINGS].signup_role)


def _user_fields(request: web.Request, user: dict) -> dict:
    return {
        "id": user["_id"],
        "username": user["username"],
        "email": user["email"],
        "roles": _roles(request, user),
        "created_at": user["created_at"],
    }


def _public(request: web.Request, user: dict) -> dict:
    return UserPublic(**_user_fields(request, user)).model_dump(mode="json")


def _account(request: web.Request, user: dict) -> dict:
    """A user as an admin sees it."""
    return UserAccount(**_user_fields(request, user), disabled=storage.is_disabled(user)).model_dump(mode="json")


async def signup(request: web.Request) -> web.Response:
    body = await read_model(request, UserCreate)
    db = request.app[MONGO_DB]
    password_hash = await request.app[PASSWORDS].hash(body.password)
    try:
        user = await storage.create_user(
            db,
            username=body.username,
            email=body.email,
            password_hash=password_hash,
            roles=[request.app[SETTINGS].signup_role.value],
        )
    except storage.DuplicateUser as exc:
        raise ApiError(409, DUPLICATE_MESSAGES[exc.field]) from None
    log.info("User %s signed up as %s", user["_id"], user["roles"][0])
    return web.json_response({"message": "User created successfully", "user": _public(request, user)}, status=201)


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
    if storage.is_disabled(user):
        # Said only to whoever knows the password, so it tells a stranger nothing.
        raise ApiError(403, ACCOUNT_DISABLED)
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
        access_token=issuer.issue(user["_id"], user["username"], _roles(request, user)),
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
        raise ApiError(401, INVALID_REFRESH) from None
    user = await storage.find_user_by_id(db, user_id)
    if user is None or storage.is_disabled(user):
        await refresh_tokens.revoke_family(db, issued.family_id)
        raise ApiError(401, INVALID_REFRESH)
    return _tokens_response(request, user, issued, "Token refreshed")


async def logout(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    body = await read_model(request, RefreshRequest)
    db = request.app[MONGO_DB]
    found = await refresh_tokens.owner_and_family(db, body.refresh_token)
    if found is None or found[0] != claims.user_id:
        raise bad_parameter("refresh_token", "Unknown token", "Unknown refresh token")
    await refresh_tokens.revoke_family(db, found[1])
    return web.json_response({"message": "Logged out"})


def _too_many_attempts(wait: int) -> ApiError:
    return ApiError(429, "Too many failed login attempts, try again later", headers={"Retry-After": str(wait)})


async def me(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    user = await storage.find_user_by_id(request.app[MONGO_DB], claims.user_id)
    if user is None or storage.is_disabled(user):
        raise unauthorized()
    return web.json_response(_public(request, user))


async def jwks(request: web.Request) -> web.Response:
    max_age = min(300, request.app[SETTINGS].access_token_ttl)
    return web.json_response(request.app[TOKEN_ISSUER].jwks, headers={"Cache-Control": f"public, max-age={max_age}"})


async def _require_admin(request: web.Request) -> Claims:
    """An admin's claims. Checked against the account too, so that an admin demoted or disabled a
    moment ago manages no one, even with an access token that still says admin."""
    claims = await require_role(request, Role.ADMIN)
    user = await storage.find_user_by_id(request.app[MONGO_DB], claims.user_id)
    if user is None or storage.is_disabled(user):
        raise unauthorized()
    if not grants(_roles(request, user), Role.ADMIN):
        raise forbidden(Role.ADMIN)
    return claims


async def list_users(request: web.Request) -> web.Response:
    await _require_admin(request)
    page = parse_page_query(request.query)
    users, total = await storage.list_users(request.app[MONGO_DB], skip=page.skip, limit=page.limit)
    return web.json_response(
        [_account(request, user) for user in users], headers=page_headers(request, page, total=total)
    )


def _user_id(request: web.Request) -> str:
    try:
        return str(uuid.UUID(request.match_info["user_id"]))
    except ValueError:
        raise ApiError(400, "Malformed user id: expected a UUID") from None


async def update_user(request: web.Request) -> web.Response:
    claims = await _require_admin(request)
    user_id = _user_id(request)
    body = await read_model(request, AccountUpdate)
    if user_id == claims.user_id and (body.disabled or (body.roles is not None and "admin" not in body.roles)):
        # So that the last admin cannot lock everyone out by mistake; another admin (or auth-admin) can.
        raise ApiError(409, "An admin cannot remove its own admin role or disable its own account")
    db = request.app[MONGO_DB]
    changed = await storage.update_account(db, user_id, roles=body.roles, disabled=body.disabled)
    if changed is None:
        raise ApiError(404, "No such user")
    before, after = changed
    if storage.loses_access(before, after, request.app[SETTINGS].signup_role):
        revoked = await refresh_tokens.revoke_user(db, user_id)
        log.info("User %s lost access (admin %s): %d refresh tokens revoked", user_id, claims.user_id, revoked)
    log.info(
        "User %s changed by admin %s: roles %s, disabled %s",
        user_id,
        claims.user_id,
        _roles(request, after),
        storage.is_disabled(after),
    )
    return web.json_response(_account(request, after))
