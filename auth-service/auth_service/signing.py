"""The signing key, the access tokens it signs, and the JWKS that publishes it."""

import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service_common.keygen import DEVELOPMENT_KEY_MARKER
from service_common.tokens import ALGORITHM, public_jwk


def load_private_key(path: Path, *, production: bool) -> Ed25519PrivateKey:
    pem = path.read_bytes()
    if production and pem.startswith(DEVELOPMENT_KEY_MARKER):
        raise ValueError(f"{path} is a development signing key; production needs one made with `make keys`")
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


class TokenIssuer:
    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        previous_public_keys: list[Ed25519PublicKey] = (),
    ) -> None:
        self._private_key = private_key
        self._jwk = public_jwk(private_key.public_key())
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds
        self.jwks: dict[str, Any] = {
            "keys": [self._jwk, *(public_jwk(k) for k in previous_public_keys)],
        }

    def issue(self, user_id: str, username: str, roles: list[str]) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "username": username,
            "roles": roles,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self._jwk["kid"]})
