"""gateway/openapi.yaml is true: the main success and error answers of every operation, as a running
stack gives them through the gateway, match what it documents (status, media type, body, headers)."""

import io
import json
import socket
import uuid
from urllib.parse import urlsplit

import helpers
import pytest
import requests
from openapi_contract import CONTRACT

from catalog_testkit.accounts import create_admin

# The operations the running test's answers were checked against ("GET /uploads"...).
CHECKED: set[str] = set()


def record(response: requests.Response) -> None:
    CHECKED.add(CONTRACT.check(response))


def checked(response: requests.Response, status: int) -> requests.Response:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    record(response)
    return response


def documents(*operations: str):
    """The operations a test promises to check real answers of; it fails if it did not."""

    def declare(test):
        test.operations = frozenset(operations)
        return test

    return declare


@pytest.fixture(autouse=True)
def each_test_checks_what_it_declares(request):
    CHECKED.clear()
    yield
    declared = getattr(request.function, "operations", frozenset())
    assert declared <= CHECKED, f"declared but never checked: {sorted(declared - CHECKED)}"


def new_account(base_url: str) -> dict[str, str]:
    return helpers.sign_up(base_url, "ct", inspect=record)


def log_in(base_url: str, user: dict[str, str]) -> dict:
    account = helpers.log_in(base_url, user["username"], user["password"], inspect=record)
    return {"access_token": account.access_token, "refresh_token": account.refresh_token}


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def wait_finished(base_url: str, headers: dict[str, str], task_id: str) -> dict:
    return helpers.wait_finished(base_url, headers, task_id, 60, inspect=record)


@documents("GET /.well-known/jwks.json", "GET /healthz", "GET /me", "GET /readyz", "POST /login", "POST /signup")
def test_accounts_answer_as_documented(stack):
    url = stack.url
    user = new_account(url)
    checked(requests.post(f"{url}/signup", json=user, timeout=10), 409)
    checked(requests.post(f"{url}/signup", json={**user, "email": "not-an-address"}, timeout=10), 400)
    checked(requests.post(f"{url}/signup", data="{}", headers={"Content-Type": "text/plain"}, timeout=10), 415)
    checked(requests.post(f"{url}/signup", json={"username": "x" * 70_000}, timeout=10), 413)

    tokens = log_in(url, user)
    assert (
        checked(requests.get(f"{url}/me", headers=bearer(tokens), timeout=10), 200).json()["username"]
        == (user["username"])
    )
    checked(requests.get(f"{url}/me", timeout=10), 401)
    checked(requests.get(f"{url}/me", headers={"Authorization": "Bearer not.a.jwt"}, timeout=10), 401)
    checked(requests.get(f"{url}/me", headers={"Authorization": "Bearer \x7f"}, timeout=10), 400)
    checked(requests.post(f"{url}/login", json={"username": user["username"], "password": "wrong"}, timeout=10), 401)
    checked(requests.post(f"{url}/login", json={"username": user["username"]}, timeout=10), 400)
    checked(requests.post(f"{url}/login", data="x", headers={"Content-Type": "text/csv"}, timeout=10), 415)
    checked(requests.get(f"{url}/.well-known/jwks.json", timeout=10), 200)
    checked(requests.get(f"{url}/healthz", timeout=10), 200)
    assert checked(requests.get(f"{url}/readyz", timeout=10), 200).json() == {"status": "ready"}


@documents("POST /token/refresh", "POST /logout")
def test_refresh_and_logout_answer_as_documented(stack):
    url = stack.url
    tokens = log_in(url, new_account(url))
    refreshed = checked(
        requests.post(f"{url}/token/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=10), 200
    ).json()
    assert refreshed["message"] == "Token refreshed"
    checked(requests.post(f"{url}/token/refresh", json={"refresh_token": "no-such-token"}, timeout=10), 401)
    checked(requests.post(f"{url}/token/refresh", json={"refresh_token": 5}, timeout=10), 400)
    checked(requests.post(f"{url}/token/refresh", data=b"", timeout=10), 415)

    logout = f"{url}/logout"
    checked(requests.post(logout, json={"refresh_token": refreshed["refresh_token"]}, timeout=10), 401)
    checked(requests.post(logout, json={"refresh_token": "unknown"}, headers=bearer(refreshed), timeout=10), 400)
    mine = {"refresh_token": refreshed["refresh_token"]}
    checked(requests.post(logout, json=mine, headers=bearer(refreshed), timeout=10), 200)


@documents("POST /login")
def test_a_locked_account_is_a_documented_429_with_retry_after(stack):
    url = stack.url
    user = new_account(url)
    wrong = {"username": user["username"], "password": "not-the-password"}
    statuses = [requests.post(f"{url}/login", json=wrong, timeout=10) for _ in range(6)]
    assert [r.status_code for r in statuses] == [401] * 5 + [429]
    locked = checked(statuses[-1], 429)
    assert int(locked.headers["Retry-After"]) >= 1


@documents("POST /upload_csv", "GET /fetch_csv_status/{task_id}", "GET /uploads", "DELETE /uploads/{task_id}")
def test_imports_answer_as_documented(stack, seed_csv):
    url = stack.url
    headers = bearer(log_in(url, new_account(url)))
    with seed_csv.open("rb") as file:
        form = {"files": {"file": file}, "data": {"mode": "upsert"}}
        accepted = checked(requests.post(f"{url}/upload_csv", headers=headers, timeout=30, **form), 202)
    task_id = accepted.json()["task_id"]
    assert wait_finished(url, headers, task_id)["status"] == "Success"

    listed = checked(requests.get(f"{url}/uploads", headers=headers, params={"limit": 1}, timeout=10), 200)
    assert listed.headers["X-Total-Count"] == "1"
    checked(requests.get(f"{url}/uploads", headers=headers, params={"limit": 0}, timeout=10), 400)
    checked(requests.get(f"{url}/uploads", timeout=10), 401)
    checked(requests.delete(f"{url}/uploads/{task_id}", headers=headers, timeout=10), 409)
    checked(requests.delete(f"{url}/uploads/{uuid.uuid4()}", headers=headers, timeout=10), 404)
    checked(requests.delete(f"{url}/uploads/not-a-uuid", headers=headers, timeout=10), 400)
    checked(requests.delete(f"{url}/uploads/{task_id}", timeout=10), 401)
    checked(requests.get(f"{url}/fetch_csv_status/{uuid.uuid4()}", headers=headers, timeout=10), 404)
    checked(requests.get(f"{url}/fetch_csv_status/not-a-uuid", headers=headers, timeout=10), 400)
    checked(requests.get(f"{url}/fetch_csv_status/{task_id}", timeout=10), 401)

    def upload(content: bytes, **kwargs) -> requests.Response:
        files = {"file": ("movies.csv", io.BytesIO(content), "text/csv")}
        return requests.post(f"{url}/upload_csv", headers=headers, files=files, timeout=30, **kwargs)

    checked(upload(b"a,a\n1,2\n"), 400)
    checked(upload(b"a,b\n1,2\n", data={"mode": "replace"}), 400)
    checked(requests.post(f"{url}/upload_csv", files={"file": io.BytesIO(b"a\n1\n")}, timeout=30), 401)
    checked(requests.post(f"{url}/upload_csv", headers=headers, json={"file": "a,b"}, timeout=30), 415)
    checked(oversized_upload(url, headers), 413)

    # Cancelling: the worker may be quicker than this request, so files are uploaded until one is caught
    # still running (each answer is checked either way). Every row has one key, so that the catalog other
    # tests read grows by one item at most.
    long_import = b"show_id,title\n" + b"contract-cancel,x\n" * 20_000
    for _ in range(20):
        task_id = checked(upload(long_import), 202).json()["task_id"]
        cancelled = requests.delete(f"{url}/uploads/{task_id}", headers=headers, timeout=10)
        record(cancelled)
        if cancelled.status_code == 200:
            assert cancelled.json()["status"] == "Cancelled"
            break
        assert cancelled.status_code == 409
    else:
        pytest.fail("no import was still running when cancelled")


def oversized_upload(base_url: str, headers: dict[str, str]) -> requests.Response:
    """A request that announces a body over the gateway's limit: refused before any byte of it is sent."""
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    request = (
        f"POST /upload_csv HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {headers['Authorization']}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 5000000000000\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request.encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response = requests.Response()
    response.status_code = int(status_line.split()[1])
    response.headers.update(dict(line.split(": ", 1) for line in header_lines))
    response._content = body
    response.request = requests.Request("POST", f"{base_url}/upload_csv").prepare()
    return response


@documents("GET /get_content", "GET /contents/{id}")
def test_the_catalog_answers_as_documented(stack, auth_headers, seed_csv):
    url = stack.url
    with seed_csv.open("rb") as file:
        task_id = requests.post(f"{url}/upload_csv", headers=auth_headers, files={"file": file}, timeout=30).json()[
            "task_id"
        ]
    wait_finished(url, auth_headers, task_id)

    page = checked(requests.get(f"{url}/get_content", params={"limit": 5, "sort": "-release_year"}, timeout=10), 200)
    assert page.headers["X-Next-Cursor"]
    checked(
        requests.get(
            f"{url}/get_content", params={"cursor": page.headers["X-Next-Cursor"], "sort": "-release_year"}, timeout=10
        ),
        200,
    )
    checked(requests.get(f"{url}/get_content", params={"filter[type]": "Movie", "q": "a"}, timeout=10), 200)
    checked(requests.get(f"{url}/get_content", params={"offset": 5_000}, timeout=10), 200)  # past the end: []
    checked(requests.get(f"{url}/get_content", params={"limit": "abc"}, timeout=10), 400)
    checked(requests.get(f"{url}/get_content", params={"cursor": "forged"}, timeout=10), 400)
    item_id = page.json()[0]["id"]
    checked(requests.get(f"{url}/contents/{item_id}", timeout=10), 200)
    checked(requests.get(f"{url}/contents/no-such-item", timeout=10), 404)
    checked(requests.get(f"{url}/contents/%00", timeout=10), 400)


@documents("GET /users", "PATCH /users/{user_id}")
def test_roles_and_user_management_answer_as_documented(stack):
    url = stack.url
    admin = bearer(create_admin(stack, "ct_admin"))
    user = new_account(url)
    tokens = log_in(url, user)
    user_id = checked(requests.get(f"{url}/me", headers=bearer(tokens), timeout=10), 200).json()["id"]

    listed = checked(requests.get(f"{url}/users", headers=admin, params={"limit": 1}, timeout=10), 200)
    assert int(listed.headers["X-Total-Count"]) >= 2
    checked(requests.get(f"{url}/users", headers=admin, params={"offset": 0}, timeout=10), 400)
    checked(requests.get(f"{url}/users", timeout=10), 401)
    checked(requests.get(f"{url}/users", headers=bearer(tokens), timeout=10), 403)

    account = f"{url}/users/{user_id}"
    checked(requests.patch(account, json={"roles": ["admin"]}, headers=bearer(tokens), timeout=10), 403)
    checked(requests.patch(account, json={"disabled": True}, timeout=10), 401)
    checked(requests.patch(account, json={"roles": ["owner"]}, headers=admin, timeout=10), 400)
    checked(requests.patch(f"{url}/users/not-a-uuid", json={"disabled": True}, headers=admin, timeout=10), 400)
    checked(requests.patch(f"{url}/users/{uuid.uuid4()}", json={"disabled": True}, headers=admin, timeout=10), 404)
    checked(requests.patch(account, data="{}", headers={**admin, "Content-Type": "text/plain"}, timeout=10), 415)
    checked(requests.patch(account, json={"roles": ["x" * 70_000]}, headers=admin, timeout=10), 413)
    admin_id = checked(requests.get(f"{url}/me", headers=admin, timeout=10), 200).json()["id"]
    checked(requests.patch(f"{url}/users/{admin_id}", json={"disabled": True}, headers=admin, timeout=10), 409)

    demoted = checked(requests.patch(account, json={"roles": ["viewer"]}, headers=admin, timeout=10), 200).json()
    assert demoted["roles"] == ["viewer"]
    checked(requests.post(f"{url}/token/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=10), 401)
    viewer = bearer(log_in(url, user))
    files = {"file": ("movies.csv", io.BytesIO(b"show_id,title\nct-viewer,x\n"), "text/csv")}
    checked(requests.post(f"{url}/upload_csv", headers=viewer, files=files, timeout=30), 403)
    checked(requests.delete(f"{url}/uploads/{uuid.uuid4()}", headers=viewer, timeout=10), 403)

    checked(requests.patch(account, json={"disabled": True}, headers=admin, timeout=10), 200)
    checked(
        requests.post(f"{url}/login", json={"username": user["username"], "password": user["password"]}, timeout=10),
        403,
    )


@documents("GET /datasets", "GET /datasets/{name}", "DELETE /datasets/{name}", "GET /datasets/{name}/contents/{id}")
def test_datasets_answer_as_documented(stack, auth_headers):
    url = stack.url
    name = f"ct-{uuid.uuid4().hex[:8]}"
    files = {"file": ("films.csv", io.BytesIO(b"id,title\n1,One\n2,Two\n"), "text/csv")}
    upload = requests.post(f"{url}/upload_csv", headers=auth_headers, files=files, data={"dataset": name}, timeout=30)
    wait_finished(url, auth_headers, checked(upload, 202).json()["task_id"])

    listed = checked(requests.get(f"{url}/datasets", timeout=10), 200).json()
    assert {"name": name, "items": 2} in [{"name": d["name"], "items": d["items"]} for d in listed]
    checked(requests.get(f"{url}/datasets/{name}", timeout=10), 200)
    checked(requests.get(f"{url}/datasets/no-such-dataset", timeout=10), 404)
    checked(requests.get(f"{url}/datasets/{name}/contents/1", timeout=10), 200)
    checked(requests.get(f"{url}/datasets/{name}/contents/9", timeout=10), 404)
    checked(requests.get(f"{url}/get_content", params={"dataset": name, "limit": 1}, timeout=10), 200)
    checked(requests.get(f"{url}/get_content", params={"dataset": "no-such-dataset"}, timeout=10), 404)

    stranger = bearer(log_in(url, new_account(url)))
    files = {"file": ("films.csv", io.BytesIO(b"id,title\n3,Three\n"), "text/csv")}
    refused = requests.post(f"{url}/upload_csv", headers=stranger, files=files, data={"dataset": name}, timeout=30)
    checked(refused, 403)
    checked(requests.delete(f"{url}/datasets/{name}", headers=stranger, timeout=10), 403)
    checked(requests.delete(f"{url}/datasets/{name}", timeout=10), 401)
    checked(requests.delete(f"{url}/datasets/no-such-dataset", headers=auth_headers, timeout=10), 404)
    checked(requests.delete(f"{url}/datasets/{name}", headers=auth_headers, timeout=10), 202)


@documents("GET /datasets/{name}/contents", "GET /datasets/{name}/facets", "GET /datasets/{name}/export")
def test_the_read_model_answers_as_documented(stack, auth_headers):
    url = stack.url
    name = f"ct-rm-{uuid.uuid4().hex[:8]}"
    files = {"file": ("films.csv", io.BytesIO(b"id,title,year\n1,One,1994\n2,Two,2001\n3,Three,\n"), "text/csv")}
    upload = requests.post(f"{url}/upload_csv", headers=auth_headers, files=files, data={"dataset": name}, timeout=30)
    wait_finished(url, auth_headers, checked(upload, 202).json()["task_id"])
    assert checked(requests.get(f"{url}/datasets/{name}", timeout=10), 200).json()["search_column"] == "title"

    contents = f"{url}/datasets/{name}/contents"
    page = checked(requests.get(contents, params={"filter[year][gte]": "1990", "sort": "-year"}, timeout=10), 200)
    assert ([item["id"] for item in page.json()], page.headers["X-Total-Count"]) == ([2, 1], "2")
    checked(requests.get(contents, params={"filter[title][contains]": "T", "limit": 1}, timeout=10), 200)
    checked(requests.get(contents, params={"filter[year][isnull]": "maybe"}, timeout=10), 400)
    checked(requests.get(contents, params={"dataset": name}, timeout=10), 400)
    checked(requests.get(f"{url}/datasets/no-such-dataset/contents", timeout=10), 404)

    facets = f"{url}/datasets/{name}/facets"
    counted = checked(requests.get(facets, params={"facet": ["title", "year"], "facet_bins": 2}, timeout=10), 200)
    assert counted.json()["total"] == 3
    assert counted.json()["facets"][1] == {
        "column": "year",
        "min": 1994,
        "max": 2001,
        "bins": [{"from": 1994, "to": 1997.5, "count": 1}, {"from": 1997.5, "to": 2001, "count": 1}],
        "nulls": 1,
    }
    checked(requests.get(facets, params={"facet": "year", "q": "o", "facet_size": 1}, timeout=10), 200)
    checked(requests.get(facets, timeout=10), 400)
    checked(requests.get(facets, params={"facet": "year", "facet_size": 0}, timeout=10), 400)
    checked(requests.get(facets, params={"facet": "year", "limit": 1}, timeout=10), 400)
    checked(requests.get(f"{url}/datasets/no-such-dataset/facets", params={"facet": "year"}, timeout=10), 404)

    export = f"{url}/datasets/{name}/export"
    csv_file = checked(requests.get(export, timeout=10), 200)
    assert csv_file.text == "id,title,year\n1,One,1994\n2,Two,2001\n3,Three,\n"
    assert csv_file.headers["Content-Disposition"] == f'attachment; filename="{name}.csv"'
    lines = checked(requests.get(export, params={"format": "ndjson", "sort": "title"}, timeout=10), 200)
    assert [json.loads(line)["title"] for line in lines.text.splitlines()] == ["One", "Three", "Two"]
    checked(requests.get(export, params={"format": "xml"}, timeout=10), 400)
    checked(requests.get(f"{url}/datasets/no-such-dataset/export", timeout=10), 404)


@documents("POST /uploads/{task_id}/revert")
def test_a_revert_answers_as_documented(stack):
    url = stack.url
    headers = bearer(log_in(url, new_account(url)))
    dataset = f"ct-revert-{uuid.uuid4().hex[:8]}"
    files = {"file": ("films.csv", io.BytesIO(b"id,title\n1,One\n2,Two\n"), "text/csv")}
    upload = requests.post(f"{url}/upload_csv", headers=headers, files=files, data={"dataset": dataset}, timeout=30)
    task_id = checked(upload, 202).json()["task_id"]
    assert wait_finished(url, headers, task_id)["status"] == "Success"

    revert = f"{url}/uploads/{task_id}/revert"
    checked(requests.post(revert, timeout=10), 401)
    admin = bearer(create_admin(stack, "ct_revert"))
    viewer_account = new_account(url)
    viewer_id = checked(requests.get(f"{url}/me", headers=bearer(log_in(url, viewer_account)), timeout=10), 200)
    requests.patch(f"{url}/users/{viewer_id.json()['id']}", json={"roles": ["viewer"]}, headers=admin, timeout=10)
    checked(requests.post(revert, headers=bearer(log_in(url, viewer_account)), timeout=10), 403)
    checked(requests.post(revert, headers=bearer(log_in(url, new_account(url))), timeout=10), 404)
    checked(requests.post(f"{url}/uploads/not-a-uuid/revert", headers=headers, timeout=10), 400)

    assert checked(requests.post(revert, headers=headers, timeout=10), 202).json()["status"] == "Reverting"
    done = helpers.wait_for_status(url, headers, task_id, lambda s: s["status"] == "Reverted", 60, inspect=record)
    assert (done["rows_reverted"], done["rows_kept"]) == (2, 0)
    assert checked(requests.post(revert, headers=headers, timeout=10), 409).json() == {
        "error": "The upload has already been reverted (Reverted)"
    }
    listed = checked(requests.get(f"{url}/get_content", params={"dataset": dataset}, timeout=10), 200)
    assert (listed.json(), listed.headers["X-Total-Count"]) == ([], "0")


@documents("GET /get_content", "GET /readyz")
def test_a_service_down_is_a_documented_5xx(stack):
    stack.stop_service("catalog")
    try:
        down = checked(requests.get(f"{stack.url}/get_content", timeout=10), 502)
        assert down.headers["Retry-After"]
        assert checked(requests.get(f"{stack.url}/readyz", timeout=10), 503).json() == {"error": "Not ready: catalog"}
    finally:
        stack.start_service("catalog")
    checked(requests.get(f"{stack.url}/get_content", params={"limit": 1}, timeout=10), 200)


def test_every_documented_operation_is_checked_by_a_test():
    """Stands alone, in any order: each test declares what it checks (and fails when it did not)."""
    tests = [value for name, value in globals().items() if name.startswith("test_") and callable(value)]
    declared = set().union(*(getattr(test, "operations", frozenset()) for test in tests))
    assert CONTRACT.operations == {tuple(name.split(" ", 1)) for name in declared}
