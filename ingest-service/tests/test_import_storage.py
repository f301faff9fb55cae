"""The worker's queries where workers race each other, against a real store."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from ingest_service import import_storage

WORKERS = 8
BLOCK = 100


@pytest.mark.parametrize("round_", range(10))
def test_workers_racing_for_the_first_seq_block_get_disjoint_blocks(db, round_):
    # The counter does not exist yet: every worker may try to create it at the same moment.
    with ThreadPoolExecutor(WORKERS) as pool:
        starts = list(pool.map(lambda _: import_storage.allocate_seq_block(db, BLOCK), range(WORKERS)))
    assert sorted(starts) == [1 + BLOCK * n for n in range(WORKERS)]
    assert import_storage.allocate_seq_block(db, 1) == 1 + BLOCK * WORKERS
