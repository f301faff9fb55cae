"""``auth-admin``: the operator's command for administrators, run where the store is reachable.

    auth-admin create-admin --username ada --email ada@example.com

creates the account as an admin, or makes an existing account (same username and e-mail) an admin
and enables it again once the operator has given that account's password: anyone may sign up first
under the name and e-mail the operator is about to use, and must not become the admin that way.
``--promote-existing`` promotes without the password, after printing who registered the account
and when. A password is asked for (twice for a new account) on a terminal, or read as one line from
standard input otherwise, so that a script can pipe it. There is no default password and
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


def read_password(stdin: TextIO, *, confirm: bool = True) -> str:
    if stdin.isatty():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Password (again): ") != password:
            raise CommandError("The passwords do not match")
        return password
    # Only the line end is dropped: spaces are part of a password.
    return stdin.readline().rstrip("\r\n")


async def create_admin(
    settings: AuthSettings, username: str, email: str, stdin: TextIO, *, promote_existing: bool = False
) -> str:
    client = new_mongo_client(settings, "auth-admin")
    try:
        db = client[settings.mongo_db]
        await wait_until_ready(
            "MongoDB", lambda: client.admin.command("ping"), settings.startup_timeout, settings.store_pid_file
        )
        await storage.ensure_indexes(db)
        existing = await storage.find_user_by_login(db, username)
        if existing is not None:
            return await _promote(db, settings, existing, email, stdin, promote_existing=promote_existing)
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


async def _promote(db, settings: AuthSettings, user: dict, email: str, stdin: TextIO, *, promote_existing: bool) -> str:
    # Both must match, so that a typo in the username never makes someone else an admin.
    if user["email_norm"] != email.strip().lower():
        raise CommandError(f"User {user['username']} exists with another e-mail address; nothing changed")
    roles = storage.roles_of(user, settings.signup_role)
    if grants(roles, Role.ADMIN) and not storage.is_disabled(user):
        return f"{user['username']} ({user['_id']}) is already an admin"
    # Stored in UTC, and written as the API writes it.
    signed_up = user["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
    registered = f"{user['username']} <{user['email']}>, registered {signed_up} ({user['_id']})"
    if promote_existing:
        # The operator vouches for an account it did not create: what it is goes on record first.
        print(f"Promoting an existing account without its password: {registered}", flush=True)
    else:
        password = await asyncio.to_thread(read_password, stdin, confirm=False)
        passwords = await asyncio.to_thread(Passwords, settings)
        matches, _ = await passwords.verify(user.get("password_hash"), password)
        if not matches:
            raise CommandError(
                f"The account {registered} exists and this is not its password; nothing changed "
                "(give its password, or pass --promote-existing if you know who registered it)"
            )
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
    create.add_argument(
        "--promote-existing",
        action="store_true",
        help="make an existing account an admin without its password (prints who registered it and when)",
    )
    args = parser.parse_args(argv)
    try:
        settings = AuthSettings()
        promote = args.promote_existing
        print(asyncio.run(create_admin(settings, args.username, args.email, sys.stdin, promote_existing=promote)))
    except (CommandError, ValueError, RuntimeError) as exc:
        print(f"auth-admin: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
