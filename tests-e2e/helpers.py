"""The end-to-end suites' helpers (tests-e2e and chaos/), imported by every module that needs them, never copied:
accounts, uploads and waiting for imports, all through the gateway. The CSV writer, the poller, the page
walker and the admin helper are the test kit's (``catalog_testkit``).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from catalog_testkit.constants import FINISHED
from catalog_testkit.polling import poll

PASSWORD = "e2e-password-1"

# Called with each answer a helper receives, e.g. to hold it to the OpenAPI description.
Inspect = Callable[[requests.Response], object]


def _ignore(response: requests.Response) -> None:
    pass


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def sign_up(base_url: str, prefix: str = "e2e", inspect: Inspect = _ignore) -> dict[str, str]:
    """A new user's sign-up body (username, email, password), signed up through the gateway."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    user = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    response = requests.post(f"{base_url}/signup", json=user, timeout=10)
    inspect(response)
    assert response.status_code == 201, response.text
    return user


def log_in(base_url: str, username: str, password: str = PASSWORD, inspect: Inspect = _ignore) -> Account:
    response = requests.post(f"{base_url}/login", json={"username": username, "password": password}, timeout=10)
    inspect(response)
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(username, password, body["access_token"], body["refresh_token"])


def new_account(base_url: str, prefix: str = "e2e", inspect: Inspect = _ignore) -> Account:
    """A fresh user, signed up and logged in."""
    user = sign_up(base_url, prefix, inspect)
    return log_in(base_url, user["username"], user["password"], inspect)


def signup_and_login(base_url: str) -> dict[str, str]:
    """The Authorization header of a fresh user."""
    return new_account(base_url).headers


def upload(base_url: str, headers: dict[str, str], path: Path, timeout: float = 60, **fields: str) -> requests.Response:
    with path.open("rb") as file:
        return requests.post(
            f"{base_url}/upload_csv",
            headers=headers,
            files={"file": (path.name, file, "text/csv")},
            data=fields,
            timeout=timeout,
        )


def upload_ok(base_url: str, headers: dict[str, str], path: Path, **fields: str) -> str:
    response = upload(base_url, headers, path, **fields)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def job_status(base_url: str, headers: dict[str, str], task_id: str, inspect: Inspect = _ignore) -> dict:
    response = requests.get(f"{base_url}/fetch_csv_status/{task_id}", headers=headers, timeout=10)
    inspect(response)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_status(
    base_url: str,
    headers: dict[str, str],
    task_id: str,
    done: Callable[[dict], bool],
    within: float = 60,
    inspect: Inspect = _ignore,
) -> dict:
    """Polls the job until ``done(status)``; returns that status."""
    return poll(lambda: job_status(base_url, headers, task_id, inspect), done, within=within, what=f"job {task_id}")


def wait_finished(
    base_url: str, headers: dict[str, str], task_id: str, within: float = 90, inspect: Inspect = _ignore
) -> dict:
    """The job once it has ended (Success, Failure or Cancelled)."""
    return wait_for_status(base_url, headers, task_id, lambda s: s["status"] in FINISHED, within, inspect)


def wait_progress(base_url: str, headers: dict[str, str], task_id: str, at_least: int, within: float = 60) -> dict:
    """Waits until the import is under way, ``at_least`` percent in, and fails if it ended first."""
    status = wait_for_status(
        base_url, headers, task_id, lambda s: s["status"] in FINISHED or s["progress"] >= at_least, within
    )
    assert status["status"] == "Progress", f"the import ended before the fault: {status}"
    return status


def import_file(base_url: str, headers: dict[str, str], path: Path, within: float = 60, **fields: str) -> dict:
    """Uploads ``path`` (with the form ``fields``) and waits for its import to succeed; returns the final status."""
    status = wait_finished(base_url, headers, upload_ok(base_url, headers, path, **fields), within)
    assert status["status"] == "Success", status
    return status


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}
