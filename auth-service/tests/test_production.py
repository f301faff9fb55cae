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


def test_access_tokens_shorter_than_a_minute_are_for_tests_only(signing_key_file):
    production = {"environment": "production", "private_key_file": signing_key_file, "mongo_url": "mongodb://db:27017"}
    with pytest.raises(ValidationError, match="AUTH_ACCESS_TOKEN_TTL must be at least 60 in production"):
        AuthSettings(**production, access_token_ttl=5)
    assert AuthSettings(**production, access_token_ttl=60).access_token_ttl == 60
    assert AuthSettings(environment="test", private_key_file=signing_key_file, access_token_ttl=5).access_token_ttl == 5
