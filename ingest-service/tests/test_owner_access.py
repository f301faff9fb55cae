"""An import stops once its owner may no longer import: account disabled, or demoted below editor."""

import pytest

from catalog_testkit.files import movies_csv

from .helpers import job_status, upload_ok, wait_finished, wait_until


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"disabled": True}, "Cancelled: the owner's account was disabled"),
        ({"roles": ["viewer"]}, "Cancelled: the owner's account no longer has the editor role"),
    ],
)
async def test_a_disabled_or_demoted_users_running_and_queued_imports_stop_at_their_next_batch(
    api, auth, db, start_worker, change, reason
):
    # The account as auth-service stores it; the ``auth`` fixture's token is user-1's.
    db.users.insert_one({"_id": "user-1", "username": "user-1", "roles": ["editor"], "disabled": False})
    rows = 40_000
    running = await upload_ok(api, auth, movies_csv(rows))
    queued = await upload_ok(api, auth, movies_csv(100, prefix="q"))
    start_worker()
    await wait_until(api, auth, running, lambda s: s["rows_processed"] >= 1000, within=60)

    db.users.update_one({"_id": "user-1"}, {"$set": change})
    stopped = await wait_finished(api, auth, running)
    assert (stopped["status"], stopped["error"]) == ("Cancelled", reason)
    assert stopped["rows_processed"] < rows
    assert stopped["rows_inserted"] == db.catalog_items.count_documents({"key": {"$regex": "^s"}})
    never_ran = await wait_finished(api, auth, queued)
    assert (never_ran["status"], never_ran["error"], never_ran["rows_processed"]) == ("Cancelled", reason, 0)
    assert db.catalog_items.count_documents({"key": {"$regex": "^q"}}) == 0
    assert (await job_status(api, auth, running))["status"] == "Cancelled"
