"""Accounts for the tests: tokens signed as the auth service signs them, and an admin made the operator's way."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from catalog_testkit.constants import TEST_AUDIENCE, TEST_ISSUER
from service_common.tokens import public_jwk

AUTH_ADMIN = Path(sys.executable).with_name("auth-admin")
ADMIN_PASSWORD = "test-admin-password"


def mint_token(private_key: Ed25519PrivateKey, *, kid: str | None = None, **claims) -> str:
    """A token signed like the auth service signs them; ``claims`` override the defaults."""
    now = int(time.time())
    payload = {
        "sub": "user-1",
        "username": "tester",
        "iat": now,
        "exp": now + 900,
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    headers = {"kid": kid or public_jwk(private_key.public_key())["kid"]}
    return jwt.encode(payload, private_key, algorithm="EdDSA", headers=headers)


def create_admin(stack, prefix: str = "admin") -> dict:
    """An admin of a running ``LocalStack``, made the operator's way (``auth-admin create-admin`` next
    to the stack's store, the password piped in), then logged in through the gateway: its id,
    username, password and tokens."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    command = [str(AUTH_ADMIN), "create-admin", "--username", name, "--email", f"{name}@example.com"]
    result = subprocess.run(
        command,
        input=ADMIN_PASSWORD + "\n",
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    response = requests.post(f"{stack.url}/login", json={"username": name, "password": ADMIN_PASSWORD}, timeout=10)
    assert response.status_code == 200, response.text
    tokens = response.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = requests.get(f"{stack.url}/me", headers=headers, timeout=10).json()
    return {**tokens, "id": me["id"], "username": name, "password": ADMIN_PASSWORD}
