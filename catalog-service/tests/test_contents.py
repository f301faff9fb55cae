"""GET /contents/{id}: one item, or 404."""


async def test_an_item_by_its_id(client, catalog):
    response = await client.get("/contents/s7")

    assert response.status == 200
    assert await response.json() == {**catalog[7]["row"], "id": "s7"}


async def test_an_id_may_contain_a_slash(client, catalog):
    response = await client.get("/contents/x/11")

    assert (await response.json())["id"] == "x/11"


async def test_an_unknown_id_is_a_404_in_the_json_error_shape(client):
    response = await client.get("/contents/nope")

    assert response.status == 404
    assert await response.json() == {"error": "No catalog item with this id"}


async def test_an_id_is_never_a_query_operator(client):
    response = await client.get("/contents/%7B%22%24ne%22%3A%20null%7D")

    assert response.status == 404
