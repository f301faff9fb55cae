"""Walking every page against a server whose largest page is not the usual 100 (``CATALOG_MAX_LIMIT``):
``catalogctl`` asks for what the server says it takes (``X-Max-Limit``), never more.

The server here is a stand-in that pages as the catalog does (``catalog-service`` tests check that the
real one sends the header); the command runs in-process with the stand-in as its transport.
"""

import functools
import json

import httpx
import pytest
from catalog_cli import main
from catalog_cli.client import CatalogClient
from click.testing import CliRunner

ITEMS = [{"id": f"s{n}", "title": f"Title {n}"} for n in range(1, 96)]
DEFAULT_LIMIT = 20


class PagedServer:
    """``/get_content`` by cursor and ``/datasets`` by offset, with a largest page of ``max_limit``;
    ``announces`` False: a server from before ``X-Max-Limit``."""

    def __init__(self, max_limit: int, *, announces: bool = True) -> None:
        self.max_limit, self.announces = max_limit, announces
        self.limits: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = int(params.get("limit", min(DEFAULT_LIMIT, self.max_limit)))
        self.limits.append(limit)
        if limit > self.max_limit:
            message = f"Must be a whole number from 1 to {self.max_limit}"
            body = {"error": "Invalid value for: limit", "details": [{"field": "limit", "message": message}]}
            return httpx.Response(400, json=body)
        if request.url.path == "/get_content":
            start = int(params.get("cursor", "0"))
            following = start + limit if start + limit < len(ITEMS) else None
            headers = {"X-Next-Cursor": str(following)} if following is not None else {}
            return self._page(ITEMS[start : start + limit], headers)
        if request.url.path == "/datasets":
            names = [{"name": f"d{n:03d}"} for n in range(1, 96)]
            offset = int(params.get("offset", "1"))
            start = (offset - 1) * limit
            headers = {}
            if start + limit < len(names):
                query = f"limit={limit}&" if "limit" in params else ""
                headers["Link"] = f'<http://catalog.test/datasets?{query}offset={offset + 1}>; rel="next"'
            return self._page(names[start : start + limit], headers)
        return httpx.Response(404, json={"error": "Not found"})

    def _page(self, items: list[dict], headers: dict[str, str]) -> httpx.Response:
        headers = {**headers, "X-Total-Count": str(len(ITEMS))}
        if self.announces:
            headers["X-Max-Limit"] = str(self.max_limit)
        return httpx.Response(200, json=items, headers=headers)


@pytest.fixture
def run(monkeypatch, tmp_path):
    def run(server: PagedServer, *args: str):
        with_server = functools.partial(CatalogClient, transport=httpx.MockTransport(server))
        monkeypatch.setattr(main, "CatalogClient", with_server)
        env = {"XDG_CONFIG_HOME": str(tmp_path), "CATALOG_URL": "http://catalog.test", "COLUMNS": "200"}
        return CliRunner().invoke(main.cli, list(args), env=env, catch_exceptions=False)

    return run


@pytest.mark.parametrize("max_limit", [7, 30, 100, 250])
def test_content_all_reads_every_item_in_the_largest_pages_the_server_takes(run, max_limit):
    server = PagedServer(max_limit)
    result = run(server, "content", "--all", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ITEMS
    # The first page is the server's default, the rest as large as it allows: never a 400.
    assert server.limits[0] == min(DEFAULT_LIMIT, max_limit)
    assert set(server.limits[1:]) <= {max_limit}


def test_content_all_with_a_limit_asks_for_that_limit_on_every_page(run):
    server = PagedServer(30)
    result = run(server, "content", "--all", "--limit", "9", "--format", "json")

    assert json.loads(result.stdout) == ITEMS
    assert set(server.limits) == {9}


def test_content_all_against_a_server_that_does_not_say_keeps_its_default_page(run):
    server = PagedServer(30, announces=False)
    result = run(server, "content", "--all", "--format", "json")

    assert json.loads(result.stdout) == ITEMS
    assert set(server.limits) == {DEFAULT_LIMIT}


def test_a_limit_over_the_server_s_largest_page_is_its_400(run):
    result = run(PagedServer(30), "content", "--limit", "100")

    assert result.exit_code == 1
    assert "Invalid value for: limit (limit: Must be a whole number from 1 to 30) [HTTP 400]" in result.stderr


@pytest.mark.parametrize("max_limit", [7, 20, 30, 100])
def test_the_dataset_list_is_read_whole_in_the_largest_pages_the_server_takes(max_limit):
    server = PagedServer(max_limit)
    with CatalogClient("http://catalog.test", transport=httpx.MockTransport(server)) as client:
        names = [d["name"] for d in client.datasets()]

    assert names == [f"d{n:03d}" for n in range(1, 96)]
    assert set(server.limits[1:]) <= {max_limit}
