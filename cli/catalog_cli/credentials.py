"""Access and refresh tokens kept between runs, one per catalog URL, readable by the user alone.

The file lives in the user's configuration directory (``$XDG_CONFIG_HOME/catalogctl``
on Linux, so tests can point it elsewhere). Tokens are keyed by base URL: a
token is only ever sent back to the server that issued it.
"""

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click

APP_NAME = "catalogctl"
FILE_NAME = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    username: str
    access_token: str
    expires_at: float | None
    # Trades for a new access token when this one runs out; revoked by `logout`.
    refresh_token: str | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at


def normalise_url(url: str) -> str:
    return url.rstrip("/")


def credentials_path() -> Path:
    return Path(click.get_app_dir(APP_NAME)) / FILE_NAME


class CredentialStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or credentials_path()

    def get(self, url: str) -> Credentials | None:
        entry = self._read().get(normalise_url(url))
        if not isinstance(entry, dict):
            return None
        try:
            return Credentials(
                username=str(entry["username"]),
                access_token=str(entry["access_token"]),
                expires_at=entry.get("expires_at"),
                refresh_token=entry.get("refresh_token"),
            )
        except KeyError:
            return None

    def save(self, url: str, credentials: Credentials) -> None:
        entries = self._read()
        entries[normalise_url(url)] = asdict(credentials)
        self._write(entries)

    def remove(self, url: str) -> bool:
        entries = self._read()
        if entries.pop(normalise_url(url), None) is None:
            return False
        self._write(entries)
        return True

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"Cannot read {self.path}: {exc}; delete it and log in again") from None
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict[str, object]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600 before any secret is in it; the rename makes the update atomic.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{FILE_NAME}.")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(entries, file, indent=2)
                file.write("\n")
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
