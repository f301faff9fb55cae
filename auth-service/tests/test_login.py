import logging

import jwt
from helpers import login, signup

from catalog_testkit.constants import TEST_AUDIENCE, TEST_ISSUER
from service_common.logs import configure_logging
from service_common.tokens import public_jwk


async def test_login_returns_a_signed_short_lived_token(client, new_user, signing_key, settings):
    user = new_user()
    created = await signup(client, user)
    response = await login(client, user["username"], user["password"])
    assert response.status == 200
    body = await response.json()
    assert body["message"] == "Login successful"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_ttl == 900

    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["kid"] == public_jwk(signing_key.public_key())["kid"]
    claims = jwt.decode(
        body["access_token"], signing_key.public_key(), algorithms=["EdDSA"], audience=TEST_AUDIENCE, issuer=TEST_ISSUER
    )
    assert claims["sub"] == created["id"]
    assert claims["username"] == user["username"]
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


async def test_login_accepts_the_email_and_any_case(client, new_user):
    user = new_user()
    await signup(client, user)
    assert (await login(client, user["email"].upper(), user["password"])).status == 200
    assert (await login(client, user["username"].upper(), user["password"])).status == 200


async def test_wrong_password_and_unknown_user_get_the_same_401(client, new_user):
    user = new_user()
    await signup(client, user)
    wrong = await login(client, user["username"], "not the password")
    unknown = await login(client, "nobody-here", "whatever-password")
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json() == {"error": "Invalid username or password"}


async def test_operator_objects_never_log_anyone_in(client, new_user):
    await signup(client, new_user(password="password"))
    for body in (
        {"username": {"$ne": None}, "password": "password"},
        {"username": {"$gt": ""}, "password": {"$ne": None}},
        {"username": ["user0"], "password": "password"},
        {"username": 0, "password": "password"},
    ):
        response = await client.post("/login", json=body)
        assert response.status == 400, body
        assert "access_token" not in await response.text()


async def test_five_failures_lock_the_account_with_a_growing_delay(start_client, make_settings, new_user, clock):
    client = await start_client(make_settings(login_lockout_seconds=1), clock)
    user = new_user()
    await signup(client, user)
    for _ in range(5):
        assert (await login(client, user["username"], "wrong-password")).status == 401

    locked = await login(client, user["username"], user["password"])
    assert locked.status == 429
    assert locked.headers["Retry-After"] == "1"
    assert "Too many" in (await locked.json())["error"]

    clock.advance(0.9)
    assert (await login(client, user["username"], user["password"])).status == 429
    clock.advance(0.1)
    # One more failure after the lockout doubles it.
    assert (await login(client, user["username"], "wrong-password")).status == 401
    locked_again = await login(client, user["username"], user["password"])
    assert locked_again.status == 429
    assert locked_again.headers["Retry-After"] == "2"

    clock.advance(1.9)
    assert (await login(client, user["username"], user["password"])).status == 429
    clock.advance(0.1)
    assert (await login(client, user["username"], user["password"])).status == 200
    # A success resets the count: four more failures do not lock.
    for _ in range(4):
        assert (await login(client, user["username"], "wrong-password")).status == 401
    assert (await login(client, user["username"], user["password"])).status == 200


async def test_the_lockout_holds_across_a_service_restart(start_client, make_settings, new_user, clock):
    settings = make_settings(login_lockout_seconds=60)
    first = await start_client(settings, clock)
    user = new_user()
    await signup(first, user)
    for _ in range(5):
        await login(first, user["username"], "wrong-password")
    await first.close()

    clock.advance(10)
    second = await start_client(settings, clock)
    response = await login(second, user["username"], user["password"])
    assert response.status == 429
    assert response.headers["Retry-After"] == "50"


async def test_unknown_accounts_are_throttled_too(client):
    for _ in range(5):
        assert (await login(client, "ghost", "wrong-password")).status == 401
    assert (await login(client, "ghost", "wrong-password")).status == 429


async def test_hashes_are_upgraded_on_login_when_parameters_change(start_client, make_settings, new_user, mongo_db):
    user = new_user()
    old = await start_client(make_settings(argon2_time_cost=3))
    created = await signup(old, user)
    users = mongo_db.users
    assert ",t=3," in users.find_one({"_id": created["id"]})["password_hash"]

    current = await start_client(make_settings())
    assert (await login(current, user["username"], user["password"])).status == 200
    assert ",t=2," in users.find_one({"_id": created["id"]})["password_hash"]


async def test_no_password_or_hash_reaches_the_logs(client, new_user, caplog, mongo_db):
    caplog.set_level(logging.DEBUG)
    user = new_user(password="a-very-secret-passphrase")
    created = await signup(client, user)
    await login(client, user["username"], user["password"])
    await login(client, user["username"], "another-secret-guess")
    stored_hash = mongo_db.users.find_one({"_id": created["id"]})["password_hash"]
    # pymongo's own debug records are muted by configure_logging in a running service.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("pymongo"))
    assert "POST /login" in logged
    assert "a-very-secret-passphrase" not in logged
    assert "another-secret-guess" not in logged
    assert stored_hash not in logged


def test_service_logging_mutes_pymongo_debug_records():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("auth-service", "DEBUG")
        assert not logging.getLogger("pymongo.command").isEnabledFor(logging.DEBUG)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        logging.getLogger("pymongo").setLevel(logging.NOTSET)
