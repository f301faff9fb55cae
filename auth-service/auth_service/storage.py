"""The auth service's collections: ``users``, ``login_throttle`` (and ``refresh_tokens``, in its own module)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth_service import refresh_tokens

USERS = "users"
LOGIN_THROTTLE = "login_throttle"


class DuplicateUser(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


async def ensure_indexes(db: AsyncDatabase) -> None:
    # Normalised copies carry the case-insensitive uniqueness, so concurrent sign-ups cannot race past it.
    await db[USERS].create_index([("username_norm", ASCENDING)], unique=True, name="username_norm_unique")
    await db[USERS].create_index([("email_norm", ASCENDING)], unique=True, name="email_norm_unique")
    await db[LOGIN_THROTTLE].create_index([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_at_ttl")
    await refresh_tokens.ensure_indexes(db)


async def create_user(db: AsyncDatabase, *, username: str, email: str, password_hash: str) -> dict[str, Any]:
    user = {
        "_id": str(uuid.uuid4()),
        "username": username,
        "username_norm": username.lower(),
        "email": email,
        "email_norm": email.lower(),
        "password_hash": password_hash,
        "created_at": datetime.now(UTC).replace(microsecond=0),
    }
    try:
        await db[USERS].insert_one(user)
    except DuplicateKeyError as exc:
        key = (exc.details or {}).get("keyPattern") or {}
        message = str(exc)
        field = "email" if ("email_norm" in key or "email_norm" in message) else "username"
        raise DuplicateUser(field) from None
    return user


async def find_user_by_login(db: AsyncDatabase, login: str) -> dict[str, Any] | None:
    """A user by username, or by e-mail when the login contains '@' (usernames never do)."""
    field = "email_norm" if "@" in login else "username_norm"
    return await db[USERS].find_one({field: login.strip().lower()})


async def find_user_by_id(db: AsyncDatabase, user_id: str) -> dict[str, Any] | None:
    return await db[USERS].find_one({"_id": user_id})


async def update_password_hash(db: AsyncDatabase, user_id: str, password_hash: str) -> None:
    await db[USERS].update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    lockout_seconds: int
    lockout_max_seconds: int

    def lockout_for(self, failures: int) -> int:
        """Seconds an account stays locked after ``failures`` consecutive failures: doubling each time."""
        if failures < self.max_failures:
            return 0
        return min(self.lockout_seconds * 2 ** (failures - self.max_failures), self.lockout_max_seconds)


async def locked_for(db: AsyncDatabase, account: str, now: datetime) -> int:
    """Seconds the account must still wait before trying again, 0 when it may try now."""
    state = await db[LOGIN_THROTTLE].find_one({"_id": account}, {"locked_until": 1})
    locked_until = state and state.get("locked_until")
    if not locked_until or locked_until <= now:
        return 0
    return max(1, int((locked_until - now).total_seconds() + 0.999))


async def record_failure(db: AsyncDatabase, account: str, now: datetime, policy: ThrottlePolicy) -> int:
    """Count a failed login; the lockout in seconds it starts, 0 for none."""
    state = await db[LOGIN_THROTTLE].find_one_and_update(
        {"_id": account},
        {"$inc": {"failures": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    lockout = policy.lockout_for(state["failures"])
    # Forget the record a while after the longest lockout, so old failures do not pile up forever.
    expires_at = now + timedelta(seconds=policy.lockout_max_seconds * 2 + lockout)
    update: dict[str, Any] = {"expires_at": expires_at}
    if lockout:
        update["locked_until"] = now + timedelta(seconds=lockout)
    await db[LOGIN_THROTTLE].update_one({"_id": account}, {"$set": update})
    return lockout


async def reset_failures(db: AsyncDatabase, account: str) -> None:
    await db[LOGIN_THROTTLE].delete_one({"_id": account})
