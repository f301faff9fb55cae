"""Reading the imported catalog through the gateway, as the seed's clients do."""

import csv
import math
import re
import uuid
from pathlib import Path

import requests
from helpers import import_file, upload_ok, wait_finished, wait_for_status
from yarl import URL

from catalog_testkit.files import write_movies_csv
from catalog_testkit.paging import walk_pages

LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')


def links(response: requests.Response) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(response.headers.get("Link", ""))}


def seed_keys(seed_csv) -> list[str]:
    with seed_csv.open(newline="") as file:
        return [row["show_id"].strip() for row in csv.DictReader(file)]


def every_id(base_url: str) -> list[str]:
    """The whole catalog in import order, following rel="next" (a cursor) from the first page."""
    return walk_pages(f"{base_url}/get_content?limit=100").ids()


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


def check_every_page(stack, dataset: str) -> list[str]:
    """Walks the dataset whole and by ``type=Movie``, by offset and by cursor, at two page sizes each: every
    walk must give the store's items in import order, with ``X-Total-Count`` their number. The keys in order."""
    with stack.database() as db:
        items = list(db.catalog_items.find({"dataset": dataset}, {"key": 1, "row.type": 1}).sort("seq", 1))
    in_order = [item["key"] for item in items]
    movies = [item["key"] for item in items if item["row"].get("type") == "Movie"]
    for params, wanted in [({"dataset": dataset}, in_order), ({"dataset": dataset, "type": "Movie"}, movies)]:
        for by, limit in [("offset", 100), ("offset", 7), ("next", 100), ("next", 33)]:
            walked = walk_pages(URL(f"{stack.url}/get_content").with_query({**params, "limit": limit}), by=by)
            assert walked.ids() == wanted, (params, by, limit)
            assert walked.totals == {str(len(wanted))}
    return in_order


def import_at_once(base_url: str, headers: dict[str, str], paths: list[Path], **fields: str) -> list[str]:
    """Uploads every file before waiting for any, so their imports run side by side; each must
    succeed. Their task ids, in the order of ``paths``."""
    running = [upload_ok(base_url, headers, path, **fields) for path in paths]
    for task_id in running:
        assert wait_finished(base_url, headers, task_id)["status"] == "Success"
    return running


def test_every_page_by_offset_and_cursor_holds_each_item_once_in_import_order(stack, auth_headers, tmp_path):
    dataset = f"walk-{uuid.uuid4().hex[:8]}"
    first = write_movies_csv(tmp_path / "first.csv", range(0, 1_500))
    overlapping = write_movies_csv(tmp_path / "overlapping.csv", range(1_000, 2_500))
    # Two imports at once, the second's first 500 rows duplicates of the first's.
    import_at_once(stack.url, auth_headers, [first, overlapping], dataset=dataset)
    # Then an upsert that turns some movies into TV shows and back, in place.
    flipped = tmp_path / "flipped.csv"
    flipped.write_bytes(first.read_bytes().replace(b",Movie,", b",Was Movie,").replace(b",TV Show,", b",Movie,"))
    assert import_file(stack.url, auth_headers, flipped, mode="upsert", dataset=dataset)["rows_updated"] == 1_500

    assert len(check_every_page(stack, dataset)) == 2_500


def test_every_column_round_trips_and_filters_and_sorts_by_its_own_name(stack, auth_headers, tmp_path):
    dataset = f"columns-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "columns.csv"
    path.write_text(
        "show_id,id,title,a.b,Box Office ($M),Año\n"
        "k1,ROWID-1,One,dotted,3.5,1999\n"
        "k2,ROWID-2,Two,plain,12.25,2001\n"
        "k3,ROWID-3,Three,dotted,0.5,1995\n",
        encoding="utf-8",
    )
    import_file(stack.url, auth_headers, path, dataset=dataset)

    def get(**params: str) -> list[dict]:
        response = requests.get(f"{stack.url}/get_content", params={"dataset": dataset, **params}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    # Every value under its own column; the row's own id is not hidden by the key.
    assert get()[0] == {
        "show_id": "k1",
        "id": "ROWID-1",
        "title": "One",
        "a.b": "dotted",
        "Box Office ($M)": 3.5,
        "Año": 1999,
    }
    assert [item["show_id"] for item in get(**{"filter[a.b]": "dotted"})] == ["k1", "k3"]
    assert [item["show_id"] for item in get(**{"filter[Box Office ($M)]": "12.25"})] == ["k2"]
    assert [item["show_id"] for item in get(**{"filter[Año]": "1995"})] == ["k3"]
    assert [item["show_id"] for item in get(**{"filter[id]": "ROWID-2"})] == ["k2"]
    for column, order in [
        ("a.b", ["k1", "k3", "k2"]),
        ("-Box Office ($M)", ["k2", "k1", "k3"]),
        ("Año", ["k3", "k1", "k2"]),
        ("-id", ["k3", "k2", "k1"]),
    ]:
        assert [item["show_id"] for item in get(sort=column)] == order, column
    described = requests.get(f"{stack.url}/datasets/{dataset}", timeout=10).json()
    assert described["key"] == "show_id"
    assert [column["name"] for column in described["columns"]] == [
        "show_id",
        "id",
        "title",
        "a.b",
        "Box Office ($M)",
        "Año",
    ]


def test_pages_walked_before_and_after_a_revert_are_exact(stack, auth_headers, tmp_path):
    dataset = f"revert-{uuid.uuid4().hex[:8]}"
    first = write_movies_csv(tmp_path / "first.csv", range(0, 1_200))
    overlapping = write_movies_csv(tmp_path / "overlapping.csv", range(800, 2_000))
    # Two imports at once (which of them inserts keys 800-1199 is a race), then an upsert, another job,
    # of keys 300-599, only in the first file: the first import's revert must leave those 300.
    running = import_at_once(stack.url, auth_headers, [first, overlapping], dataset=dataset)
    flipped = tmp_path / "flipped.csv"
    flipped.write_bytes(
        write_movies_csv(tmp_path / "some.csv", range(300, 600))
        .read_bytes()
        .replace(b",Movie,", b",Was Movie,")
        .replace(b",TV Show,", b",Movie,")
    )
    assert import_file(stack.url, auth_headers, flipped, mode="upsert", dataset=dataset)["rows_updated"] == 300

    before = check_every_page(stack, dataset)
    assert len(before) == 2_000
    inserted = requests.get(f"{stack.url}/fetch_csv_status/{running[0]}", headers=auth_headers, timeout=10).json()
    with stack.database() as db:
        # The first import's rows that no one changed since (all but the upserted 300): those of keys
        # 800-1199 the other import found as duplicates it relied on, and stay; the rest its revert removes.
        mine = list(db.catalog_items.find({"dataset": dataset, "source.job_id": running[0]}))
    assert len(mine) == inserted["rows_inserted"] - 300
    relied = {item["key"] for item in mine if item.get("relied_on_by") == running[1]}
    assert relied == {item["key"] for item in mine if 800 <= int(item["key"][1:]) < 1_200}
    untouched = {item["key"] for item in mine} - relied

    response = requests.post(f"{stack.url}/uploads/{running[0]}/revert", headers=auth_headers, timeout=10)
    assert response.status_code == 202, response.text
    done = wait_for_status(stack.url, auth_headers, running[0], lambda s: s["status"] == "Reverted")

    assert (done["rows_reverted"], done["rows_kept"]) == (len(untouched), 300 + len(relied))
    after = check_every_page(stack, dataset)
    assert len(after) == 2_000 - done["rows_reverted"]
    # The first import's rows are gone but for the upserted and relied-on ones; the second's are all there.
    assert set(after) == set(before) - untouched
    assert {f"s{n}" for n in range(300, 600)} | {f"s{n}" for n in range(1_200, 2_000)} <= set(after)
    assert after == [key for key in before if key in set(after)]
