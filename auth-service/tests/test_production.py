"""Production refuses development secrets and defaults."""

import pytest
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from auth_service.main import create_app
from auth_service.settings import AuthSettings
from service_common.keygen import write_signing_key


def test_production_needs_an_explicit_mongo_url(signing_key_file, monkeypatch):
    monkeypatch.delenv("MONGO_URL", raising=False)
    with pytest.raises(ValidationError, match="MONGO_URL must be set explicitly in production"):
        AuthSettings(environment="production", private_key_file=signing_key_file)


async def test_production_refuses_a_development_signing_key(make_settings, tmp_path):
    key = tmp_path / "dev.pem"
    write_signing_key(key, development=True)
    server = TestServer(create_app(make_settings(environment="production", private_key_file=key)))
    with pytest.raises(ValueError, match="development signing key"):
        await server.start_server()
    await server.close()


async def test_production_starts_with_a_real_key(make_settings, tmp_path, start_client):
    key = tmp_path / "prod.pem"
    write_signing_key(key)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    client = await start_client(make_settings(environment="production", private_key_file=key))
    assert (await client.get("/readyz")).status == 200


async def test_development_keys_still_work_outside_production(make_settings, tmp_path, start_client):
    key = tmp_path / "dev.pem"
    write_signing_key(key, development=True)
    client = await start_client(make_settings(private_key_file=key))
    assert (await client.get("/.well-known/jwks.json")).status == 200


def test_outside_development_a_signing_key_is_required(monkeypatch):
    monkeypatch.delenv("AUTH_PRIVATE_KEY_FILE", raising=False)
    with pytest.raises(ValidationError, match="AUTH_PRIVATE_KEY_FILE"):
        AuthSettings(environment="production", mongo_url="mongodb://db.internal:27017")
    assert AuthSettings(environment="development").private_key_file is None


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_production_refuses_an_open_signup_role_without_the_explicit_flag(signing_key_file, role):
    with pytest.raises(ValidationError, match=f"AUTH_SIGNUP_ROLE={role} lets anyone who signs up write"):
        AuthSettings(
            environment="production",
            mongo_url="mongodb://db.internal:27017",
            private_key_file=signing_key_file,
            signup_role_setting=role,
        )


def test_production_signs_up_viewers_unless_told_otherwise(signing_key_file):
    production = {
        "environment": "production",
        "mongo_url": "mongodb://db.internal:27017",
        "private_key_file": signing_key_file,
    }
    assert AuthSettings(**production).signup_role == "viewer"
    opened = AuthSettings(**production, signup_role_setting="editor", allow_open_signup=True)
    assert (opened.signup_role, opened.open_signup) == ("editor", True)
    assert AuthSettings(environment="development").signup_role == "editor"


def test_the_signup_settings_come_from_the_environment(signing_key_file, monkeypatch):
    monkeypatch.setenv("AUTH_SIGNUP_ROLE", "editor")
    monkeypatch.setenv("AUTH_ALLOW_OPEN_SIGNUP", "true")
    settings = AuthSettings(
        environment="production", mongo_url="mongodb://db.internal:27017", private_key_file=signing_key_file
    )
    assert (settings.signup_role, settings.allow_open_signup) == ("editor", True)
    monkeypatch.setenv("AUTH_SIGNUP_ROLE", "owner")
    with pytest.raises(ValidationError, match="AUTH_SIGNUP_ROLE"):
        AuthSettings()


def test_the_production_process_refuses_an_open_signup_and_starts_with_a_warning_when_told(
    mongo_url, mongo_db_name, tmp_path
):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import requests

    from catalog_testkit.polling import poll
    from catalog_testkit.processes import free_port, start_process, stop_process

    key = tmp_path / "prod.pem"
    write_signing_key(key)
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "MONGO_URL": mongo_url,
        "MONGO_DB": mongo_db_name,
        "AUTH_PRIVATE_KEY_FILE": str(key),
        "AUTH_PORT": str(port),
        "AUTH_SIGNUP_ROLE": "editor",
    }
    env.pop("AUTH_ALLOW_OPEN_SIGNUP", None)
    binary = str(Path(sys.executable).with_name("auth-service"))
    refused = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "AUTH_SIGNUP_ROLE=editor lets anyone who signs up write the catalog" in refused.stderr

    log = tmp_path / "auth.log"
    process = start_process([binary], log_path=log, env={**env, "AUTH_ALLOW_OPEN_SIGNUP": "true"})
    try:
        poll(
            lambda: requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
            within=60,
            what="auth ready",
            ignore=(requests.RequestException,),
        )
        assert "Open sign-up: AUTH_ALLOW_OPEN_SIGNUP=true and anyone who signs up gets the editor role" in (
            log.read_text()
        )
    finally:
        stop_process(process)


def test_access_tokens_shorter_than_a_minute_are_for_tests_only(signing_key_file):
    production = {"environment": "production", "private_key_file": signing_key_file, "mongo_url": "mongodb://db:27017"}
    with pytest.raises(ValidationError, match="AUTH_ACCESS_TOKEN_TTL must be at least 60 in production"):
        AuthSettings(**production, access_token_ttl=5)
    assert AuthSettings(**production, access_token_ttl=60).access_token_ttl == 60
    assert AuthSettings(environment="test", private_key_file=signing_key_file, access_token_ttl=5).access_token_ttl == 5


def test_a_port_already_taken_is_one_line_and_exit_status_1(mongo_url, mongo_db_name, signing_key_file):
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        env = {
            **os.environ,
            "ENVIRONMENT": "development",
            "MONGO_URL": mongo_url,
            "MONGO_DB": mongo_db_name,
            "AUTH_PRIVATE_KEY_FILE": str(signing_key_file),
            "AUTH_PORT": str(busy),
        }
        binary = str(Path(sys.executable).with_name("auth-service"))
        refused = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert f"Port {busy} on 127.0.0.1 is already in use" in refused.stderr
    assert "Traceback" not in refused.stderr
