"""Verifying the platform's EdDSA-signed access tokens, with keys from the auth service's JWKS."""

import asyncio
import base64
import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from service_common.errors import ApiError
from service_common.roles import Role, grants

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


@dataclass(frozen=True)
class Claims:
    """What a verified access token says about its bearer."""

    user_id: str
    username: str
    token_id: str | None
    expires_at: int
    # The account's roles when the token was issued; a token from before roles existed carries none.
    roles: tuple[str, ...] = ()

    def has_role(self, role: Role) -> bool:
        """Whether the bearer may do what ``role`` may (an admin may do what an editor may...)."""
        return grants(self.roles, role)


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK whose ``kid`` is its RFC 7638 thumbprint."""
    jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def unauthorized(message: str = "Invalid or expired token") -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise ApiError(401, "Authorization required", headers={"WWW-Authenticate": "Bearer"})
    scheme, _, token = header.partition(" ")
    token = token.strip()
    # A JWT is ASCII; other bytes (undecodable ones come in as surrogates) would fail deep in its parser.
    if scheme.lower() != "bearer" or not token or " " in token or not token.isascii():
        raise unauthorized("Authorization header must be 'Bearer <token>'")
    return token


class TokenVerifier:
    """Checks signature, algorithm, issuer, audience and lifetime of an access token.

    Keys come either from a fixed JWK list (the auth service verifying its own
    tokens) or from a JWKS URL, cached and fetched again when a token names an
    unknown ``kid`` (key rotation), at most once per ``refetch_interval``.

    A fetch that fails is not tried again for a while (``retry_after``, doubling after each failure
    in a row up to ``max_retry_after``): meanwhile tokens are verified with the keys already held,
    and without any a request is answered ``503`` at once instead of waiting on yet another fetch.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        keys: list[dict[str, Any]] | None = None,
        session: aiohttp.ClientSession | None = None,
        cache_seconds: float = 300.0,
        refetch_interval: float = 10.0,
        retry_after: float = 1.0,
        max_retry_after: float = 30.0,
        leeway: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (jwks_url is None) == (keys is None):
            raise ValueError("give exactly one of jwks_url and keys")
        self._issuer = issuer
        self._audience = audience
        self._jwks_url = jwks_url
        self._session = session
        self._cache_seconds = cache_seconds
        self._refetch_interval = refetch_interval
        self._leeway = leeway
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._retry_after = retry_after
        self._max_retry_after = max_retry_after
        self._failures = 0  # fetches failed in a row
        self._next_try = float("-inf")  # no fetch before this, after a failure
        self._lock = asyncio.Lock()
        if keys is not None:
            self._keys = _load_keys(keys)

    async def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise unauthorized() from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise unauthorized()
        key = await self._key_for(kid)
        if key is None:
            raise unauthorized()
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("Token expired") from None
        except jwt.InvalidTokenError:
            raise unauthorized() from None
        sub, username = payload.get("sub"), payload.get("username", "")
        if not isinstance(sub, str) or not sub or not isinstance(username, str):
            raise unauthorized()
        roles = payload.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise unauthorized()
        jti = payload.get("jti")
        return Claims(
            user_id=sub,
            username=username,
            token_id=jti if isinstance(jti, str) else None,
            expires_at=int(payload["exp"]),
            roles=tuple(roles),
        )

    async def _key_for(self, kid: str) -> Any:
        if self._jwks_url is None:
            return self._keys.get(kid)
        if self._needs_fetch(kid):
            async with self._lock:
                # Decided again under the lock: the requests that waited for it while another one
                # fetched find the fresh keys and do not fetch once more each.
                if self._needs_fetch(kid):
                    await self._fetch()
        key = self._keys.get(kid)
        if key is None and self._failures:
            # The key may well exist: the auth service could not be asked. Not the token's fault.
            retry = max(1, math.ceil(self._next_try - self._clock()))
            raise ApiError(
                503, "Authentication keys unavailable, try again shortly", headers={"Retry-After": str(retry)}
            )
        return key

    def _needs_fetch(self, kid: str) -> bool:
        """The cache is out of date, or the token names a key not in it and a refetch is allowed again;
        and no failed fetch asks to wait."""
        now = self._clock()
        if now < self._next_try:
            return False
        age = now - self._fetched_at
        return age > self._cache_seconds or (kid not in self._keys and age > self._refetch_interval)

    async def _fetch(self) -> None:
        assert self._session is not None and self._jwks_url is not None
        try:
            async with self._session.get(self._jwks_url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
            self._keys = _load_keys(document["keys"])
            self._fetched_at = self._clock()
            self._failures = 0
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            wait = min(self._retry_after * 2**self._failures, self._max_retry_after)
            self._failures += 1
            self._next_try = self._clock() + wait
            log.warning("Could not fetch signing keys from %s (next try in %.0f s): %s", self._jwks_url, wait, exc)


def _load_keys(jwks: list[dict[str, Any]]) -> dict[str, Any]:
    keys = {}
    for jwk in jwks:
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and isinstance(jwk.get("kid"), str):
            keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
    return keys


TOKEN_VERIFIER = web.AppKey("token_verifier", TokenVerifier)


def jwks_verifier_context(
    jwks_url: str, issuer: str, audience: str
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx owning the HTTP session that fetches the JWKS."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[TOKEN_VERIFIER] = TokenVerifier(issuer=issuer, audience=audience, jwks_url=jwks_url, session=session)
            yield

    return context


async def require_claims(request: web.Request) -> Claims:
    """The verified claims of the request's bearer token, or a 401."""
    return await request.app[TOKEN_VERIFIER].verify(bearer_token(request))


def forbidden(needed: Role) -> ApiError:
    return ApiError(403, f"Forbidden: this needs the {needed} role")


async def require_role(request: web.Request, needed: Role) -> Claims:
    """The verified claims of the request's bearer token: a 401 without a valid one, a 403 when its
    roles do not grant ``needed``."""
    claims = await require_claims(request)
    if not claims.has_role(needed):
        raise forbidden(needed)
    return claims
