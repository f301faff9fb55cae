"""Keeps this process's read model in step with the catalog layout in MongoDB.

The layout is the change feed: every write that changes a block's items (an insert, an upsert or
merge in place, a revert, a late commit) gives the block a new version ``v``, which its summary in
the dataset's chunks carries, and the block document carries its rows as of that version. So a
dataset's table is current when every summary's version is one the table has applied: the blocks
that are not are read (one point read each, their rows included) and their rows replaced.

A request first brings the table up to what the store held when it began (its ``DatasetView``):
a few blocks behind (an import's last batches) it applies them itself, so a job that reads
``Success`` is in every answer; further behind (a new replica, a rebuild) it is refused with a 503
while the background loop catches up, never answered from a scan or from a stale table.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from catalog_service import queries, storage
from catalog_service.index import CatalogIndex, DatasetView, find_by_ids
from catalog_service.read_model import AppliedBlock, DatasetTable, ReadModel
from catalog_service.schemas import KEY_COLUMN, SortOrder
from service_common.catalog_layout import BLOCKS, CHUNK_REVISIONS, ITEMS, item_id, unpack_rows

log = logging.getLogger(__name__)

# How many blocks (about 1,000 items each) a request applies itself before answering; a table further
# behind is caught up by the background loop, which applies this many blocks per transaction.
INLINE_BLOCKS = 100
BLOCKS_PER_STEP = 20
# Blocks carry their rows: a few per read keep each answer of the store small.
BLOCKS_PER_READ = 10
POLL_SECONDS = 1.0
WAIT_STEP_SECONDS = 0.05
# A dataset's order tables are built once its rows have not changed for this long: not during an
# import, whose every batch would leave them stale.
ORDER_SETTLE_SECONDS = 5.0
# An order table that could not be built is not tried again for this long.
ORDER_RETRY_SECONDS = 60.0


class ReadModelBehind(Exception):
    """The dataset's table is too far behind the store to answer now: being rebuilt or caught up."""

    def __init__(self, dataset: str, applied: int, total: int) -> None:
        super().__init__(dataset)
        self.dataset, self.applied, self.total = dataset, applied, total


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


class Projector:
    def __init__(self, model: ReadModel, index: CatalogIndex, *, store_budget_ms: int) -> None:
        self._model = model
        self._index = index
        self._store_budget_ms = store_budget_ms
        self._locks: dict[str, asyncio.Lock] = {}
        # Per dataset, the chunk revisions the table was last seen complete at: nothing to compare.
        self._synced: dict[str, tuple[str, dict[str, int]]] = {}
        self._wake = asyncio.Event()
        # Per dataset, the columns a sorted page asked an order table of, and when its rows last changed.
        self._wanted: dict[str, set[str]] = {}
        self._changed_at: dict[str, float] = {}
        self._failed_at: dict[tuple[str, str], float] = {}
        # Per dataset, the table and version at which its order tables were last all found current.
        self._orders_checked: dict[str, tuple[DatasetTable, int]] = {}
        # Count tables, likewise: the split ones asked for, the columns kept without one (the key and
        # the searched column: a value per row, nothing to chart), when a build failed, and the
        # table and version at which all were last found current.
        self._wanted_counts: dict[str, set[str]] = {}
        self._uncounted: dict[str, set[str]] = {}
        self._counts_failed_at: dict[tuple[str, str, bool], float] = {}
        self._counts_checked: dict[str, tuple[DatasetTable, int]] = {}

    def _lock(self, dataset: str) -> asyncio.Lock:
        return self._locks.setdefault(dataset, asyncio.Lock())

    async def table_for(self, db: AsyncDatabase, view: DatasetView, *, patience: float) -> DatasetTable:
        """The dataset's table, holding at least what the store held when ``view`` was read. Further
        behind than a request should catch up itself, it waits up to ``patience`` seconds for the
        background loop, then raises ``ReadModelBehind``."""
        revisions = (_iso(view.head.get("created_at")), view.head.get(CHUNK_REVISIONS, {}))
        if self._synced.get(view.name) == revisions:
            return self._model.tables[view.name]
        loop = asyncio.get_running_loop()
        give_up = loop.time() + patience
        while len(stale := self._behind(view)[0]) > INLINE_BLOCKS:
            if loop.time() >= give_up:
                raise ReadModelBehind(view.name, len(view.entries) - len(stale), len(view.entries))
            self._wake.set()
            await asyncio.sleep(WAIT_STEP_SECONDS)
        async with self._lock(view.name):
            await self._catch_up(db, view, steps=None)
        return self._model.tables[view.name]

    def _behind(self, view: DatasetView) -> tuple[list[str], list[str]]:
        """The blocks whose rows the table lacks or holds at an older version, and the blocks it holds
        that the dataset no longer lists."""
        table = self._model.tables.get(view.name)
        if table is None or table.created_at != _iso(view.head.get("created_at")):
            return [entry.block_id for entry in view.entries], []
        stale = [entry.block_id for entry in view.entries if table.blocks.get(entry.block_id, -1) < entry.version]
        removed = []
        if len(table.blocks) + len(stale) > len(view.entries):
            listed = {entry.block_id for entry in view.entries}
            removed = [block for block in table.blocks if block not in listed]
        return stale, removed

    async def _catch_up(self, db: AsyncDatabase, view: DatasetView, *, steps: int | None) -> None:
        """Applies what the table lacks of ``view``, ``BLOCKS_PER_STEP`` blocks per transaction; with
        ``steps``, stops after that many (the caller holds the dataset's lock meanwhile)."""
        created_at = _iso(view.head.get("created_at"))
        table = self._model.tables.get(view.name)
        if table is None or table.created_at != created_at:
            await asyncio.to_thread(self._model.reset, view.name, created_at)
        stale, removed = self._behind(view)
        done = 0
        while stale or removed:
            step, stale = stale[:BLOCKS_PER_STEP], stale[BLOCKS_PER_STEP:]
            blocks, gone = await self._read_blocks(db, view.name, step)
            await asyncio.to_thread(self._model.apply, view.name, blocks, [*removed, *gone])
            self._changed_at[view.name] = asyncio.get_running_loop().time()
            removed = []
            done += 1
            if steps is not None and done >= steps and stale:
                return
        self._synced[view.name] = (created_at, dict(view.head.get(CHUNK_REVISIONS, {})))

    async def _read_blocks(
        self, db: AsyncDatabase, dataset: str, ids: Sequence[str]
    ) -> tuple[list[AppliedBlock], list[str]]:
        """The blocks as the store holds them now (their rows as of their version), and the ids of
        those it no longer holds."""
        found: dict[str, AppliedBlock] = {}
        projection = {"seq": 1, "v": 1, "keys": 1, "seqs": 1, "rows": 1}
        budget_ms = self._store_budget_ms
        async for block in find_by_ids(db[BLOCKS], ids, projection, budget_ms=budget_ms, per_read=BLOCKS_PER_READ):
            rows = unpack_rows(block)
            if rows is None:  # written before blocks carried their rows
                rows = await self._rows_from_items(db, dataset, block["keys"])
            found[block["_id"]] = AppliedBlock(
                block["_id"], block["seq"], block["v"], block["keys"], block["seqs"], rows
            )
        return [found[block] for block in ids if block in found], [block for block in ids if block not in found]

    async def _rows_from_items(self, db: AsyncDatabase, dataset: str, keys: list[str]) -> list[dict[str, Any]]:
        ids = [item_id(dataset, key) for key in keys]
        found = find_by_ids(db[ITEMS], ids, {"key": 1, "row": 1}, budget_ms=self._store_budget_ms)
        rows = {item["key"]: item["row"] async for item in found}
        return [rows.get(key, {}) for key in keys]

    async def run(self, db: AsyncDatabase) -> None:
        """The background loop: every dataset caught up, tables of deleted datasets dropped."""
        task = asyncio.current_task()
        while True:
            try:
                await self._pass(db)
            except (PyMongoError, OSError) as exc:
                # PyMongo may turn the task's cancellation into an error of its own: it still stops the loop.
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                log.warning("Read model: the store did not answer (%s); trying again", exc)
            except Exception:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
                log.exception("Read model: catching up failed; trying again")
            if task is not None and task.cancelling():
                # A cancellation PyMongo swallowed while the pass awaited it: stop all the same.
                raise asyncio.CancelledError
            self._wake.clear()
            # Not asyncio.wait_for, which on Python 3.11 may swallow the task's cancellation at shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()

    def want_order(self, dataset: str, column: str) -> None:
        """A page sorted by ``column`` over the whole dataset found no current order table: build one."""
        self._wanted.setdefault(dataset, set()).add(column)

    def want_counts(self, dataset: str, column: str) -> None:
        """A facet of the whole dataset split ``column``'s lists and found no current count table."""
        self._wanted_counts.setdefault(dataset, set()).add(column)

    async def keep_orders(self) -> None:
        """The derived tables' loop: builds the order tables asked for and the count tables of every
        column, and rebuilds those the rows have changed since, of each dataset whose rows have
        settled; one at a time, beside the catch-up loop."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            for name in list(self._model.tables):
                if loop.time() - self._changed_at.get(name, -ORDER_SETTLE_SECONDS) < ORDER_SETTLE_SECONDS:
                    continue
                try:
                    await self._build_orders(name)
                    await self._build_counts(name)
                except Exception:
                    log.exception("Read model: building the derived tables of %s failed; trying again", name)

    async def _build_orders(self, name: str) -> None:
        table = self._model.tables.get(name)
        if table is None:
            return
        version = table.version
        checked = self._orders_checked.get(name)
        if checked is not None and checked[0] is table and checked[1] == version and not self._wanted.get(name):
            return  # nothing asked for, and no row changed since every order table was found current
        names = {queries.order_column(table, column): column for column in [*table.columns, KEY_COLUMN]}
        orders = await asyncio.to_thread(self._model.orders, name)
        stale = {names[chosen] for chosen, fresh in orders.items() if not fresh and chosen in names}
        current = {chosen for chosen, fresh in orders.items() if fresh}
        wanted = {column for column in self._wanted.pop(name, set()) if queries.order_column(table, column) is not None}
        now = asyncio.get_running_loop().time()
        for column in sorted(stale | (wanted - {names.get(chosen) for chosen in current})):
            if self._model.tables.get(name) is not table:
                return  # the dataset was created anew meanwhile
            if now - self._failed_at.get((name, column), -ORDER_RETRY_SECONDS) < ORDER_RETRY_SECONDS:
                continue
            order = queries.sort_order(table, SortOrder(column=column))
            started = asyncio.get_running_loop().time()
            built = await asyncio.to_thread(
                self._model.build_order,
                name,
                queries.order_column(table, column),
                queries.order_key(table, column),
                order.order_by,
            )
            if built:
                took = asyncio.get_running_loop().time() - started
                log.info("Read model: %s in the order of %s kept (%.1f s)", name, column, took)
            else:
                self._failed_at[(name, column)] = asyncio.get_running_loop().time()
        if not any(key[0] == name for key in self._failed_at):
            self._orders_checked[name] = (table, version)

    async def _build_counts(self, name: str) -> None:
        table = self._model.tables.get(name)
        if table is None or name not in self._uncounted:
            return  # not yet seen by the loop, which learns which columns get none
        version = table.version
        if self._counts_checked.get(name) == (table, version) and not self._wanted_counts.get(name):
            return  # nothing asked for, and no row changed since every count table was found current
        kept = await asyncio.to_thread(self._model.counts, name)
        names = {queries.order_column(table, column): column for column in table.columns}
        wanted = {(column, False) for column in table.columns if column not in self._uncounted.get(name, set())}
        wanted |= {(column, True) for column in self._wanted_counts.pop(name, set()) if column in table.columns}
        wanted |= {(names[chosen], split) for chosen, split in kept if split and chosen in names}
        now = asyncio.get_running_loop().time()
        for column, split in sorted(wanted):
            chosen = queries.order_column(table, column)
            if chosen is None or kept.get((chosen, split)):
                continue
            if self._model.tables.get(name) is not table:
                return  # the dataset was created anew meanwhile
            if now - self._counts_failed_at.get((name, column, split), -ORDER_RETRY_SECONDS) < ORDER_RETRY_SECONDS:
                continue
            source, _ = queries.grouped(table, queries.Selection(queries.WHOLE, []), column, split, seqs=not split)
            started = asyncio.get_running_loop().time()
            if await asyncio.to_thread(self._model.build_counts, name, chosen, split, source):
                took = asyncio.get_running_loop().time() - started
                log.info("Read model: %s counts of %s kept (%.1f s)", name, column, took)
                self._counts_failed_at.pop((name, column, split), None)
            else:
                self._counts_failed_at[(name, column, split)] = asyncio.get_running_loop().time()
        if not any(key[0] == name for key in self._counts_failed_at):
            self._counts_checked[name] = (table, version)

    async def _pass(self, db: AsyncDatabase) -> None:
        names = await storage.list_datasets(db)
        for name in names:
            view = await self._index.view(db, name)
            if view is None:
                continue
            # The key's values are each row's own: nothing to count. (The searched column's count
            # table counts a ``q``: each title once, however many rows hold it.)
            self._uncounted[name] = {view.head.get("key")} - {None}
            stale, removed = self._behind(view)
            table = self._model.tables.get(name)
            if not stale and not removed and table is not None:
                self._synced[name] = (_iso(view.head.get("created_at")), dict(view.head.get(CHUNK_REVISIONS, {})))
                continue
            log.info("Read model of %s: %d block(s) to apply", name, len(stale))
            # One step per hold of the lock, so that a request's own catch-up waits for one step at most.
            for _ in range(len(stale) // BLOCKS_PER_STEP + 2):
                async with self._lock(name):
                    await self._catch_up(db, view, steps=1)
                if self._synced.get(name, ("", {}))[1] == view.head.get(CHUNK_REVISIONS, {}):
                    break
        for name in set(self._model.tables) - set(names):
            async with self._lock(name):
                # Listed before a request may have made its table: gone only if the store says so now.
                if await self._index.view(db, name) is None and name in self._model.tables:
                    await asyncio.to_thread(self._model.drop, name)
                    self._synced.pop(name, None)
