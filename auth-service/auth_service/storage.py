"""The auth service's collections: ``users``, ``login_throttle`` (and ``refresh_tokens``, in its own module)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth_service import refresh_tokens
from service_common import stores
from service_common.roles import Role, highest_role

USERS = "users"
LOGIN_THROTTLE = "login_throttle"


class DuplicateUser(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Run at every start: indexes already there are left alone (``service_common.stores.ensure_indexes``)."""
    # Normalised copies carry the case-insensitive uniqueness, so concurrent sign-ups cannot race past it.
    await stores.ensure_indexes(
        db[USERS],
        [
            IndexModel([("username_norm", ASCENDING)], unique=True, name="username_norm_unique"),
            IndexModel([("email_norm", ASCENDING)], unique=True, name="email_norm_unique"),
        ],
    )
    await stores.ensure_indexes(
        db[LOGIN_THROTTLE], [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_at_ttl")]
    )
    await refresh_tokens.ensure_indexes(db)


def roles_of(user: dict[str, Any], default: Role) -> list[str]:
    """The account's roles. An account stored before roles existed has none: it gets ``default``
    (the sign-up role), read here and never written back, so the operator's setting decides."""
    roles = user.get("roles")
    if isinstance(roles, list) and roles and all(isinstance(role, str) for role in roles):
        return roles
    return [default.value]


def in_rank_order(roles: "list[str] | tuple[str, ...]") -> list[str]:
    """Each role once, the least powerful first."""
    return [role.value for role in Role if role.value in roles]


def is_disabled(user: dict[str, Any]) -> bool:
    return user.get("disabled") is True


async def create_user(
    db: AsyncDatabase, *, username: str, email: str, password_hash: str, roles: list[str]
) -> dict[str, Any]:
    user = {
        "_id": str(uuid.uuid4()),
        "username": username,
        "username_norm": username.lower(),
        "email": email,
        "email_norm": email.lower(),
        "password_hash": password_hash,
        "roles": in_rank_order(roles),
        "disabled": False,
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


async def list_users(db: AsyncDatabase, *, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the accounts in username order (the unique index's), and how many there are."""
    cursor = db[USERS].find({}, {"password_hash": 0}).sort([("username_norm", ASCENDING)])
    users = await cursor.skip(skip).limit(limit).to_list()
    return users, await db[USERS].count_documents({})


async def update_account(
    db: AsyncDatabase, user_id: str, *, roles: list[str] | None, disabled: bool | None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Sets the account's roles and/or disabled flag: (before, after), or None for no such account."""
    changes: dict[str, Any] = {}
    if roles is not None:
        changes["roles"] = in_rank_order(roles)
    if disabled is not None:
        changes["disabled"] = disabled
    before = await db[USERS].find_one_and_update(
        {"_id": user_id}, {"$set": changes}, return_document=ReturnDocument.BEFORE
    )
    if before is None:
        return None
    return before, {**before, **changes}


def loses_access(before: dict[str, Any], after: dict[str, Any], default: Role) -> bool:
    """Whether a change takes something away: disabling, or a less powerful highest role. The
    account's refresh tokens must then die at once, so that a new access token carries the change."""
    if is_disabled(after) and not is_disabled(before):
        return True
    was, now = highest_role(roles_of(before, default)), highest_role(roles_of(after, default))
    return now is None or (was is not None and now.rank < was.rank)


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
