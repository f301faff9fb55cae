import asyncio

import pytest


async def test_signup_creates_user_and_hides_the_password(client, new_user, mongo_db):
    user = new_user()
    response = await client.post("/signup", json=user)
    assert response.status == 201
    body = await response.json()
    assert body["message"] == "User created successfully"
    assert set(body["user"]) == {"id", "username", "email", "roles", "created_at"}
    # Outside production a sign-up may import, as in the seed's signup -> login -> upload flow.
    assert body["user"]["roles"] == ["editor"]
    assert body["user"]["username"] == user["username"]
    assert body["user"]["email"] == user["email"]
    assert "password" not in await response.text()

    stored = mongo_db.users.find_one({"_id": body["user"]["id"]})
    assert stored["password_hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert user["password"] not in stored["password_hash"]


async def test_the_seed_signup_request_still_works(client):
    response = await client.post(
        "/signup",
        json={"username": "sangamesh", "email": "sangameshkulkarni26@gmail.com", "password": "password"},
    )
    assert response.status == 201
    assert (await response.json())["message"] == "User created successfully"


@pytest.mark.parametrize(
    ("second", "error"),
    [
        ({"username": "ALICE", "email": "other@example.com"}, "Username already exists"),
        ({"username": "bob", "email": "Alice@EXAMPLE.com"}, "Email already registered"),
    ],
)
async def test_duplicates_are_refused_case_insensitively(client, second, error):
    first = {"username": "alice", "email": "alice@example.com", "password": "password123"}
    assert (await client.post("/signup", json=first)).status == 201
    response = await client.post("/signup", json={**first, **second})
    assert response.status == 409
    assert await response.json() == {"error": error}


async def test_fifty_concurrent_signups_of_one_name_create_exactly_one_user(client, mongo_db):
    async def attempt(i: int) -> int:
        body = {"username": "Racer" if i % 2 else "racer", "email": f"racer{i}@example.com", "password": "password123"}
        response = await client.post("/signup", json=body)
        return response.status

    statuses = await asyncio.gather(*(attempt(i) for i in range(50)))
    assert statuses.count(201) == 1
    assert statuses.count(409) == 49
    assert mongo_db.users.count_documents({}) == 1


VALID = {"username": "valid_user", "email": "valid@example.com", "password": "password123"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**VALID, "username": "ab"}, "username"),
        ({**VALID, "username": "a" * 33}, "username"),
        ({**VALID, "username": "_leading"}, "username"),
        ({**VALID, "username": "has space"}, "username"),
        ({**VALID, "username": "bad@name"}, "username"),
        ({**VALID, "email": "not-an-email"}, "email"),
        ({**VALID, "email": "a@b"}, "email"),
        ({**VALID, "password": "short"}, "password"),
        ({**VALID, "password": "x" * 129}, "password"),
        ({"email": VALID["email"], "password": VALID["password"]}, "username"),
        ({"username": VALID["username"], "password": VALID["password"]}, "email"),
        ({"username": VALID["username"], "email": VALID["email"]}, "password"),
        ({**VALID, "username": 12345}, "username"),
        ({**VALID, "email": ["a@example.com"]}, "email"),
        ({**VALID, "password": {"$ne": None}}, "password"),
        ({**VALID, "username": None}, "username"),
        ({**VALID, "password": 12345678}, "password"),
    ],
)
async def test_invalid_fields_are_named_in_a_400(client, body, field, mongo_db):
    response = await client.post("/signup", json=body)
    assert response.status == 400
    payload = await response.json()
    assert field in payload["error"]
    assert any(detail["field"] == field for detail in payload["details"])
    assert mongo_db.users.count_documents({}) == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error"),
    [
        (b'{"username": "x",', "application/json", 400, "Request body is not valid JSON"),
        (b'["a", "b"]', "application/json", 400, "Request body must be a JSON object"),
        (b'"just a string"', "application/json", 400, "Request body must be a JSON object"),
        (b"null", "application/json", 400, "Request body must be a JSON object"),
        (b'{"username": "\xff\xfe"}', "application/json", 400, "Request body is not valid UTF-8"),
        (b"username=a&password=b", "application/x-www-form-urlencoded", 415, "Content-Type must be application/json"),
        (b'{"username": "a"}', "text/plain", 415, "Content-Type must be application/json"),
        (b"[" * 60_000, "application/json", 400, "Request body is nested too deeply"),
        (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, "application/json", 400, "Request body is nested too deeply"),
    ],
)
async def test_unreadable_bodies_get_a_clear_error(client, data, content_type, status, error):
    response = await client.post("/signup", data=data, headers={"Content-Type": content_type})
    assert response.status == status
    assert await response.json() == {"error": error}


async def test_a_body_over_64_kib_is_refused_with_413(client):
    body = b'{"username": "' + b"a" * (65 * 1024) + b'"}'
    response = await client.post("/signup", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert "too large" in (await response.json())["error"]


async def test_wrong_method_and_unknown_path_are_json(client):
    response = await client.get("/signup")
    assert response.status == 405
    assert await response.json() == {"error": "Method not allowed"}
    response = await client.get("/nope")
    assert response.status == 404
    assert await response.json() == {"error": "Not found"}
