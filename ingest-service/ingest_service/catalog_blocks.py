"""The catalog layout's writer (``service_common.catalog_layout`` names its documents and states
its invariant), synchronous, as the ingest worker runs it: one block per batch, its summary placed
in a chunk, and the chunk's revision on the dataset that tells readers what changed. ``audit`` is
the invariant's executable form.

How it keeps the invariant with workers that die or stall between any two steps: a block is
written ``pending`` before its items, so a later run (or the abandoned-job check) can tell from the
items which of its candidates were inserted (rule 1, ``inserted_by_block``). Every other change to
a block is a compare-and-set on its version ``v``, recomputed from what the store holds when it
loses, so the last writer's change, made after every write it follows, is the one that stays.
"""

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service_common import catalog_layout
from service_common.catalog_layout import (
    BLOCKS,
    CHUNK_ENTRIES,
    CHUNK_REVISIONS,
    DATASETS,
    IDS_PER_READ,
    ITEMS,
    SUMMARY_CHUNKS,
    BlockState,
    BlockSummary,
    chunk_id,
    item_id,
    pack_rows,
    types_and_columns,
    unpack_rows,
)

log = logging.getLogger(__name__)

MAX_RACES = 50
# Every query the worker adds is bounded, point reads included.
QUERY_TIME_MS = 5000
# Blocks per ``$in`` read when patching: each carries its rows, a few dozen kB.
BLOCKS_PER_READ = 20
# The numbers of ``seq`` per read of a dataset's blocks (``_blocks_of``): about a hundred blocks.
SEQ_SLICE = 100_000
# The most rows a job may have read for its blocks to be found by its index at once (``_job_blocks``).
BLOCKS_BY_JOB_ROWS = 200_000


def read_items(
    db: Database, dataset: str, keys: Sequence[str], projection: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """The items of ``dataset`` with these keys, by key; missing ones are left out."""
    found: dict[str, dict[str, Any]] = {}
    ids = list(dict.fromkeys(item_id(dataset, key) for key in keys))
    for start in range(0, len(ids), IDS_PER_READ):
        for document in db[ITEMS].find({"_id": {"$in": ids[start : start + IDS_PER_READ]}}, {**projection, "key": 1}):
            found[document["key"]] = document
    return found


def block_contents(rows: Sequence[dict[str, Any]], writes: Sequence[int] = ()) -> dict[str, Any]:
    """The fields a block derives from the stored rows of its keys, in order: the ``type`` positions
    and column counts pages and counts need, and the rows themselves, which feed the read model.
    Every write that changes a block's keys or their items sets them all with its new version.

    ``writes``: each row's item's count of in-place writes (``w``) as read with it, kept as ``ws``
    (``[[position, w], ...]``, the positions whose item was ever updated in place) so that a row
    read earlier never replaces one read later (``patch_in_place``)."""
    types, columns = types_and_columns(rows)
    return {
        "types": types,
        "columns": columns,
        "rows": pack_rows(rows),
        "ws": [[position, w] for position, w in enumerate(writes) if w],
    }


def _writes(items: dict[str, dict[str, Any]], keys: Sequence[str]) -> list[int]:
    return [items[key].get("w", 0) if key in items else 0 for key in keys]


def inserted_by_block(item: Mapping[str, Any] | None, seq: int) -> bool:
    """The membership rule (``catalog_layout``, rule 1): a block's candidate, given ``seq`` by the
    block, was inserted by it and still stands exactly when its item (None: there is none) carries
    that ``seq``. Every path that decides which of a block's keys are its own asks this."""
    return item is not None and item["seq"] == seq


def pending_block(
    dataset: str,
    job_id: str,
    first_seq: int,
    keys: list[str],
    seqs: list[int],
    rows: Sequence[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """A batch's block as written before any of its items (``insert_pending``): every candidate key,
    counted as if every one were inserted (the usual case, which ``commit`` then confirms in one
    small write). Made without the store, ahead of the write."""
    return {
        "_id": catalog_layout.block_id(dataset, first_seq),
        "dataset": dataset,
        "job_id": job_id,
        "seq": first_seq,
        "state": BlockState.PENDING,
        "v": 0,
        "keys": keys,
        "seqs": seqs,
        **block_contents(rows),
        "created_at": now,
    }


def insert_pending(db: Database, block: dict[str, Any]) -> None:
    """Writes a ``pending_block``, before any of its items."""
    db[BLOCKS].insert_one(block)


def commit(db: Database, block: dict[str, Any], inserted: Sequence[int], rows: Sequence[dict[str, Any]]) -> None:
    """Keeps the candidates the batch inserted (their positions, ``rows`` being every candidate's
    stored row) and places its summary (``place_summary``).

    When every candidate was inserted, the pending block already says so: its summary goes into a
    chunk and the block is marked indexed in one compare-and-set on its version. If a concurrent
    upsert touched the block meanwhile (its version moved on), the block is recomputed from the
    items instead, and its summary follows.
    """
    if len(inserted) == len(block["keys"]):
        committed = dict(block, state=BlockState.COMMITTED, v=1)
        number = _append_summary(db, block["dataset"], committed, placed_before=False)
        # Bumped before the block reads indexed: a run that dies in between leaves the block pending,
        # for the next run to finish (and bump again), never an indexed block that readers miss.
        _bump(db, block["dataset"], number)
        marked = db[BLOCKS].update_one(
            {"_id": block["_id"], "v": 0, "state": BlockState.PENDING},
            {"$set": {"state": BlockState.INDEXED, "chunk": number, "v": 1}},
        )
        if marked.matched_count == 0:
            _commit_late(db, block, inserted)
        return
    update = {
        "state": BlockState.COMMITTED,
        "keys": [block["keys"][i] for i in inserted],
        "seqs": [block["seqs"][i] for i in inserted],
        **block_contents([rows[i] for i in inserted]),
    }
    result = db[BLOCKS].update_one(
        {"_id": block["_id"], "v": 0, "state": BlockState.PENDING}, {"$set": update, "$inc": {"v": 1}}
    )
    if result.matched_count == 0:
        _commit_late(db, block, inserted)
    else:
        place_summary(db, block["_id"], dict(block, **update, v=1))


def _commit_late(db: Database, block: dict[str, Any], inserted: Sequence[int]) -> None:
    """Commits a block that was no longer pending at version 0 when its writer came to commit it.

    Either a concurrent upsert moved its version on (it is still pending, and is finished from the
    items), or this run had stalled past its lease and another run, taking the job over, finished
    the block from the items before this run's writes landed: the items this run inserted since
    are then put in the block (``_adopt``), never left readable by id yet in no page or count.
    """
    finalize(db, block["_id"])
    _adopt(db, block, [(block["keys"][i], block["seqs"][i]) for i in inserted])
    place_summary(db, block["_id"])


def _adopt(db: Database, block: dict[str, Any], inserted: list[tuple[str, int]]) -> None:
    """Adds to the committed block (``block`` as this run wrote it) the candidates this run inserted
    that it does not list, re-creating the block if it was dropped for holding none;
    ``place_summary`` then places or updates its summary."""
    for _ in range(MAX_RACES):
        current = db[BLOCKS].find_one({"_id": block["_id"]})
        if current is not None and current["state"] == BlockState.PENDING:
            return  # whoever commits it finishes it from the items, these included
        listed = dict(zip(current["keys"], current["seqs"], strict=True)) if current else {}
        if all(key in listed for key, _ in inserted):
            return
        candidates = sorted({**listed, **dict(inserted)}.items(), key=lambda pair: pair[1])
        update = _membership(db, block["dataset"], candidates)
        if set(update["keys"]) <= listed.keys():
            return  # none of them stands any more
        log.warning("Block %s: items written after another run committed it; adding them", block["_id"])
        if current is None:
            fields = {name: block[name] for name in ("_id", "dataset", "job_id", "seq", "created_at")}
            with contextlib.suppress(DuplicateKeyError):
                db[BLOCKS].insert_one({**fields, **update, "state": BlockState.COMMITTED, "v": 1})
                return
            continue
        version = {"_id": block["_id"], "v": current["v"]}
        if db[BLOCKS].update_one(version, {"$set": update, "$inc": {"v": 1}}).matched_count:
            return
    raise RuntimeError(f"block {block['_id']} kept changing while adding its late items")


def _membership(db: Database, dataset: str, candidates: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """The block fields (keys, seqs and what derives from their rows) for the candidates (key, seq)
    the block inserted and that still stand (``inserted_by_block``), read from their items now."""
    items = read_items(db, dataset, [key for key, _ in candidates], {"seq": 1, "row": 1, "w": 1})
    kept = [(key, seq) for key, seq in candidates if inserted_by_block(items.get(key), seq)]
    return {
        "keys": [key for key, _ in kept],
        "seqs": [seq for _, seq in kept],
        **block_contents([items[key]["row"] for key, _ in kept], _writes(items, [key for key, _ in kept])),
    }


def finalize(db: Database, block_id: str) -> None:
    """Commits a pending block from what the store holds (rule 1: its candidates whose items carry
    the ``seq`` it gave them)."""
    for _ in range(MAX_RACES):
        block = db[BLOCKS].find_one({"_id": block_id})
        if block is None or block["state"] != BlockState.PENDING:
            return
        candidates = list(zip(block["keys"], block["seqs"], strict=True))
        update = {**_membership(db, block["dataset"], candidates), "state": BlockState.COMMITTED}
        if db[BLOCKS].update_one({"_id": block_id, "v": block["v"]}, {"$set": update, "$inc": {"v": 1}}).matched_count:
            return
    raise RuntimeError(f"block {block_id} kept changing while being finalized")


def place_summary(db: Database, block_id: str, committed: dict[str, Any] | None = None) -> None:
    """Puts the committed block's summary into the dataset's last chunk (a new one when it is
    full), bumps that chunk's revision on the dataset and marks the block ``indexed``; a block that
    inserted nothing is dropped.

    ``committed``: the block as this process just committed it, so that it need not be read back,
    and known not to be in a chunk yet."""
    block = committed or db[BLOCKS].find_one({"_id": block_id})
    if block is None or block["state"] == BlockState.PENDING:
        return
    dataset = block["dataset"]
    if block["state"] == BlockState.COMMITTED:
        if not block["keys"]:
            db[BLOCKS].delete_one({"_id": block_id, "state": BlockState.COMMITTED, "keys": []})
            return
        number = _append_summary(db, dataset, block, placed_before=committed is None)
        _bump(db, dataset, number)
        db[BLOCKS].update_one({"_id": block_id}, {"$set": {"state": BlockState.INDEXED, "chunk": number}})
        current = db[BLOCKS].find_one({"_id": block_id}, {"v": 1})
        if committed is not None and current is not None and current["v"] == block["v"]:
            return  # the summary just placed is the block's current one
    # Otherwise the summary in the chunk may be older than the block: one its writer pushed before
    # a concurrent upsert moved the pending block's version on (``commit``), or one a run that died
    # had placed. ``sync_summary`` brings it up to the block's version.
    sync_summary(db, block_id)


def _append_summary(db: Database, dataset: str, block: dict[str, Any], *, placed_before: bool) -> int:
    """The number of the chunk now holding the block's summary (a run that died after placing it
    may have done so already: ``placed_before``)."""
    if placed_before:
        holder = db[SUMMARY_CHUNKS].find_one({"dataset": dataset, "ids": block["_id"]}, {"n": 1})
        if holder is not None:
            return holder["n"]
    head = db[DATASETS].find_one({"_id": dataset}, {"last_chunk": 1}) or {}
    number = head.get("last_chunk", 0)
    for _ in range(MAX_RACES):
        appended = db[SUMMARY_CHUNKS].update_one(
            {"_id": chunk_id(dataset, number), "count": {"$lt": CHUNK_ENTRIES}, "ids": {"$ne": block["_id"]}},
            {
                "$push": {"ids": block["_id"], "entries": BlockSummary.of(block).stored()},
                "$inc": {"count": 1, "rev": 1},
            },
        )
        if appended.matched_count:
            return number
        chunk = db[SUMMARY_CHUNKS].find_one({"_id": chunk_id(dataset, number)}, {"count": 1, "ids": 1})
        if chunk is None:
            with contextlib.suppress(DuplicateKeyError):
                db[SUMMARY_CHUNKS].insert_one(
                    {
                        "_id": chunk_id(dataset, number),
                        "dataset": dataset,
                        "n": number,
                        "count": 0,
                        "rev": 0,
                        "ids": [],
                        "entries": [],
                    }
                )
            db[DATASETS].update_one({"_id": dataset}, {"$max": {"last_chunk": number}})
        elif block["_id"] in chunk["ids"]:
            return number
        else:
            number += 1
    raise RuntimeError(f"could not place the summary of block {block['_id']}")


def _bump(db: Database, dataset: str, number: int) -> None:
    """Bumps the revision of the dataset's chunk ``number`` (rule 5)."""
    db[DATASETS].update_one(
        {"_id": dataset}, {"$inc": {f"{CHUNK_REVISIONS}.c{number}": 1}, "$max": {"last_chunk": number}}
    )


def sync_summary(db: Database, block_id: str) -> None:
    """Brings the block's summary in its chunk up to the block's current version."""
    for _ in range(MAX_RACES):
        block = db[BLOCKS].find_one({"_id": block_id})
        if block is None or block.get("chunk") is None:
            return
        number = block["chunk"]
        chunk = db[SUMMARY_CHUNKS].find_one({"_id": chunk_id(block["dataset"], number)})
        if chunk is None or block_id not in chunk["ids"]:
            return
        position = chunk["ids"].index(block_id)
        if BlockSummary.from_stored(chunk["entries"][position]).version >= block["v"]:
            return
        replaced = db[SUMMARY_CHUNKS].update_one(
            {"_id": chunk["_id"], "rev": chunk["rev"]},
            {"$set": {f"entries.{position}": BlockSummary.of(block).stored()}, "$inc": {"rev": 1}},
        )
        if replaced.matched_count:
            _bump(db, block["dataset"], number)
            return
    raise RuntimeError(f"the summary of block {block_id} kept changing")


def refresh(db: Database, block_ids: Iterable[str]) -> None:
    """Recomputes blocks whose items were updated in place: their ``type`` positions and column
    counts follow what the items hold now."""
    for block_id in dict.fromkeys(block_ids):
        _refresh_one(db, block_id)


def _refresh_one(db: Database, block_id: str) -> None:
    for _ in range(MAX_RACES):
        block = db[BLOCKS].find_one({"_id": block_id})
        if block is None:
            return
        version = {"_id": block_id, "v": block["v"]}
        if block["state"] == BlockState.PENDING:
            # Its writer is still on it: moving the version makes the writer recompute it from the items.
            if db[BLOCKS].update_one(version, {"$inc": {"v": 1}}).matched_count:
                return
            continue
        items = read_items(db, block["dataset"], block["keys"], {"row": 1, "w": 1})
        contents = block_contents(
            [items.get(key, {}).get("row", {}) for key in block["keys"]], _writes(items, block["keys"])
        )
        update = {"$set": contents, "$inc": {"v": 1}}
        if db[BLOCKS].update_one(version, update).matched_count:
            sync_summary(db, block_id)
            return
    raise RuntimeError(f"block {block_id} kept changing while being refreshed")


def patch_in_place(
    db: Database,
    dataset: str,
    keys: Sequence[str],
    known: Mapping[str, dict[str, Any]] | None = None,
    between: Callable[[], None] | None = None,
) -> None:
    """Brings the blocks of items just updated in place (these keys, after their writes) up to the
    items: each block's stored ``rows`` patched at those keys' positions, its ``type`` positions and
    column counts recounted from them, under the compare-and-set on ``v``; then their summaries.

    A block's rows are exact as of its ``v``, so a batch costs one read of its items and, per block
    it touches, one read and one write, however many items the block has and however large the
    dataset. Every in-place write of an item counts itself in the item's ``w``, and a block keeps the
    ``w`` of each row it took (``ws``): a row replaces the block's only when it is newer, so writers
    of the same items may apply their reads in any order (a writer whose compare-and-set loses reads
    the block again, not the items) and the block ends with the last write's row.

    ``known``: items as their writer knows it left them (``block``, ``seq``, ``row``, ``w``), not read
    again; a later write of one of them has a larger ``w``, so its row is the one a block keeps.
    ``between``: called after each group of blocks (the importer keeps its lease).
    """
    known = known or {}
    items = read_items(db, dataset, [key for key in keys if key not in known], {"block": 1, "seq": 1, "row": 1, "w": 1})
    items |= {key: known[key] for key in keys if key in known}
    located: dict[str, dict[str, dict[str, Any]]] = {}
    for key, item in items.items():
        if item.get("block"):
            located.setdefault(item["block"], {})[key] = item
    touched = list(located)
    patched: list[dict[str, Any]] = []
    for start in range(0, len(touched), BLOCKS_PER_READ):
        wanted = touched[start : start + BLOCKS_PER_READ]
        blocks = {block["_id"]: block for block in db[BLOCKS].find({"_id": {"$in": wanted}})}
        for block_id in wanted:
            block = blocks.get(block_id)
            for _ in range(MAX_RACES):
                if block is None:
                    break  # dropped for holding none of its keys: these items are in another block now
                outcome = _patch_once(db, block, located[block_id])
                if outcome is not None:
                    if outcome:
                        patched.append(outcome)
                    break
                block = db[BLOCKS].find_one({"_id": block_id})  # it moved on meanwhile
            else:
                raise RuntimeError(f"block {block_id} kept changing while being patched")
        if between is not None:
            between()
    _sync_summaries(db, dataset, patched)


def _patch_once(db: Database, block: dict[str, Any], items: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Patches the block as read with these items: the block as written when its summary is this
    writer's to sync (``{}`` otherwise), None when the block changed since it was read."""
    version = {"_id": block["_id"], "v": block["v"]}
    if block["state"] == BlockState.PENDING:
        # Its writer is still on it: moving the version makes the writer recompute it from the items.
        return {} if db[BLOCKS].update_one(version, {"$inc": {"v": 1}}).matched_count else None
    rows = unpack_rows(block)
    if rows is None:  # written before blocks carried their rows: recounted from all its items, read now
        current = read_items(db, block["dataset"], block["keys"], {"row": 1, "w": 1})
        rows = [current.get(key, {}).get("row", {}) for key in block["keys"]]
        writes = _writes(current, block["keys"])
        changed = True
    else:
        writes = [0] * len(rows)
        for position, w in block.get("ws", []):
            writes[position] = w
        changed = False
        positions = {key: position for position, key in enumerate(block["keys"])}
        for key, item in items.items():
            position = positions.get(key)
            # An item the block lists under another seq was re-created elsewhere after a revert took
            # the block's one out; that revert takes it out of this block too.
            if position is None or not inserted_by_block(item, block["seqs"][position]):
                continue
            w = item.get("w", 0)
            # Compared as stored: 1 and 1.0 are equal in Python, not in the rows the read model applies.
            differs = orjson.dumps(rows[position]) != orjson.dumps(item["row"])
            if w > writes[position] or (w == writes[position] == 0 and differs):
                rows[position], writes[position] = item["row"], w
                changed = True
    indexed = block["state"] == BlockState.INDEXED and block.get("chunk") is not None
    if not changed:
        # Its summary may still lag, behind a run that died between this write and its summary's.
        return block if indexed else {}
    contents = block_contents(rows, writes)
    if not db[BLOCKS].update_one(version, {"$set": contents, "$inc": {"v": 1}}).matched_count:
        return None
    if not indexed:
        # Committed, not yet indexed: ``place_summary`` places its summary, and syncs it if ``v`` moved meanwhile.
        sync_summary(db, block["_id"])
        return {}
    return {**block, **contents, "v": block["v"] + 1}


def _sync_summaries(db: Database, dataset: str, blocks: Sequence[dict[str, Any]]) -> None:
    """``sync_summary`` for many indexed blocks at once: one compare-and-set per chunk holding them."""
    by_chunk: dict[int, list[dict[str, Any]]] = {}
    for block in blocks:
        by_chunk.setdefault(block["chunk"], []).append(block)
    for number, members in by_chunk.items():
        for _ in range(MAX_RACES):
            chunk = db[SUMMARY_CHUNKS].find_one({"_id": chunk_id(dataset, number)})
            if chunk is None:
                break
            update = {}
            for block in members:
                if block["_id"] not in chunk["ids"]:
                    continue
                position = chunk["ids"].index(block["_id"])
                # Else a later writer's is there already.
                if BlockSummary.from_stored(chunk["entries"][position]).version < block["v"]:
                    update[f"entries.{position}"] = BlockSummary.of(block).stored()
            if not update:
                break
            replaced = db[SUMMARY_CHUNKS].update_one(
                {"_id": chunk["_id"], "rev": chunk["rev"]}, {"$set": update, "$inc": {"rev": 1}}
            )
            if replaced.matched_count:
                _bump(db, dataset, number)
                break
        else:
            raise RuntimeError(f"summary chunk {number} of {dataset} kept changing")


def block_ids_of(db: Database, dataset: str, keys: Sequence[str]) -> set[str]:
    """The ids of the blocks holding these keys' items."""
    return {item["block"] for item in read_items(db, dataset, keys, {"block": 1}).values() if item.get("block")}


def recover_job(db: Database, job_id: str) -> int:
    """Finishes the blocks a dead run of this job left pending or unindexed; how many there were."""
    # The unfinished states named, so that the ``job_state`` index finds them without reading the job's other blocks.
    states = {"$in": [BlockState.PENDING, BlockState.COMMITTED]}
    unfinished = list(db[BLOCKS].find({"job_id": job_id, "state": states}, {"_id": 1}, max_time_ms=QUERY_TIME_MS))
    for block in unfinished:
        finalize(db, block["_id"])
        place_summary(db, block["_id"])
    return len(unfinished)


def mark_relied_on(db: Database, dataset: str, job_id: str, keys: Sequence[str]) -> None:
    """Items another import found as they are (a duplicate in ``insert`` mode, a ``merge`` that changed
    nothing): that import relied on them, so a revert of the import that created them keeps them."""
    for start in range(0, len(keys), IDS_PER_READ):
        db[ITEMS].update_many(
            {
                "_id": {"$in": [item_id(dataset, key) for key in keys[start : start + IDS_PER_READ]]},
                "source.job_id": {"$ne": job_id},
            },
            {"$set": {"relied_on_by": job_id}},
        )


def revert_job(db: Database, job_id: str, *, dataset: str, last_seq: int, rows_read: int) -> tuple[int, int]:
    """Removes the items this (ended) job created that are still as it wrote them, and takes them out
    of its blocks and their summaries: (items removed, items it created that others changed since).
    ``dataset``, ``rows_read``: the job's; ``last_seq``: the highest ``seq`` given out so far.

    Idempotent: a run that died anywhere is finished by the next one, and the counts come out whole,
    since each block records how many of its keys the revert took out (``reverted``)."""
    recover_job(db, job_id)  # a cancelled or failed job may have left its last block pending
    removed = kept = 0
    for block_id in _job_blocks(db, job_id, dataset, last_seq, rows_read):
        block_removed, block_kept = _revert_block(db, block_id, job_id)
        removed += block_removed
        kept += block_kept
    return removed, kept


def _job_blocks(db: Database, job_id: str, dataset: str, last_seq: int, rows_read: int) -> list[str]:
    """The ids of the job's blocks: found by the ``job_state`` index when the job read at most
    ``BLOCKS_BY_JOB_ROWS`` rows (the store loads its few hundred blocks at once), else picked out
    of the dataset's blocks a slice at a time (``_blocks_of``): all of an 11M import's at once were
    2.5 GB in the store and 5 s of its one lock."""
    if rows_read <= BLOCKS_BY_JOB_ROWS:
        return [block["_id"] for block in db[BLOCKS].find({"job_id": job_id}, {"_id": 1}, max_time_ms=QUERY_TIME_MS)]
    return [block["_id"] for block in _blocks_of(db, dataset, last_seq, {"job_id": 1}) if block["job_id"] == job_id]


def _revert_block(db: Database, block_id: str, job_id: str) -> tuple[int, int]:
    block = db[BLOCKS].find_one({"_id": block_id})
    if block is None:
        return 0, 0
    dataset = block["dataset"]
    keys, seqs = block["keys"], block["seqs"]
    # The block's seq proves the job created the item, ``source.job_id`` that no one wrote it since (the
    # job itself may have: a key twice in an upsert file). The conditions sit in the delete itself, so
    # an upsert by another job that lands first is never lost, and one that lands after inserts anew.
    # An item another import relied on (``mark_relied_on``) stays too.
    for start in range(0, len(keys), IDS_PER_READ):
        db[ITEMS].delete_many(
            {
                "_id": {"$in": [item_id(dataset, key) for key in keys[start : start + IDS_PER_READ]]},
                "seq": {"$in": seqs[start : start + IDS_PER_READ]},
                "source.job_id": job_id,
                "relied_on_by": {"$exists": False},
            }
        )
    for _ in range(MAX_RACES):
        block = db[BLOCKS].find_one({"_id": block_id})
        if block is None:
            return 0, 0
        remaining = _membership(db, dataset, list(zip(block["keys"], block["seqs"], strict=True)))
        gone = len(block["keys"]) - len(remaining["keys"])
        if not gone:
            # Nothing more to take out, or a run that died after rewriting the block: its summary may lag.
            sync_summary(db, block_id)
            return block.get("reverted", 0), len(remaining["keys"])
        # Emptied, the block stays with n=0 in its chunk: readers' prefix sums pass over it.
        update = {"$set": remaining, "$inc": {"v": 1, "reverted": gone}}
        if db[BLOCKS].update_one({"_id": block_id, "v": block["v"]}, update).matched_count:
            sync_summary(db, block_id)
            return block.get("reverted", 0) + gone, len(remaining["keys"])
    raise RuntimeError(f"block {block_id} kept changing while being reverted")


def item_document(
    dataset: str, key: str, *, seq: int, block_id: str, row: dict[str, Any], job_id: str, line: int, now: datetime
) -> dict[str, Any]:
    """A catalog item as the worker inserts it (ARCHITECTURE.md, "The catalog layout")."""
    return {
        "_id": item_id(dataset, key),
        "dataset": dataset,
        "key": key,
        "seq": seq,
        "block": block_id,
        "row": row,
        "source": {"job_id": job_id, "line": line},
        "created_at": now,
        "updated_at": now,
    }


def append_items(db: Database, dataset: str, job_id: str, documents: list[dict[str, Any]], now: datetime) -> str:
    """Inserts items that already carry their ``seq`` (ascending, from one allocation), with their
    block: the migration of an older catalog, and test fixtures. Safe to run again after a crash:
    keys already there are left as they are, and the block is finished from what the store holds.
    Returns the block's id."""
    appended = catalog_layout.block_id(dataset, documents[0]["seq"])
    with contextlib.suppress(DuplicateKeyError):
        insert_pending(
            db,
            pending_block(
                dataset,
                job_id,
                documents[0]["seq"],
                [d["key"] for d in documents],
                [d["seq"] for d in documents],
                [d["row"] for d in documents],
                now,
            ),
        )
    with contextlib.suppress(BulkWriteError):
        db[ITEMS].insert_many([{**document, "block": appended} for document in documents], ordered=False)
    finalize(db, appended)
    place_summary(db, appended)
    return appended


def audit(db: Database, dataset: str) -> list[str]:
    """Every way the dataset's layout breaks the invariant (``catalog_layout``, whose rule each
    problem names); empty when pages and counts are exact.

    Reads everything: for tests and for checking a store by hand, never for serving.
    """
    problems: list[str] = []
    items = {item["key"]: item for item in db[ITEMS].find({"dataset": dataset}, {"key": 1, "seq": 1, "row": 1, "w": 1})}
    chunks = list(db[SUMMARY_CHUNKS].find({"dataset": dataset}))
    head = db[DATASETS].find_one({"_id": dataset}) or {}
    for chunk in chunks:
        if f"c{chunk['n']}" not in head.get(CHUNK_REVISIONS, {}):
            problems.append(f"chunk {chunk['n']} has no revision on the dataset (rule 5)")
    summaries = sorted(
        (BlockSummary.from_stored(entry) for chunk in chunks for entry in chunk["entries"]),
        key=lambda summary: summary.first_seq,
    )
    placed: list[str] = []
    for summary in summaries:
        block = db[BLOCKS].find_one({"_id": summary.block_id})
        if block is None or block["state"] != BlockState.INDEXED:
            problems.append(f"summary of block {summary.block_id} without an indexed block (rule 4)")
            continue
        if (current := BlockSummary.of(block)) != summary:
            problems.append(f"summary of block {summary.block_id} is stale: {summary} != {current} (rule 4)")
        rows = []
        for key, seq in zip(block["keys"], block["seqs"], strict=True):
            item = items.get(key)
            if not inserted_by_block(item, seq):
                problems.append(f"block {summary.block_id} lists {key!r} at seq {seq}, which no item has (rule 1)")
            rows.append(item["row"] if item else {})
            placed.append(key)
        if [block["types"], block["columns"]] != list(types_and_columns(rows)):
            problems.append(f"block {summary.block_id} type or column counts differ from its items (rule 3)")
        # Their columns in the same order too: the read model serves a row's JSON as the block has it.
        if [list(row.items()) for row in unpack_rows(block) or []] != [list(row.items()) for row in rows]:
            problems.append(f"block {summary.block_id} carries rows that differ from its items (rule 3)")
        for position, w in block.get("ws", []):
            if w > items.get(block["keys"][position], {}).get("w", 0):
                key = block["keys"][position]
                problems.append(f"block {summary.block_id} took a write of {key!r} its item never had (rule 3)")
    seqs = [items[key]["seq"] for key in placed if key in items]
    if seqs != sorted(seqs):
        problems.append("blocks are not in import order (rule 2)")
    if len(placed) != len(set(placed)):
        problems.append("a key is placed twice (rule 2)")
    if missing := items.keys() - set(placed):
        problems.append(f"{len(missing)} item(s) in no block, e.g. {sorted(missing)[:3]} (rule 2)")
    if unfinished := db[BLOCKS].count_documents({"dataset": dataset, "state": {"$ne": BlockState.INDEXED}}):
        problems.append(f"{unfinished} block(s) not indexed (rule 4)")
    return problems


def delete_dataset(
    db: Database,
    dataset: str,
    *,
    last_seq: int,
    renew: Callable[[], None] | None = None,
    held: dict[str, Any] | None = None,
) -> int:
    """Removes a dataset's items block by block (each a few ``$in`` deletes, never a scan of the
    catalog), then its blocks, summaries and the dataset itself; how many items it removed.
    ``last_seq``: the highest ``seq`` given out so far (``_blocks_of``).

    ``renew`` runs before each block (the deleting worker's lease: it raises once the lease is lost),
    and ``held`` conditions the removal of the dataset's document on that lease.
    Readers see the dataset until its document goes, last: pages read meanwhile may come back
    short, never with another dataset's items."""
    removed = 0
    for block in _blocks_of(db, dataset, last_seq, {"keys": 1}):
        if renew is not None:
            renew()
        ids = [item_id(dataset, key) for key in block["keys"]]
        for start in range(0, len(ids), IDS_PER_READ):
            removed += db[ITEMS].delete_many({"_id": {"$in": ids[start : start + IDS_PER_READ]}}).deleted_count
        db[BLOCKS].delete_one({"_id": block["_id"]})
    db[SUMMARY_CHUNKS].delete_many({"dataset": dataset})
    db[DATASETS].delete_one({"_id": dataset, **(held or {})})
    return removed


def _blocks_of(db: Database, dataset: str, last_seq: int, projection: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The dataset's blocks, ``SEQ_SLICE`` numbers of ``seq`` at a time (the ``dataset_seq`` index), up
    to ``last_seq``, then any a later number holds. One find of them all makes SecantusDB load every
    block before it returns the first: at 11,000,000 items, 2.5 GB and 14 s of its one lock, which
    every other reader waits for; a slice is about a hundred blocks."""
    low = 0
    while low <= last_seq or (
        later := db[BLOCKS].find_one({"dataset": dataset, "seq": {"$gte": low}}, {"seq": 1}, max_time_ms=QUERY_TIME_MS)
    ):
        if low > last_seq:
            last_seq = later["seq"]  # written after ``last_seq`` was read: the slices go on up to it
        in_slice = {"dataset": dataset, "seq": {"$gte": low, "$lt": low + SEQ_SLICE}}
        yield from list(db[BLOCKS].find(in_slice, projection, max_time_ms=QUERY_TIME_MS))
        low += SEQ_SLICE
