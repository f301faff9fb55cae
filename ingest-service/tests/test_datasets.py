"""Datasets: several catalogs side by side, each with its own keys and owner."""

import pytest

from catalog_testkit.files import movies_csv
from catalog_testkit.polling import poll_async
from catalog_testkit.store import leftovers
from ingest_service import import_storage
from ingest_service.catalog_blocks import audit
from service_common.catalog_layout import DATASETS

from .helpers import upload, upload_ok, wait_finished

# Keys that are plain numbers, as three of the seed's show_id values are.
NUMERIC_SHOWS = b"show_id,type,title\n1,Movie,Netflix one\n2,TV Show,Netflix two\ns3,Movie,Netflix three\n"
FILMS = b"id,title,year\n1,Film one,1990\n2,Film two,1991\n3,Film three,1992\n"


async def test_two_files_whose_keys_collide_keep_every_row_in_two_datasets(api, auth, db, start_worker):
    start_worker()
    shows = await wait_finished(api, auth, await upload_ok(api, auth, NUMERIC_SHOWS))
    films = await wait_finished(api, auth, await upload_ok(api, auth, FILMS, dataset="films"))

    assert (shows["dataset"], shows["rows_inserted"]) == ("default", 3)
    assert (films["dataset"], films["key"], films["rows_inserted"], films["rows_duplicate"]) == ("films", "id", 3, 0)
    assert db.catalog_items.find_one({"_id": "default:1"})["row"]["title"] == "Netflix one"
    assert db.catalog_items.find_one({"_id": "films:1"})["row"]["title"] == "Film one"
    assert audit(db, "default") == [] and audit(db, "films") == []
    films_dataset = db[DATASETS].find_one({"_id": "films"})
    assert (films_dataset["owner"], films_dataset["key"]) == ("user-1", "id")


async def test_a_file_keyed_otherwise_than_its_dataset_is_a_400_naming_both_and_stores_nothing(
    api, auth, db, start_worker
):
    start_worker()
    await wait_finished(api, auth, await upload_ok(api, auth, NUMERIC_SHOWS))
    before = leftovers(db), db.catalog_items.count_documents({})

    response = await upload(api, auth, FILMS)

    assert response.status == 400
    body = await response.json()
    assert body["details"][0]["field"] == "key"
    assert "'default' is keyed by 'show_id'" in body["error"] and "this file by 'id'" in body["error"]
    assert "dataset=" in body["error"]
    assert (leftovers(db), db.catalog_items.count_documents({})) == before


async def test_an_existing_dataset_keeps_its_key_when_the_file_has_that_column(api, auth, db, start_worker):
    start_worker()
    await wait_finished(api, auth, await upload_ok(api, auth, FILMS, dataset="films", key="title"))
    # Detection alone would pick "id"; the dataset's own key is in the header, so it is used.
    status = await wait_finished(api, auth, await upload_ok(api, auth, FILMS, dataset="films"))

    assert (status["key"], status["rows_duplicate"]) == ("title", 3)


async def test_only_the_owner_writes_a_dataset_and_anyone_writes_the_default_one(
    api, auth, other_auth, db, start_worker
):
    start_worker()
    await wait_finished(api, auth, await upload_ok(api, auth, FILMS, dataset="films"))
    before = leftovers(db)

    refused = await upload(api, other_auth, FILMS, dataset="films")
    assert refused.status == 403
    assert "Only the owner of dataset 'films'" in (await refused.json())["error"]
    assert leftovers(db) == before
    assert (await api.delete("/datasets/films", headers=other_auth)).status == 403

    shared = await wait_finished(api, other_auth, await upload_ok(api, other_auth, NUMERIC_SHOWS))
    mine = await wait_finished(api, auth, await upload_ok(api, auth, movies_csv(5)))
    assert (shared["status"], mine["status"]) == ("Success", "Success")
    assert (await api.delete("/datasets/default", headers=auth)).status == 403


async def test_a_bad_dataset_name_is_a_400_naming_the_field(api, auth, db):
    for name in ["Films", "a b", "x" * 65, "", "films/1", "ünï"]:
        response = await upload(api, auth, FILMS, dataset=name)
        assert response.status == 400, name
        assert (await response.json())["details"][0]["field"] == "dataset"
    assert leftovers(db) == {"import_jobs": 0, "uploads.files": 0, "uploads.chunks": 0}


async def test_deleting_a_dataset_removes_it_and_leaves_another_importing_untouched(api, auth, db, start_worker):
    start_worker(INGEST_WORKER_CONCURRENCY="2", INGEST_BATCH_SIZE="200")
    await wait_finished(api, auth, await upload_ok(api, auth, movies_csv(3_000), dataset="old"))
    other = await upload_ok(api, auth, movies_csv(6_000))

    response = await api.delete("/datasets/old", headers=auth)
    assert response.status == 202
    assert (await response.json())["status"] == "deleting"

    async def deleted() -> bool:
        return db[DATASETS].find_one({"_id": "old"}) is None

    await poll_async(deleted, within=20, what="the dataset deleted", interval=0.1)

    assert db.catalog_items.count_documents({"dataset": "old"}) == 0
    assert db.catalog_blocks.count_documents({"dataset": "old"}) == 0
    assert db.catalog_block_summaries.count_documents({"dataset": "old"}) == 0
    status = await wait_finished(api, auth, other, within=120)
    assert (status["status"], status["rows_inserted"]) == ("Success", 6_000)
    assert audit(db, "default") == []
    # The name is free again, for anyone.
    again = await wait_finished(api, auth, await upload_ok(api, auth, FILMS, dataset="old"))
    assert (again["key"], again["rows_inserted"]) == ("id", 3)


async def test_a_dataset_with_imports_running_is_not_deleted(api, auth, db, start_worker):
    task_id = await upload_ok(api, auth, movies_csv(10), dataset="busy")
    response = await api.delete("/datasets/busy", headers=auth)

    assert response.status == 409
    assert (await api.delete("/datasets/nope", headers=auth)).status == 404
    start_worker()
    await wait_finished(api, auth, task_id)
    assert (await api.delete("/datasets/busy", headers=auth)).status == 202


BASICS = (
    b"tconst\ttitleType\tprimaryTitle\tstartYear\truntimeMinutes\n"
    b"tt0000001\tshort\tCarmencita\t1894\t1\n"
    b'tt0000002\tmovie\t"Rolling in the Deep Dish"\t1994\t\\N\n'
    b"tt0000003\tmovie\tPauvre Pierrot\t1994\t4\n"
)
RATINGS = b"tconst\taverageRating\tnumVotes\ntt0000003\t6.5\t1900\ntt0000001\t5.7\t2100\ntt9999999\t9.9\t5\n"


async def test_merge_sets_the_files_columns_on_existing_items_and_creates_none(api, auth, db, start_worker):
    start_worker()
    await wait_finished(api, auth, await upload_ok(api, auth, BASICS, dataset="imdb"))
    seq_before = {item["key"]: item["seq"] for item in db.catalog_items.find({}, {"key": 1, "seq": 1})}

    status = await wait_finished(
        api, auth, await upload_ok(api, auth, RATINGS, dataset="imdb", mode="merge", key="tconst")
    )

    assert (status["status"], status["rows_updated"], status["rows_unmatched"], status["rows_inserted"]) == (
        "Success",
        2,
        1,
        0,
    )
    rows = {item["key"]: item["row"] for item in db.catalog_items.find({"dataset": "imdb"})}
    assert list(rows["tt0000003"]) == [
        "tconst",
        "titleType",
        "primaryTitle",
        "startYear",
        "runtimeMinutes",
        "averageRating",
        "numVotes",
    ]
    assert (rows["tt0000003"]["averageRating"], rows["tt0000003"]["numVotes"]) == (6.5, 1900)
    assert "averageRating" not in rows["tt0000002"]
    assert "tt9999999" not in rows
    assert {item["key"]: item["seq"] for item in db.catalog_items.find({}, {"key": 1, "seq": 1})} == seq_before
    assert audit(db, "imdb") == []
    columns = dict(
        (name, count)
        for chunk in db.catalog_block_summaries.find({"dataset": "imdb"})
        for entry in chunk["entries"]
        for name, count in entry["c"]
    )
    assert (columns["averageRating"], columns["tconst"]) == (2, 3)


async def test_merge_into_a_dataset_that_does_not_exist_is_a_400(api, auth, db):
    response = await upload(api, auth, RATINGS, dataset="nothing-here", mode="merge")

    assert response.status == 400
    assert (await response.json())["details"][0]["field"] == "mode"
    assert leftovers(db) == {"import_jobs": 0, "uploads.files": 0, "uploads.chunks": 0}


@pytest.mark.parametrize("dataset", ["mine", "default"])
async def test_the_worker_creates_a_missing_dataset_as_its_upload_did(api, auth, db, dataset):
    task_id = await upload_ok(api, auth, FILMS, dataset=dataset)
    by_upload = db[DATASETS].find_one_and_delete({"_id": dataset})
    assert (by_upload["owner"] is None) == (dataset == "default")
    assert (by_upload["owner_username"] is None) == (dataset == "default")

    import_storage.ensure_dataset(db, db.import_jobs.find_one({"_id": task_id}), by_upload["created_at"])
    assert db[DATASETS].find_one({"_id": dataset}) == by_upload
