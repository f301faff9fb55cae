"""Read latency of the catalog: get_content through the gateway against a plain driver query on the same store.

On a fresh local stack (the Procfile's mongo, catalog and gateway on free ports), loaded with
``--rows`` documents shaped as the ingest worker writes them:
  (a) get_content offset pages through the gateway (nginx), one request at a time;
  (b) the same pages read by a plain ``find().sort().skip().limit()`` from one process (the ceiling);
  (c) a cursor page at 90% depth against the first page, both through the gateway.
Prints requests/s and p50/p95 latency of each, and the ratios. Targets: (a) p50 <= 1.5x (b) p50, (c) <= 1.5x.

    python bench/catalog.py                 # 100,000 rows, 10 requests per measurement
    python bench/catalog.py --requests 30
"""

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests
from pymongo import ASCENDING, MongoClient

from service_common.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("mongo", "catalog", "gateway")
PAGE_SIZE = 20
# Offset pages measured in (a) and (b), in turn.
PAGES = (1, 2, 3, 4, 5)
BATCH = 5_000
TARGET_RATIO = 1.5


def document(n: int, now: datetime) -> dict:
    """Row ``n`` as the ingest worker writes it (ARCHITECTURE.md), with the seed's columns."""
    row = {
        "show_id": f"s{n}",
        "type": "Movie" if n % 3 else "TV Show",
        "title": f"Title number {n}",
        "director": f"Director {n % 997}",
        "cast": "Actor A, Actor B, Actor C",
        "country": "India",
        "date_added": "September 2, 2021",
        "release_year": 1950 + n % 70,
        "rating": "TV-14",
        "duration": f"{80 + n % 90} min",
        "listed_in": "Dramas, International Movies",
        "description": f"A plot summary for title {n}, about as long as the seed's.",
    }
    return {"_id": row["show_id"], "seq": n, "row": row, "source": {"job_id": "bench", "line": n + 1},
            "created_at": now, "updated_at": now}  # fmt: skip


def load(mongo_url: str, database: str, rows: int) -> float:
    """Inserted in batches, with the indexes the catalog created at start-up already in place; seconds taken."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    with MongoClient(mongo_url) as client:
        items = client[database]["catalog_items"]
        for first in range(1, rows + 1, BATCH):
            batch = [document(n, now) for n in range(first, min(first + BATCH, rows + 1))]
            items.insert_many(batch, ordered=False)
    return time.perf_counter() - started


def measure(count: int, requests_by_name: dict[str, Callable[[int], object]]) -> dict[str, dict[str, float]]:
    """Latencies in ms of ``count`` sequential calls of each request, with requests/s.

    The requests take turns, so that what the store is doing in the background (checkpoints
    after the load) weighs on each of them alike.
    """
    latencies: dict[str, list[float]] = {name: [] for name in requests_by_name}
    for i in range(count):
        for name, request in requests_by_name.items():
            started = time.perf_counter()
            request(i)
            latencies[name].append((time.perf_counter() - started) * 1000)
    return {name: _summary(sorted(values)) for name, values in latencies.items()}


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(latencies),
        "p95": latencies[math.ceil(0.95 * len(latencies)) - 1],
        "rps": 1000 * len(latencies) / sum(latencies),
    }


def fetch(session: requests.Session, url: str) -> requests.Response:
    response = session.get(url, timeout=120)
    response.raise_for_status()
    return response


def bench(rows: int, count: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as scratch:
        stack = LocalStack(ROOT, Path(scratch) / "stack")
        try:
            stack.start(SERVICES)
            mongo_url, database = stack.env["MONGO_URL"], stack.env["MONGO_DB"]
            print(f"Loading {rows:,} rows ...", flush=True)
            print(f"  loaded in {load(mongo_url, database, rows):.1f}s", flush=True)
            session = requests.Session()
            gateway = f"{stack.url}/get_content?limit={PAGE_SIZE}"
            with MongoClient(mongo_url) as client:
                items = client[database]["catalog_items"]

                def driver_page(i: int) -> list:
                    skip = (PAGES[i % len(PAGES)] - 1) * PAGE_SIZE
                    cursor = items.find({}, {"row": 1, "seq": 1}).sort("seq", ASCENDING).skip(skip).limit(PAGE_SIZE)
                    return list(cursor)

                fetch(session, gateway)  # warm up the connections on every hop
                driver_page(0)
                print("(a) get_content pages through the gateway and (b) the same by a driver query ...", flush=True)
                results = measure(
                    count,
                    {
                        "a": lambda i: fetch(session, f"{gateway}&offset={PAGES[i % len(PAGES)]}"),
                        "b": driver_page,
                    },
                )

            # The deepest offset page ends where 90% depth begins; its next cursor continues from there.
            deep_offset = int(rows * 0.9) // PAGE_SIZE
            deep_cursor = fetch(session, f"{gateway}&offset={deep_offset}").headers["X-Next-Cursor"]
            print("(c) first page, and a cursor page at 90% depth ...", flush=True)
            results |= measure(
                count,
                {
                    "first": lambda i: fetch(session, gateway),
                    "deep": lambda i: fetch(session, f"{gateway}&cursor={deep_cursor}"),
                },
            )
        finally:
            stack.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows loaded (default 100000)")
    parser.add_argument("--requests", type=int, default=10, help="requests per measurement (default 10)")
    args = parser.parse_args()

    results = bench(args.rows, args.requests)

    labels = {
        "a": "(a) get_content via gateway",
        "b": "(b) driver query (ceiling)",
        "first": "(c) first page via gateway",
        "deep": "(c) cursor page at 90% depth",
    }
    print(f"\n{'':<30} {'p50 ms':>9} {'p95 ms':>9} {'req/s':>7}")
    for key, label in labels.items():
        r = results[key]
        print(f"{label:<30} {r['p50']:>9.1f} {r['p95']:>9.1f} {r['rps']:>7.2f}")
    gateway_ratio = results["a"]["p50"] / results["b"]["p50"]
    depth_ratio = results["deep"]["p50"] / results["first"]["p50"]
    print(f"\n(a)/(b) p50: {gateway_ratio:.2f}  (target <= {TARGET_RATIO}: "
          f"{'met' if gateway_ratio <= TARGET_RATIO else 'MISSED'})")  # fmt: skip
    print(f"(c) 90% cursor / first page p50: {depth_ratio:.2f}  (target <= {TARGET_RATIO}: "
          f"{'met' if depth_ratio <= TARGET_RATIO else 'MISSED'})")  # fmt: skip
    print("Requests are sequential; absolute times are the local store's, compare the ratios.")


if __name__ == "__main__":
    main()
