"""Walking every page, by offset and by cursor, yields every item exactly once, in order."""

import base64
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from catalog_service.cursors import CursorCodec, CursorPosition
from catalog_service.main import create_app
from catalog_testkit.paging import links, walk_pages_async
from tests.helpers import CURSOR_SECRET, ITEM_COUNT, expected, ids

ORDERS = [None, "title", "-title", "release_year", "-release_year", "director", "-director", "-id"]


def _wanted(catalog, sort, where=lambda row: True):
    if sort is None:
        return expected(catalog, where=where)
    column = sort.removeprefix("-")
    if column == "id":
        return sorted((d["key"] for d in catalog if where(d["row"])), reverse=sort.startswith("-"))
    return expected(catalog, column=column, descending=sort.startswith("-"), where=where)


def _path(**params) -> str:
    return str(URL("/get_content").with_query({k: v for k, v in params.items() if v is not None}))


@pytest.mark.parametrize("sort", ORDERS)
async def test_walking_every_offset_page_yields_every_item_once_in_order(client, catalog, sort):
    seen = []
    for page in range(1, ITEM_COUNT // 7 + 2):
        seen += ids(await (await client.get(_path(sort=sort, limit=7, offset=page))).json())

    assert seen == _wanted(catalog, sort)


@pytest.mark.parametrize("sort", ORDERS)
async def test_walking_next_cursors_yields_every_item_once_in_order(client, catalog, sort):
    walked = await walk_pages_async(client, _path(sort=sort, limit=7), max_pages=ITEM_COUNT + 1)

    assert ids(walked.items) == _wanted(catalog, sort)
    assert walked.pages == -(-ITEM_COUNT // 7)


async def test_cursors_keep_the_filters_and_q(client, catalog):
    walked = await walk_pages_async(client, _path(type="Movie", q="title", sort="-release_year", limit=9))

    assert ids(walked.items) == _wanted(
        catalog, "-release_year", where=lambda row: row["type"] == "Movie" and "title" in row["title"].lower()
    )


async def test_a_cursor_from_an_offset_page_continues_after_it(client, catalog):
    response = await client.get("/get_content?limit=10&offset=4&sort=title")
    following = await client.get(f"/get_content?limit=10&sort=title&cursor={response.headers['X-Next-Cursor']}")

    assert ids(await following.json()) == _wanted(catalog, "title")[40:50]
    assert following.headers["X-Total-Count"] == str(ITEM_COUNT)
    # A cursor page has no page number, so no prev; first and last are offset pages.
    assert set(links(following)) == {"first", "next", "last"}


async def test_a_cursor_may_change_the_page_size(client, catalog):
    response = await client.get("/get_content?limit=3")
    following = await client.get(f"/get_content?limit=50&cursor={response.headers['X-Next-Cursor']}")

    assert ids(await following.json()) == expected(catalog)[3:53]


async def test_a_cursor_still_works_for_a_restarted_service_with_the_same_secret(settings_for, catalog):
    async with TestClient(TestServer(create_app(settings_for()))) as client:
        cursor = (await client.get("/get_content?limit=5")).headers["X-Next-Cursor"]
    async with TestClient(TestServer(create_app(settings_for()))) as client:
        response = await client.get(f"/get_content?limit=5&cursor={cursor}")
        assert ids(await response.json()) == expected(catalog)[5:10]


async def test_a_cursor_signed_with_another_secret_is_refused(settings_for, catalog):
    async with TestClient(TestServer(create_app(settings_for(cursor_secret="another-secret-" + "z" * 32)))) as client:
        cursor = (await client.get("/get_content?limit=5")).headers["X-Next-Cursor"]
    async with TestClient(TestServer(create_app(settings_for()))) as client:
        response = await client.get(f"/get_content?limit=5&cursor={cursor}")
        assert response.status == 400
        assert (await response.json())["details"][0]["field"] == "cursor"


def _tampered(token: str) -> str:
    payload, _, signature = token.partition(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded["s"] = 0
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


@pytest.mark.parametrize(
    "make_cursor",
    [
        pytest.param(_tampered, id="payload edited"),
        pytest.param(lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"), id="signature edited"),
        pytest.param(lambda token: "not-a-cursor", id="garbage"),
        pytest.param(lambda token: "é.é", id="non-ascii"),
        pytest.param(lambda token: token * 30, id="too long"),
    ],
)
async def test_a_tampered_cursor_is_a_400(client, make_cursor):
    token = (await client.get("/get_content?limit=5")).headers["X-Next-Cursor"]

    response = await client.get("/get_content", params={"limit": "5", "cursor": make_cursor(token)})

    assert response.status == 400
    assert (await response.json())["details"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    "payload",
    [
        b"[1]",
        b'{"f": "x"}',
        b'{"f": "x", "v": [], "s": 1}',
        b'{"f": "x", "v": 1, "s": "1"}',
        b'{"f": "x", "v": true, "s": 1}',
    ],
)
async def test_a_signed_but_malformed_cursor_is_a_400(client, payload):
    codec = CursorCodec(CURSOR_SECRET.encode())
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    token = f"{encoded}.{codec._sign(encoded)}"

    response = await client.get("/get_content", params={"cursor": token})

    assert response.status == 400
    assert (await response.json())["details"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    "changed", [{"sort": "-title"}, {"type": "TV Show"}, {"q": "Title 2"}, {"filter[rating]": "PG-13"}]
)
async def test_a_cursor_used_with_another_order_or_filter_is_a_400(client, changed):
    params = {"sort": "title", "type": "Movie", "q": "Title", "limit": "5"}
    token = (await client.get("/get_content", params=params)).headers["X-Next-Cursor"]

    response = await client.get("/get_content", params={**params, **changed, "cursor": token})

    assert response.status == 400
    body = await response.json()
    assert body["details"] == [
        {"field": "cursor", "message": "Cursor belongs to a different sort, filter or q: repeat them as they were"}
    ]


def test_cursor_positions_round_trip_every_value_a_row_holds():
    codec = CursorCodec(b"k" * 32)
    for value in [None, 0, -(2**63), 2.5, "", "Ünïcode ✓"]:
        position = CursorPosition(sort_value=value, seq=42)
        assert codec.decode(codec.encode(position, "f"), "f") == position
