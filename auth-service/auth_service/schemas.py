"""Request and response bodies of the auth API."""

import re
from datetime import datetime
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")


class UserCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    username: str
    email: str
    password: str = Field(min_length=8, max_length=128)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not USERNAME_PATTERN.match(value):
            raise ValueError(
                "Must be 3-32 characters of letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if len(value) > 254:
            raise ValueError("Must be a valid e-mail address")
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"Must be a valid e-mail address: {exc}") from None


class LoginRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    # A username or an e-mail address.
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    refresh_token: str = Field(min_length=1, max_length=512)


class UserPublic(BaseModel):
    id: str
    username: str
    email: str
    roles: list[str]
    created_at: datetime


class UserAccount(UserPublic):
    """A user as an admin sees it in ``GET /users``."""

    disabled: bool


class AccountUpdate(BaseModel):
    """``PATCH /users/{id}``: the roles and/or the disabled flag; a misspelt field is refused, not ignored."""

    model_config = ConfigDict(strict=True, extra="forbid")

    roles: list[Literal["viewer", "editor", "admin"]] | None = Field(None, min_length=1, max_length=3)
    disabled: bool | None = None

    @field_validator("roles", "disabled", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out means "unchanged"; an explicit null means nothing, so it is refused rather than guessed at.
        if value is None:
            raise ValueError("Must not be null: leave the field out to keep it as it is")
        return value

    @model_validator(mode="after")
    def _something_to_change(self) -> "AccountUpdate":
        if self.roles is None and self.disabled is None:
            raise ValueError("Give roles, disabled, or both")
        return self


class TokenResponse(BaseModel):
    message: str = "Login successful"
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
