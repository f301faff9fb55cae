import asyncio
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers import signup, signup_and_login

from catalog_testkit.accounts import mint_token
from service_common.tokens import public_jwk


@pytest.fixture
async def account(client, new_user) -> dict:
    session = await signup_and_login(client, new_user())
    return {**session, "token": session["access_token"]}


async def test_me_returns_the_token_owner(client, account):
    response = await client.get("/me", headers={"Authorization": f"Bearer {account['token']}"})
    assert response.status == 200
    assert await response.json() == {k: account[k] for k in ("id", "username", "email", "roles", "created_at")}


async def test_jwks_publishes_only_the_public_key(client, signing_key):
    response = await client.get("/.well-known/jwks.json")
    assert response.status == 200
    assert "max-age" in response.headers["Cache-Control"]
    keys = (await response.json())["keys"]
    assert keys == [public_jwk(signing_key.public_key())]
    assert "d" not in keys[0]
    assert keys[0]["kty"] == "OKP" and keys[0]["crv"] == "Ed25519" and keys[0]["alg"] == "EdDSA"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forged_tokens(signing_key: Ed25519PrivateKey, user_id: str) -> dict[str, str]:
    now = int(time.time())
    good = mint_token(signing_key, sub=user_id)
    head, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other_key = Ed25519PrivateKey.generate()
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "HS256 with the public key": _hs256(claims, public_pem, jwt.get_unverified_header(good)["kid"]),
        "expired": mint_token(signing_key, sub=user_id, iat=now - 3600, exp=now - 1800),
        "not yet valid": mint_token(signing_key, sub=user_id, nbf=now + 3600),
        "wrong issuer": mint_token(signing_key, sub=user_id, iss="someone-else"),
        "wrong audience": mint_token(signing_key, sub=user_id, aud="another-api"),
        "no exp": mint_token(signing_key, sub=user_id, exp=None),
        "unknown kid": mint_token(other_key, sub=user_id),
        "signed by another key under our kid": mint_token(
            other_key, sub=user_id, kid=public_jwk(signing_key.public_key())["kid"]
        ),
        "tampered payload": f"{head}.{_b64({**claims, 'sub': 'someone-else'})}.{signature}",
        "garbage": "not.a.token",
        "deleted user": mint_token(signing_key, sub="no-such-user"),
    }


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """What an attacker signs with the published public key, hoping HS256 is accepted."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    return f"{signing_input.decode()}.{signature.decode()}"


async def test_every_forged_or_stale_token_gets_401(client, account, signing_key):
    genuine = mint_token(signing_key, sub=account["id"])
    assert (await client.get("/me", headers={"Authorization": f"Bearer {genuine}"})).status == 200
    for name, token in _forged_tokens(signing_key, account["id"]).items():
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401, name
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        assert "error" in await response.json(), name


@pytest.mark.parametrize(
    "header",
    [
        None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a b", "token abc", "Bearer caf\u00e9.x.y",
    ],
)  # fmt: skip
async def test_missing_or_malformed_authorization_gets_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = await client.get("/me", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_that_is_not_utf8_gets_401_not_500(client):
    # Raw bytes on the wire: aiohttp's own client would not send them.
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe.a.b\r\nConnection: close\r\n\r\n")
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert json.loads(body) == {"error": "Authorization header must be 'Bearer <token>'"}


async def test_a_deleted_users_token_stops_working(client, account, mongo_db):
    mongo_db.users.delete_one({"_id": account["id"]})
    response = await client.get("/me", headers={"Authorization": f"Bearer {account['token']}"})
    assert response.status == 401


async def test_health_and_readiness(client):
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    assert await (await client.get("/readyz")).json() == {"status": "ready"}


async def test_request_ids_are_kept_or_made(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(response.headers["X-Request-ID"]) == 32


async def test_after_a_key_rotation_tokens_of_the_previous_key_still_verify(
    start_client, make_settings, new_user, tmp_path, signing_key
):
    """AUTH_PREVIOUS_PUBLIC_KEY_FILES: the retired key is published and its unexpired tokens keep working."""
    previous = Ed25519PrivateKey.generate()
    previous_file = tmp_path / "previous.pem"
    previous_file.write_bytes(
        previous.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    client = await start_client(make_settings(previous_public_key_files=str(previous_file)))
    user = new_user()
    created = await signup(client, user)

    keys = (await (await client.get("/.well-known/jwks.json")).json())["keys"]
    assert keys == [public_jwk(signing_key.public_key()), public_jwk(previous.public_key())]
    for key in (previous, signing_key):
        token = mint_token(key, sub=created["id"])
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200
        assert (await response.json())["username"] == user["username"]
    unknown = mint_token(Ed25519PrivateKey.generate(), sub=created["id"])
    assert (await client.get("/me", headers={"Authorization": f"Bearer {unknown}"})).status == 401
