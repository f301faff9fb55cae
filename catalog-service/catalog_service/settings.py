from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from service_common.settings import CommonSettings

MIN_CURSOR_SECRET_LENGTH = 32


class CatalogSettings(CommonSettings):
    port: int = Field(8003, ge=1, le=65_535, validation_alias="CATALOG_PORT")
    max_limit: int = Field(100, ge=1, le=1_000, validation_alias="CATALOG_MAX_LIMIT")
    # The most a page's items may weigh (as stored): a page past it is refused (400 naming ``limit``),
    # never built in memory. At least 16 MiB, so that one item of any size (8 MiB at most) fits.
    max_page_bytes: int = Field(32 * 1024**2, ge=16 * 1024**2, validation_alias="CATALOG_MAX_PAGE_BYTES")
    # Deepest row an ``offset`` page of a sorted, searched or column-filtered query may start at (the
    # engine sorts every row before it); import-order and ``type=`` pages cost one page at any depth,
    # and cursors any page of any query.
    max_offset_rows: int = Field(100_000, ge=0, validation_alias="CATALOG_MAX_OFFSET_ROWS")
    # Every read's time budget: past it the answer is a 503 naming it, and the work stops (the
    # engine's query interrupted, every MongoDB query sent with it as maxTimeMS).
    query_budget_ms: int = Field(5_000, ge=100, le=55_000, validation_alias="CATALOG_QUERY_BUDGET_MS")
    # Where this process keeps its read model (a DuckDB file named after its port); unset: in memory,
    # rebuilt from MongoDB at every start.
    read_model_dir: Path | None = Field(None, validation_alias="CATALOG_READ_MODEL_DIR")
    # The engine's memory cap (DuckDB's memory_limit): past it, sorts and groups spill or fail, never grow.
    # Its buffer pool fills up to it on a large scan (an export), and the process holds 200-300 MB
    # besides: 512MB keeps the catalog under 1 GiB; order tables of 11M rows still build in 5-12 s.
    engine_memory: str = Field(
        "512MB", pattern=r"^[0-9]+(\.[0-9]+)?[KMGT]i?B$", validation_alias="CATALOG_ENGINE_MEMORY"
    )
    engine_threads: int = Field(2, ge=1, le=64, validation_alias="CATALOG_ENGINE_THREADS")
    # Engine queries run at once; more wait for a slot within their budget.
    engine_queries: int = Field(2, ge=1, le=64, validation_alias="CATALOG_ENGINE_QUERIES")
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
