"""The dashboard's cost: the API time of its first draw and of one click-to-filter, and in Chromium the
time from navigation to the last chart drawn, on an IMDB-shaped dataset of ``--rows`` titles.

On a fresh local stack (every Procfile process, as ``make dev`` runs it), ``bench/queries.py``'s IMDB
``title.basics``-shaped file is uploaded into dataset ``imdb``. Then:

  first draw   Chromium opens ``/#/datasets/imdb``; every API request the page makes until its last
               chart and the table are drawn is recorded. Those requests are then replayed ``--repeat``
               times as the page sends them (the dataset, then the chart plan's facets, then the charts'
               facets and the first page at once), p50/p95. These are warm: the catalog keeps shared
               answers until the table changes; the cold first draw is the first navigation below.
  click        the same draw under one more filter, as a click on a bar adds it: each repeat clicks
               another titleType value or startYear bin, so every one is a cold question; p50/p95.
  navigation   in Chromium, navigation start to the last chart drawn (``window.dashboardTimings``),
               cold once, then ``--repeat`` fresh pages, p50/p95.

Targets (issue 19): at 11,000,000 rows, the first full draw under 1 s after the API answers and a
click-to-filter redraw under 500 ms. ``python bench/dashboard.py --rows 11000000`` runs it at that size
(the import alone takes a long while there).
"""

import argparse
import contextlib
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import requests
from playwright.sync_api import sync_playwright

from catalog_testkit.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from queries import DATASET, adopt_read_model, fill, stack_folder, wait_for_read_model  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
DRAW_TARGET_MS, CLICK_TARGET_MS = 1000.0, 500.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def page_requests(page, url: str) -> tuple[list[str], float]:
    """The API paths the page asks for until it has drawn ``url``'s view, and navigation-to-last-chart ms."""
    seen: list[str] = []
    listener = lambda request: seen.append(request.url)  # noqa: E731
    page.on("request", listener)
    page.goto(url)
    page.wait_for_function("() => document.querySelector('#dashboard').dataset.drawn === window.location.hash")
    page.remove_listener("request", listener)
    drawn = page.evaluate("() => window.dashboardTimings.lastChartAt")
    paths = [u.split("/", 3)[3] for u in seen if "/datasets/" in u]
    return ["/" + p for p in paths], drawn


def replay(session: requests.Session, base: str, paths: list[str]) -> float:
    """The page's requests in its order: the dataset, the plan, then the rest at once. Milliseconds."""
    started = time.perf_counter()
    steps = [p for p in paths if "/facets" not in p and "/contents" not in p and "/export" not in p]
    plan = [p for p in paths if "/facets" in p and "filter" not in p and "facet_bins" not in p and "split" not in p]
    rest = [p for p in paths if "/contents" in p or ("/facets" in p and p not in plan)]
    for path in steps + plan[:1]:
        session.get(base + path, timeout=120).raise_for_status()
    with ThreadPoolExecutor(max(1, len(rest))) as pool:
        for response in pool.map(lambda p: session.get(base + p, timeout=120), rest):
            response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def click_paths(session: requests.Session, base: str, paths: list[str], added: dict[str, str]) -> list[str]:
    """The requests of the redraw after a click: the filtered facets and the first page (the plan is kept)."""
    extra = urlencode(added)
    redraw = [p for p in paths if "/contents" in p or ("/facets" in p and ("facet_bins" in p or "split" in p))]
    return [f"{p}&{extra}" for p in redraw]


def bench(rows: int, repeat: int, keep: Path | None) -> None:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with contextlib.ExitStack() as cleanup:
        folder, env = stack_folder(cleanup, rows, keep)
        # A kept stack of millions of items: its store takes minutes to open.
        stack = LocalStack(ROOT, folder, env=env, start_timeout=900)
        adopt_read_model(stack, env)
        with stack:
            fill(stack, rows)
            session = requests.Session()
            wait_for_read_model(session, f"{stack.url}/datasets/{DATASET}/contents?sort=-startYear")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                navigation = []
                paths: list[str] = []
                for _ in range(repeat + 1):
                    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    found, drawn = page_requests(page, f"/#/datasets/{DATASET}")
                    paths = paths or found
                    navigation.append(drawn)
                    context.close()
                browser.close()
            print(f"  first draw asks {len(paths)} requests:", *paths, sep="\n    ")
            # The charts' answers are shared until the table changes: the Chromium runs above warmed them.
            draws = [replay(session, stack.url, paths) for _ in range(repeat)]
            facets = session.get(
                f"{stack.url}/datasets/{DATASET}/facets",
                params={"facet": ["titleType", "startYear"], "facet_bins": "20", "facet_size": "15"},
                timeout=120,
            ).json()["facets"]
            by_column = {facet["column"]: facet for facet in facets}
            clicks_added = [{"filter[titleType][eq]": str(v["value"])} for v in by_column["titleType"]["values"]]
            clicks_added += [
                {"filter[startYear][gte]": str(b["from"]), "filter[startYear][lt]": str(b["to"])}
                for b in by_column["startYear"]["bins"]
            ]
            clicks = []
            for added in clicks_added[:repeat]:
                redraw = click_paths(session, stack.url, paths, added)
                started = time.perf_counter()
                with ThreadPoolExecutor(len(redraw)) as pool:
                    for response in pool.map(lambda p: session.get(stack.url + p, timeout=120), redraw):
                        response.raise_for_status()
                clicks.append((time.perf_counter() - started) * 1000)
    print(f"dashboard at {rows:,} rows ({repeat} repeats):")
    print(f"  first draw, API (warm answers)   {spread(draws)}")
    print(f"  click-to-filter, API (cold)      {spread(clicks)}  (target {CLICK_TARGET_MS:.0f} ms)")
    print(
        f"  navigation to last chart         cold {navigation[0]:.1f} ms; then {spread(navigation[1:])}"
        f"  (target {DRAW_TARGET_MS:.0f} ms after the API answers)"
    )


def spread(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.1f} ms  p95 {percentile(values, 0.95):7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the IMDB-shaped file (default 100000)")
    parser.add_argument("--repeat", type=int, default=10, help="repeats of each measure (default 10)")
    parser.add_argument(
        "--keep", type=Path, help="keep the stack's data under this folder (shared with bench/queries.py --keep)"
    )
    arguments = parser.parse_args()
    bench(arguments.rows, arguments.repeat, arguments.keep)


if __name__ == "__main__":
    main()
