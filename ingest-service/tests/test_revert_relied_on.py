"""A revert never removes a row another import relied on: found as a duplicate, updated, or merged."""

from catalog_testkit.constants import SEED_CSV
from catalog_testkit.files import movies_csv

from .helpers import assert_exact, dataset_counts, upload_ok, wait_finished, wait_until


def reverted(status: dict) -> bool:
    return status["status"] == "Reverted"


async def revert(api, auth, task_id: str) -> dict:
    response = await api.post(f"/uploads/{task_id}/revert", headers=auth)
    assert response.status == 202, await response.text()
    status, _ = await wait_until(api, auth, task_id, reverted)
    return status


async def test_reverting_an_import_keeps_the_rows_a_later_insert_found_as_duplicates(api, auth, db, start_worker):
    start_worker()
    seed = SEED_CSV.read_bytes()
    first = await upload_ok(api, auth, seed, dataset="d")
    assert (await wait_finished(api, auth, first))["rows_inserted"] == 50
    second = await wait_finished(api, auth, await upload_ok(api, auth, seed, dataset="d"))
    assert (second["status"], second["rows_inserted"], second["rows_duplicate"]) == ("Success", 0, 50)

    status = await revert(api, auth, first)
    # The second import says its 50 rows were already there: they still are.
    assert (status["rows_reverted"], status["rows_kept"]) == (0, 50)
    assert dataset_counts(db, "d")[0] == 50
    assert db.catalog_items.count_documents({"dataset": "d"}) == 50
    assert_exact(db, "d")


async def test_a_merge_counts_as_updated_only_the_rows_it_changed_and_a_revert_keeps_all_it_matched(
    api, auth, other_auth, db, start_worker
):
    start_worker()
    created = await upload_ok(api, auth, movies_csv(10))
    assert (await wait_finished(api, auth, created))["rows_inserted"] == 10
    # Rows 0-4 exactly as stored; rows 5-9 with a new title.
    merged_file = movies_csv(range(5)) + b"".join(
        movies_csv(range(5, 10)).replace(b",Title s", b",New title s").splitlines(keepends=True)[1:]
    )
    merge = await wait_finished(api, other_auth, await upload_ok(api, other_auth, merged_file, mode="merge"))
    assert (merge["status"], merge["rows_updated"], merge["rows_duplicate"], merge["rows_unmatched"]) == (
        "Success",
        5,
        5,
        0,
    )

    status = await revert(api, auth, created)
    assert (status["rows_reverted"], status["rows_kept"]) == (0, 10)
    titles = {item["key"]: item["row"]["title"] for item in db.catalog_items.find({}, {"key": 1, "row.title": 1})}
    assert titles == {f"s{n}": f"{'New title' if n >= 5 else 'Title'} s{n}" for n in range(10)}
    assert_exact(db)
