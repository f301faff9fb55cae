"""Opaque refresh tokens, stored hashed, rotated on use; reuse of a rotated one revokes its whole family."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from service_common import stores

REFRESH_TOKENS = "refresh_tokens"


class RefreshRejected(Exception):
    """The refresh token is unknown, expired, revoked, or was already used."""


@dataclass(frozen=True)
class IssuedRefreshToken:
    token: str
    family_id: str
    expires_in: int


async def ensure_indexes(db: AsyncDatabase) -> None:
    await stores.ensure_indexes(
        db[REFRESH_TOKENS],
        [
            IndexModel([("family_id", ASCENDING)], name="family_id"),
            IndexModel([("user_id", ASCENDING)], name="user_id"),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_at_ttl"),
        ],
    )


def _digest(token: str) -> str:
    # The tokens are 256 random bits, so a plain SHA-256 is enough to make a stolen database useless.
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(db: AsyncDatabase, user_id: str, ttl_seconds: int, family_id: str | None = None) -> IssuedRefreshToken:
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    family_id = family_id or str(uuid.uuid4())
    await db[REFRESH_TOKENS].insert_one(
        {
            "_id": _digest(token),
            "family_id": family_id,
            "user_id": user_id,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl_seconds),
            "rotated_at": None,
            "revoked_at": None,
        }
    )
    return IssuedRefreshToken(token=token, family_id=family_id, expires_in=ttl_seconds)


async def rotate(db: AsyncDatabase, token: str, ttl_seconds: int) -> tuple[str, IssuedRefreshToken]:
    """Spend ``token`` for a new one in the same family: (user id, new token)."""
    now = datetime.now(UTC)
    # Only one caller can flip rotated_at from null, so two concurrent uses count as a reuse.
    spent = await db[REFRESH_TOKENS].find_one_and_update(
        {"_id": _digest(token), "rotated_at": None, "revoked_at": None, "expires_at": {"$gt": now}},
        {"$set": {"rotated_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    if spent is None:
        known = await db[REFRESH_TOKENS].find_one({"_id": _digest(token)}, {"family_id": 1, "rotated_at": 1})
        if known is not None and known.get("rotated_at") is not None:
            # A rotated token came back: whoever holds the family's tokens may be a thief. Revoke it all.
            await revoke_family(db, known["family_id"])
        raise RefreshRejected
    issued = await issue(db, spent["user_id"], ttl_seconds, family_id=spent["family_id"])
    # A logout or a reuse detection revokes the family's tokens, the spent one included. Stored first,
    # then checked: one that ran before the new token was stored shows on the spent token, and one that
    # runs after it revokes the new token too, so no order of the two leaves a live token behind.
    revoked = await db[REFRESH_TOKENS].find_one({"_id": spent["_id"], "revoked_at": {"$ne": None}}, {"_id": 1})
    if revoked is not None:
        await revoke_family(db, spent["family_id"])
        raise RefreshRejected
    return spent["user_id"], issued


async def owner_and_family(db: AsyncDatabase, token: str) -> tuple[str, str] | None:
    found = await db[REFRESH_TOKENS].find_one({"_id": _digest(token)}, {"user_id": 1, "family_id": 1})
    return (found["user_id"], found["family_id"]) if found else None


async def revoke_family(db: AsyncDatabase, family_id: str) -> None:
    await db[REFRESH_TOKENS].update_many(
        {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": datetime.now(UTC)}}
    )


async def revoke_user(db: AsyncDatabase, user_id: str) -> int:
    """Revokes every refresh token of the account, in every log-in: how many were still live."""
    result = await db[REFRESH_TOKENS].update_many(
        {"user_id": user_id, "revoked_at": None}, {"$set": {"revoked_at": datetime.now(UTC)}}
    )
    return result.modified_count
