"""The dashboard in a real browser (Debian's Chromium through Playwright): an IMDB-shaped file uploaded
through the stack, its charts' counts read back from their text alternative and held to the facets API
and to a brute-force count over the file; a click on a bar filters every chart and the table; the URL
holds the view; the download link returns exactly the filtered rows. The screenshot lands in
test-artifacts/dashboard.png.
"""

import csv
import io
import json
import random
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from helpers import import_file, signup_and_login
from pages import EN_DASH, open_page, screenshot
from playwright.sync_api import Page, expect

from catalog_testkit.polling import poll

ROWS = 1500
TITLE_TYPES = {"tvEpisode": 60, "short": 12, "movie": 10, "video": 5, "tvSeries": 5, "tvMovie": 4, "tvSpecial": 2,
               "tvMiniSeries": 1, "videoGame": 1}  # fmt: skip
# "Music" and "Musical": a substring match would count one in the other; the split facet does not.
GENRES = ["Drama", "Comedy", "Documentary", "Music", "Musical", "Action", "Romance", "Crime", "Family", "Horror"]
COLUMNS = ["tconst", "titleType", "primaryTitle", "isAdult", "startYear", "runtimeMinutes", "genres"]


def imdb_rows(seed: int = 19) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for n in range(ROWS):
        genres = None
        if rng.random() < 0.9:
            genres = ",".join(sorted(set(rng.choices(GENRES, k=rng.choice((1, 1, 2, 3))))))
        rows.append(
            {
                "tconst": f"tt{n + 1:07d}",
                "titleType": rng.choices(list(TITLE_TYPES), list(TITLE_TYPES.values()))[0],
                "primaryTitle": f"Title {rng.choice(['Love', 'War', 'Night', 'Day'])} {n}",
                "isAdult": 1 if rng.random() < 0.02 else 0,
                "startYear": rng.randint(1900, 2025) if rng.random() < 0.9 else None,
                "runtimeMinutes": max(1, int(rng.gauss(60, 25))) if rng.random() < 0.6 else None,
                "genres": genres,
            }
        )
    return rows


def write_tsv(path: Path, rows: list[dict]) -> None:
    """As IMDB publishes title.basics: tab-separated, no quoting, \\N for nulls."""
    lines = ["\t".join(COLUMNS)]
    lines += ["\t".join("\\N" if row[c] is None else str(row[c]) for c in COLUMNS) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def imdb(stack, tmp_path_factory) -> tuple[str, list[dict]]:
    """A fresh dataset of ROWS IMDB-shaped titles, imported through the gateway, its read model ready."""
    rows = imdb_rows()
    path = tmp_path_factory.mktemp("dashboard") / "title.basics.tsv"
    write_tsv(path, rows)
    name = f"imdb-{uuid.uuid4().hex[:8]}"
    import_file(stack.url, signup_and_login(stack.url), path, dataset=name)
    poll(
        lambda: requests.get(f"{stack.url}/datasets/{name}/contents?sort=startYear", timeout=10).status_code == 200,
        within=60,
        what="the read model catching up",
        interval=0.2,
    )
    return name, rows


def items(value: str | None) -> list[str]:
    return [] if value is None else list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


def wait_drawn(page: Page) -> None:
    """Until the dashboard has drawn every chart and the table of the view the URL holds."""
    page.wait_for_function("() => document.querySelector('#dashboard').dataset.drawn === window.location.hash")


def chart_counts(page: Page, column: str) -> list[tuple[str, int]]:
    """A chart's bars as its text alternative (the counts table) gives them."""
    rows = page.locator(f'figure[data-column="{column}"] .counts-table tbody tr')
    return [
        (cells[0], int(cells[1]))
        for cells in rows.evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    ]


def click_bar(page: Page, column: str, label: str) -> None:
    """A real mouse click in the middle of the bar, located through Chart.js's own layout."""
    page.locator(f'figure[data-column="{column}"]').scroll_into_view_if_needed()
    point = page.evaluate(
        """([column, label]) => {
          const canvas = document.querySelector(`figure[data-column="${column}"] canvas`);
          const chart = Chart.getChart(canvas);
          const bar = chart.getDatasetMeta(0).data[chart.data.labels.indexOf(label)];
          const box = canvas.getBoundingClientRect();
          const horizontal = chart.options.indexAxis === "y";
          return horizontal
            ? { x: box.left + (bar.x + bar.base) / 2, y: box.top + bar.y }
            : { x: box.left + bar.x, y: box.top + (bar.y + bar.base) / 2 };
        }""",
        [column, label],
    )
    page.mouse.click(point["x"], point["y"])


def shown_total(page: Page) -> int:
    return int(page.locator("#dash-summary").get_attribute("data-total"))


def facets(base: str, name: str, params: list[tuple[str, str]]) -> dict:
    response = requests.get(f"{base}/datasets/{name}/facets", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return {facet["column"]: facet for facet in response.json()["facets"]}


def test_the_dashboard_charts_exact_counts_filters_on_click_and_exports_what_it_shows(browser, stack, imdb):
    name, rows = imdb
    with open_page(browser, stack.url) as page:
        page.goto(f"/#/datasets/{name}")
        wait_drawn(page)
        about = page.locator("#dash-about")
        expect(about.locator('[data-about="Items"]')).to_have_text(f"{ROWS:,}")
        expect(about.locator('[data-about="Key"]')).to_have_text("tconst")

        # The charts the rule picks: the key and the searched title are not charted.
        kinds = dict(
            page.locator("figure.chart").evaluate_all("figs => figs.map(f => [f.dataset.column, f.dataset.kind])")
        )
        assert kinds == {
            "titleType": "bar",
            "isAdult": "bar",
            "startYear": "histogram",
            "runtimeMinutes": "histogram",
            "genres": "list",
        }

        # titleType: every type, exact, as the API and a count over the file give them.
        types = Counter(row["titleType"] for row in rows)
        shown = dict(chart_counts(page, "titleType"))
        assert shown == dict(types)
        api = facets(stack.url, name, [("facet", "titleType"), ("facet_size", "15")])["titleType"]
        assert shown == {value["value"]: value["count"] for value in api["values"]}

        # genres: each genre once per title, nulls as their own bar; Music and Musical kept apart.
        genres = Counter(genre for row in rows for genre in items(row["genres"]))
        shown = dict(chart_counts(page, "genres"))
        assert shown == {**genres, "(null)": sum(row["genres"] is None for row in rows)}

        # startYear: the histogram's bins hold exactly the years from <= y < to (the last one also max).
        api = facets(stack.url, name, [("facet", "startYear"), ("facet_bins", "20")])["startYear"]
        years = [row["startYear"] for row in rows if row["startYear"] is not None]
        expected = []
        for index, bin_ in enumerate(api["bins"]):
            last = index == len(api["bins"]) - 1
            expected.append(sum(bin_["from"] <= y and (y < bin_["to"] or (last and y == bin_["to"])) for y in years))
        assert [b["count"] for b in api["bins"]] == expected
        assert [count for _, count in chart_counts(page, "startYear")] == [*expected, ROWS - len(years)]

        # The table: the exact total, cursor pages.
        assert shown_total(page) == ROWS
        dash = page.locator("#dashboard")
        dash.get_by_role("button", name="Later rows").click()
        expect(page.locator("#dash-summary")).to_have_text(f"Rows 21{EN_DASH}40 of {ROWS:,}")

        # A click on the movie bar: every chart and the table redraw under the filter.
        click_bar(page, "titleType", "movie")
        expect(page).to_have_url(f"{stack.url}/#/datasets/{name}?filter%5BtitleType%5D%5Beq%5D=movie")
        wait_drawn(page)
        movies = [row for row in rows if row["titleType"] == "movie"]
        assert shown_total(page) == len(movies)
        assert set(page.locator("#dash-table tbody tr td:nth-child(2)").all_text_contents()) == {"movie"}
        movie_genres = Counter(genre for row in movies for genre in items(row["genres"]))
        assert {k: v for k, v in chart_counts(page, "genres") if k != "(null)"} == dict(movie_genres)
        expect(page.get_by_role("button", name="Remove filter titleType = movie")).to_be_visible()

        # A histogram bin: a gte/lt range, with the type filter still on.
        bins = chart_counts(page, "startYear")
        label, count = max(bins[:-2], key=lambda pair: pair[1])  # not the last bin (lte), nor the nulls
        click_bar(page, "startYear", label)
        page.wait_for_function("() => window.location.hash.includes('startYear')")
        wait_drawn(page)
        query = dict(parse_qsl(urlsplit(page.url).fragment.split("?", 1)[1]))
        low, high = float(query["filter[startYear][gte]"]), float(query["filter[startYear][lt]"])
        chosen = [row for row in movies if row["startYear"] is not None and low <= row["startYear"] < high]
        assert shown_total(page) == count == len(chosen)
        screenshot(page, "dashboard")

        # The download links: exactly the filtered rows.
        for link, parse in (("#dash-csv", _csv_keys), ("#dash-ndjson", _ndjson_keys)):
            href = page.locator(link).get_attribute("href")
            response = requests.get(f"{stack.url}{href}", timeout=30)
            assert response.status_code == 200
            assert parse(response.text) == sorted(row["tconst"] for row in chosen)

        # The URL holds the view: a reload, and a fresh page on the same URL, show the same.
        shared = page.url
        page.reload()
        wait_drawn(page)
        assert shown_total(page) == len(chosen)
        with open_page(browser, stack.url) as other:
            other.goto(shared)
            wait_drawn(other)
            assert shown_total(other) == len(chosen)
            assert chart_counts(other, "genres") == chart_counts(page, "genres")

        # Back: the movies alone; forward: the range again; a chip removed: the range alone.
        page.go_back()
        wait_drawn(page)
        assert shown_total(page) == len(movies)
        page.go_forward()
        wait_drawn(page)
        assert shown_total(page) == len(chosen)
        page.get_by_role("button", name="Remove filter titleType = movie").click()
        page.wait_for_function("() => !window.location.hash.includes('titleType')")
        wait_drawn(page)
        assert shown_total(page) == sum(1 for y in years if low <= y < high)

        # The form, the search and a sort by a click on the header, all through the URL.
        dash = page.locator("#dashboard")
        dash.get_by_role("button", name="Clear all filters").click()
        page.wait_for_function("() => !window.location.hash.includes('filter')")
        wait_drawn(page)
        dash.get_by_label("Column", exact=True).select_option("genres")
        dash.get_by_label("Operator", exact=True).select_option("has")
        dash.get_by_label("Value", exact=True).fill("Music")
        dash.get_by_role("button", name="Add filter").click()
        page.wait_for_function("() => window.location.hash.includes('has')")
        wait_drawn(page)
        assert shown_total(page) == sum("Music" in items(row["genres"]) for row in rows)
        dash.get_by_label("Title contains", exact=True).fill("love")
        dash.get_by_role("button", name="Search").click()
        page.wait_for_function("() => window.location.hash.includes('q=love')")
        wait_drawn(page)
        wanted = [r for r in rows if "Music" in items(r["genres"]) and "love" in r["primaryTitle"].lower()]
        assert shown_total(page) == len(wanted)
        dash.get_by_role("button", name="Sort by runtimeMinutes").click()
        page.wait_for_function("() => window.location.hash.includes('sort=runtimeMinutes')")
        wait_drawn(page)
        ids = page.locator("#dash-table tbody tr").evaluate_all("rows => rows.map(row => row.dataset.id)")
        order = sorted(wanted, key=lambda r: (r["runtimeMinutes"] is not None, r["runtimeMinutes"] or 0, r["tconst"]))
        assert ids == [r["tconst"] for r in order][:20]


def test_a_list_column_whose_top_values_are_mostly_single_items_is_still_split(browser, stack, tmp_path):
    # As at IMDB's size: single genres fill the top values, one pair among them ("Comedy,Drama").
    singles = [*GENRES, "Talk-Show", "News", "Reality-TV", "Animation", "Sport", "History"]
    rows = [
        {**row, "genres": "Comedy,Drama" if n % 10 == 0 else singles[n % len(singles)]}
        for n, row in enumerate(imdb_rows(seed=7)[:400])
    ]
    path = tmp_path / "title.basics.tsv"
    write_tsv(path, rows)
    name = f"imdb-{uuid.uuid4().hex[:8]}"
    import_file(stack.url, signup_and_login(stack.url), path, dataset=name)
    top = facets(stack.url, name, [("facet", "genres"), ("facet_size", "15")])["genres"]["values"]
    assert sum("," in value["value"] for value in top) == 1
    with open_page(browser, stack.url) as page:
        page.goto(f"/#/datasets/{name}")
        wait_drawn(page)
        assert page.locator('figure[data-column="genres"]').get_attribute("data-kind") == "list"
        shown = dict(chart_counts(page, "genres"))
        assert shown["Drama"] == sum("Drama" in items(row["genres"]) for row in rows)


def _csv_keys(text: str) -> list[str]:
    records = list(csv.reader(io.StringIO(text)))
    assert records[0] == COLUMNS
    return sorted(record[0] for record in records[1:])


def _ndjson_keys(text: str) -> list[str]:
    return sorted(json.loads(line)["tconst"] for line in text.splitlines())
