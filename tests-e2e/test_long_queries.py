"""Long query strings and long values through the gateway: an answer or a clear refusal, never a 502."""

import uuid

import requests
from helpers import import_file

from catalog_testkit.constants import SEED_CSV


def test_a_long_filter_value_is_answered_and_an_over_long_query_is_a_414(stack, auth_headers):
    dataset = f"long-{uuid.uuid4().hex[:8]}"
    import_file(stack.url, auth_headers, SEED_CSV, dataset=dataset)
    # Seven filters of 1,000 characters (each within its own limit): near nginx's 8k request line, and
    # repeated in each URL of the page's Link header.
    columns = ("title", "director", "cast", "country", "rating", "duration", "description")
    filters = {f"filter[{column}][ne]": "a" * 1_000 for column in columns}
    response = requests.get(f"{stack.url}/datasets/{dataset}/contents", params={**filters, "limit": 1}, timeout=30)
    assert response.status_code == 200, response.text
    assert len(response.json()) == 1
    assert set(response.links) >= {"first", "next", "last"}
    assert len(response.headers["Link"]) > 3 * 7_000

    too_long = requests.get(f"{stack.url}/datasets/{dataset}/contents", params={"title": "a" * 20_000}, timeout=30)
    assert too_long.status_code == 414
    assert too_long.json() == {"error": "Request URI too long"}


def test_a_cursor_over_long_titles_walks_the_pages_through_the_gateway(stack, auth_headers, tmp_path):
    dataset = f"long-{uuid.uuid4().hex[:8]}"
    titles = [f"{'Title ' * 500}{n:02d}" for n in range(12)]  # 3,000 characters each
    path = tmp_path / "long.csv"
    path.write_text("id,title\n" + "".join(f"{n},{title}\n" for n, title in enumerate(titles)))
    import_file(stack.url, auth_headers, path, dataset=dataset)
    url: str | None = f"{stack.url}/datasets/{dataset}/contents?sort=-title&limit=5"
    seen: list[str] = []
    while url is not None:
        response = requests.get(url, timeout=30)
        assert response.status_code == 200, response.text
        seen += [item["title"] for item in response.json()]
        url = response.links.get("next", {}).get("url")
    assert seen == sorted(titles, reverse=True)
