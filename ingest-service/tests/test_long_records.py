"""Hostile sizes: one enormous line, batches of long rows, a worker that takes long to read a batch."""

import threading
import time
import zlib
from pathlib import Path

from ingest_service.parsing import MAX_RECORD_BYTES
from ingest_service.prefetch import prefetched

from .helpers import upload_ok, wait_finished

LINE_BYTES = 256 * 1024**2


def gzipped_long_line() -> bytes:
    """A gzip of a header, one 256 MiB line and a good row: about 260 KB, never whole in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    piece = b"x" * 1024**2
    parts = [compressor.compress(b"id,title\n")]
    parts += [compressor.compress(piece) for _ in range(LINE_BYTES // len(piece))]
    parts += [compressor.compress(b"\n2,two\n"), compressor.flush()]
    return b"".join(parts)


def peak_rss_bytes(pid: int) -> int:
    """The highest resident set of the process and its children (a Celery pool's worker processes)."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            peak = max(peak, peak_rss_bytes(int(child)))
    return peak


async def test_one_256_mib_line_is_a_row_error_in_bounded_memory_and_holds_up_no_one(
    api, auth, other_auth, db, start_worker
):
    worker = start_worker()
    long_one = await upload_ok(api, auth, gzipped_long_line(), filename="long.csv.gz")
    others = await upload_ok(api, other_auth, b"id,title\n1,one\n", filename="small.csv")
    status = await wait_finished(api, auth, long_one, within=60)
    assert (status["status"], status["rows_processed"], status["rows_inserted"], status["rows_failed"]) == (
        "Success",
        2,
        1,
        1,
    )
    assert status["errors"] == [
        {"line": 2, "message": f"The record is longer than {MAX_RECORD_BYTES // 1024**2} MiB as written in the file"}
    ]
    assert (await wait_finished(api, other_auth, others, within=30))["status"] == "Success"
    assert peak_rss_bytes(worker.pid) < 300 * 1024**2


async def test_a_batch_is_cut_by_bytes_as_well_as_rows(api, auth, db, start_worker):
    start_worker(INGEST_BATCH_BYTES="65536")  # the batch size stays 500 rows
    rows = b"".join(b"%d,%s\n" % (n, b"t" * 10_000) for n in range(40))
    status = await wait_finished(api, auth, await upload_ok(api, auth, b"id,title\n" + rows))
    assert (status["status"], status["rows_inserted"]) == ("Success", 40)
    # 400 KB of rows in batches of at most 64 KiB: six rows each, so seven blocks.
    assert db["catalog_blocks"].count_documents({}) == 7


def test_the_consumer_keeps_its_heartbeat_while_one_item_takes_long():
    beats: list[float] = []
    released = threading.Event()

    def slow_items():
        released.wait(5)
        yield "batch"

    with prefetched(slow_items(), while_waiting=lambda: beats.append(time.monotonic()), every=0.05) as items:
        threading.Timer(0.5, released.set).start()
        assert list(items) == ["batch"]
    assert len(beats) >= 5
