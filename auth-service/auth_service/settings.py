from pathlib import Path

from pydantic import Field, model_validator

from service_common.roles import Role
from service_common.settings import CommonSettings

# OWASP's minimum for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
ARGON2_MIN_MEMORY_KIB = 19_456
ARGON2_MIN_TIME_COST = 2
PRODUCTION_MIN_ACCESS_TOKEN_TTL = 60


class AuthSettings(CommonSettings):
    port: int = Field(8001, validation_alias="AUTH_PORT")
    private_key_file: Path | None = Field(None, validation_alias="AUTH_PRIVATE_KEY_FILE")
    # Public keys of retired signing keys, still published so their tokens verify until they expire.
    previous_public_key_files: str = Field("", validation_alias="AUTH_PREVIOUS_PUBLIC_KEY_FILES")
    # Seconds; under PRODUCTION_MIN_ACCESS_TOKEN_TTL only outside production (the browser test's 5-second tokens).
    access_token_ttl: int = Field(900, ge=1, le=86_400, validation_alias="AUTH_ACCESS_TOKEN_TTL")
    refresh_token_ttl: int = Field(14 * 86_400, ge=300, validation_alias="AUTH_REFRESH_TOKEN_TTL")
    argon2_memory_kib: int = Field(
        ARGON2_MIN_MEMORY_KIB, ge=ARGON2_MIN_MEMORY_KIB, validation_alias="AUTH_ARGON2_MEMORY_KIB"
    )
    argon2_time_cost: int = Field(
        ARGON2_MIN_TIME_COST, ge=ARGON2_MIN_TIME_COST, validation_alias="AUTH_ARGON2_TIME_COST"
    )
    argon2_parallelism: int = Field(1, ge=1, le=16, validation_alias="AUTH_ARGON2_PARALLELISM")
    login_max_failures: int = Field(5, ge=1, validation_alias="AUTH_LOGIN_MAX_FAILURES")
    login_lockout_seconds: int = Field(30, ge=1, validation_alias="AUTH_LOGIN_LOCKOUT_SECONDS")
    login_lockout_max_seconds: int = Field(900, ge=1, validation_alias="AUTH_LOGIN_LOCKOUT_MAX_SECONDS")
    # The role a new sign-up gets; unset: editor in development (anyone may import), viewer in production.
    signup_role_setting: Role | None = Field(None, validation_alias="AUTH_SIGNUP_ROLE")
    # Production refuses a sign-up role that writes unless the operator says, here, that this is meant.
    allow_open_signup: bool = Field(False, validation_alias="AUTH_ALLOW_OPEN_SIGNUP")

    @model_validator(mode="after")
    def _key_outside_development(self) -> "AuthSettings":
        if self.environment != "development" and self.private_key_file is None:
            raise ValueError("AUTH_PRIVATE_KEY_FILE must name the signing key outside development")
        if self.is_production and self.access_token_ttl < PRODUCTION_MIN_ACCESS_TOKEN_TTL:
            raise ValueError(f"AUTH_ACCESS_TOKEN_TTL must be at least {PRODUCTION_MIN_ACCESS_TOKEN_TTL} in production")
        return self

    @model_validator(mode="after")
    def _no_open_signup_in_production_unless_meant(self) -> "AuthSettings":
        if self.is_production and self.signup_role is not Role.VIEWER and not self.allow_open_signup:
            raise ValueError(
                f"AUTH_SIGNUP_ROLE={self.signup_role} lets anyone who signs up write the catalog; in production "
                "use viewer (the default), or also set AUTH_ALLOW_OPEN_SIGNUP=true if that is meant"
            )
        return self

    @property
    def signup_role(self) -> Role:
        if self.signup_role_setting is not None:
            return self.signup_role_setting
        return Role.VIEWER if self.is_production else Role.EDITOR

    @property
    def open_signup(self) -> bool:
        """Whether anyone who signs up may write the catalog."""
        return self.signup_role is not Role.VIEWER

    @property
    def previous_public_key_paths(self) -> list[Path]:
        return [Path(p.strip()) for p in self.previous_public_key_files.split(",") if p.strip()]
