"""Helpers of the fault-injection suite beyond the e2e ones (helpers.py): waiting for a service to come
back, key prefixes, and a direct look at the stack's own store to check what was (not) written."""

import uuid
from collections.abc import Callable

import requests
from pymongo.database import Database
from yarl import URL

from catalog_testkit.paging import walk_pages
from catalog_testkit.polling import poll


def eventually(predicate: Callable[[], bool], within: float, what: str) -> None:
    """The kit's poller, for a service on its way back: a refused connection or a failed check is "not yet"."""
    poll(predicate, within=within, what=what, interval=0.2, ignore=(requests.RequestException, AssertionError))


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
    walked = walk_pages(URL(f"{base_url}/get_content").with_query({"limit": limit, **params}))
    assert len(walked.totals) == 1, walked.totals
    assert len(walked.items) == int(walked.totals.pop())
    return walked.ids()


def import_order(stack, dataset: str = "default", **match: object) -> list[str]:
    """The keys of a dataset's items in import order, read straight from the store."""
    with stack.database() as db:
        items = db.catalog_items.find({"dataset": dataset, **match}, {"key": 1}).sort("seq", 1)
        return [item["key"] for item in items]
