"""GET /get_content: the seed's contract, order, filters, q, Link and X-Total-Count."""

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient
from pymongo.asynchronous.collection import AsyncCollection

from catalog_service.main import create_app
from catalog_testkit.paging import links
from service_common.catalog_layout import IDS_PER_READ
from tests.helpers import ITEM_COUNT, build_catalog, expected, ids, store_catalog


async def test_default_page_is_the_first_20_items_in_import_order(client, catalog):
    response = await client.get("/get_content")

    assert response.status == 200
    items = await response.json()
    assert ids(items) == expected(catalog)[:20]
    assert response.headers["X-Total-Count"] == str(ITEM_COUNT)


async def test_items_are_the_rows_own_columns_plus_id_and_nothing_internal(client, catalog):
    items = await (await client.get("/get_content?limit=1")).json()

    first = catalog[0]
    assert items == [{**first["row"], "id": first["key"]}]
    assert not {"_id", "seq", "source", "created_at", "updated_at"} & items[0].keys()


async def test_offset_is_a_1_based_page_number_as_in_the_seed(client, catalog):
    response = await client.get("/get_content?limit=5&offset=2")

    assert ids(await response.json()) == expected(catalog)[5:10]


async def test_an_offset_past_the_end_is_an_empty_page(client, catalog):
    response = await client.get("/get_content?limit=50&offset=7")

    assert response.status == 200
    assert await response.json() == []
    assert response.headers["X-Total-Count"] == str(ITEM_COUNT)
    assert "next" not in links(response)


async def test_the_seed_filter_type_selects_movies(client, catalog):
    response = await client.get("/get_content?type=Movie&limit=100")

    movies = expected(catalog, where=lambda row: row["type"] == "Movie")
    assert ids(await response.json()) == movies[:100]
    assert response.headers["X-Total-Count"] == str(len(movies))


async def test_filter_on_any_column_with_a_space_in_its_value(client, catalog):
    response = await client.get("/get_content", params={"filter[type]": "TV Show", "limit": "100"})

    shows = expected(catalog, where=lambda row: row["type"] == "TV Show")
    assert ids(await response.json()) == shows
    assert response.headers["X-Total-Count"] == str(len(shows))


async def test_a_number_matches_the_column_whether_stored_as_number_or_string(client, catalog):
    response = await client.get("/get_content", params={"filter[release_year]": "2019", "limit": "100"})

    items = await response.json()
    assert ids(items) == expected(catalog, where=lambda row: str(row["release_year"]) == "2019")
    assert {type(item["release_year"]) for item in items} == {int, str}


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        ("2019.0", True),
        ("-0", False),
        ("02019", False),
        ("2019e0", False),
        ("9" * 30, False),
        ("1" * 400 + ".5", False),
    ],
)
async def test_only_plain_numbers_match_numeric_cells(client, value, matches):
    response = await client.get("/get_content", params={"filter[release_year]": value})

    assert response.status == 200
    assert bool(await response.json()) is matches


async def test_filters_combine_and_an_empty_value_matches_empty_cells(client, catalog):
    response = await client.get(
        "/get_content", params={"filter[director]": "", "filter[rating]": "TV-MA", "limit": "100"}
    )

    assert ids(await response.json()) == expected(
        catalog, where=lambda row: row.get("director") is None and row["rating"] == "TV-MA"
    )


async def test_filter_by_id_is_the_row_key(client, catalog):
    response = await client.get("/get_content", params={"filter[id]": "x/11"})

    assert ids(await response.json()) == ["x/11"]


@pytest.mark.parametrize("value", ['{"$gt": ""}', "$gt", "[$ne]", ".*"])
async def test_a_value_that_looks_like_an_operator_is_a_plain_value(client, value):
    response = await client.get("/get_content", params={"filter[title]": value})

    assert response.status == 200
    assert await response.json() == []
    assert response.headers["X-Total-Count"] == "0"


async def test_a_filter_or_sort_on_a_column_the_dataset_does_not_have_is_a_400_naming_it(client, catalog):
    for parameter, value in [("filter[no such column]", "x"), ("sort", "-no such column")]:
        response = await client.get("/get_content", params={parameter: value})

        assert response.status == 400
        body = await response.json()
        assert body["details"] == [{"field": parameter, "message": "No column 'no such column' in this dataset"}]


@pytest.mark.parametrize(
    ("q", "titles"),
    [
        ("what if...? (PART", ["What If...? (Part 1)"]),
        ("c++ [live] $5 ^", ["C++ [Live] $5 ^up"]),
        (".", ["What If...? (Part 1)", "a.b.c", "Price: $9.99 | Deal*", "Regex .* literally"]),
        (".*", ["Regex .* literally"]),
        ("| deal*", ["Price: $9.99 | Deal*"]),
        ("k\\s", ["Back\\slash"]),
    ],
)
async def test_q_is_a_case_insensitive_literal_substring_of_the_title(client, q, titles):
    response = await client.get("/get_content", params={"q": q})

    assert response.status == 200
    assert [item["title"] for item in await response.json()] == titles


async def test_q_combines_with_filters(client, catalog):
    response = await client.get("/get_content", params={"q": "title 1", "type": "Movie", "limit": "100"})

    assert ids(await response.json()) == expected(
        catalog, where=lambda row: "title 1" in row["title"].lower() and row["type"] == "Movie"
    )


@pytest.mark.parametrize("column", ["title", "release_year", "director", "id"])
@pytest.mark.parametrize("descending", [False, True])
async def test_sort_by_a_column_both_ways_with_import_order_breaking_ties(client, catalog, column, descending):
    sort = f"-{column}" if descending else column
    response = await client.get("/get_content", params={"sort": sort, "limit": "100", "offset": "2"})

    if column == "id":
        wanted = sorted((d["key"] for d in catalog), reverse=descending)
    else:
        wanted = expected(catalog, column=column, descending=descending)
    assert ids(await response.json()) == wanted[100:200]


async def test_link_and_total_count_as_the_client_sees_them_through_the_gateway(client, catalog):
    response = await client.get(
        "/get_content?type=Movie&limit=5&offset=3",
        headers={"Host": "catalog.example:5000", "X-Forwarded-Proto": "https"},
    )

    movies = expected(catalog, where=lambda row: row["type"] == "Movie")
    assert response.headers["X-Total-Count"] == str(len(movies))
    base = "https://catalog.example:5000/get_content?type=Movie&limit=5"
    cursor = response.headers["X-Next-Cursor"]
    last_page = -(-len(movies) // 5)
    assert response.headers["Link"] == (
        f'<{base}&offset=1>; rel="first", <{base}&offset=2>; rel="prev", '
        f'<{base}&cursor={cursor}>; rel="next", <{base}&offset={last_page}>; rel="last"'
    )


async def test_first_and_last_pages_leave_out_the_links_that_do_not_exist(client):
    first = await client.get("/get_content?limit=100")
    last = await client.get("/get_content?limit=100&offset=3")

    assert set(links(first)) == {"first", "next", "last"}
    assert set(links(last)) == {"first", "prev", "last"}
    assert "X-Next-Cursor" not in last.headers


async def test_links_keep_every_other_parameter_encoded(client):
    response = await client.get(
        "/get_content", params={"q": "a&b+c", "filter[type]": "TV Show", "sort": "-title", "limit": "2"}
    )

    for url in links(response).values():
        assert {k: v for k, v in url.query.items() if k not in {"offset", "cursor"}} == {
            "q": "a&b+c",
            "filter[type]": "TV Show",
            "sort": "-title",
            "limit": "2",
        }


async def test_links_keep_an_ipv6_host(client):
    response = await client.get("/get_content", headers={"Host": "[::1]:5000"})

    assert str(links(response)["first"]).startswith("http://[::1]:5000/get_content?")


async def test_links_ignore_a_forwarded_scheme_that_is_not_http(client):
    response = await client.get("/get_content", headers={"X-Forwarded-Proto": "javascript"})

    assert all(url.scheme == "http" for url in links(response).values())


async def test_prev_of_a_page_past_the_end_is_the_last_page(client):
    response = await client.get("/get_content?limit=100&offset=9")

    assert links(response)["prev"].query["offset"] == "3"


async def test_last_is_left_out_when_deeper_than_sorted_offset_pages_may_go(settings_for, catalog):
    async with TestClient(TestServer(create_app(settings_for(max_offset_rows=250)))) as client:
        sorted_page = await client.get("/get_content?limit=10&sort=title")
        import_order = await client.get("/get_content?limit=10")

    assert set(links(sorted_page)) == {"first", "next"}
    # Import-order pages cost one page at any depth: their last page is always offered.
    assert links(import_order)["last"].query["offset"] == str(-(-ITEM_COUNT // 10))


async def test_the_limit_cap_is_configurable(settings_for, catalog):
    async with TestClient(TestServer(create_app(settings_for(max_limit=250)))) as client:
        allowed = await client.get("/get_content?limit=250")
        assert len(await allowed.json()) == 250
        assert allowed.headers["X-Max-Limit"] == "250"
        refused = await client.get("/get_content?limit=251")
        assert refused.status == 400
        assert (await refused.json())["details"] == [
            {"field": "limit", "message": "Must be a whole number from 1 to 250"}
        ]


async def test_a_cap_under_the_default_page_size_is_the_default_and_every_page_states_it(settings_for, catalog):
    async with TestClient(TestServer(create_app(settings_for(max_limit=7)))) as client:
        first = await client.get("/get_content")
        assert first.status == 200
        assert ids(await first.json()) == expected(catalog)[:7]
        assert first.headers["X-Max-Limit"] == "7"
        following = await client.get(links(first)["next"].raw_path_qs)
        assert ids(await following.json()) == expected(catalog)[7:14]
        assert following.headers["X-Max-Limit"] == "7"
        sorted_page = await client.get("/datasets/default/contents?sort=title")
        assert (len(await sorted_page.json()), sorted_page.headers["X-Max-Limit"]) == (7, "7")
        assert (await client.get("/get_content?limit=8")).status == 400


@pytest.mark.parametrize("host", ["exa mple:5000", 'evil>; rel="next", <http://x', "h:99999"])
async def test_a_host_header_that_is_no_host_is_a_400_not_a_broken_link(client, host):
    response = await client.get("/get_content", headers={"Host": host})

    assert response.status == 400
    assert await response.json() == {"error": "Invalid Host header"}


async def test_a_page_spread_over_many_blocks_asks_for_at_most_ids_per_read_ids_at_a_time(
    settings, mongo_url, mongo_db_name, monkeypatch
):
    documents = build_catalog(120)
    with MongoClient(mongo_url, tz_aware=True) as mongo:
        store_catalog(mongo[mongo_db_name], documents, block_size=1)
    asked: list[tuple[str, int]] = []
    find = AsyncCollection.find

    def counted(self, query=None, *args, **kwargs):
        if isinstance(ids_in := (query or {}).get("_id"), dict) and "$in" in ids_in:
            asked.append((self.name, len(ids_in["$in"])))
        return find(self, query, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "find", counted)
    async with TestClient(TestServer(create_app(settings))) as client:
        page = await client.get("/get_content?limit=100")
        assert ids(await page.json()) == expected(documents)[:100]

    # A hundred items in a hundred blocks: both read in groups, as catalog_layout says to.
    assert {name for name, _ in asked} >= {"catalog_blocks", "catalog_items"}
    assert max(size for _, size in asked) <= IDS_PER_READ
