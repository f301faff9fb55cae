"""TokenVerifier against a real JWKS endpoint: the cache, key rotation and unknown keys, under concurrency."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from catalog_testkit.accounts import mint_token
from catalog_testkit.constants import TEST_AUDIENCE, TEST_ISSUER
from service_common.errors import ApiError
from service_common.tokens import TokenVerifier, public_jwk

CONCURRENT_REQUESTS = 20


@dataclass
class FakeClock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class AuthService:
    """What the auth service publishes at /.well-known/jwks.json, and how often it was asked."""

    keys: list[Ed25519PrivateKey]
    fetches: int = 0
    url: str = field(default="")
    down: bool = False

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        # Slow enough that concurrent requests all wait on the one fetch in flight.
        await asyncio.sleep(0.05)
        if self.down:
            return web.json_response({"error": "internal"}, status=500)
        return web.json_response({"keys": [public_jwk(key.public_key()) for key in self.keys]})


@pytest.fixture
async def auth() -> AsyncIterator[AuthService]:
    service = AuthService(keys=[Ed25519PrivateKey.generate()])
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", service.jwks)
    async with TestServer(app) as server:
        service.url = str(server.make_url("/.well-known/jwks.json"))
        yield service


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def verifier(auth: AuthService, clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    async with ClientSession() as session:
        yield TokenVerifier(
            issuer=TEST_ISSUER,
            audience=TEST_AUDIENCE,
            jwks_url=auth.url,
            session=session,
            cache_seconds=300,
            refetch_interval=10,
            clock=clock,
        )


async def verify_all(verifier: TokenVerifier, token: str) -> list[object]:
    return await asyncio.gather(*(verifier.verify(token) for _ in range(CONCURRENT_REQUESTS)), return_exceptions=True)


async def test_concurrent_requests_on_a_stale_cache_fetch_the_keys_once(auth, verifier, clock):
    token = mint_token(auth.keys[0], sub="user-1")
    assert (await verifier.verify(token)).user_id == "user-1"
    assert auth.fetches == 1

    clock.now += 301  # the cache is out of date
    results = await verify_all(verifier, token)
    assert [result.user_id for result in results] == ["user-1"] * CONCURRENT_REQUESTS
    assert auth.fetches == 2


async def test_an_unknown_kid_is_one_refetch_then_401_for_every_waiting_request(auth, verifier, clock):
    assert (await verifier.verify(mint_token(auth.keys[0], sub="user-1"))).user_id == "user-1"
    clock.now += 11  # a refetch is allowed again

    stranger = mint_token(Ed25519PrivateKey.generate(), sub="user-1")
    results = await verify_all(verifier, stranger)
    assert all(isinstance(result, ApiError) and result.status == 401 for result in results), results
    assert auth.fetches == 2
    # Right after, the same unknown key costs no fetch at all.
    with pytest.raises(ApiError) as refused:
        await verifier.verify(stranger)
    assert refused.value.status == 401
    assert auth.fetches == 2


async def test_a_key_rotated_in_is_picked_up_by_one_refetch_and_the_previous_key_still_verifies(auth, verifier, clock):
    previous = auth.keys[0]
    assert (await verifier.verify(mint_token(previous, sub="user-1"))).user_id == "user-1"

    # The auth service signs with a new key and still publishes the previous one (AUTH_PREVIOUS_PUBLIC_KEY_FILES).
    current = Ed25519PrivateKey.generate()
    auth.keys = [current, previous]
    clock.now += 11
    results = await verify_all(verifier, mint_token(current, sub="user-2"))
    assert [result.user_id for result in results] == ["user-2"] * CONCURRENT_REQUESTS
    assert auth.fetches == 2
    assert (await verifier.verify(mint_token(previous, sub="user-1"))).user_id == "user-1"
    assert auth.fetches == 2


async def test_while_keys_cannot_be_fetched_requests_are_refused_at_once_and_fetches_back_off(auth, verifier, clock):
    auth.down = True
    token = mint_token(auth.keys[0], sub="user-1")
    results = await verify_all(verifier, token)
    assert all(isinstance(result, ApiError) and result.status == 503 for result in results), results
    assert {result.headers["Retry-After"] for result in results} == {"1"}
    assert auth.fetches == 1  # one fetch for all of them, not one each

    # Within the backoff, no request waits on another fetch.
    with pytest.raises(ApiError) as refused:
        await verifier.verify(token)
    assert refused.value.status == 503
    assert auth.fetches == 1

    # Each failure in a row doubles the wait: 1 s, then 2 s.
    clock.now += 1
    with pytest.raises(ApiError):
        await verifier.verify(token)
    assert auth.fetches == 2
    clock.now += 1
    with pytest.raises(ApiError) as refused:
        await verifier.verify(token)
    assert auth.fetches == 2
    assert refused.value.headers["Retry-After"] == "1"

    auth.down = False
    clock.now += 1
    assert (await verifier.verify(token)).user_id == "user-1"
    assert auth.fetches == 3


async def test_keys_already_held_keep_verifying_while_the_auth_service_is_down(auth, verifier, clock):
    token = mint_token(auth.keys[0], sub="user-1")
    assert (await verifier.verify(token)).user_id == "user-1"
    auth.down = True
    clock.now += 301  # the cache is out of date, and the refetch fails
    results = await verify_all(verifier, token)
    assert [result.user_id for result in results] == ["user-1"] * CONCURRENT_REQUESTS
    assert auth.fetches == 2
    # A token signed by a key the verifier has not seen may be valid: 503, not 401.
    with pytest.raises(ApiError) as refused:
        await verifier.verify(mint_token(Ed25519PrivateKey.generate(), sub="user-2"))
    assert refused.value.status == 503
    assert auth.fetches == 2
