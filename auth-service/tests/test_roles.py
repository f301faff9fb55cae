"""Roles: what a sign-up gets, what tokens carry, and the admins' user management."""

import logging

import jwt
import pytest

from catalog_testkit.accounts import mint_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def roles_in(token: str) -> list[str]:
    return jwt.decode(token, options={"verify_signature": False})["roles"]


@pytest.fixture
def sign_up(client, new_user, mongo_db):
    """Signs up and logs in a user with ``roles`` (set in the store, as an admin would)."""

    async def make(*roles: str) -> dict:
        user = new_user()
        created = (await (await client.post("/signup", json=user)).json())["user"]
        if roles:
            mongo_db.users.update_one({"_id": created["id"]}, {"$set": {"roles": list(roles)}})
        tokens = await login(client, user)
        assert tokens.status == 200, await tokens.text()
        return {**user, **created, **(await tokens.json())}

    return make


async def login(client, user):
    return await client.post("/login", json={"username": user["username"], "password": user["password"]})


async def test_a_development_signup_is_an_editor_and_its_token_says_so(sign_up):
    account = await sign_up()
    assert account["roles"] == ["editor"]
    assert roles_in(account["access_token"]) == ["editor"]


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
async def test_the_signup_role_is_the_configured_one(start_client, make_settings, new_user, role):
    client = await start_client(make_settings(signup_role_setting=role))
    user = new_user()
    assert (await (await client.post("/signup", json=user)).json())["user"]["roles"] == [role]
    assert roles_in((await (await login(client, user)).json())["access_token"]) == [role]


async def test_a_user_stored_before_roles_existed_gets_the_signup_role(start_client, make_settings, new_user, mongo_db):
    client = await start_client(make_settings())
    user = new_user()
    created = (await (await client.post("/signup", json=user)).json())["user"]
    mongo_db.users.update_one({"_id": created["id"]}, {"$unset": {"roles": "", "disabled": ""}})
    tokens = await (await login(client, user)).json()
    assert roles_in(tokens["access_token"]) == ["editor"]
    me = await (await client.get("/me", headers=bearer(tokens["access_token"]))).json()
    assert me["roles"] == ["editor"]

    # Where sign-ups are viewers (production's default), so are such users: nothing written back.
    viewer_client = await start_client(make_settings(signup_role_setting="viewer"))
    tokens = await (await login(viewer_client, user)).json()
    assert roles_in(tokens["access_token"]) == ["viewer"]
    assert "roles" not in mongo_db.users.find_one({"_id": created["id"]})


async def test_viewers_and_editors_may_not_manage_users(client, sign_up):
    for role in ("viewer", "editor"):
        account = await sign_up(role)
        headers = bearer(account["access_token"])
        listing = await client.get("/users", headers=headers)
        assert listing.status == 403
        assert await listing.json() == {"error": "Forbidden: this needs the admin role"}
        change = await client.patch(f"/users/{account['id']}", json={"roles": ["admin"]}, headers=headers)
        assert change.status == 403
    assert (await client.get("/users")).status == 401


async def test_a_forged_admin_claim_for_a_user_who_is_not_one_manages_no_one(client, sign_up, signing_key):
    # A token that says admin, for an account that is not (or no longer) one: the store has the last word.
    editor = await sign_up("editor")
    token = mint_token(signing_key, sub=editor["id"], username=editor["username"], roles=["admin"])
    response = await client.get("/users", headers=bearer(token))
    assert response.status == 403


async def test_an_admin_lists_users_a_page_at_a_time(client, sign_up):
    admin = await sign_up("admin")
    others = [await sign_up() for _ in range(2)]
    headers = bearer(admin["access_token"])

    response = await client.get("/users", params={"limit": 2}, headers=headers)
    assert response.status == 200
    assert response.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in response.headers["Link"]
    first = await response.json()
    rest = await (await client.get("/users", params={"limit": 2, "offset": 2}, headers=headers)).json()
    usernames = [admin["username"], *(other["username"] for other in others)]
    assert [u["username"] for u in first + rest] == sorted(usernames)
    assert set(first[0]) == {"id", "username", "email", "roles", "disabled", "created_at"}
    listed = {u["username"]: u for u in first + rest}
    assert (listed[admin["username"]]["roles"], listed[admin["username"]]["disabled"]) == (["admin"], False)
    assert listed[others[0]["username"]]["roles"] == ["editor"]

    bad = await client.get("/users", params={"limit": 101}, headers=headers)
    assert bad.status == 400
    assert (await bad.json())["details"][0]["field"] == "limit"


async def test_a_demoted_editor_cannot_refresh_and_its_next_token_carries_the_new_role(client, sign_up):
    admin, editor = await sign_up("admin"), await sign_up()
    response = await client.patch(
        f"/users/{editor['id']}", json={"roles": ["viewer"]}, headers=bearer(admin["access_token"])
    )
    assert response.status == 200
    assert (await response.json())["roles"] == ["viewer"]

    refused = await client.post("/token/refresh", json={"refresh_token": editor["refresh_token"]})
    assert refused.status == 401
    tokens = await (await login(client, editor)).json()
    assert roles_in(tokens["access_token"]) == ["viewer"]


async def test_a_promotion_keeps_the_session_and_the_next_refresh_carries_it(client, sign_up):
    admin, viewer = await sign_up("admin"), await sign_up("viewer")
    await client.patch(f"/users/{viewer['id']}", json={"roles": ["editor"]}, headers=bearer(admin["access_token"]))
    refreshed = await client.post("/token/refresh", json={"refresh_token": viewer["refresh_token"]})
    assert refreshed.status == 200
    assert roles_in((await refreshed.json())["access_token"]) == ["editor"]


async def test_a_disabled_user_cannot_log_in_refresh_or_read_its_account(client, sign_up):
    admin, user = await sign_up("admin"), await sign_up()
    response = await client.patch(
        f"/users/{user['id']}", json={"disabled": True}, headers=bearer(admin["access_token"])
    )
    assert response.status == 200
    assert (await response.json())["disabled"] is True

    assert (await client.post("/token/refresh", json={"refresh_token": user["refresh_token"]})).status == 401
    assert (await client.get("/me", headers=bearer(user["access_token"]))).status == 401
    refused = await login(client, user)
    assert refused.status == 403
    assert await refused.json() == {"error": "This account is disabled"}
    # Whoever does not know the password learns nothing about the account.
    wrong = await client.post("/login", json={"username": user["username"], "password": "not the password"})
    assert wrong.status == 401

    enabled = await client.patch(
        f"/users/{user['id']}", json={"disabled": False}, headers=bearer(admin["access_token"])
    )
    assert (await enabled.json())["disabled"] is False
    assert (await login(client, user)).status == 200


async def test_a_disabled_users_refresh_is_refused_even_if_its_tokens_survived(client, sign_up, mongo_db):
    user = await sign_up()
    mongo_db.users.update_one({"_id": user["id"]}, {"$set": {"disabled": True}})
    assert (await client.post("/token/refresh", json={"refresh_token": user["refresh_token"]})).status == 401


async def test_a_demoted_admin_manages_no_one_at_once(client, sign_up):
    first, second = await sign_up("admin"), await sign_up("admin")
    await client.patch(f"/users/{second['id']}", json={"roles": ["editor"]}, headers=bearer(first["access_token"]))
    # Its access token still says admin, for at most its lifetime; the auth service checks the store.
    assert roles_in(second["access_token"]) == ["admin"]
    assert (await client.get("/users", headers=bearer(second["access_token"]))).status == 403


async def test_an_admin_cannot_demote_or_disable_itself(client, sign_up):
    admin = await sign_up("admin")
    headers = bearer(admin["access_token"])
    for body in ({"roles": ["editor"]}, {"disabled": True}):
        response = await client.patch(f"/users/{admin['id']}", json=body, headers=headers)
        assert response.status == 409
        assert await response.json() == {
            "error": "An admin cannot remove its own admin role or disable its own account"
        }
    assert (await client.post("/token/refresh", json={"refresh_token": admin["refresh_token"]})).status == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"roles": None, "disabled": True}, "roles"),
        ({"disabled": None}, "disabled"),
        ({"roles": []}, "roles"),
        ({"roles": ["owner"]}, "roles.0"),
        ({"roles": "admin"}, "roles"),
        ({"roles": [{"$ne": None}]}, "roles.0"),
        ({"disabled": "true"}, "disabled"),
        ({"disabled": 1}, "disabled"),
        ({"role": "admin"}, "role"),
    ],
)
async def test_bad_changes_are_400_naming_the_field(client, sign_up, body, field):
    admin, user = await sign_up("admin"), await sign_up()
    response = await client.patch(f"/users/{user['id']}", json=body, headers=bearer(admin["access_token"]))
    assert response.status == 400
    assert field in [detail["field"] for detail in (await response.json())["details"]]


async def test_an_unknown_or_malformed_user_id(client, sign_up):
    admin = await sign_up("admin")
    headers = bearer(admin["access_token"])
    missing = await client.patch(
        "/users/00000000-0000-4000-8000-000000000000", json={"disabled": True}, headers=headers
    )
    assert (missing.status, await missing.json()) == (404, {"error": "No such user"})
    malformed = await client.patch("/users/not-a-uuid", json={"disabled": True}, headers=headers)
    assert (malformed.status, await malformed.json()) == (400, {"error": "Malformed user id: expected a UUID"})


async def test_open_signup_in_production_is_logged_as_a_warning(make_settings, start_client, caplog):
    with caplog.at_level(logging.WARNING):
        await start_client(
            make_settings(
                environment="production",
                signup_role_setting="editor",
                allow_open_signup=True,
                mongo_url=make_settings().mongo_url,
            )
        )
    assert "Open sign-up" in caplog.text
