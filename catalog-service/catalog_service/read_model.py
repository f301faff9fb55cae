"""The read model: each dataset's items as one table of an embedded DuckDB database, which answers
every question but import-order pages and point reads (sorts, filters, ``q``, counts, facets, export).

Derived and disposable: MongoDB is the source of truth, and ``projector.py`` keeps each table in step
with the catalog layout block by block (a block's rows travel with it, ``catalog_layout.pack_rows``).
The database is this process's own (a file per process, or memory): replicas never share one.

A row's columns are stored three ways so that one table serves every type a column may mix: ``t<i>``
is the value's kind (0 null or missing, 1 number, 2 text, which is also MongoDB's sort order of
them), ``n<i>`` the number, ``s<i>`` the text. ``row`` is the item as the API shows it (JSON).
"""

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson
import pyarrow as pa

from catalog_service.schemas import KEY_COLUMN
from service_common.catalog_layout import public_row

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bumped when the tables' shape changes: a database of another version is dropped and rebuilt.
SCHEMA_VERSION = 3
NULL, NUMBER, TEXT = 0, 1, 2
# The bits of ``DatasetTable.kinds``: a column has held a number, a text.
HAS_NUMBER, HAS_TEXT = 1, 2
# Rows an export fetches at a time: its memory stays flat whatever the number of rows.
EXPORT_CHUNK_ROWS = 5_000


class QueryBudgetExceeded(Exception):
    """A read did not finish within the time budget; the engine's work on it was interrupted."""


class TableChanged(Exception):
    """The dataset's table went away while a read was on it: asking again gets the new one."""


@dataclass(frozen=True)
class AppliedBlock:
    """A block as the read model takes it: its id, first ``seq``, version, and the items it holds."""

    block_id: str
    first_seq: int
    version: int
    keys: list[str]
    seqs: list[int]
    rows: list[dict[str, Any]]  # stored rows; ``ReadModel.apply`` turns them into the columns the API names


@dataclass
class DatasetTable:
    """What this process knows of one dataset's table, kept in memory beside the database."""

    name: str
    created_at: str
    columns: dict[str, int] = field(default_factory=dict)  # column -> its number i (t<i>, n<i>, s<i>)
    # Column -> HAS_NUMBER | HAS_TEXT: which kinds of value it has held. Only ever grows, and is set
    # before the rows that grow it are committed, so a reader sees at least what its snapshot holds.
    kinds: dict[str, int] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)  # block id -> the version applied
    # Bumped by every change, so that answers derived from the table may be cached against it.
    version: int = 0

    @property
    def table(self) -> str:
        # Dataset names are [a-z0-9-]: quoted, every one is a safe identifier.
        return f'"items_{self.name}"'


def order_table(name: str, column: str) -> str:
    """The table holding a dataset's rows in a column's order (the column by its number in the items
    table, or ``key``): a safe identifier, as dataset names are [a-z0-9-]."""
    return f'"order_{name}_{column}"'


def count_table(name: str, column: str, split: bool) -> str:
    """The table holding how many rows hold each value of a dataset's column (``split``: each item of
    its lists), over the whole dataset (the column as ``order_table`` names it): a safe identifier."""
    return f'"{"splits" if split else "counts"}_{name}_{column}"'


def kind_of(value: Any) -> tuple[int, float | None, str | None]:
    """A stored value as the read model keeps it: (kind, number, text)."""
    if value is None:
        return NULL, None, None
    if isinstance(value, str):
        return TEXT, None, value
    return NUMBER, float(value), None


class ReadModel:
    """The DuckDB database of one catalog-service process."""

    def __init__(self, path: Path | None, *, memory_limit: str, threads: int, max_queries: int) -> None:
        config = {"memory_limit": memory_limit, "threads": threads}
        # Where the engine spills what passes memory_limit (a large sort): beside a file, else a
        # folder of this process's own, never the working directory.
        self._spill: str | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self._spill = config["temp_directory"] = tempfile.mkdtemp(prefix="catalog-read-model-")
        self._db = duckdb.connect(str(path) if path is not None else ":memory:", config=config)
        self._slots = asyncio.Semaphore(max_queries)
        # Exports hold their query for as long as the client reads: slots of their own.
        self._export_slots = asyncio.Semaphore(max_queries)
        self.tables: dict[str, DatasetTable] = {}
        # Held by each write (one at a time, from the projector's threads) and by ``close``.
        self._writing = threading.Lock()
        # Held while an order table is built (one at a time), whose cursor ``close`` interrupts.
        self._building = threading.Lock()
        self._building_cursor: duckdb.DuckDBPyConnection | None = None
        self._open()

    def _open(self) -> None:
        db = self._db
        db.execute("CREATE TABLE IF NOT EXISTS rm_meta (schema_version INTEGER)")
        found = db.execute("SELECT schema_version FROM rm_meta").fetchone()
        if found is not None and found[0] != SCHEMA_VERSION:
            log.warning("Read model of schema %s: dropping it to rebuild", found[0])
            for (name,) in db.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                db.execute(f'DROP TABLE "{name}"')
            db.execute("CREATE TABLE rm_meta (schema_version INTEGER)")
            found = None
        if found is None:
            db.execute("INSERT INTO rm_meta VALUES (?)", [SCHEMA_VERSION])
        # ``changes`` counts the transactions that changed the dataset's rows: an order table built at
        # the same count holds the order of the very rows a snapshot sees.
        db.execute(
            "CREATE TABLE IF NOT EXISTS rm_datasets (name VARCHAR PRIMARY KEY, created_at VARCHAR, changes BIGINT)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS rm_orders (dataset VARCHAR, col VARCHAR, changes BIGINT, "
            "PRIMARY KEY (dataset, col))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS rm_counts (dataset VARCHAR, col VARCHAR, split BOOLEAN, changes BIGINT, "
            "PRIMARY KEY (dataset, col, split))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS rm_columns (dataset VARCHAR, name VARCHAR, number INTEGER, "
            "kinds UTINYINT, PRIMARY KEY (dataset, name))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS rm_blocks (dataset VARCHAR, block VARCHAR, v BIGINT, "
            "PRIMARY KEY (dataset, block))"
        )
        # A count table written before count tables kept their lowered text and their rows' ``seq`` is
        # not current: rebuilt from the rows by the derived tables' loop, the scan answering meanwhile.
        (outdated,) = db.execute(
            "DELETE FROM rm_counts WHERE NOT split AND (SELECT count(*) FROM duckdb_columns() "
            "WHERE table_name = 'counts_' || dataset || '_' || col AND column_name IN ('ls', 'seqs')) < 2"
        ).fetchone()
        if outdated:
            log.info("Read model: %d count table(s) of an earlier version, to rebuild", outdated)
        for name, created_at in db.execute("SELECT name, created_at FROM rm_datasets").fetchall():
            self.tables[name] = DatasetTable(name, created_at)
        for dataset, name, number, kinds in db.execute(
            "SELECT dataset, name, number, kinds FROM rm_columns"
        ).fetchall():
            self.tables[dataset].columns[name] = number
            self.tables[dataset].kinds[name] = kinds
        for dataset, block, version in db.execute("SELECT dataset, block, v FROM rm_blocks").fetchall():
            self.tables[dataset].blocks[block] = version

    def close(self) -> None:
        building = self._building_cursor
        if building is not None:
            building.interrupt()  # an order table being built is not waited for
        with self._writing, self._building:  # a write still running in its thread (its task cancelled) ends first
            self._db.close()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)

    # Writing: only the projector, one dataset at a time, each call one transaction.

    def reset(self, name: str, created_at: str) -> DatasetTable:
        """An empty table for the dataset (created anew: deleted and created again under its name)."""
        with self._writing:
            return self._reset(name, created_at)

    def _reset(self, name: str, created_at: str) -> DatasetTable:
        cursor = self._db.cursor()
        try:
            cursor.begin()
            self._drop(cursor, name)
            cursor.execute("INSERT INTO rm_datasets VALUES (?, ?, 0)", [name, created_at])
            table = DatasetTable(name, created_at)
            cursor.execute(f"CREATE TABLE {table.table} (seq BIGINT, blk BIGINT, key VARCHAR, row VARCHAR)")
            cursor.commit()
        finally:
            cursor.close()
        self.tables[name] = table
        return table

    def drop(self, name: str) -> None:
        with self._writing:
            self._drop_now(name)

    def _drop_now(self, name: str) -> None:
        cursor = self._db.cursor()
        try:
            cursor.begin()
            self._drop(cursor, name)
            cursor.commit()
        finally:
            cursor.close()
        self.tables.pop(name, None)

    @staticmethod
    def _drop(cursor: duckdb.DuckDBPyConnection, name: str) -> None:
        cursor.execute(f'DROP TABLE IF EXISTS "items_{name}"')
        for (column,) in cursor.execute("SELECT col FROM rm_orders WHERE dataset = ?", [name]).fetchall():
            cursor.execute(f"DROP TABLE IF EXISTS {order_table(name, column)}")
        for column, split in cursor.execute("SELECT col, split FROM rm_counts WHERE dataset = ?", [name]).fetchall():
            cursor.execute(f"DROP TABLE IF EXISTS {count_table(name, column, split)}")
        for meta in ("rm_columns", "rm_blocks", "rm_orders", "rm_counts"):
            cursor.execute(f"DELETE FROM {meta} WHERE dataset = ?", [name])
        cursor.execute("DELETE FROM rm_datasets WHERE name = ?", [name])

    def apply(self, name: str, blocks: list[AppliedBlock], removed: Iterable[str] = ()) -> None:
        """Replaces the rows of these blocks by what they hold now, and removes those of ``removed``."""
        with self._writing:
            self._apply(name, blocks, removed)

    def _apply(self, name: str, blocks: list[AppliedBlock], removed: Iterable[str]) -> None:
        table = self.tables[name]
        removed = [block for block in removed if block in table.blocks]
        new_columns: dict[str, int] = {}
        for block in blocks:
            block.rows[:] = [public_row(row) for row in block.rows]
            for row in block.rows:
                for column in row:
                    if column not in table.columns and column not in new_columns:
                        new_columns[column] = len(table.columns) + len(new_columns)
        columns = {**table.columns, **new_columns}
        rows, kinds = _arrow_rows(blocks, columns)
        grown = {name: kinds[name] | table.kinds.get(name, 0) for name in kinds}
        grown = {name: bits for name, bits in grown.items() if bits != table.kinds.get(name, 0)}
        cursor = self._db.cursor()
        try:
            cursor.begin()
            for column, number in new_columns.items():
                cursor.execute(f"ALTER TABLE {table.table} ADD COLUMN t{number} UTINYINT DEFAULT 0")
                cursor.execute(f"ALTER TABLE {table.table} ADD COLUMN n{number} DOUBLE")
                cursor.execute(f"ALTER TABLE {table.table} ADD COLUMN s{number} VARCHAR")
                cursor.execute("INSERT INTO rm_columns VALUES (?, ?, ?, 0)", [name, column, number])
            first_seqs = [block.first_seq for block in blocks]
            first_seqs += [int(block.rsplit(":", 1)[1]) for block in removed]
            if first_seqs:
                cursor.execute(f"DELETE FROM {table.table} WHERE blk IN (SELECT unnest(?))", [first_seqs])
            for column, bits in grown.items():
                cursor.execute("UPDATE rm_columns SET kinds = ? WHERE dataset = ? AND name = ?", [bits, name, column])
            # Before the rows are visible: a reader may see more kinds than its snapshot holds, never fewer.
            table.kinds.update(grown)
            if rows.num_rows:
                cursor.register("incoming", rows)
                cursor.execute(f"INSERT INTO {table.table} BY NAME SELECT * FROM incoming")
                cursor.unregister("incoming")
            cursor.execute("UPDATE rm_datasets SET changes = changes + 1 WHERE name = ?", [name])
            versions = [[name, block.block_id, block.version] for block in blocks]
            cursor.execute(
                "DELETE FROM rm_blocks WHERE dataset = ? AND block IN (SELECT unnest(?))",
                [name, [block.block_id for block in blocks] + removed],
            )
            if versions:
                cursor.executemany("INSERT INTO rm_blocks VALUES (?, ?, ?)", versions)
            cursor.commit()
        except BaseException:
            cursor.rollback()
            raise
        finally:
            cursor.close()
        table.columns = columns
        for block in blocks:
            table.blocks[block.block_id] = block.version
        for block in removed:
            table.blocks.pop(block, None)
        table.version += 1

    def build_order(self, name: str, column: str, key: tuple[str, str, str], ascending: str) -> bool:
        """Writes the table's rows in the column's ascending order (``ascending``: SQL over the items
        table), with their sort key (``key``: its kind, number and text), as an order table of their
        own, and records the dataset's change count it was built at; all in one transaction, so the
        order is exactly that of the rows at that count. False when the table changed shape or went
        away meanwhile (build it again later)."""
        table = self.tables.get(name)
        if table is None:
            return False
        kind, number, text = key
        create = (
            f"CREATE OR REPLACE TABLE {order_table(name, column)} AS SELECT "
            f"(row_number() OVER (ORDER BY {ascending}) - 1)::BIGINT AS pos, seq, {kind}::UTINYINT AS k, "
            f"{number}::DOUBLE AS n, {text}::VARCHAR AS s FROM {table.table} ORDER BY pos"
        )
        return self._build(name, [create], "INSERT OR REPLACE INTO rm_orders VALUES (?, ?, ?)", [name, column])

    def build_counts(self, name: str, column: str, split: bool, grouped: str) -> bool:
        """Writes what ``grouped`` (SQL over the items table, without parameters: per value of the
        column, ``k``, ``n``, ``s``, its count ``c`` and, unless ``split``, its rows' ``seqs``) gives as
        the column's count table, recording the change count it was built at, as ``build_order`` does."""
        counts = count_table(name, column, split)
        if split:
            create = [f"CREATE OR REPLACE TABLE {counts} AS {grouped}"]
        else:
            # Beside each text, the text lowered (``ls``) for the ``contains``/``startswith``/``endswith``
            # filters and ``q`` counted from it, uncompressed: matching 1.5M distinct titles costs 26 ms
            # read as they are, 62 ms through the engine's string compression, 77 ms lowering them.
            create = [
                f"CREATE OR REPLACE TABLE {counts} (k UTINYINT, n DOUBLE, s VARCHAR, c BIGINT, "
                f"ls VARCHAR USING COMPRESSION uncompressed, seqs BIGINT[])",
                f"INSERT INTO {counts} SELECT k, n, s, c, CASE WHEN k = {TEXT} THEN lower(s) END, seqs "
                f"FROM ({grouped})",
            ]
        return self._build(name, create, "INSERT OR REPLACE INTO rm_counts VALUES (?, ?, ?, ?)", [name, column, split])

    def _build(self, name: str, create: list[str], record: str, names: list[Any]) -> bool:
        """``create``'s statements, then ``record`` with ``names`` and the dataset's change count, in one transaction
        (one build at a time, interrupted by ``close``)."""
        with self._building:
            if name not in self.tables:
                return False
            cursor = self._building_cursor = self._db.cursor()
            try:
                cursor.begin()
                found = cursor.execute("SELECT changes FROM rm_datasets WHERE name = ?", [name]).fetchone()
                if found is None:
                    return False
                for statement in create:
                    cursor.execute(statement)
                cursor.execute(record, [*names, found[0]])
                cursor.commit()
                return True
            except duckdb.InterruptException:
                return False
            except duckdb.Error as exc:
                # Changed or dropped meanwhile, or past the engine's memory: reads keep their scan.
                log.warning("Read model: a derived table of %s was not kept (%s)", name, exc)
                with contextlib.suppress(duckdb.Error):
                    cursor.rollback()
                return False
            finally:
                self._building_cursor = None
                cursor.close()

    def orders(self, name: str) -> dict[str, bool]:
        """The dataset's order tables, by column: whether each holds the rows as they are (or the rows
        have changed since it was built)."""
        cursor = self._db.cursor()
        try:
            found = cursor.execute(
                "SELECT o.col, o.changes = d.changes FROM rm_orders o JOIN rm_datasets d ON d.name = o.dataset "
                "WHERE o.dataset = ?",
                [name],
            )
            return dict(found.fetchall())
        finally:
            cursor.close()

    def counts(self, name: str) -> dict[tuple[str, bool], bool]:
        """The dataset's count tables, by (column, split): whether each holds the rows as they are."""
        cursor = self._db.cursor()
        try:
            found = cursor.execute(
                "SELECT c.col, c.split, c.changes = d.changes FROM rm_counts c "
                "JOIN rm_datasets d ON d.name = c.dataset WHERE c.dataset = ?",
                [name],
            )
            return {(column, split): fresh for column, split, fresh in found.fetchall()}
        finally:
            cursor.close()

    # Reading: any number of requests at once, each with its own cursor and a time budget.

    async def run(self, work: Callable[[duckdb.DuckDBPyConnection], T], deadline: float) -> T:
        """``work(cursor)`` in a worker thread, interrupted at ``deadline`` (the event loop's clock) or
        when the request goes away; waiting for a free slot counts towards the deadline."""
        loop = asyncio.get_running_loop()
        await _acquire(self._slots, deadline)
        cursor = self._db.cursor()
        timer = loop.call_at(deadline, cursor.interrupt)
        try:
            return await asyncio.to_thread(_in_snapshot, work, cursor)
        except duckdb.InterruptException:
            raise QueryBudgetExceeded from None
        except duckdb.CatalogException as exc:
            # Its table dropped meanwhile (the dataset deleted, or created again under its name).
            raise TableChanged from exc
        except asyncio.CancelledError:
            cursor.interrupt()  # the client went away: the engine stops too
            raise
        finally:
            timer.cancel()
            self._slots.release()
            loop.call_soon(_close_quietly, cursor)

    async def stream(
        self, next_chunk: Callable[[duckdb.DuckDBPyConnection], list[tuple[Any, ...]]], budget: float
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """The chunks ``next_chunk(cursor)`` gives until one is empty, all from one snapshot: each
        within ``budget`` seconds, the engine stopped when the client goes away."""
        loop = asyncio.get_running_loop()
        await _acquire(self._export_slots, loop.time() + budget)
        cursor = self._db.cursor()
        timer = loop.call_later(budget, cursor.interrupt)
        try:
            await asyncio.to_thread(cursor.begin)
            while True:
                timer.cancel()
                timer = loop.call_later(budget, cursor.interrupt)
                chunk = await asyncio.to_thread(next_chunk, cursor)
                if not chunk:
                    return
                yield chunk
        except duckdb.InterruptException:
            raise QueryBudgetExceeded from None
        except (asyncio.CancelledError, GeneratorExit):
            cursor.interrupt()
            raise
        finally:
            timer.cancel()
            self._export_slots.release()
            loop.call_soon(_close_quietly, cursor)


async def _acquire(slots: asyncio.Semaphore, deadline: float) -> None:
    try:
        async with asyncio.timeout_at(deadline):
            await slots.acquire()
    except TimeoutError:
        raise QueryBudgetExceeded from None


def _in_snapshot(work: Callable[[duckdb.DuckDBPyConnection], T], cursor: duckdb.DuckDBPyConnection) -> T:
    # One transaction: a page and its count, or several facets, read the same state of the table.
    cursor.begin()
    try:
        return work(cursor)
    finally:
        cursor.rollback()


def _close_quietly(cursor: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        cursor.close()


def _arrow_rows(blocks: list[AppliedBlock], columns: Mapping[str, int]) -> tuple[pa.Table, dict[str, int]]:
    """The blocks' rows as the table holds them, and per column the kinds of value they hold."""
    data: dict[str, list[Any]] = {"seq": [], "blk": [], "key": [], "row": []}
    kinds = dict.fromkeys(columns, 0)
    for number in columns.values():
        data[f"t{number}"], data[f"n{number}"], data[f"s{number}"] = [], [], []
    count = 0
    for block in blocks:
        for key, seq, row in zip(block.keys, block.seqs, block.rows, strict=True):
            data["seq"].append(seq)
            data["blk"].append(block.first_seq)
            data["key"].append(key)
            item = row if KEY_COLUMN in row else {**row, KEY_COLUMN: key}
            data["row"].append(orjson.dumps(item).decode("utf-8"))
            for column, number in columns.items():
                kind, numeric, text = kind_of(row.get(column))
                if kind != NULL:
                    kinds[column] |= HAS_NUMBER if kind == NUMBER else HAS_TEXT
                data[f"t{number}"].append(kind)
                data[f"n{number}"].append(numeric)
                data[f"s{number}"].append(text)
            count += 1
    schema = [("seq", pa.int64()), ("blk", pa.int64()), ("key", pa.string()), ("row", pa.string())]
    for number in columns.values():
        schema += [(f"t{number}", pa.uint8()), (f"n{number}", pa.float64()), (f"s{number}", pa.string())]
    if not count:
        return pa.table({}), kinds
    return pa.table({name: pa.array(data[name], type=kind) for name, kind in schema}), kinds
