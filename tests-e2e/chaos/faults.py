"""Helpers of the fault-injection suite: generated CSV files, uploads and polling through the gateway,
and a direct look at the stack's own store to check what was (not) written."""

import csv
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests
from pymongo.database import Database

FINISHED = {"Success", "Failure", "Cancelled"}
COLUMNS = ["show_id", "type", "title", "director", "cast", "country", "date_added", "release_year",
           "rating", "duration", "listed_in", "description"]  # fmt: skip


def write_movies_csv(path: Path, rows: range, prefix: str = "s") -> Path:
    """One row per number in ``rows``, keyed ``<prefix><number>``, in the seed's 12 columns."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for n in rows:
            writer.writerow([f"{prefix}{n}", "Movie" if n % 3 else "TV Show", f"Title {n}", f"Director {n % 97}",
                             "Actor A, Actor B", "India", "September 2, 2021", 1990 + n % 30, "TV-14",
                             f"{90 + n % 60} min", "Dramas, International Movies",
                             f"Description of title {n}."])  # fmt: skip
    return path


def upload(base_url: str, headers: dict[str, str], path: Path, timeout: float = 60, **fields: str) -> requests.Response:
    with path.open("rb") as file:
        return requests.post(
            f"{base_url}/upload_csv", headers=headers, files={"file": (path.name, file, "text/csv")},
            data=fields, timeout=timeout,
        )  # fmt: skip


def upload_ok(base_url: str, headers: dict[str, str], path: Path, **fields: str) -> str:
    response = upload(base_url, headers, path, **fields)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def job_status(base_url: str, headers: dict[str, str], task_id: str) -> dict:
    response = requests.get(f"{base_url}/fetch_csv_status/{task_id}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_status(
    base_url: str, headers: dict[str, str], task_id: str, done: Callable[[dict], bool], within: float
) -> dict:
    deadline = time.monotonic() + within
    status = job_status(base_url, headers, task_id)
    while not done(status):
        assert time.monotonic() < deadline, f"job {task_id} still {status['status']} after {within}s: {status}"
        time.sleep(0.1)
        status = job_status(base_url, headers, task_id)
    return status


def wait_finished(base_url: str, headers: dict[str, str], task_id: str, within: float = 90) -> dict:
    return wait_for_status(base_url, headers, task_id, lambda s: s["status"] in FINISHED, within)


def wait_progress(base_url: str, headers: dict[str, str], task_id: str, at_least: int, within: float = 60) -> dict:
    """Waits until the import is under way, ``at_least`` percent in, and fails if it ended first."""
    status = wait_for_status(
        base_url, headers, task_id, lambda s: s["status"] in FINISHED or s["progress"] >= at_least, within
    )
    assert status["status"] == "Progress", f"the import ended before the fault: {status}"
    return status


def eventually(predicate: Callable[[], bool], within: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if predicate():
                return
        except (requests.RequestException, AssertionError):
            pass
        assert time.monotonic() < deadline, f"{what} not within {within}s"
        time.sleep(interval)


def leftovers(db: Database) -> dict[str, int]:
    """What uploads leave behind: jobs, and GridFS files and chunks."""
    return {name: db[name].count_documents({}) for name in ("import_jobs", "uploads.files", "uploads.chunks")}


def key_prefix(name: str) -> str:
    """Row keys of their own for each test, as all the tests of a module share one catalog."""
    return f"{name}-{uuid.uuid4().hex[:6]}-"


def job_items(db: Database, task_id: str) -> tuple[int, int]:
    """How many catalog documents the job wrote, and how many distinct ``seq`` values they hold."""
    count = db.catalog_items.count_documents({"source.job_id": task_id})
    return count, len(db.catalog_items.distinct("seq", {"source.job_id": task_id}))
