import pytest
from pydantic import ValidationError

from ingest_service.settings import IngestSettings


def test_production_refuses_the_local_defaults_for_its_servers(monkeypatch):
    for name in ("MONGO_URL", "REDIS_URL", "JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="REDIS_URL, JWKS_URL must be set explicitly in production"):
        IngestSettings(environment="production", mongo_url="mongodb://db.internal:27017")
    settings = IngestSettings(
        environment="production",
        mongo_url="mongodb://db.internal:27017",
        redis_url="redis://broker.internal:6379/0",
        jwks_url="http://auth.internal:8001/.well-known/jwks.json",
    )
    assert settings.is_production
