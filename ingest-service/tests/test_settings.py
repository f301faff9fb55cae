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


@pytest.mark.parametrize(
    ("redis_url", "transport"),
    [
        ("redis://127.0.0.1:6379/0", "ingest_service.broker:Transport"),
        ("rediss://cache.example:6380/0?ssl_cert_reqs=required", None),
        ("sentinel://sentinel-1:26379", None),
    ],
)
def test_a_plain_redis_broker_gets_the_repaired_transport_and_other_schemes_keep_kombus(redis_url, transport):
    from ingest_service.celery_app import create_celery

    celery = create_celery(IngestSettings(redis_url=redis_url))
    assert celery.conf.broker_transport == transport
    # The URL still gives the connection its host and port.
    assert celery.connection_for_write().hostname in redis_url
