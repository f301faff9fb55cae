"""``signing-keygen PATH``: writes a new Ed25519 signing key (PEM, mode 0600) unless one is there."""

import argparse
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Written above a key made for local use; auth-service refuses such a key in production.
DEVELOPMENT_KEY_MARKER = b"development signing key (make dev, tests): never use in production\n"


def write_signing_key(path: Path, *, overwrite: bool = False, development: bool = False) -> bool:
    """Write a new key to ``path``; False when one exists and ``overwrite`` is not set."""
    if path.exists() and not overwrite:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write((DEVELOPMENT_KEY_MARKER if development else b"") + pem)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--force", action="store_true", help="replace an existing key")
    parser.add_argument("--development", action="store_true", help="mark the key as one production must refuse")
    args = parser.parse_args()
    if write_signing_key(args.path, overwrite=args.force, development=args.development):
        print(f"wrote a new signing key to {args.path}")
    else:
        print(f"kept the existing signing key at {args.path}", file=sys.stderr)


if __name__ == "__main__":
    main()
