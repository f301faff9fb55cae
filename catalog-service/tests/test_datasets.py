"""Datasets read side by side; their pages and counts come from the layout and stay exact when
items are updated in place; every column is first-class, whatever the file calls it."""

from datetime import UTC, datetime

import pytest
from pymongo import MongoClient
from yarl import URL

from catalog_testkit.paging import walk_pages_async
from ingest_service.catalog_blocks import append_items, block_ids_of, item_document, refresh
from tests.helpers import JOB_ID, ids, store_catalog

ODD_COLUMNS = ["show_id", "id", "title", "a.b", "Box Office ($M)", "Año", "type"]


def odd_rows(count: int) -> list[dict]:
    now = datetime.now(UTC)
    documents = []
    for n in range(count):
        row = {
            "show_id": f"k{n}",
            "id": f"ROWID-{n}",
            "title": f"Title {n}",
            "a%2Eb": "dotted" if n % 2 else "plain",
            "Box Office (%24M)": n * 1.5,
            "Año": 1990 + n % 5,
            "type": "Movie" if n % 3 else "TV Show",
        }
        documents.append(
            item_document("odd", f"k{n}", seq=5000 + n, block_id="", row=row, job_id=JOB_ID, line=n + 2, now=now)
        )
    return documents


@pytest.fixture
def odd(mongo_url, mongo_db_name, catalog) -> list[dict]:
    documents = odd_rows(30)
    with MongoClient(mongo_url, tz_aware=True) as client:
        store_catalog(client[mongo_db_name], documents, block_size=7)
    return documents


async def test_a_dataset_reads_alone_and_keeps_every_column_as_the_file_named_it(client, odd):
    response = await client.get("/get_content?dataset=odd&limit=2")

    assert response.status == 200
    assert response.headers["X-Total-Count"] == "30"
    assert await response.json() == [
        {
            "show_id": "k0",
            "id": "ROWID-0",
            "title": "Title 0",
            "a.b": "plain",
            "Box Office ($M)": 0.0,
            "Año": 1990,
            "type": "TV Show",
        },
        {
            "show_id": "k1",
            "id": "ROWID-1",
            "title": "Title 1",
            "a.b": "dotted",
            "Box Office ($M)": 1.5,
            "Año": 1991,
            "type": "Movie",
        },
    ]
    seed = await client.get("/get_content?limit=1")
    assert (await seed.json())[0]["show_id"] == "s0"


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("a.b", "dotted", [f"k{n}" for n in range(30) if n % 2]),
        ("Box Office ($M)", "3.0", ["k2"]),
        ("Año", "1992", [f"k{n}" for n in range(30) if n % 5 == 2]),
        ("id", "ROWID-4", ["k4"]),  # the row's own id column, not the key
    ],
)
async def test_any_column_filters_by_its_exact_name(client, odd, column, value, expected):
    response = await client.get("/get_content", params={"dataset": "odd", f"filter[{column}]": value, "limit": 100})

    assert response.status == 200
    assert [item["show_id"] for item in await response.json()] == expected
    assert response.headers["X-Total-Count"] == str(len(expected))


@pytest.mark.parametrize("column", ["a.b", "Box Office ($M)", "Año", "id"])
async def test_any_column_sorts_by_its_exact_name(client, odd, column):
    response = await client.get("/get_content", params={"dataset": "odd", "sort": f"-{column}", "limit": 100})

    assert response.status == 200
    stored = {"a.b": "a%2Eb", "Box Office ($M)": "Box Office (%24M)"}.get(column, column)
    wanted = sorted(odd, key=lambda d: (d["row"][stored], d["seq"]), reverse=True)
    assert [item["show_id"] for item in await response.json()] == [d["key"] for d in wanted]


async def test_an_item_of_a_dataset_by_its_key(client, odd):
    response = await client.get("/datasets/odd/contents/k3")

    assert response.status == 200
    assert (await response.json())["id"] == "ROWID-3"
    assert (await client.get("/contents/k3")).status == 404  # not in the default dataset
    assert (await client.get("/datasets/nope/contents/k3")).status == 404


async def test_datasets_list_their_counts_columns_and_keys_without_scanning(client, odd, catalog):
    response = await client.get("/datasets")

    assert response.status == 200
    listed = {dataset["name"]: dataset for dataset in await response.json()}
    assert set(listed) == {"default", "odd"}
    assert (listed["default"]["items"], listed["odd"]["items"]) == (len(catalog), 30)
    assert listed["default"]["key"] == "show_id"
    columns = {column["name"]: column["items"] for column in listed["odd"]["columns"]}
    assert columns == dict.fromkeys(ODD_COLUMNS, 30)
    directors = {c["name"]: c["items"] for c in listed["default"]["columns"]}["director"]
    assert directors == sum(1 for d in catalog if "director" in d["row"])
    one = await client.get("/datasets/odd")
    assert await one.json() == listed["odd"]
    assert (await client.get("/datasets/nope")).status == 404
    assert (await client.get("/get_content?dataset=nope")).status == 404


async def test_pages_and_counts_stay_exact_with_holes_and_types_changed_in_place(
    client, catalog, mongo_url, mongo_db_name
):
    with MongoClient(mongo_url, tz_aware=True) as mongo:
        db = mongo[mongo_db_name]
        # A later batch whose first half repeats keys already there (duplicates leave holes), then
        # upserts that turn some movies into TV shows and back, in several blocks.
        now = datetime.now(UTC)
        repeats = [
            item_document("default", d["key"], seq=90_000 + n, block_id="", row=d["row"], job_id="j2", line=n, now=now)
            for n, d in enumerate(catalog[:20])
        ]
        fresh = [
            item_document(
                "default",
                f"new{n}",
                seq=90_020 + n,
                block_id="",
                row={"type": "Movie", "title": "N"},
                job_id="j2",
                line=n,
                now=now,
            )
            for n in range(20)
        ]
        append_items(db, "default", "j2", repeats + fresh, now)
        changed = [d["key"] for d in catalog[::7]]
        for key in changed:
            item = db.catalog_items.find_one({"_id": f"default:{key}"})
            flipped = "Movie" if item["row"]["type"] == "TV Show" else "TV Show"
            db.catalog_items.update_one({"_id": item["_id"]}, {"$set": {"row.type": flipped}})
        refresh(db, block_ids_of(db, "default", changed))
        wanted_all = [d["key"] for d in db.catalog_items.find({"dataset": "default"}).sort("seq", 1)]
        wanted_movies = [
            d["key"] for d in db.catalog_items.find({"dataset": "default", "row.type": "Movie"}).sort("seq", 1)
        ]

    assert len(wanted_all) == len(catalog) + 20
    for path, wanted in [("/get_content?dataset=default", wanted_all), ("/get_content?type=Movie", wanted_movies)]:
        first = await client.get(path)
        assert first.headers["X-Total-Count"] == str(len(wanted))
        for limit in (1, 7, 100):
            for by in ("offset", "next"):
                walked = await walk_pages_async(client, URL(path).update_query(limit=limit), by=by)
                assert ids(walked.items) == wanted, (path, limit, by)
