"""``auth-admin create-admin`` and ``make admin``: the first administrator, made next to the store."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
AUTH_ADMIN = Path(sys.executable).with_name("auth-admin")


@pytest.fixture
def run_admin(mongo_url, mongo_db_name):
    """Runs a command with this test's store in its environment, the password on its standard input."""

    def run(command: list[str], password: str = "", **env: str) -> subprocess.CompletedProcess:
        environment = {
            **os.environ,
            "MONGO_URL": mongo_url,
            "MONGO_DB": mongo_db_name,
            "ENVIRONMENT": "development",
            "MONGO_TIMEOUT_MS": "2000",
            **env,
        }
        return subprocess.run(command, input=password, capture_output=True, text=True, env=environment, timeout=120)

    return run


def admin_command(username: str, email: str) -> list[str]:
    return [str(AUTH_ADMIN), "create-admin", "--username", username, "--email", email]


async def test_auth_admin_creates_an_admin_who_logs_in_with_the_piped_password(run_admin, client, mongo_db):
    result = run_admin(admin_command("root", "root@example.com"), "a long admin password\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Created admin root (")
    stored = mongo_db.users.find_one({"username_norm": "root"})
    assert (stored["roles"], stored["disabled"]) == (["admin"], False)
    assert stored["password_hash"].startswith("$argon2id$")

    login = await client.post("/login", json={"username": "root", "password": "a long admin password"})
    assert login.status == 200
    users = await client.get("/users", headers={"Authorization": f"Bearer {(await login.json())['access_token']}"})
    assert users.status == 200


async def test_auth_admin_promotes_an_existing_user_and_keeps_its_password(run_admin, client, new_user, mongo_db):
    user = new_user()
    created = (await (await client.post("/signup", json=user)).json())["user"]
    mongo_db.users.update_one({"_id": created["id"]}, {"$set": {"disabled": True}})

    result = run_admin(admin_command(user["username"].upper(), user["email"]), user["password"] + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Promoted {user['username']} ({created['id']}) to admin; its password is unchanged"
    stored = mongo_db.users.find_one({"_id": created["id"]})
    assert (stored["roles"], stored["disabled"]) == (["editor", "admin"], False)
    assert (
        await client.post("/login", json={"username": user["username"], "password": user["password"]})
    ).status == 200

    again = run_admin(admin_command(user["username"], user["email"]))
    assert (again.returncode, again.stdout.strip()) == (0, f"{user['username']} ({created['id']}) is already an admin")


async def test_auth_admin_refuses_what_would_be_a_mistake(run_admin, client, new_user, mongo_db):
    user = new_user()
    await client.post("/signup", json=user)
    other_email = run_admin(admin_command(user["username"], "someone.else@example.com"))
    assert other_email.returncode == 1
    assert "exists with another e-mail address; nothing changed" in other_email.stderr
    assert mongo_db.users.find_one({"username_norm": user["username"]})["roles"] == ["editor"]

    short = run_admin(admin_command("newadmin", "new@example.com"), "short\n")
    assert short.returncode == 1 and "password" in short.stderr
    no_password = run_admin(admin_command("newadmin", "new@example.com"), "")
    assert no_password.returncode == 1 and "password" in no_password.stderr
    taken_email = run_admin(admin_command("newadmin", user["email"]), "a long admin password\n")
    assert (taken_email.returncode, taken_email.stderr.strip()) == (1, "auth-admin: Another account has this email")
    assert mongo_db.users.count_documents({}) == 1


async def test_an_account_registered_in_advance_is_not_made_admin_without_its_password(
    run_admin, client, new_user, mongo_db
):
    # Someone signs up first with the name and e-mail the operator is about to use.
    squatter = new_user()
    created = (await (await client.post("/signup", json=squatter)).json())["user"]
    command = admin_command(squatter["username"], squatter["email"])

    refused = run_admin(command, "the operator's own password\n")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"auth-admin: The account {squatter['username']} <{squatter['email']}>, registered {created['created_at']}"
        f" ({created['id']}) exists and this is not its password; nothing changed"
        " (give its password, or pass --promote-existing if you know who registered it)"
    )
    assert mongo_db.users.find_one({"_id": created["id"]})["roles"] == ["editor"]

    vouched = run_admin([*command, "--promote-existing"])
    assert vouched.returncode == 0, vouched.stderr
    assert vouched.stdout.splitlines() == [
        f"Promoting an existing account without its password: {squatter['username']} <{squatter['email']}>,"
        f" registered {created['created_at']} ({created['id']})",
        f"Promoted {squatter['username']} ({created['id']}) to admin; its password is unchanged",
    ]
    assert mongo_db.users.find_one({"_id": created["id"]})["roles"] == ["editor", "admin"]


def test_auth_admin_needs_both_names(run_admin):
    result = run_admin([str(AUTH_ADMIN), "create-admin", "--username", "root"])
    assert result.returncode == 2
    assert "--email" in result.stderr


def test_auth_admin_says_so_when_the_store_is_unreachable(run_admin):
    result = run_admin(
        admin_command("root", "root@example.com"),
        "a long admin password\n",
        MONGO_URL="mongodb://127.0.0.1:9",
        STARTUP_TIMEOUT="1",
    )
    assert result.returncode == 1
    assert result.stderr.startswith("auth-admin: MongoDB not reachable")


def test_make_admin_creates_then_promotes_in_the_store_it_is_given(run_admin, mongo_db):
    make = ["make", "--no-print-directory", "-C", str(REPOSITORY), "admin"]
    created = run_admin([*make, "USERNAME=makeadmin", "EMAIL=make.admin@example.com"], "a long admin password\n")
    assert created.returncode == 0, created.stderr
    assert "Created admin makeadmin" in created.stdout
    assert mongo_db.users.find_one({"username_norm": "makeadmin"})["roles"] == ["admin"]

    again = run_admin([*make, "USERNAME=makeadmin", "EMAIL=make.admin@example.com"])
    assert "makeadmin" in again.stdout and "is already an admin" in again.stdout

    mongo_db.users.update_one({"username_norm": "makeadmin"}, {"$set": {"roles": ["viewer"]}})
    vouched = run_admin([*make, "USERNAME=makeadmin", "EMAIL=make.admin@example.com", "PROMOTE_EXISTING=1"])
    assert vouched.returncode == 0, vouched.stderr
    assert "Promoting an existing account without its password: makeadmin <make.admin@example.com>" in vouched.stdout
    assert mongo_db.users.find_one({"username_norm": "makeadmin"})["roles"] == ["viewer", "admin"]

    usage = run_admin([*make, "EMAIL=make.admin@example.com"], USERNAME="from-the-shell")
    assert usage.returncode == 2
    assert "usage: make admin USERNAME=<username> EMAIL=<e-mail>" in usage.stderr


def test_on_a_terminal_auth_admin_asks_for_the_password_twice(mongo_url, mongo_db_name, mongo_db):
    import pexpect

    env = {**os.environ, "MONGO_URL": mongo_url, "MONGO_DB": mongo_db_name, "ENVIRONMENT": "development"}
    args = ["create-admin", "--username", "ttyadmin", "--email", "tty@example.com"]
    child = pexpect.spawn(str(AUTH_ADMIN), args, env=env, encoding="utf-8", timeout=60)
    child.expect("Password: ")
    child.sendline("first password typed")
    child.expect(r"Password \(again\): ")
    child.sendline("another password typed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "The passwords do not match" in child.before
    assert mongo_db.users.count_documents({}) == 0

    child = pexpect.spawn(str(AUTH_ADMIN), args, env=env, encoding="utf-8", timeout=60)
    for prompt in ("Password: ", r"Password \(again\): "):
        child.expect(prompt)
        child.sendline("the same password twice")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Created admin ttyadmin" in child.before
    # Typed on a terminal, the password is never echoed.
    assert "the same password twice" not in child.before


def test_the_auth_image_installs_auth_admin_for_docker_compose_run():
    """Docker cannot run here: the image's pip install of this package is what puts the script on its PATH."""
    import tomllib

    scripts = tomllib.loads((REPOSITORY / "auth-service" / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["auth-admin"] == "auth_service.admin:main"
    dockerfile = (REPOSITORY / "auth-service" / "Dockerfile").read_text()
    assert "COPY auth-service/ /src/auth-service/" in dockerfile
    assert any(line.startswith("RUN pip install") and "/src/auth-service" in line for line in dockerfile.splitlines())
