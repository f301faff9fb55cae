"""Roles through the gateway: who may import, cancel and manage users, and how fast a change bites."""

import uuid

import jwt
import pytest
import requests
from helpers import bearer

from catalog_testkit.accounts import create_admin

LONG_IMPORT = b"show_id,title\n" + b"roles-cancel,x\n" * 20_000
NEEDS_EDITOR = {"error": "Forbidden: this needs the editor role"}
NEEDS_ADMIN = {"error": "Forbidden: this needs the admin role"}


@pytest.fixture(scope="module")
def admin(stack) -> dict:
    return create_admin(stack)


def new_user(stack) -> dict:
    """A user signed up and logged in through the gateway: the seed's flow, an editor in development."""
    name = f"role_{uuid.uuid4().hex[:12]}"
    user = {"username": name, "email": f"{name}@example.com", "password": "e2e-password-1"}
    created = requests.post(f"{stack.url}/signup", json=user, timeout=10)
    assert created.status_code == 201, created.text
    return {**user, **created.json()["user"], **log_in(stack, user).json()}


def log_in(stack, user: dict) -> requests.Response:
    body = {"username": user["username"], "password": user["password"]}
    return requests.post(f"{stack.url}/login", json=body, timeout=10)


def refresh(stack, user: dict) -> requests.Response:
    return requests.post(f"{stack.url}/token/refresh", json={"refresh_token": user["refresh_token"]}, timeout=10)


def change(stack, admin: dict, user: dict, **fields) -> dict:
    response = requests.patch(f"{stack.url}/users/{user['id']}", json=fields, headers=bearer(admin), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def roles_in(tokens: dict) -> list[str]:
    return jwt.decode(tokens["access_token"], options={"verify_signature": False})["roles"]


def upload(stack, user: dict, content: bytes = b"show_id,title\nroles-1,x\n") -> requests.Response:
    files = {"file": ("movies.csv", content, "text/csv")}
    return requests.post(f"{stack.url}/upload_csv", headers=bearer(user), files=files, timeout=30)


def viewer(stack, admin: dict) -> dict:
    """A user an admin made a viewer, logged in again so that its token says so."""
    user = new_user(stack)
    change(stack, admin, user, roles=["viewer"])
    return {**user, **log_in(stack, user).json()}


def test_a_signup_is_an_editor_in_development_and_me_says_so(stack):
    user = new_user(stack)
    assert user["roles"] == ["editor"] == roles_in(user)
    me = requests.get(f"{stack.url}/me", headers=bearer(user), timeout=10).json()
    assert me["roles"] == ["editor"]
    assert upload(stack, user).status_code == 202


def test_a_viewer_is_refused_upload_cancel_and_user_management(stack, admin):
    editor = new_user(stack)
    task_id = upload(stack, editor).json()["task_id"]
    reader = viewer(stack, admin)
    assert roles_in(reader) == ["viewer"]

    refused = upload(stack, reader)
    assert (refused.status_code, refused.json()) == (403, NEEDS_EDITOR)
    cancel = requests.delete(f"{stack.url}/uploads/{task_id}", headers=bearer(reader), timeout=10)
    assert (cancel.status_code, cancel.json()) == (403, NEEDS_EDITOR)
    listing = requests.get(f"{stack.url}/users", headers=bearer(reader), timeout=10)
    assert (listing.status_code, listing.json()) == (403, NEEDS_ADMIN)
    patch = requests.patch(
        f"{stack.url}/users/{reader['id']}", json={"roles": ["admin"]}, headers=bearer(reader), timeout=10
    )
    assert (patch.status_code, patch.json()) == (403, NEEDS_ADMIN)
    # A viewer still reads: the catalog, its account, its (empty) list of uploads.
    assert requests.get(f"{stack.url}/get_content", params={"limit": 1}, timeout=10).status_code == 200
    assert requests.get(f"{stack.url}/uploads", headers=bearer(reader), timeout=10).json() == []


def test_an_editor_cannot_touch_another_users_job_and_an_admin_can(stack, admin):
    owner, stranger = new_user(stack), new_user(stack)
    # The worker may finish a file before the cancel arrives: upload until one is caught running.
    for _ in range(20):
        task_id = upload(stack, owner, LONG_IMPORT).json()["task_id"]
        not_yours = requests.delete(f"{stack.url}/uploads/{task_id}", headers=bearer(stranger), timeout=10)
        assert (not_yours.status_code, not_yours.json()) == (404, {"error": "No such upload"})
        assert (
            requests.get(f"{stack.url}/fetch_csv_status/{task_id}", headers=bearer(stranger), timeout=10).status_code
            == 404
        )
        cancelled = requests.delete(f"{stack.url}/uploads/{task_id}", headers=bearer(admin), timeout=10)
        if cancelled.status_code == 200:
            break
        assert cancelled.status_code == 409, cancelled.text
    else:
        pytest.fail("no import was still running when the admin cancelled it")
    assert (cancelled.json()["status"], cancelled.json()["owner"]) == ("Cancelled", owner["id"])
    seen_by_owner = requests.get(f"{stack.url}/fetch_csv_status/{task_id}", headers=bearer(owner), timeout=10)
    assert seen_by_owner.json()["status"] == "Cancelled"

    # The stranger's own upload: the admin's list holds it beside the owner's, the owner's list does not.
    theirs = upload(stack, stranger).json()["task_id"]
    everyone = requests.get(f"{stack.url}/uploads", headers=bearer(admin), params={"limit": 100}, timeout=10)
    assert everyone.status_code == 200
    assert {"task_id": task_id, "owner": owner["id"]}.items() <= next(
        job for job in everyone.json() if job["task_id"] == task_id
    ).items()
    assert {"task_id": theirs, "owner": stranger["id"]}.items() <= next(
        job for job in everyone.json() if job["task_id"] == theirs
    ).items()
    owners_list = requests.get(f"{stack.url}/uploads", headers=bearer(owner), params={"limit": 100}, timeout=10)
    assert theirs not in {job["task_id"] for job in owners_list.json()}
    assert int(everyone.headers["X-Total-Count"]) > int(owners_list.headers["X-Total-Count"])


def test_a_demoted_editor_cannot_refresh_and_its_next_token_carries_the_new_role(stack, admin):
    user = new_user(stack)
    assert change(stack, admin, user, roles=["viewer"])["roles"] == ["viewer"]
    refused = refresh(stack, user)
    assert (refused.status_code, refused.json()) == (401, {"error": "Invalid or expired refresh token"})
    again = log_in(stack, user)
    assert roles_in(again.json()) == ["viewer"]
    assert upload(stack, again.json()).status_code == 403


def test_a_disabled_user_cannot_log_in_or_refresh_and_an_enabled_one_can(stack, admin):
    user = new_user(stack)
    assert change(stack, admin, user, disabled=True)["disabled"] is True
    assert refresh(stack, user).status_code == 401
    refused = log_in(stack, user)
    assert (refused.status_code, refused.json()) == (403, {"error": "This account is disabled"})
    assert requests.get(f"{stack.url}/me", headers=bearer(user), timeout=10).status_code == 401

    change(stack, admin, user, disabled=False)
    assert log_in(stack, user).status_code == 200


def test_an_admin_lists_users_a_page_at_a_time(stack, admin):
    new_user(stack)
    first = requests.get(f"{stack.url}/users", headers=bearer(admin), params={"limit": 1}, timeout=10)
    assert first.status_code == 200
    total = int(first.headers["X-Total-Count"])
    assert total >= 2 and len(first.json()) == 1
    assert 'rel="next"' in first.headers["Link"]
    everyone = []
    for page in range(1, -(-total // 100) + 1):
        everyone += requests.get(
            f"{stack.url}/users", headers=bearer(admin), params={"limit": 100, "offset": page}, timeout=10
        ).json()
    assert len({user["id"] for user in everyone}) == total
    mine = next(user for user in everyone if user["id"] == admin["id"])
    assert (mine["roles"], mine["disabled"]) == (["admin"], False)


def test_an_admin_cannot_lock_itself_out(stack, admin):
    response = requests.patch(
        f"{stack.url}/users/{admin['id']}", json={"roles": ["editor"]}, headers=bearer(admin), timeout=10
    )
    assert response.status_code == 409
    assert requests.get(f"{stack.url}/users", headers=bearer(admin), params={"limit": 1}, timeout=10).ok
