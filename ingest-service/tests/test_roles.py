"""Who may import: a viewer may not upload or cancel; an editor acts on its own jobs only; an admin on anyone's."""

import pytest

from catalog_testkit.accounts import mint_token
from catalog_testkit.files import movies_csv
from catalog_testkit.store import leftovers

from .helpers import job_status, upload, upload_ok

NEEDS_EDITOR = {"error": "Forbidden: this needs the editor role"}


async def test_a_viewer_cannot_upload_and_nothing_is_stored(api, viewer_auth, db):
    response = await upload(api, viewer_auth, movies_csv(3))
    assert response.status == 403
    assert await response.json() == NEEDS_EDITOR
    assert leftovers(db) == {"import_jobs": 0, "uploads.files": 0, "uploads.chunks": 0}


@pytest.mark.parametrize("roles", [None, [], ["reader"]], ids=["no roles claim", "no roles", "an unknown role"])
async def test_a_token_without_a_writing_role_cannot_upload(api, signing_key, db, roles):
    # A token issued before roles existed carries no claim: it reads, but writes nothing until renewed.
    headers = {"Authorization": f"Bearer {mint_token(signing_key, roles=roles)}"}
    response = await upload(api, headers, movies_csv(1))
    assert response.status == 403
    assert await response.json() == NEEDS_EDITOR
    assert (await api.get("/uploads", headers=headers)).status == 200


async def test_a_roles_claim_that_is_not_a_list_of_names_is_an_invalid_token(api, signing_key):
    headers = {"Authorization": f"Bearer {mint_token(signing_key, roles='admin')}"}
    response = await api.get("/uploads", headers=headers)
    assert response.status == 401
    assert await response.json() == {"error": "Invalid or expired token"}


async def test_a_viewer_cannot_cancel_even_a_job_it_can_read(api, auth, viewer_auth, signing_key):
    task_id = await upload_ok(api, auth, movies_csv(3))
    response = await api.delete(f"/uploads/{task_id}", headers=viewer_auth)
    assert response.status == 403
    assert await response.json() == NEEDS_EDITOR
    # An editor demoted to viewer still reads its own jobs, and still cannot cancel them.
    demoted = {"Authorization": f"Bearer {mint_token(signing_key, sub='user-1', roles=['viewer'])}"}
    assert (await job_status(api, demoted, task_id))["status"] == "Pending"
    assert (await api.delete(f"/uploads/{task_id}", headers=demoted)).status == 403
    assert (await job_status(api, auth, task_id))["status"] == "Pending"


async def test_an_editor_cannot_cancel_another_users_job(api, auth, other_auth):
    task_id = await upload_ok(api, auth, movies_csv(3))
    response = await api.delete(f"/uploads/{task_id}", headers=other_auth)
    assert response.status == 404
    assert await response.json() == {"error": "No such upload"}
    assert (await job_status(api, auth, task_id))["status"] == "Pending"


async def test_an_admin_reads_and_cancels_anyones_job(api, auth, admin_auth, db):
    task_id = await upload_ok(api, auth, movies_csv(3))
    status = await job_status(api, admin_auth, task_id)
    assert (status["task_id"], status["owner"]) == (task_id, "user-1")

    response = await api.delete(f"/uploads/{task_id}", headers=admin_auth)
    assert response.status == 200
    assert (await response.json())["status"] == "Cancelled"
    assert (await job_status(api, auth, task_id))["status"] == "Cancelled"
    assert db["uploads.files"].count_documents({"_id": task_id}) == 0
    again = await api.delete(f"/uploads/{task_id}", headers=admin_auth)
    assert again.status == 409


async def test_an_admin_lists_everyones_jobs_with_their_owner(api, auth, other_auth, admin_auth):
    first = await upload_ok(api, auth, movies_csv(1))
    second = await upload_ok(api, other_auth, movies_csv(1))
    own = await upload_ok(api, admin_auth, movies_csv(1))

    response = await api.get("/uploads", headers=admin_auth, params={"limit": 2})
    assert response.status == 200
    assert response.headers["X-Total-Count"] == "3"
    page = await response.json()
    assert [(job["task_id"], job["owner"]) for job in page] == [(own, "admin-1"), (second, "user-2")]
    assert 'rel="next"' in response.headers["Link"]
    rest = await (await api.get("/uploads", headers=admin_auth, params={"limit": 2, "offset": 2})).json()
    assert [(job["task_id"], job["owner"]) for job in rest] == [(first, "user-1")]

    # An editor still sees only its own.
    mine = await api.get("/uploads", headers=auth)
    assert mine.headers["X-Total-Count"] == "1"
    assert [job["task_id"] for job in await mine.json()] == [first]
