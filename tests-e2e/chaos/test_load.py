"""Fault 6: load. 200 concurrent catalog readers for a bounded 30 s while an import runs: not one
5xx (nor a refused connection), and the import finishes with every row."""

import asyncio
import collections
import time

import aiohttp
from faults import job_items, key_prefix
from helpers import job_status, upload_ok, wait_finished, wait_progress

from catalog_testkit.files import write_movies_csv

DURATION_SECONDS = 30
READERS = 200
ROWS = 15_000
STACK_ENV = {"INGEST_BATCH_SIZE": "500"}


async def read_catalog(base_url: str, prefix: str, until: float) -> collections.Counter:
    """``READERS`` clients, each reading page after page, filtered, searched, sorted and by id, until ``until``."""
    paths = [
        "/get_content",
        "/get_content?limit=100&offset=7",
        "/get_content?type=Movie&limit=50",
        "/get_content?q=title%201&limit=10",
        "/get_content?sort=-release_year&limit=20",
        "/get_content?filter%5Brelease_year%5D=2001",
        f"/contents/{prefix}5",
        "/get_content?limit=50&offset=300",
    ]
    outcomes: collections.Counter = collections.Counter()

    async def reader(session: aiohttp.ClientSession, number: int) -> None:
        turn = number
        while time.monotonic() < until:
            try:
                async with session.get(base_url + paths[turn % len(paths)]) as response:
                    await response.read()
                    outcomes[response.status] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcomes[type(exc).__name__] += 1
            turn += 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=READERS), timeout=timeout) as session:
        await asyncio.gather(*(reader(session, n) for n in range(READERS)))
    return outcomes


def test_200_readers_for_30s_during_an_import_see_no_5xx_and_the_import_finishes(stack, auth_headers, tmp_path):
    prefix = key_prefix("load")
    path = write_movies_csv(tmp_path / "load.csv", range(ROWS), prefix=prefix)
    task_id = upload_ok(stack.url, auth_headers, path)
    wait_progress(stack.url, auth_headers, task_id, at_least=1)

    outcomes = asyncio.run(read_catalog(stack.url, prefix, until=time.monotonic() + DURATION_SECONDS))
    failures = {outcome: n for outcome, n in outcomes.items() if not isinstance(outcome, int) or outcome >= 500}
    assert not failures, outcomes
    assert set(outcomes) <= {200, 404}, outcomes
    assert outcomes[200] >= READERS, outcomes
    import_during_load = job_status(stack.url, auth_headers, task_id)

    status = wait_finished(stack.url, auth_headers, task_id, within=120)
    assert status["status"] == "Success", status
    assert (status["rows_processed"], status["rows_inserted"]) == (ROWS, ROWS)
    with stack.database() as db:
        assert job_items(db, task_id) == (ROWS, ROWS)
    print(
        f"{sum(outcomes.values())} reads in {DURATION_SECONDS}s: {dict(outcomes)}; "
        f"import at {import_during_load['progress']}% when the load ended"
    )
