"""Helpers of the fault-injection suite beyond the e2e ones (helpers.py): waiting for a condition, key
prefixes, and a direct look at the stack's own store to check what was (not) written."""

import time
import uuid
from collections.abc import Callable

import requests
from pymongo.database import Database


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


def walk_catalog(base_url: str, limit: int = 100, **params: str) -> list[str]:
    """Every item id of a listing, following ``Link rel="next"`` (by cursor) through the gateway, and
    checking on the way that ``X-Total-Count`` holds still and matches what was walked."""
    seen: list[str] = []
    response = requests.get(f"{base_url}/get_content", params={"limit": limit, **params}, timeout=60)
    total = response.headers["X-Total-Count"]
    while True:
        assert response.status_code == 200, response.text
        assert response.headers["X-Total-Count"] == total
        seen += [item["id"] for item in response.json()]
        if "next" not in response.links:
            break
        response = requests.get(response.links["next"]["url"], timeout=60)
    assert len(seen) == int(total)
    return seen


def import_order(stack, dataset: str = "default", **match: object) -> list[str]:
    """The keys of a dataset's items in import order, read straight from the store."""
    with stack.database() as db:
        items = db.catalog_items.find({"dataset": dataset, **match}, {"key": 1}).sort("seq", 1)
        return [item["key"] for item in items]
