"""signup, login, logout and whoami: the token kept per URL in the user's config directory, 0600."""

import json
import stat
import time

import pexpect
import requests
from conftest import CATALOGCTL, PASSWORD, new_username


def credentials_file(config_home):
    return config_home / "catalogctl" / "credentials.json"


def test_signup_login_whoami_logout(catalogctl, config_home, stack):
    name = new_username()
    result = catalogctl("signup", "--username", name, "--email", f"{name}@example.com", "--password", PASSWORD)
    assert result.exit_code == 0
    assert "User created successfully" in result.stdout

    result = catalogctl("login", "--username", name, "--password", PASSWORD)
    assert result.exit_code == 0
    assert f"Logged in to {stack.url} as {name}" in result.stdout

    path = credentials_file(config_home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())[stack.url]
    assert stored["username"] == name
    assert stored["expires_at"] > time.time()

    result = catalogctl("whoami")
    assert (result.exit_code, result.stdout.strip()) == (0, f"{name} <{name}@example.com> (editor) on {stack.url}")

    refresh_token = stored["refresh_token"]
    assert catalogctl("logout").exit_code == 0
    assert stack.url not in json.loads(path.read_text())
    # The session ended on the server too: its refresh token no longer works.
    refused = requests.post(f"{stack.url}/token/refresh", json={"refresh_token": refresh_token}, timeout=10)
    assert refused.status_code == 401
    result = catalogctl("whoami")
    assert result.exit_code == 1
    assert result.stderr == f"Error: Not logged in to {stack.url}: run `catalogctl login` first\n"


def test_a_token_is_only_sent_to_the_url_that_issued_it(catalogctl, user, stack):
    assert catalogctl("whoami").exit_code == 0
    # The same gateway under another host name is another URL: the token is not offered to it.
    other_url = stack.url.replace("127.0.0.1", "localhost")
    other = catalogctl("--url", other_url, "whoami")
    assert other.exit_code == 1
    assert f"Not logged in to {other_url}" in other.stderr


def test_login_prompts_for_the_password_without_echoing_it(cli_env, user, stack):
    child = pexpect.spawn(CATALOGCTL, ["login", "--username", user], env=cli_env, encoding="utf-8", timeout=30)
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert f"Logged in to {stack.url} as {user}" in child.before
    assert PASSWORD not in child.before


def test_signup_prompts_and_asks_for_the_password_twice(cli_env):
    name = new_username()
    child = pexpect.spawn(CATALOGCTL, ["signup"], env=cli_env, encoding="utf-8", timeout=30)
    child.expect("Username: ")
    child.sendline(name)
    child.expect("Email: ")
    child.sendline(f"{name}@example.com")
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect("Repeat for confirmation: ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "User created successfully" in child.before


def test_account_errors_are_one_line_with_exit_code_1(catalogctl, user, config_home, stack):
    result = catalogctl("login", "--username", user, "--password", "wrong-password")
    assert (result.exit_code, result.stderr) == (1, "Error: Invalid username or password [HTTP 401]\n")

    result = catalogctl("signup", "--username", user, "--email", "someone.else@example.com", "--password", PASSWORD)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Username already")
    assert result.stderr.endswith("[HTTP 409]\n")

    result = catalogctl("signup", "--username", new_username(), "--email", "not-an-address", "--password", "short")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "email" in result.stderr and "password" in result.stderr and "[HTTP 400]" in result.stderr

    # An access token that has run out is renewed with the refresh token, without asking.
    path = credentials_file(config_home)
    entries = json.loads(path.read_text())
    before = entries[stack.url]
    entries[stack.url] = {**before, "expires_at": time.time() - 1}
    path.write_text(json.dumps(entries))
    assert catalogctl("whoami").exit_code == 0
    renewed = json.loads(path.read_text())[stack.url]
    assert renewed["expires_at"] > time.time()
    assert renewed["access_token"] != before["access_token"]
    assert renewed["refresh_token"] != before["refresh_token"]

    # A session whose refresh token is refused too has ended: the message says what to do.
    entries[stack.url] = {**renewed, "expires_at": time.time() - 1, "refresh_token": "revoked-or-made-up"}
    path.write_text(json.dumps(entries))
    result = catalogctl("whoami")
    assert result.exit_code == 1
    assert "session" in result.stderr and "expired" in result.stderr

    # A token the server refuses: the message says what to do.
    entries[stack.url] = {**entries[stack.url], "access_token": "not-a-token", "expires_at": None}
    path.write_text(json.dumps(entries))
    result = catalogctl("whoami")
    assert result.exit_code == 1
    assert "[HTTP 401]; log in again with `catalogctl login`" in result.stderr


def test_an_unreachable_server_and_a_bad_url_are_explained(catalogctl):
    result = catalogctl("--url", "http://127.0.0.1:9", "content")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Cannot reach http://127.0.0.1:9")
    assert result.stderr.count("\n") == 1

    result = catalogctl("--url", "ftp://example.com", "content")
    assert result.exit_code == 2
    assert "--url" in result.stderr
