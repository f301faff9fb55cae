"""Read latency of the catalog at two sizes, against the physical floor, on the whole local stack.

The stack runs as ``make dev`` runs it (every Procfile process on free ports, catalog-service up with
its start-up index work done). The catalog is filled through the real pipeline (CSV uploads through
the gateway, imported by the Celery worker) to ``--small`` items, measured, then filled to
``--large`` and measured again. Each measurement, requests taking turns, one at a time, through the
gateway:

  floor     GET /contents/{id}: one point read by _id, the cheapest answer the store can give;
  first     get_content offset page 1;
  mid       offset page at 50% depth;
  deep      offset page at 99% depth;
  cursor    a cursor page at 90% depth;
  type      get_content?type=Movie offset page at 50% of the movies.

Targets: every p50 <= 3x the floor's p50 at the same size, and every p50 at --large <= 1.5x its
p50 at --small.

    python bench/catalog.py                              # 10,000 then 1,000,000 items
    python bench/catalog.py --small 10000 --large 200000 --requests 20
"""

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from catalog_testkit.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from ingest import login, upload_and_wait, write_csv  # noqa: E402

PAGE = 20
FLOOR_TARGET = 3.0
GROWTH_TARGET = 1.5


def fill(stack: LocalStack, scratch: Path, headers: dict[str, str], have: int, want: int) -> None:
    """Imports rows ``have`` .. ``want - 1`` through the gateway, in files of at most 250,000 rows."""
    while have < want:
        count = min(250_000, want - have)
        path = scratch / f"rows-{have}.csv"
        write_csv(path, count, first=have)
        started = time.perf_counter()
        upload_and_wait(stack.url, headers, path)
        print(f"  imported rows {have:,}-{have + count - 1:,} in {time.perf_counter() - started:.1f}s", flush=True)
        path.unlink()
        have += count


def measure(count: int, requests_by_name: dict[str, Callable[[int], object]]) -> dict[str, dict[str, float]]:
    """p50/p95 latency in ms of ``count`` sequential calls of each request, the requests taking turns
    so that whatever the store does in the background weighs on each alike."""
    latencies: dict[str, list[float]] = {name: [] for name in requests_by_name}
    for i in range(count):
        for name, request in requests_by_name.items():
            started = time.perf_counter()
            request(i)
            latencies[name].append((time.perf_counter() - started) * 1000)
    return {
        name: {"p50": statistics.median(values), "p95": sorted(values)[math.ceil(0.95 * len(values)) - 1]}
        for name, values in latencies.items()
    }


def requests_for(session: requests.Session, base: str, size: int) -> dict[str, Callable[[int], object]]:
    def get(path: str) -> requests.Response:
        response = session.get(f"{base}{path}", timeout=120)
        response.raise_for_status()
        return response

    pages = max(1, size // PAGE)
    movie_pages = max(1, size * 2 // 3 // PAGE)
    deep_cursor = get(f"/get_content?limit={PAGE}&offset={int(pages * 0.9)}").headers["X-Next-Cursor"]
    # Warm every hop (and the catalog's summary cache) before measuring.
    get(f"/get_content?limit={PAGE}")
    return {
        "floor": lambda i: get(f"/contents/s{(i * 7919) % size}"),
        "first": lambda i: get(f"/get_content?limit={PAGE}"),
        "mid": lambda i: get(f"/get_content?limit={PAGE}&offset={pages // 2 + i % 3}"),
        "deep": lambda i: get(f"/get_content?limit={PAGE}&offset={int(pages * 0.99) - i % 3}"),
        "cursor": lambda i: get(f"/get_content?limit={PAGE}&cursor={deep_cursor}"),
        "type": lambda i: get(f"/get_content?type=Movie&limit={PAGE}&offset={movie_pages // 2 + i % 3}"),
    }


def bench(small: int, large: int, count: int) -> dict[int, dict[str, dict[str, float]]]:
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as folder:
        scratch = Path(folder)
        with LocalStack(ROOT, scratch / "stack") as stack:
            headers = login(stack.url)
            session = requests.Session()
            have = 0
            for size in (small, large):
                print(f"Filling the catalog to {size:,} items through the pipeline ...", flush=True)
                fill(stack, scratch, headers, have, size)
                have = size
                total = int(session.get(f"{stack.url}/get_content?limit=1", timeout=60).headers["X-Total-Count"])
                assert total == size, f"the catalog holds {total} items, not {size}"
                print(f"Measuring at {size:,} items ({count} requests of each kind) ...", flush=True)
                results[size] = measure(count, requests_for(session, stack.url, size))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000, help="items at the first measurement (default 10000)")
    parser.add_argument("--large", type=int, default=1_000_000, help="items at the second (default 1000000)")
    parser.add_argument("--requests", type=int, default=30, help="requests of each kind per measurement")
    args = parser.parse_args()

    results = bench(args.small, args.large, args.requests)
    small, large = results[args.small], results[args.large]
    print(
        f"\n{'':<8} {'p50 ms':>9} {'p95 ms':>9} {'/floor':>7}   {'p50 ms':>9} {'p95 ms':>9} {'/floor':>7}   "
        f"{'growth':>6}"
    )
    print(f"{'':<8} {f'at {args.small:,} items':>27}   {f'at {args.large:,} items':>27}")
    worst_floor, worst_growth = 0.0, 0.0
    for name in small:
        s, g = small[name], large[name]
        s_ratio, g_ratio = s["p50"] / small["floor"]["p50"], g["p50"] / large["floor"]["p50"]
        growth = g["p50"] / s["p50"]
        worst_floor = max(worst_floor, s_ratio, g_ratio)
        worst_growth = max(worst_growth, growth)
        print(
            f"{name:<8} {s['p50']:>9.1f} {s['p95']:>9.1f} {s_ratio:>7.2f}   {g['p50']:>9.1f} {g['p95']:>9.1f} "
            f"{g_ratio:>7.2f}   {growth:>6.2f}"
        )
    print(
        f"\nworst p50 / floor p50: {worst_floor:.2f} (target <= {FLOOR_TARGET}: "
        f"{'met' if worst_floor <= FLOOR_TARGET else 'MISSED'})"
    )
    print(
        f"worst p50 growth {args.small:,} -> {args.large:,}: {worst_growth:.2f} (target <= {GROWTH_TARGET}: "
        f"{'met' if worst_growth <= GROWTH_TARGET else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
