from pydantic import Field, SecretStr, field_validator, model_validator

from service_common.settings import CommonSettings

MIN_CURSOR_SECRET_LENGTH = 32


class CatalogSettings(CommonSettings):
    port: int = Field(8003, ge=1, le=65_535, validation_alias="CATALOG_PORT")
    max_limit: int = Field(100, ge=1, le=1_000, validation_alias="CATALOG_MAX_LIMIT")
    # Deepest row an ``offset`` page may start at; deeper pages must use ``cursor``, whose cost does not grow.
    max_offset_rows: int = Field(100_000, ge=0, validation_alias="CATALOG_MAX_OFFSET_ROWS")
    # Signs cursor tokens. Every replica needs the same one, and it must outlive restarts.
    cursor_secret: SecretStr | None = Field(None, validation_alias="CATALOG_CURSOR_SECRET")

    @field_validator("cursor_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_CURSOR_SECRET_LENGTH:
            raise ValueError(f"CATALOG_CURSOR_SECRET must be at least {MIN_CURSOR_SECRET_LENGTH} characters")
        return secret

    @model_validator(mode="after")
    def _secret_outside_development(self) -> "CatalogSettings":
        if self.environment != "development" and self.cursor_secret is None:
            raise ValueError(
                f"CATALOG_CURSOR_SECRET must be set (at least {MIN_CURSOR_SECRET_LENGTH} characters) "
                "outside development"
            )
        return self
