"""The one page walker: every page of a listing, by its ``Link: rel="next"`` (a cursor) or by offset
page numbers, through the gateway (``walk_pages``) or an in-process test client (``walk_pages_async``).
Each page must be a 200; the walk must end; what it saw is returned whole for the test to check."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
from yarl import URL

LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')

By = Literal["next", "offset"]


def links(response) -> dict[str, URL]:
    """The URLs of a response's ``Link`` header (requests' or aiohttp's), by ``rel``."""
    return _links(response.headers)


def _links(headers: Mapping[str, str]) -> dict[str, URL]:
    return {rel: URL(url) for url, rel in LINK.findall(headers.get("Link", ""))}


@dataclass
class Walked:
    """Every item of the walk in the order its pages gave them, the number of pages read, and each
    ``X-Total-Count`` met on the way (one value if the listing held still)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    totals: set[str] = field(default_factory=set)

    def ids(self, key: str = "id") -> list[Any]:
        return [item[key] for item in self.items]


class _Walk:
    """The walk's rule, whatever carries the requests: the first URL, then one page answer at a time."""

    def __init__(self, first: URL, by: By, max_pages: int) -> None:
        self.first = first.update_query(offset=1) if by == "offset" else first
        self.by = by
        self.max_pages = max_pages
        self.walked = Walked()

    def take(self, url: URL, status: int, body: str, headers: Mapping[str, str]) -> URL | None:
        """Records one page; the next page's URL, or None at the end."""
        assert status == 200, (str(url), status, body)
        items = json.loads(body)
        self.walked.pages += 1
        assert self.walked.pages <= self.max_pages, f"{self.first}: still more pages after {self.max_pages}"
        if "X-Total-Count" in headers:
            self.walked.totals.add(headers["X-Total-Count"])
        self.walked.items += items
        if self.by == "offset":
            # Past the last page, an offset page is empty.
            return self.first.update_query(offset=self.walked.pages + 1) if items else None
        return _links(headers).get("next")


def walk_pages(url: str | URL, *, by: By = "next", max_pages: int = 10_000, timeout: float = 60) -> Walked:
    """Every page from ``url`` (absolute, with its query), over HTTP."""
    walk = _Walk(URL(url), by, max_pages)
    target = walk.first
    while target is not None:
        response = requests.get(str(target), timeout=timeout)
        target = walk.take(target, response.status_code, response.text, response.headers)
    return walk.walked


async def walk_pages_async(client, path: str | URL, *, by: By = "next", max_pages: int = 10_000) -> Walked:
    """Every page from ``path`` (with its query), through an aiohttp ``TestClient``."""
    walk = _Walk(URL(path), by, max_pages)
    target = walk.first
    while target is not None:
        response = await client.get(target.relative() if target.absolute else target)
        target = walk.take(target, response.status, await response.text(), response.headers)
    return walk.walked
