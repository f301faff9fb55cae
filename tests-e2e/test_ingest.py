"""Uploads through the gateway, imported by the real worker from the Procfile."""

import gzip
import io
import json
import uuid

import requests
from helpers import signup_and_login, wait_finished


def test_the_seed_upload_curl_ends_in_success_with_50_rows(stack, auth_headers, seed_csv):
    # The seed's curl, plus the token: curl -H 'Authorization: Bearer ...' --form 'file=@"movies.csv"' .../upload_csv
    with seed_csv.open("rb") as file:
        response = requests.post(f"{stack.url}/upload_csv", headers=auth_headers, files={"file": file}, timeout=30)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["message"] == "CSV upload processing started"
    assert response.headers.get("X-Request-ID")

    status = wait_finished(stack.url, auth_headers, body["task_id"])
    assert status["status"] == "Success", status
    assert status["progress"] == 100
    assert (status["rows_processed"], status["rows_failed"]) == (50, 0)
    assert status["rows_inserted"] + status["rows_duplicate"] + status["rows_updated"] == 50
    assert status["filename"] == seed_csv.name

    listed = requests.get(f"{stack.url}/uploads", headers=auth_headers, params={"limit": 5}, timeout=10)
    assert listed.status_code == 200
    assert [job["task_id"] for job in listed.json()] == [body["task_id"]]
    assert listed.headers["X-Total-Count"] == "1"
    # Absolute links, as the client reached the gateway, as /get_content gives them.
    page = f"{stack.url}/uploads?limit=5"
    assert listed.headers["Link"] == f'<{page}&offset=1>; rel="first", <{page}&offset=1>; rel="last"'


def test_uploads_need_a_token_and_jobs_stay_private(stack, auth_headers, seed_csv):
    with seed_csv.open("rb") as file:
        anonymous = requests.post(f"{stack.url}/upload_csv", files={"file": file}, timeout=30)
    assert anonymous.status_code == 401
    assert "error" in anonymous.json()

    with seed_csv.open("rb") as file:
        task_id = requests.post(
            f"{stack.url}/upload_csv", headers=auth_headers, files={"file": file}, timeout=30
        ).json()["task_id"]
    stranger = signup_and_login(stack.url)
    assert requests.get(f"{stack.url}/fetch_csv_status/{task_id}", headers=stranger, timeout=10).status_code == 404
    unknown = requests.get(f"{stack.url}/fetch_csv_status/{uuid.uuid4()}", headers=auth_headers, timeout=10)
    assert unknown.status_code == 404
    malformed = requests.get(f"{stack.url}/fetch_csv_status/not-a-task", headers=auth_headers, timeout=10)
    assert malformed.status_code == 400
    assert wait_finished(stack.url, auth_headers, task_id)["status"] == "Success"


def test_a_binary_file_is_refused_through_the_gateway(stack, auth_headers):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    response = requests.post(
        f"{stack.url}/upload_csv", headers=auth_headers, files={"file": ("cover.png", png)}, timeout=30
    )
    assert response.status_code == 400
    assert response.json() == {"error": "The file is not text: it contains NUL bytes"}


def test_imdb_basics_then_ratings_merged_import_sort_and_filter_through_the_gateway(stack, auth_headers):
    # IMDB's title.basics.tsv.gz layout: gzip, tabs, quotes as plain characters, \N for a missing value.
    run = uuid.uuid4().hex[:8]
    dataset = f"imdb-{run}"
    basics = [
        "tconst\ttitleType\tprimaryTitle\tstartYear\truntimeMinutes",
        f'tt{run}1\tmovie\t"Unbalanced title\t1994\t142',
        f'tt{run}2\tmovie\t"Rolling in the Deep Dish"\t\\N\t\\N',
        f'tt{run}3\ttvSeries\tThe "Inner" Quote\t1994\t\\N',
    ]
    ratings = ["tconst\taverageRating\tnumVotes", f"tt{run}3\t8.5\t40", f"tt{run}1\t10.0\t7", "tt0000000\t1.0\t1"]

    def upload(lines: list[str], name: str, **fields: str) -> dict:
        content = gzip.compress(("\n".join(lines) + "\n").encode())
        files = {"file": (name, io.BytesIO(content), "application/gzip")}
        response = requests.post(
            f"{stack.url}/upload_csv",
            headers=auth_headers,
            files=files,
            data={"dataset": dataset, **fields},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        return wait_finished(stack.url, auth_headers, response.json()["task_id"])

    status = upload(basics, "title.basics.tsv.gz")
    assert (status["status"], status["rows_inserted"], status["rows_failed"]) == ("Success", 3, 0), status
    assert (status["compression"], status["quoting"], status["null_markers"]) == ("gzip", "none", ["\\N"])

    def found(**params: str) -> list[dict]:
        page = requests.get(f"{stack.url}/get_content", params={"dataset": dataset, "limit": 100, **params}, timeout=10)
        assert page.status_code == 200, page.text
        return page.json()

    films_of_1994 = {item["tconst"]: item for item in found(**{"filter[startYear]": "1994"})}
    assert set(films_of_1994) == {f"tt{run}1", f"tt{run}3"}
    first = films_of_1994[f"tt{run}1"]
    assert (first["primaryTitle"], first["startYear"], first["runtimeMinutes"]) == ('"Unbalanced title', 1994, 142)
    assert films_of_1994[f"tt{run}3"]["primaryTitle"] == 'The "Inner" Quote'
    assert films_of_1994[f"tt{run}3"]["runtimeMinutes"] is None
    wrapped = {item["tconst"]: item for item in found(**{"filter[titleType]": "movie", "filter[startYear]": ""})}
    assert (wrapped[f"tt{run}2"]["primaryTitle"], wrapped[f"tt{run}2"]["startYear"]) == (
        '"Rolling in the Deep Dish"',
        None,
    )

    merged = upload(ratings, "title.ratings.tsv.gz", mode="merge", key="tconst")
    assert (merged["status"], merged["rows_updated"], merged["rows_unmatched"], merged["rows_inserted"]) == (
        "Success",
        2,
        1,
        0,
    )
    best_first = [item["tconst"] for item in found(sort="-averageRating")]
    # Numbers sort as numbers (10.0 above 8.5); the film without a rating, null, comes last.
    assert best_first == [f"tt{run}1", f"tt{run}3", f"tt{run}2"]
    assert found(**{"filter[startYear]": "1994", "sort": "tconst"})[0]["averageRating"] == 10.0
    listed = requests.get(f"{stack.url}/datasets/{dataset}", timeout=10).json()
    assert (listed["key"], listed["items"]) == ("tconst", 3)
    assert {column["name"]: column["items"] for column in listed["columns"]}["averageRating"] == 2

    # Facets and the export read the merge as soon as it reads Success.
    facets = requests.get(
        f"{stack.url}/datasets/{dataset}/facets", params={"facet": ["titleType", "averageRating"]}, timeout=10
    ).json()
    assert facets["total"] == 3
    assert facets["facets"][0]["values"] == [{"value": "movie", "count": 2}, {"value": "tvSeries", "count": 1}]
    assert (facets["facets"][1]["nulls"], facets["facets"][1]["distinct"]) == (1, 2)
    exported = requests.get(
        f"{stack.url}/datasets/{dataset}/export", params={"format": "ndjson", "sort": "-averageRating"}, timeout=10
    )
    assert [json.loads(line)["tconst"] for line in exported.text.splitlines()] == best_first
    # The CSV export goes back in through our own upload as the same rows.
    csv_export = requests.get(f"{stack.url}/datasets/{dataset}/export", timeout=10)
    assert csv_export.headers["Content-Disposition"] == f'attachment; filename="{dataset}.csv"'
    copy = f"{dataset}-copy"
    response = requests.post(
        f"{stack.url}/upload_csv",
        headers=auth_headers,
        files={"file": ("copy.csv", io.BytesIO(csv_export.content), "text/csv")},
        data={"dataset": copy, "key": "tconst"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    assert wait_finished(stack.url, auth_headers, response.json()["task_id"])["status"] == "Success"
    again = requests.get(f"{stack.url}/get_content", params={"dataset": copy, "sort": "-averageRating"}, timeout=10)
    # A CSV cell cannot tell a column an item lacks (the merge never reached it) from an empty one: both read null.
    columns = dict.fromkeys(again.json()[0])
    assert again.json() == [{**columns, **item} for item in found(sort="-averageRating")]
