from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from service_common.settings import CommonSettings

MIN_CURSOR_SECRET_LENGTH = 32


class CatalogSettings(CommonSettings):
    port: int = Field(8003, ge=1, le=65_535, validation_alias="CATALOG_PORT")
    max_limit: int = Field(100, ge=1, le=1_000, validation_alias="CATALOG_MAX_LIMIT")
    # Deepest row an ``offset`` page of a sorted, searched or column-filtered query may start at (it
    # skips through a scan); import-order and ``type=`` pages cost one page at any depth.
    max_offset_rows: int = Field(100_000, ge=0, validation_alias="CATALOG_MAX_OFFSET_ROWS")
    # Columns worth a (dataset, column, seq) index on MongoDB, for sorts and filters by them. Each costs
    # every imported row an index entry; the embedded store scans for these queries with or without.
    indexed_columns: Annotated[list[str], NoDecode] = Field([], validation_alias="CATALOG_INDEXES")
    # Signs cursor tokens. Every replica needs the same one, and it must outlive restarts.
    cursor_secret: SecretStr | None = Field(None, validation_alias="CATALOG_CURSOR_SECRET")

    @field_validator("indexed_columns", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [column.strip() for column in value.split(",") if column.strip()]
        return value

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
