"""Reading the imported catalog through the gateway, as the seed's clients do."""

import csv
import math
import re

import requests
from helpers import import_file

LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')


def links(response: requests.Response) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(response.headers.get("Link", ""))}


def seed_keys(seed_csv) -> list[str]:
    with seed_csv.open(newline="") as file:
        return [row["show_id"].strip() for row in csv.DictReader(file)]


def every_id(base_url: str) -> list[str]:
    """The whole catalog in import order, following rel="next" (a cursor) from the first page."""
    seen, url = [], f"{base_url}/get_content?limit=100"
    while url:
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()]
        url = links(response).get("next")
    return seen


def test_the_seed_curl_returns_items_6_to_10_of_the_import(stack, auth_headers, seed_csv):
    import_file(stack.url, auth_headers, seed_csv)
    keys = seed_keys(seed_csv)

    # The seed README's curl, unchanged: curl 'http://127.0.0.1:5000/get_content?limit=5&offset=2'
    response = requests.get(f"{stack.url}/get_content?limit=5&offset=2", timeout=10)

    assert response.status_code == 200
    catalog = every_id(stack.url)
    # Other tests may import into the same stack; the seed's rows stay together, in file order, at their import
    # position (first, unless another file was imported before it), and the page is items 6-10 of the catalog.
    start = catalog.index(keys[0])
    assert catalog[start : start + len(keys)] == keys
    items = response.json()
    assert [item["id"] for item in items] == catalog[5:10]
    if start == 0:
        assert [item["id"] for item in items] == keys[5:10]
    assert all(not {"_id", "seq", "source"} & item.keys() for item in items)

    total = int(response.headers["X-Total-Count"])
    assert total == len(catalog)
    page = f"{stack.url}/get_content?limit=5"
    assert links(response) == {
        "first": f"{page}&offset=1",
        "prev": f"{page}&offset=1",
        "next": f"{page}&cursor={response.headers['X-Next-Cursor']}",
        "last": f"{page}&offset={math.ceil(total / 5)}",
    }


def test_one_item_filters_and_errors_through_the_gateway(stack, auth_headers, seed_csv):
    import_file(stack.url, auth_headers, seed_csv)
    with seed_csv.open(newline="") as file:
        first = next(csv.DictReader(file))

    item = requests.get(f"{stack.url}/contents/{first['show_id']}", timeout=10)
    assert item.status_code == 200
    assert item.json()["id"] == first["show_id"]
    assert item.json()["title"] == first["title"]

    movies = requests.get(f"{stack.url}/get_content", params={"type": "Movie", "q": first["title"]}, timeout=10)
    assert first["show_id"] in [movie["id"] for movie in movies.json()]
    assert all(movie["type"] == "Movie" for movie in movies.json())

    missing = requests.get(f"{stack.url}/contents/no-such-item", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"error": "No catalog item with this id"}

    bad = requests.get(f"{stack.url}/get_content?limit=abc", timeout=10)
    assert bad.status_code == 400
    assert bad.json()["details"][0]["field"] == "limit"
    assert bad.headers.get("X-Request-ID")
