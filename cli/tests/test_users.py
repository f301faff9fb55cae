"""users, role, disable and enable: an admin manages accounts from the command line."""

import json

import pytest
import requests
from conftest import PASSWORD, new_username

from catalog_testkit.accounts import create_admin


@pytest.fixture
def admin(stack, catalogctl) -> str:
    """An admin made with auth-admin next to the stack's store, logged in through the CLI."""
    account = create_admin(stack, "cli_admin")
    assert catalogctl("login", "--username", account["username"], "--password", account["password"]).exit_code == 0
    return account["username"]


def signed_up(stack) -> dict:
    name = new_username()
    user = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    requests.post(f"{stack.url}/signup", json=user, timeout=10).raise_for_status()
    return user


def log_in(stack, user: dict) -> requests.Response:
    return requests.post(f"{stack.url}/login", json={"username": user["username"], "password": PASSWORD}, timeout=10)


def test_an_admin_lists_users_and_changes_a_role(stack, catalogctl, admin):
    user = signed_up(stack)
    listed = catalogctl("users", "--limit", "100", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    by_name = {account["username"]: account for account in json.loads(listed.stdout)}
    assert by_name[admin]["roles"] == ["admin"]

    table = catalogctl("users", "--limit", "100")
    assert admin in table.stdout and "admin" in table.stdout

    changed = catalogctl("role", user["username"], "viewer")
    assert (changed.exit_code, changed.stdout.strip()) == (0, f"{user['username']}: viewer, active")
    token = log_in(stack, user).json()["access_token"]
    refused = requests.post(
        f"{stack.url}/upload_csv",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("a.csv", b"show_id\nx\n")},
        timeout=10,
    )
    assert refused.status_code == 403

    assert catalogctl("role", user["email"].upper(), "editor").stdout.strip() == f"{user['username']}: editor, active"


def test_an_admin_disables_and_enables_an_account(stack, catalogctl, admin):
    user = signed_up(stack)
    disabled = catalogctl("disable", user["username"])
    assert (disabled.exit_code, disabled.stdout.strip()) == (0, f"{user['username']}: editor, disabled")
    assert log_in(stack, user).status_code == 403
    assert catalogctl("enable", user["username"]).exit_code == 0
    assert log_in(stack, user).status_code == 200


def test_unknown_users_roles_and_non_admins_are_refused(stack, catalogctl, admin, user):
    unknown = catalogctl("role", "nobody-of-that-name", "viewer")
    # `user` logged in after `admin`: the kept token is now the editor's.
    assert unknown.exit_code == 1
    assert "Forbidden: this needs the admin role" in unknown.stderr
    assert catalogctl("users").exit_code == 1
    bad_role = catalogctl("role", admin, "owner")
    assert bad_role.exit_code == 2


def test_an_unknown_user_is_named(stack, catalogctl, admin):
    result = catalogctl("role", "nobody-of-that-name", "viewer")
    assert (result.exit_code, result.stderr.strip()) == (1, "Error: No user 'nobody-of-that-name'")
