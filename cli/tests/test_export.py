"""export: every matching row of a dataset, streamed to stdout or to a file, as the API sends it."""

import csv
import io
import json

import httpx
import pytest
import requests
from catalog_cli.client import ApiError, CatalogClient


def api_items(base_url: str, **params) -> list[dict]:
    """Every matching item, walked by cursor: another road than the export."""
    items, query = [], {"limit": 100, **params}
    while True:
        response = requests.get(f"{base_url}/get_content", params=query, timeout=10)
        assert response.status_code == 200, response.text
        items += response.json()
        if "X-Next-Cursor" not in response.headers:
            return items
        query = {**query, "cursor": response.headers["X-Next-Cursor"]}


def test_export_streams_every_matching_row_as_the_api_sends_it(catalogctl, seeded, tmp_path):
    sent = requests.get(f"{seeded}/datasets/default/export", timeout=30)
    assert sent.status_code == 200, sent.text
    result = catalogctl("export")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == sent.text
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(api_items(seeded)) >= 50
    assert {"show_id", "title", "release_year", "description"} <= set(rows[0])

    out = tmp_path / "movies.ndjson"
    options = ("--type", "Movie", "--filter", "release_year>=1990", "--sort", "-release_year")
    result = catalogctl("export", "--format", "ndjson", *options, "-o", str(out))
    assert (result.exit_code, result.stdout) == (0, ""), result.stderr
    assert result.stderr == f"Wrote {out.stat().st_size:,} bytes to {out}\n"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    expected = api_items(seeded, type="Movie", sort="-release_year", **{"filter[release_year][gte]": "1990"})
    assert lines == expected and lines
    assert list(tmp_path.iterdir()) == [out]  # no partial file left behind


def test_export_errors_exit_1_from_the_api_and_2_for_bad_usage_leaving_no_file(catalogctl, seeded, tmp_path):
    out = tmp_path / "x.csv"
    for options, exit_code, message in [
        (("--dataset", "no-such-dataset"), 1, "No such dataset [HTTP 404]"),
        (("--sort", "no such column"), 1, "sort"),
        (("--filter", "title"), 2, "'title' is not COLUMN=VALUE"),
        (("--format", "xml"), 2, "'xml' is not one of"),
    ]:
        result = catalogctl("export", *options, "-o", str(out))
        assert result.exit_code == exit_code, (options, result.stderr)
        assert message in result.stderr, (options, result.stderr)
        assert list(tmp_path.iterdir()) == [], options


class _CutShort(httpx.SyncByteStream):
    """An answer whose server closes the connection after its first rows (its time budget ran out)."""

    def __iter__(self):
        yield b"id,title\n1,One\n"
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_an_export_cut_short_is_an_error_never_a_quietly_short_file():
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/datasets/films/export"
        assert request.url.params["format"] == "csv"
        return httpx.Response(200, headers={"Content-Type": "text/csv"}, stream=_CutShort())

    out = io.BytesIO()
    client = CatalogClient("http://catalog.test", transport=httpx.MockTransport(answer))
    with client, pytest.raises(ApiError, match="The export was cut short after 15 bytes"):
        client.export("films", {"format": "csv"}, out)
    assert out.getvalue() == b"id,title\n1,One\n"


def test_the_dataset_list_follows_its_pages_to_the_end():
    pages = {"1": ([{"name": "a"}, {"name": "b"}], "2"), "2": ([{"name": "c"}], None)}

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/datasets"
        page = request.url.params.get("offset", "1")
        items, following = pages[page]
        link = f'<http://catalog.test/datasets?limit=2&offset={following}>; rel="next"' if following else ""
        return httpx.Response(200, json=items, headers={"X-Total-Count": "3", "Link": link})

    with CatalogClient("http://catalog.test", transport=httpx.MockTransport(answer)) as client:
        assert [d["name"] for d in client.datasets()] == ["a", "b", "c"]
