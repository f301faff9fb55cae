"""Start-up waits: a store still opening is waited for while its process lives, anything else for
STARTUP_TIMEOUT; start-up indexes already there are left alone."""

import os
import subprocess
import time

import pytest
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, monitoring

from service_common.stores import StartupWait, ensure_indexes, store_process_alive, wait_until_ready


@pytest.fixture
def sleeper():
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_the_store_process_is_alive_only_while_the_pid_file_names_a_running_process(tmp_path, sleeper):
    pid_file = tmp_path / "mongo.pid"
    assert not store_process_alive(None)
    assert not store_process_alive(pid_file)  # not written yet
    pid_file.write_text("not a pid\n")
    assert not store_process_alive(pid_file)

    pid_file.write_text(f"{sleeper.pid}\n")
    assert store_process_alive(pid_file)
    # A file written long before the process started names an earlier one whose number was reused.
    os.utime(pid_file, (time.time() - 3600, time.time() - 3600))
    assert not store_process_alive(pid_file)

    pid_file.write_text(f"{sleeper.pid}\n")
    sleeper.kill()
    sleeper.wait()
    assert not store_process_alive(pid_file)


def test_a_store_still_opening_is_waited_for_past_the_patience_and_says_so(tmp_path, sleeper, caplog):
    pid_file = tmp_path / "mongo.pid"
    pid_file.write_text(f"{sleeper.pid}\n")
    wait = StartupWait("MongoDB", 0.01, pid_file)
    time.sleep(0.05)
    with caplog.at_level("INFO", logger="service_common.stores"):
        wait.failed(OSError("connection refused"))
        wait.failed(OSError("connection refused"))  # said once, then every OPENING_NOTICE_SECONDS
    assert [record.getMessage() for record in caplog.records] == ["Waiting for the store to open (0 s)"]

    sleeper.kill()
    sleeper.wait()
    with pytest.raises(RuntimeError, match=r"^MongoDB not reachable after 0s: connection refused"):
        wait.failed(OSError("connection refused"))


async def test_without_a_store_process_the_wait_ends_after_the_patience():
    async def refused() -> None:
        raise OSError("connection refused")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="not reachable after 1s"):
        await wait_until_ready("MongoDB", refused, 1)
    assert time.monotonic() - started < 5


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_indexes_already_there_are_not_created_again(mongo_url, mongo_db_name):
    commands = Commands()
    client = AsyncMongoClient(mongo_url, event_listeners=[commands])
    try:
        collection = client[mongo_db_name]["things"]
        indexes = [
            IndexModel([("a", ASCENDING)], unique=True, name="a_unique"),
            IndexModel([("b", ASCENDING), ("c", -1)]),
        ]
        await ensure_indexes(collection, indexes)
        assert {"a_unique", "b_1_c_-1"} <= set(await collection.index_information())
        assert "createIndexes" in commands.names

        commands.names.clear()
        await ensure_indexes(collection, indexes)
        assert commands.names == ["listIndexes"]
    finally:
        await client.close()
