"""Forged, stale and misdirected tokens, sent through the gateway: every one is a 401."""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from catalog_testkit.accounts import mint_token
from service_common.tokens import public_jwk

# Endpoints that require a bearer token, one per service that checks tokens.
PROTECTED = [("GET", "/me")]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def stack_key(stack) -> Ed25519PrivateKey:
    pem = Path(stack.env["AUTH_PRIVATE_KEY_FILE"]).read_bytes()
    return serialization.load_pem_private_key(pem, password=None)


@pytest.fixture(scope="module")
def victim(stack, stack_key) -> str:
    name = "attack_victim"
    created = requests.post(
        f"{stack.url}/signup",
        json={"username": name, "email": "victim@example.com", "password": "password123"},
        timeout=10,
    ).json()
    return created["user"]["id"]


def forged_tokens(key: Ed25519PrivateKey, user_id: str) -> dict[str, str]:
    now = int(time.time())
    good = mint_token(key, sub=user_id, username="attack_victim")
    head, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": public_jwk(key.public_key())["kid"]}
    hs_input = f"{_b64(hs_header)}.{_b64(claims)}".encode()
    hs_signature = base64.urlsafe_b64encode(hmac.new(public_pem, hs_input, hashlib.sha256).digest()).rstrip(b"=")
    stranger = Ed25519PrivateKey.generate()
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "HS256 signed with the public key": f"{hs_input.decode()}.{hs_signature.decode()}",
        "expired": mint_token(key, sub=user_id, iat=now - 7200, exp=now - 3600),
        "not yet valid": mint_token(key, sub=user_id, nbf=now + 3600),
        "wrong issuer": mint_token(key, sub=user_id, iss="https://evil.example"),
        "wrong audience": mint_token(key, sub=user_id, aud="another-api"),
        "unknown kid": mint_token(stranger, sub=user_id),
        "tampered payload": f"{head}.{_b64({**claims, 'username': 'admin'})}.{signature}",
        "a user that does not exist": mint_token(key, sub="00000000-0000-0000-0000-000000000000"),
    }


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_forged_tokens_are_refused_everywhere(stack, stack_key, victim, method, path):
    genuine = mint_token(stack_key, sub=victim, username="attack_victim")
    ok = requests.request(method, f"{stack.url}{path}", headers={"Authorization": f"Bearer {genuine}"}, timeout=10)
    assert ok.status_code != 401, "the genuine token should be accepted"
    for name, token in forged_tokens(stack_key, victim).items():
        response = requests.request(
            method, f"{stack.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == 401, (name, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        assert set(response.json()) == {"error"}, name
