"""Fault 4: the MongoDB-protocol store stopped, then started again.

While it is down every service answers a JSON 503 within 5 s through the gateway, and its
``/readyz`` says so while ``/healthz`` (the process) stays up; once it is back everything recovers
by itself: log-ins, uploads, status, the catalog, and the import that was running when it went.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import helpers
import pytest
import requests
from faults import eventually, job_items, key_prefix
from helpers import upload, upload_ok, wait_finished, wait_progress

from catalog_testkit.files import write_movies_csv

ROWS = 30_000
STACK_ENV = {"INGEST_BATCH_SIZE": "250"}
WITHIN = 5.0
UNAVAILABLE = {"error": "Service temporarily unavailable, try again shortly"}


def sign_up(base_url: str) -> dict[str, str]:
    """A new user's log-in body."""
    user = helpers.sign_up(base_url, "chaos")
    return {"username": user["username"], "password": user["password"]}


def timed(method: str, url: str, **kwargs) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=30, **kwargs)
    return time.monotonic() - started, response


@pytest.mark.latency_budget
def test_every_service_answers_503_within_5s_while_the_store_is_down_and_recovers_by_itself(
    stack, auth_headers, tmp_path
):
    credentials = sign_up(stack.url)
    small = write_movies_csv(tmp_path / "small.csv", range(200), prefix=key_prefix("small"))
    finished_id = upload_ok(stack.url, auth_headers, small)
    assert wait_finished(stack.url, auth_headers, finished_id)["status"] == "Success"
    big = write_movies_csv(tmp_path / "big.csv", range(ROWS), prefix=key_prefix("outage"))
    running_id = upload_ok(stack.url, auth_headers, big)
    wait_progress(stack.url, auth_headers, running_id, at_least=10)

    service = {name: f"http://127.0.0.1:{stack.ports[name]}" for name in ("auth", "ingest", "catalog")}
    probes = {
        "POST /login": ("POST", f"{stack.url}/login", {"json": credentials}),
        "POST /upload_csv": (
            "POST",
            f"{stack.url}/upload_csv",
            {"headers": auth_headers, "files": {"file": ("s.csv", small.read_bytes())}},
        ),
        "GET /fetch_csv_status": ("GET", f"{stack.url}/fetch_csv_status/{finished_id}", {"headers": auth_headers}),
        "GET /uploads": ("GET", f"{stack.url}/uploads", {"headers": auth_headers}),
        "GET /get_content": ("GET", f"{stack.url}/get_content", {}),
        **{f"{name} /readyz": ("GET", f"{url}/readyz", {}) for name, url in service.items()},
    }
    stack.stop_service("mongo")
    try:
        with ThreadPoolExecutor(len(probes)) as pool:
            timings = pool.map(lambda probe: timed(probe[0], probe[1], **probe[2]), probes.values())
            answers = dict(zip(probes, timings, strict=True))
        for name, (elapsed, response) in answers.items():
            assert response.status_code == 503, (name, response.status_code, response.text)
            assert response.headers["Content-Type"].startswith("application/json"), name
            assert elapsed < WITHIN, (name, elapsed)
            if not name.endswith("/readyz"):
                assert response.json() == UNAVAILABLE, (name, response.text)
        for name, url in service.items():
            assert requests.get(f"{url}/healthz", timeout=5).status_code == 200, name
    finally:
        stack.start_service("mongo")

    # Back, with nothing restarted but the store itself.
    for name, url in service.items():
        eventually(lambda url=url: requests.get(f"{url}/readyz", timeout=5).status_code == 200, 30, f"{name} ready")
    eventually(
        lambda: requests.post(f"{stack.url}/login", json=credentials, timeout=10).status_code == 200, 30, "log-in"
    )
    eventually(lambda: requests.get(f"{stack.url}/get_content", timeout=10).status_code == 200, 30, "catalog")

    status = wait_finished(stack.url, auth_headers, running_id, within=120)
    assert status["status"] == "Success", status
    assert (status["rows_processed"], status["rows_inserted"], status["rows_duplicate"]) == (ROWS, ROWS, 0)
    assert status["attempts"] >= 2  # the worker retried while the store was away
    again = upload(stack.url, auth_headers, small, mode="upsert")
    assert again.status_code == 202, again.text
    assert wait_finished(stack.url, auth_headers, again.json()["task_id"])["status"] == "Success"
    with stack.database() as db:
        assert job_items(db, running_id) == (ROWS, ROWS)
        # The upload refused during the outage left nothing behind.
        assert db.import_jobs.count_documents({"filename": "s.csv"}) == 0
        assert db["uploads.files"].count_documents({}) == 0
