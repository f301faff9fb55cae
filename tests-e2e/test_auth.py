"""Sign-up, log-in and the gateway's own behaviour, as a client sees them."""

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import requests

from catalog_testkit.polling import poll


def curl(*args: str) -> tuple[int, dict]:
    """Runs curl like the seed README does; (status, JSON body)."""
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--write-out", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_seed_readme_signup_and_login_curls_work(stack):
    status, body = curl(
        "--location",
        f"{stack.url}/signup",
        "--header",
        "Content-Type: application/json",
        "--data-raw",
        '{\n    "username": "sangamesh",\n    "email": "sangameshkulkarni26@gmail.com",\n    "password": "password"\n}',
    )
    assert status == 201
    assert body["message"] == "User created successfully"
    assert body["user"]["username"] == "sangamesh"

    status, body = curl(
        "--location",
        f"{stack.url}/login",
        "--header",
        "Content-Type: application/json",
        "--data",
        '{\n    "username": "sangamesh",\n    "password": "password"\n}',
    )
    assert status == 200
    assert body["message"] == "Login successful"
    assert body["token_type"] == "Bearer"

    me = requests.get(f"{stack.url}/me", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["email"] == "sangameshkulkarni26@gmail.com"

    status, body = curl(
        "--location",
        f"{stack.url}/login",
        "--header",
        "Content-Type: application/json",
        "--data",
        '{"username": "sangamesh", "password": "wrong"}',
    )
    assert status == 401
    assert body == {"error": "Invalid username or password"}


def test_a_second_signup_with_the_same_email_is_refused(stack, auth_headers):
    me = requests.get(f"{stack.url}/me", headers=auth_headers, timeout=10).json()
    response = requests.post(
        f"{stack.url}/signup",
        json={"username": "someone_else", "email": me["email"].upper(), "password": "password123"},
        timeout=10,
    )
    assert response.status_code == 409
    assert response.json() == {"error": "Email already registered"}


def test_jwks_is_published_through_the_gateway(stack):
    keys = requests.get(f"{stack.url}/.well-known/jwks.json", timeout=10).json()["keys"]
    assert keys and all("d" not in key for key in keys)


def test_me_without_a_token_is_401(stack):
    response = requests.get(f"{stack.url}/me", timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in response.json()


def test_unknown_paths_get_a_json_404_with_a_request_id(stack):
    response = requests.get(f"{stack.url}/no/such/page", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "Not found"}
    assert len(response.headers["X-Request-ID"]) == 32


def test_the_gateway_hides_its_version_and_answers_healthz(stack):
    response = requests.get(f"{stack.url}/healthz", timeout=10)
    assert response.json() == {"status": "ok"}
    assert response.headers.get("Server", "nginx") == "nginx"


def test_request_ids_reach_the_service_log_and_come_back(stack):
    response = requests.get(f"{stack.url}/me", headers={"X-Request-ID": "e2e-trace-0001"}, timeout=10)
    assert response.headers["X-Request-ID"] == "e2e-trace-0001"
    # aiohttp writes its access line just after the answer has gone out.
    poll(
        lambda: "request_id=e2e-trace-0001" in stack.log_path("auth").read_text(), within=5, what="the access log line"
    )

    forged = requests.get(f"{stack.url}/me", headers={"X-Request-ID": "bad id\twith junk"}, timeout=10)
    assert forged.headers["X-Request-ID"] != "bad id\twith junk"


def test_an_oversized_body_is_refused_by_the_gateway_as_json(stack):
    response = requests.post(
        f"{stack.url}/signup",
        data=b"{" + b" " * (80 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json() == {"error": "Request body too large"}


def test_floods_of_signups_are_rate_limited_per_ip(stack):
    def attempt(_):
        return requests.post(f"{stack.url}/signup", json={}, timeout=10)

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(attempt, range(300)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "300 rapid sign-ups were never rate limited"
    assert {r.json()["error"] for r in limited} == {"Too many requests, slow down"}
    assert all(r.headers.get("Retry-After") for r in limited)
    assert not [r for r in responses if r.status_code >= 500]


def test_a_stopped_auth_service_gives_a_json_502_then_recovers(stack):
    stack.stop_service("auth")
    try:
        response = requests.post(f"{stack.url}/login", json={"username": "a", "password": "b"}, timeout=10)
        assert response.status_code in (502, 503)
        assert response.headers["Content-Type"].startswith("application/json")
        assert "error" in response.json()
        assert response.headers["X-Request-ID"]
    finally:
        stack.start_service("auth")
    response = requests.get(f"{stack.url}/.well-known/jwks.json", timeout=10)
    assert response.status_code == 200


def test_refresh_and_logout_through_the_gateway(stack):
    name = "refresher"
    requests.post(
        f"{stack.url}/signup", json={"username": name, "email": "r@example.com", "password": "password123"}, timeout=10
    )
    tokens = requests.post(f"{stack.url}/login", json={"username": name, "password": "password123"}, timeout=10).json()
    refreshed = requests.post(f"{stack.url}/token/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=10)
    assert refreshed.status_code == 200
    new = refreshed.json()
    out = requests.post(
        f"{stack.url}/logout",
        json={"refresh_token": new["refresh_token"]},
        headers={"Authorization": f"Bearer {new['access_token']}"},
        timeout=10,
    )
    assert out.json() == {"message": "Logged out"}
    again = requests.post(f"{stack.url}/token/refresh", json={"refresh_token": new["refresh_token"]}, timeout=10)
    assert again.status_code == 401


def test_no_password_or_token_reaches_any_log(stack):
    password = "a-distinctive-secret-9f3k"
    user = {"username": "log_watcher", "email": "watcher@example.com", "password": password}
    requests.post(f"{stack.url}/signup", json=user, timeout=10)
    tokens = requests.post(f"{stack.url}/login", json={"username": "log_watcher", "password": password}, timeout=10)
    tokens = tokens.json()
    requests.get(f"{stack.url}/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)
    requests.post(f"{stack.url}/token/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=10)
    requests.post(f"{stack.url}/login", json={"username": "log_watcher", "password": password + "-wrong"}, timeout=10)

    logs = "\n".join(path.read_text(errors="replace") for path in (stack.data_dir / "logs").glob("*.log"))
    assert "POST /login" in logs
    for secret in (password, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in logs
