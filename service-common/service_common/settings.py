"""The settings every service shares, read once from the environment."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Infrastructure settings common to all services.

    Service settings subclass this and add their own fields, each bound to a
    prefixed environment variable (``AUTH_PORT``, ``INGEST_BATCH_SIZE``...).
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    environment: Literal["development", "test", "production"] = Field("development", validation_alias="ENVIRONMENT")
    host: str = Field("127.0.0.1", validation_alias="SERVICE_HOST")
    mongo_url: str = Field("mongodb://127.0.0.1:27017", validation_alias="MONGO_URL")
    mongo_db: str = Field("catalog_platform", validation_alias="MONGO_DB")
    # Short, so that a request answers 503 within seconds when the store is down.
    mongo_timeout_ms: int = Field(3000, ge=100, validation_alias="MONGO_TIMEOUT_MS")
    # How long a starting service waits for its dependencies before giving up. Not for a store still
    # opening: see store_pid_file.
    startup_timeout: float = Field(60.0, gt=0, validation_alias="STARTUP_TIMEOUT")
    # The file holding the process id of the store (the dev stack's scripts/run-mongo writes it). While
    # that process lives, a starting service waits for the store however long it takes to open (the
    # embedded store takes about a minute to open a catalog of millions of items) instead of giving up
    # after STARTUP_TIMEOUT. Unset: STARTUP_TIMEOUT alone.
    store_pid_file: Path | None = Field(None, validation_alias="STORE_PID_FILE")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    jwt_issuer: str = Field("catalog-auth", validation_alias="JWT_ISSUER")
    jwt_audience: str = Field("catalog-api", validation_alias="JWT_AUDIENCE")
    # A directory on the store's volume (the embedded store's DATA_DIR, set by the Makefile), whose free
    # space is read directly. Unset: MongoDB's dbStats tells it, where the server reports it.
    store_disk_path: Path | None = Field(None, validation_alias="STORE_DISK_PATH")
    # Free space kept on the store's volume: uploads that would eat into it are refused (507), imports
    # pause before it, and every service's /readyz is 503 under it. Named for the ingest side, which
    # enforces it; one number for the whole stack. See the README's "Disk space" for the sizing.
    min_free_bytes: int = Field(512 * 1024**2, ge=0, validation_alias="INGEST_MIN_FREE_BYTES")

    # Settings whose development defaults must never reach production: they must be given explicitly there.
    required_in_production: ClassVar[tuple[str, ...]] = ("mongo_url",)

    @field_validator("store_disk_path", "store_pid_file", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _explicit_in_production(self) -> "CommonSettings":
        if self.environment == "production":
            missing = [name for name in self.required_in_production if name not in self.model_fields_set]
            if missing:
                names = ", ".join(str(type(self).model_fields[name].validation_alias) for name in missing)
                raise ValueError(f"{names} must be set explicitly in production")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"
