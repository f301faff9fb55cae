"""``auth-admin``: the operator's command for administrators, run where the store is reachable.

    auth-admin create-admin --username ada --email ada@example.com

creates the account as an admin, or makes an existing account (same username and e-mail) an admin
and enables it again. A new account's password is asked for twice on a terminal, or read as one
line from standard input otherwise, so that a script can pipe it. There is no default password and
no environment variable that makes an admin: only someone who can run this next to the store can.
"""

import argparse
import asyncio
import getpass
import sys
from typing import TextIO

from pydantic import ValidationError

from auth_service import storage
from auth_service.passwords import Passwords
from auth_service.schemas import UserCreate
from auth_service.settings import AuthSettings
from service_common.roles import Role, grants
from service_common.stores import new_mongo_client, wait_until_ready


class CommandError(Exception):
    """A reason to stop, printed on one line; exit code 1."""


def read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise CommandError("The passwords do not match")
        return password
    # Only the line end is dropped: spaces are part of a password.
    return stdin.readline().rstrip("\r\n")


async def create_admin(settings: AuthSettings, username: str, email: str, stdin: TextIO) -> str:
    client = new_mongo_client(settings, "auth-admin")
    try:
        db = client[settings.mongo_db]
        await wait_until_ready(
            "MongoDB", lambda: client.admin.command("ping"), settings.startup_timeout, settings.store_pid_file
        )
        await storage.ensure_indexes(db)
        existing = await storage.find_user_by_login(db, username)
        if existing is not None:
            return await _promote(db, settings, existing, email)
        password = await asyncio.to_thread(read_password, stdin)
        try:
            account = UserCreate(username=username, email=email, password=password)
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise CommandError(reasons.replace("Value error, ", "")) from None
        passwords = await asyncio.to_thread(Passwords, settings)
        try:
            user = await storage.create_user(
                db,
                username=account.username,
                email=account.email,
                password_hash=await passwords.hash(account.password),
                roles=[Role.ADMIN.value],
            )
        except storage.DuplicateUser as exc:
            raise CommandError(f"Another account has this {exc.field}") from None
        return f"Created admin {user['username']} ({user['_id']})"
    finally:
        await client.close()


async def _promote(db, settings: AuthSettings, user: dict, email: str) -> str:
    # Both must match, so that a typo in the username never makes someone else an admin.
    if user["email_norm"] != email.strip().lower():
        raise CommandError(f"User {user['username']} exists with another e-mail address; nothing changed")
    roles = storage.roles_of(user, settings.signup_role)
    if grants(roles, Role.ADMIN) and not storage.is_disabled(user):
        return f"{user['username']} ({user['_id']}) is already an admin"
    await storage.update_account(db, user["_id"], roles=[*roles, Role.ADMIN.value], disabled=False)
    return f"Promoted {user['username']} ({user['_id']}) to admin; its password is unchanged"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="auth-admin", description="Administer the catalog platform's accounts.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "create-admin",
        help="create an admin, or make an existing account an admin",
        description="Create an admin account (asks for its password), or make an existing account an admin.",
    )
    create.add_argument("--username", required=True)
    create.add_argument("--email", required=True)
    args = parser.parse_args(argv)
    try:
        settings = AuthSettings()
        print(asyncio.run(create_admin(settings, args.username, args.email, sys.stdin)))
    except (CommandError, ValueError, RuntimeError) as exc:
        print(f"auth-admin: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
