"""content: the catalog page by page or whole, as a table, JSON or CSV, with the API's own filters."""

import csv
import io
import json
import re

import requests


def api_page(base_url: str, **params) -> requests.Response:
    response = requests.get(f"{base_url}/get_content", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response


def api_ids_by_offset(base_url: str, **params) -> list[str]:
    """Every id, walked by the seed's offset pages: another road than the CLI's cursors."""
    ids, page = [], 1
    while items := api_page(base_url, limit=100, offset=page, **params).json():
        ids += [item["id"] for item in items]
        page += 1
    return ids


def test_content_all_returns_every_row_once_in_order(catalogctl, seeded):
    every_id = api_ids_by_offset(seeded)
    assert len(every_id) >= 50

    # A small page size, so that --all has to follow several cursors.
    items = json.loads(catalogctl("content", "--all", "--limit", "7", "--format", "json").stdout)
    assert [item["id"] for item in items] == every_id

    rows = list(csv.DictReader(io.StringIO(catalogctl("content", "--all", "--format", "csv").stdout)))
    assert [row["id"] for row in rows] == every_id
    assert {"show_id", "title", "release_year", "description"} <= set(rows[0])

    movies = json.loads(catalogctl("content", "--all", "--type", "Movie", "--format", "json").stdout)
    assert [item["id"] for item in movies] == api_ids_by_offset(seeded, type="Movie")
    assert movies and all(item["type"] == "Movie" for item in movies)


def test_content_keeps_the_seed_paging_and_hands_out_the_next_cursor(catalogctl, seeded):
    result = catalogctl("content", "--limit", "5", "--offset", "2", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == api_page(seeded, limit=5, offset=2).json()

    table = catalogctl("content", "--limit", "5", "--columns", "id,title,type")
    first_page = api_page(seeded, limit=5)
    total = int(first_page.headers["X-Total-Count"])
    header, *body = table.stdout.splitlines()[0:1] + table.stdout.splitlines()[2:]
    assert header.split() == ["id", "title", "type"]
    assert [line.split()[0] for line in body] == [item["id"] for item in first_page.json()]
    footer = re.fullmatch(r"Items 1-5 of (\d+); next page: --cursor (\S+)\n", table.stderr)
    assert footer and int(footer.group(1)) == total

    following = catalogctl("content", "--limit", "5", "--cursor", footer.group(2), "--format", "json")
    assert json.loads(following.stdout) == api_page(seeded, limit=5, offset=2).json()


def test_content_filters_search_and_sort_like_the_api(catalogctl, seeded):
    for options, params in [
        (("--filter", "country=India"), {"filter[country]": "India"}),
        (("--filter", "release_year=2021", "--type", "TV Show"), {"filter[release_year]": "2021", "type": "TV Show"}),
        (("--q", "the"), {"q": "the"}),
        (("--sort", "-release_year"), {"sort": "-release_year"}),
    ]:
        shown = json.loads(catalogctl("content", *options, "--limit", "50", "--format", "json").stdout)
        expected = api_page(seeded, limit=50, **params).json()
        assert shown == expected, options
        assert shown, options


def test_content_filter_operators_map_to_the_api_s(catalogctl, seeded):
    for options, params in [
        (("--filter", "release_year>=2019"), {"filter[release_year][gte]": "2019"}),
        (("--filter", "release_year>1990", "--filter", "release_year<2000"), {
            "filter[release_year][gt]": "1990", "filter[release_year][lt]": "2000"
        }),
        (("--filter", "release_year<=1975", "--sort", "-release_year"), {
            "filter[release_year][lte]": "1975", "sort": "-release_year"
        }),
        (("--filter", "type!=Movie"), {"filter[type][ne]": "Movie"}),
        (("--filter", "title~GLOVE"), {"filter[title][contains]": "GLOVE"}),
        (("--filter", "type=Movie", "--filter", "release_year>=2000"), {
            "filter[type]": "Movie", "filter[release_year][gte]": "2000"
        }),
        (("--filter", "release_year:in:2019,2020"), {"filter[release_year][in]": "2019,2020"}),
        (("--filter", "country:notin:India,United States"), {"filter[country][notin]": "India,United States"}),
        (("--filter", "title:startswith:the"), {"filter[title][startswith]": "the"}),
        (("--filter", "director:isnull:true"), {"filter[director][isnull]": "true"}),
    ]:  # fmt: skip
        shown = json.loads(catalogctl("content", *options, "--limit", "50", "--format", "json").stdout)
        expected = api_page(seeded, limit=50, **params).json()
        assert shown == expected, options
        assert shown, options
    assert all(
        item["release_year"] >= 2019 for item in api_page(seeded, **{"filter[release_year][gte]": "2019"}).json()
    )

    for options, message in [
        (("--filter", ">=1990"), "'>=1990' is not COLUMN=VALUE"),
        (("--filter", "a>=1", "--filter", "a>=2"), "a gte is given twice"),
    ]:
        result = catalogctl("content", *options)
        assert (result.exit_code, result.stdout) == (2, ""), options
        assert message in result.stderr, (options, result.stderr)


def test_content_facets_count_values_and_bins_like_the_api(catalogctl, seeded):
    result = catalogctl("content", "--facet", "type", "--facet", "release_year", "--bins", "4", "--format", "json")
    assert result.exit_code == 0, result.stderr
    params = {"facet": ["type", "release_year"], "facet_bins": "4"}
    expected = requests.get(f"{seeded}/datasets/default/facets", params=params, timeout=10)
    assert expected.status_code == 200, expected.text
    assert json.loads(result.stdout) == expected.json()
    assert expected.json()["facets"][1]["bins"]

    filtered = {"facet": "type", "facet_size": "1", "filter[release_year][gte]": "2000", "q": "a"}
    result = catalogctl(
        "content", "--facet", "type", "--facet-size", "1", "--filter", "release_year>=2000", "--q", "a", "--format",
        "json",
    )  # fmt: skip
    assert (
        json.loads(result.stdout)
        == requests.get(f"{seeded}/datasets/default/facets", params=filtered, timeout=10).json()
    )

    table = catalogctl("content", "--facet", "type")
    counted = requests.get(f"{seeded}/datasets/default/facets", params={"facet": "type"}, timeout=10).json()
    assert table.exit_code == 0, table.stderr
    assert table.stdout.startswith(f"type: {counted['facets'][0]['distinct']} distinct, ")
    for value in counted["facets"][0]["values"]:
        assert re.search(rf"^{re.escape(value['value'])}\s+{value['count']:,}$", table.stdout, re.M), table.stdout
    assert table.stderr == f"Counted over {counted['total']:,} matching items\n"

    for options, message in [
        (("--facet", "type", "--limit", "5"), "leave out --limit"),
        (("--facet", "type", "--format", "csv"), "not csv"),
        (("--bins", "5"), "--facet-size and --bins go with --facet"),
    ]:
        result = catalogctl("content", *options)
        assert (result.exit_code, result.stdout) == (2, ""), options
        assert message in result.stderr, (options, result.stderr)
    result = catalogctl("content", "--facet", "no such column")
    assert result.exit_code == 1 and "facet" in result.stderr and "[HTTP 400]" in result.stderr


def test_off_a_terminal_the_table_keeps_every_column(catalogctl, cli_env, seeded):
    # Piped into a file or a pager, nothing is cut to a pretended 80 columns (test_terminal covers a real one).
    cli_env["COLUMNS"] = "60"
    result = catalogctl("content", "--limit", "3")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split()[-2:] == ["listed_in", "description"]
    assert "left out" not in result.stderr


def test_content_errors_exit_1_from_the_api_and_2_for_bad_usage(catalogctl, seeded):
    cases = [
        (("--limit", "500"), 1, "Invalid value for: limit (limit: Must be a whole number from 1 to 100) [HTTP 400]"),
        (("--offset", "999999", "--sort", "title"), 1, "use cursor"),
        (("--cursor", "forged.token"), 1, "cursor"),
        (("--sort", "$where"), 1, "sort"),
        (("--filter", "$gt=1"), 1, "filter[$gt]"),
        (("--limit", "0"), 2, "--limit"),
        (("--offset", "0"), 2, "--offset"),
        (("--filter", "no-equals-sign"), 2, "'no-equals-sign' is not COLUMN=VALUE"),
        (("--all", "--offset", "2"), 2, "--all walks every page itself"),
        (("--offset", "2", "--cursor", "abc"), 2, "--offset and --cursor cannot be used together"),
        (("--format", "xml"), 2, "'xml' is not one of"),
    ]
    for options, exit_code, message in cases:
        result = catalogctl("content", *options)
        assert result.exit_code == exit_code, (options, result.stderr)
        assert message in result.stderr, (options, result.stderr)
        assert result.stdout == "", options
        if exit_code == 1:
            assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), (options, result.stderr)

    result = catalogctl("content", "--q", "no title has this in it")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "No items match\n")
    result = catalogctl("content", "--offset", "1000")
    assert (result.exit_code, result.stdout) == (0, "")
    assert re.fullmatch(r"Nothing on this page \(\d+ in all\)\n", result.stderr)
