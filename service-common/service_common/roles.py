"""Who may do what: the three roles, each granting everything the one before it grants.

``viewer`` reads (the catalog, its own account and jobs); ``editor`` also imports and cancels its own
imports; ``admin`` also acts on anyone's jobs and manages users. Access tokens carry the account's
roles in their ``roles`` claim, so that every service decides from the token alone.
"""

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


def highest_role(roles: "tuple[str, ...] | list[str]") -> Role | None:
    """The most powerful of ``roles``; names that are not roles count for nothing."""
    known = [Role(name) for name in roles if name in Role._value2member_map_]
    return max(known, key=lambda role: role.rank, default=None)


def grants(roles: "tuple[str, ...] | list[str]", needed: Role) -> bool:
    """Whether holding ``roles`` allows what ``needed`` allows."""
    highest = highest_role(roles)
    return highest is not None and highest.rank >= needed.rank
