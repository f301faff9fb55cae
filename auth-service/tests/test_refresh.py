import pytest
from helpers import signup_and_login


@pytest.fixture
async def session(client, new_user) -> dict:
    return await signup_and_login(client, new_user())


async def refresh(client, token):
    return await client.post("/token/refresh", json={"refresh_token": token})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_login_returns_a_refresh_token_stored_only_as_a_hash(session, mongo_db):
    assert session["refresh_expires_in"] == 14 * 86_400
    stored = list(mongo_db.refresh_tokens.find({"user_id": session["id"]}))
    assert len(stored) == 1
    assert session["refresh_token"] not in str(stored)


async def test_refresh_rotates_and_the_new_access_token_works(client, session):
    response = await refresh(client, session["refresh_token"])
    assert response.status == 200
    body = await response.json()
    assert body["message"] == "Token refreshed"
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"] != session["refresh_token"]
    assert (await client.get("/me", headers=bearer(body["access_token"]))).status == 200


async def test_reusing_a_rotated_token_revokes_the_whole_family(client, session):
    rotated = await (await refresh(client, session["refresh_token"])).json()
    stolen_reuse = await refresh(client, session["refresh_token"])
    assert stolen_reuse.status == 401
    assert await stolen_reuse.json() == {"error": "Invalid or expired refresh token"}
    # The legitimate holder's newer token dies with the family.
    assert (await refresh(client, rotated["refresh_token"])).status == 401


async def test_logout_revokes_the_family(client, session):
    response = await client.post(
        "/logout", json={"refresh_token": session["refresh_token"]}, headers=bearer(session["access_token"])
    )
    assert response.status == 200
    assert await response.json() == {"message": "Logged out"}
    assert (await refresh(client, session["refresh_token"])).status == 401


async def test_logout_needs_the_owner_and_a_known_token(client, session, new_user):
    no_bearer = await client.post("/logout", json={"refresh_token": session["refresh_token"]})
    assert no_bearer.status == 401

    other = new_user()
    await client.post("/signup", json=other)
    other_login = await (
        await client.post("/login", json={"username": other["username"], "password": other["password"]})
    ).json()
    response = await client.post(
        "/logout", json={"refresh_token": session["refresh_token"]}, headers=bearer(other_login["access_token"])
    )
    assert response.status == 400
    # The victim's session is untouched.
    assert (await refresh(client, session["refresh_token"])).status == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"refresh_token": "not-a-real-token"}, 401),
        ({"refresh_token": {"$ne": None}}, 400),
        ({"refresh_token": ""}, 400),
        ({}, 400),
        ({"refresh_token": 42}, 400),
    ],
)
async def test_bad_refresh_requests(client, body, status):
    response = await client.post("/token/refresh", json=body)
    assert response.status == status
    assert "error" in await response.json()


async def test_a_deleted_user_cannot_refresh(client, session, mongo_db):
    mongo_db.users.delete_one({"_id": session["id"]})
    assert (await refresh(client, session["refresh_token"])).status == 401


async def test_a_logout_landing_between_the_spend_and_the_new_token_leaves_no_live_token(
    client, session, mongo_db, monkeypatch
):
    from auth_service import refresh_tokens

    issue = refresh_tokens.issue
    logged_out = []

    async def logout_first(db, user_id, ttl_seconds, family_id=None):
        # The old token is spent; the owner's logout (or a reuse detection) lands before the new one is stored.
        response = await client.post(
            "/logout", json={"refresh_token": session["refresh_token"]}, headers=bearer(session["access_token"])
        )
        logged_out.append(response.status)
        return await issue(db, user_id, ttl_seconds, family_id)

    monkeypatch.setattr(refresh_tokens, "issue", logout_first)
    response = await refresh(client, session["refresh_token"])
    monkeypatch.undo()

    assert logged_out == [200]
    assert response.status == 401
    assert await response.json() == {"error": "Invalid or expired refresh token"}
    assert mongo_db.refresh_tokens.count_documents({"user_id": session["id"], "revoked_at": None}) == 0
