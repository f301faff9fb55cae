"""The stack starts on any catalog it has written: a store holding a large catalog, still opening when
the worker starts, is waited for past STARTUP_TIMEOUT, and neither the worker nor the API reads its
items to get ready (issue 18: 11M items took the store about a minute to open, and the worker's
legacy check read them all into memory)."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient

from ingest_service.catalog_blocks import append_items, item_document
from ingest_service.main import create_app
from ingest_service.settings import IngestSettings
from service_common.catalog_layout import DATASETS, ITEMS, new_dataset

REPOSITORY = Path(__file__).resolve().parents[2]
# Enough for the store to take seconds to open and for a scan to show (a few hundred MB in the worker);
# few enough to write in about 20 s on a busy two-core machine.
LARGE_CATALOG = int(os.environ.get("TEST_LARGE_CATALOG_ITEMS", "200000"))
DATASET = "large"
# A store slower to open than STARTUP_TIMEOUT (1 s here), whatever the machine.
OPENING_DELAY = 4


def fill(db, count: int) -> None:
    """A catalog imported in the current layout: its first batch through the layout's own writer (so
    its first ``seq`` stands in block ``large:1``), the rest straight into the store, cheaply."""
    now = datetime.now(UTC)
    db[DATASETS].insert_one(new_dataset(DATASET, owner="user-1", key="tconst", now=now))
    db.counters.insert_one({"_id": "catalog_items.seq", "next": count})

    def item(n: int) -> dict:
        row = {"tconst": f"tt{n:08d}", "titleType": "movie", "primaryTitle": f"Title {n}", "startYear": 1900 + n % 120}
        return item_document(DATASET, row["tconst"], seq=n, block_id="", row=row, job_id="job-1", line=n + 1, now=now)

    append_items(db, DATASET, "job-1", [item(n) for n in range(1, 1001)], now)
    for first in range(1001, count + 1, 10_000):
        db[ITEMS].insert_many([item(n) for n in range(first, min(count + 1, first + 10_000))], ordered=False)


def start_store(port: int, data_dir: Path, pid_file: Path, log_path: Path) -> subprocess.Popen:
    """The dev stack's scripts/run-mongo, behind a shell that first writes its own pid (which run-mongo's
    exec keeps) and sleeps: a store whose process lives but does not listen yet."""
    from catalog_testkit.processes import start_process

    env = {
        "DATA_DIR": str(data_dir),
        "MONGO_PORT": str(port),
        "STORE_PID_FILE": str(pid_file),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    command = f'echo $$ >"$STORE_PID_FILE"; sleep {OPENING_DELAY}; exec {REPOSITORY / "scripts" / "run-mongo"}'
    return start_process(["bash", "-c", command], log_path=log_path, env=env)


def profiled(db, collection: str) -> list[dict]:
    """The commands the store ran on ``collection`` since profiling began."""
    return [entry["command"] for entry in db["system.profile"].find({"ns": f"{db.name}.{collection}"})]


def is_point_read(command: dict) -> bool:
    return set(command.get("filter", {"": None})) == {"_id"}


async def test_a_restart_over_a_large_catalog_waits_for_the_store_and_reads_no_item(tmp_path, ingest_env, start_worker):
    from catalog_testkit.polling import poll
    from catalog_testkit.processes import free_port, stop_process

    port = free_port()
    url = f"mongodb://127.0.0.1:{port}"
    data_dir, pid_file = tmp_path / "data", tmp_path / "mongo.pid"
    env = {
        **ingest_env,
        "MONGO_URL": url,
        "STORE_PID_FILE": str(pid_file),
        "STARTUP_TIMEOUT": "1",
        "STORE_DISK_PATH": str(data_dir),  # dbStats would read every item on the embedded store
    }
    store = start_store(port, data_dir, pid_file, tmp_path / "store.log")
    try:
        client = MongoClient(url, tz_aware=True, serverSelectionTimeoutMS=60_000)
        db = client[ingest_env["MONGO_DB"]]
        fill(db, LARGE_CATALOG)
        db.command("profile", 2)  # kept by the store: every command from its next start on is recorded
        client.close()
        stop_process(store, timeout=60)

        store = start_store(port, data_dir, pid_file, tmp_path / "store.log")
        worker = start_worker(**env)  # waits for " ready." in its log
        log = (tmp_path / "worker-0.log").read_text()
        assert "Waiting for the store to open" in log and "not reachable" not in log
        assert worker.poll() is None

        settings = IngestSettings(**env)
        async with TestClient(TestServer(create_app(settings))) as api:
            assert (await api.get("/readyz")).status == 200

        client = MongoClient(url, tz_aware=True)
        db = client[ingest_env["MONGO_DB"]]
        try:
            assert db.migrations.find_one({"_id": "legacy_catalog"})["moved"] == 0
            assert [command for command in profiled(db, ITEMS) if not is_point_read(command)] == []

            # A second start: the marker alone.
            stop_process(worker)
            db.command("profile", 0)
            db["system.profile"].drop()
            db.command("profile", 2)
            start_worker(**env)
            poll(lambda: profiled(db, "migrations"), within=30, what="the worker's start-up")
            assert profiled(db, ITEMS) == []
            assert [command["filter"] for command in profiled(db, "migrations")] == [{"_id": "legacy_catalog"}]
            assert db[ITEMS].estimated_document_count() == LARGE_CATALOG
        finally:
            client.close()
    finally:
        stop_process(store, timeout=60)
