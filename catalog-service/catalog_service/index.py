"""Pages in import order, whole or by ``type``, at the cost of one page at any depth.

The ingest worker keeps, per dataset, block summaries in a few chunk documents and a revision per
chunk on the dataset document (``service_common.catalog_layout``, which states what readers may
rely on). ``CatalogIndex`` caches the
summaries per process: each request reads the dataset document (one point read), re-reads only the
chunks whose revision moved, and maps a position to blocks by prefix sums. A page then costs the
block documents it touches (cached while their version holds) and its items by id, a few ``$in``
reads of at most ``IDS_PER_READ`` ids each (``find_by_ids``).
"""

import asyncio
import bisect
import itertools
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.schemas import PageTooLarge
from service_common.catalog_layout import (
    BLOCKS,
    CHUNK_REVISIONS,
    DATASETS,
    IDS_PER_READ,
    ITEMS,
    SUMMARY_CHUNKS,
    BlockSummary,
    chunk_id,
    item_id,
)

ITEM_FIELDS = {"row": 1, "seq": 1, "key": 1}
BLOCK_FIELDS = {"keys": 1, "seqs": 1, "types": 1, "v": 1}
# The block documents kept (keys, seqs and type positions, not rows), least recently used first out,
# by their size as stored: keys may be long.
CACHED_BLOCK_BYTES = 32 * 1024**2
# Per dataset view, the ``type=`` values whose prefix sums are kept (any text may be asked for).
CACHED_TYPES = 64

# Whether a stored ``type`` value is one the query asked for (``storage.type_matcher``).
TypeMatch = Callable[[Any], bool]


_VIEW_NUMBERS = itertools.count(1)


async def find_by_ids(
    collection: AsyncCollection,
    ids: Sequence[str],
    projection: dict[str, Any],
    *,
    budget_ms: int,
    per_read: int = IDS_PER_READ,
) -> AsyncIterator[Mapping[str, Any]]:
    """The documents among ``ids``, in no particular order, asked for ``per_read`` ids at a time: the
    embedded store answers a long ``$in`` much more slowly than several short ones (``IDS_PER_READ``).
    From a collection read as stored (``_as_stored``) each comes as a ``RawBSONDocument``, so that
    its caller can count the bytes it keeps before decoding any (pages and the block cache do)."""
    for start in range(0, len(ids), per_read):
        query = {"_id": {"$in": list(ids[start : start + per_read])}}
        async for document in collection.find(query, projection, max_time_ms=budget_ms):
            yield document


@dataclass
class DatasetView:
    """One dataset's block summaries in import order, with the prefix sums that place a position."""

    head: dict[str, Any]
    chunks: dict[str, list[BlockSummary]]
    entries: list[BlockSummary] = field(init=False)
    starts: list[int] = field(init=False)
    before: list[int] = field(init=False)  # before[i]: items in the blocks ahead of block i
    _by_type: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict, init=False)
    # Unique in this process: answers computed from this view may be kept under it.
    number: int = field(default_factory=lambda: next(_VIEW_NUMBERS), init=False)

    def __post_init__(self) -> None:
        self.entries = sorted(itertools.chain.from_iterable(self.chunks.values()), key=lambda entry: entry.first_seq)
        self.starts = [entry.first_seq for entry in self.entries]
        self.before = [0, *itertools.accumulate(entry.items for entry in self.entries)]

    @property
    def name(self) -> str:
        return self.head["_id"]

    @property
    def total(self) -> int:
        return self.before[-1]

    @property
    def column_names(self) -> set[str]:
        """Every column the dataset's files had, whether or not an item still holds it."""
        return {name for name, _ in self.head.get("column_types", [])} | {name for name, _ in self.columns}

    def typed(self, text: str, match: TypeMatch) -> tuple[list[int], list[int]]:
        """Per block, the items whose type matches ``text``, and their prefix sums.

        ``match`` is asked once per distinct stored value, not once per block: a request naming a
        new value costs the dataset's distinct types, plus its blocks only when some value matches."""
        if text not in self._by_type:
            if len(self._by_type) >= CACHED_TYPES:
                self._by_type.clear()
            blocks_of = [blocks for value, blocks in self._type_postings.values() if match(value)]
            if not blocks_of:
                self._by_type[text] = self._no_type
            else:
                counts = [0] * len(self.entries)
                for blocks in blocks_of:
                    for index, n in blocks:
                        counts[index] += n
                self._by_type[text] = (counts, [0, *itertools.accumulate(counts)])
        return self._by_type[text]

    @cached_property
    def _type_postings(self) -> dict[tuple[type, Any], tuple[Any, list[tuple[int, int]]]]:
        """Each ``type`` value the summaries list (told apart by its Python type too: 1 is not "1" nor
        True; a long one is its digest), with the blocks holding it: (block's place in ``entries``,
        how many of its items)."""
        postings: dict[tuple[type, Any], tuple[Any, list[tuple[int, int]]]] = {}
        for index, entry in enumerate(self.entries):
            for value, n in entry.type_counts:
                key = (type(value), value["sha256"] if isinstance(value, dict) else value)
                postings.setdefault(key, (value, []))[1].append((index, n))
        return postings

    @cached_property
    def _no_type(self) -> tuple[list[int], list[int]]:
        return [0] * len(self.entries), [0] * (len(self.entries) + 1)

    @cached_property
    def columns(self) -> list[tuple[str, int]]:
        """Each column the dataset's items have, with how many have it, in order of first appearance."""
        counts: dict[str, int] = {}
        for entry in self.entries:
            for column, count in entry.column_counts:
                counts[column] = counts.get(column, 0) + count
        return list(counts.items())


# A block's share of a page: its summary entry, how many matching items of it to pass over, how many to take.
Part = tuple[BlockSummary, int, int]


class _Reads:
    """One dataset's view reads: how many began, which one last ended, and what it read."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.started = self.finished = 0
        self.view: DatasetView | None = None


class CatalogIndex:
    def __init__(self, *, budget_ms: int, max_page_bytes: int = 32 * 1024**2) -> None:
        # Every query this sends carries it as maxTimeMS: the store stops what a request gave up on.
        self._budget_ms = budget_ms
        self._max_page_bytes = max_page_bytes
        self._views: dict[str, DatasetView] = {}
        # Held only while a call is on it: a name nobody asks for any more is forgotten.
        self._reads: weakref.WeakValueDictionary[str, _Reads] = weakref.WeakValueDictionary()
        self._blocks: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._block_bytes: dict[str, int] = {}
        self._cached_bytes = 0

    async def view(self, db: AsyncDatabase, dataset: str) -> DatasetView | None:
        """The dataset's current view, or None when there is no such dataset: read after this call
        began. Calls for one dataset at once share reads: those that arrive while a read is under way
        wait for it to end and share the next one, so many readers cost the store one read at a time
        and none is answered from a read that began before it arrived."""
        reads = self._reads.get(dataset)
        if reads is None:
            reads = self._reads[dataset] = _Reads()
        arrived = reads.started
        async with reads.lock:
            if reads.finished > arrived:
                return reads.view
            reads.started += 1
            number = reads.started
            view = await self._read_view(db, dataset)
            reads.finished, reads.view = number, view
            return view

    async def _read_view(self, db: AsyncDatabase, dataset: str) -> DatasetView | None:
        head = await db[DATASETS].find_one({"_id": dataset}, max_time_ms=self._budget_ms)
        if head is None:
            self._views.pop(dataset, None)
            return None
        cached = self._views.get(dataset)
        revisions = head.get(CHUNK_REVISIONS, {})
        if cached is not None and cached.head.get("created_at") != head.get("created_at"):
            cached = None  # deleted and created again
        if cached is not None and cached.head.get(CHUNK_REVISIONS, {}) == revisions:
            cached.head = head
            return cached
        chunks = dict(cached.chunks) if cached is not None else {}
        old = cached.head.get(CHUNK_REVISIONS, {}) if cached is not None else {}
        stale = [name for name, revision in revisions.items() if old.get(name) != revision]
        ids = [chunk_id(dataset, int(name[1:])) for name in stale]
        async for chunk in find_by_ids(db[SUMMARY_CHUNKS], ids, {"n": 1, "entries": 1}, budget_ms=self._budget_ms):
            chunks[f"c{chunk['n']}"] = [BlockSummary.from_stored(entry) for entry in chunk["entries"]]
        view = DatasetView(head, chunks)
        self._views[dataset] = view
        return view

    async def page_at(
        self, db: AsyncDatabase, view: DatasetView, start: int, limit: int, typed: tuple[str, TypeMatch] | None
    ) -> list[dict[str, Any]]:
        """The ``limit`` items from position ``start`` (0-based) on, of all items or of one type."""
        counts, before = self._counts(view, typed)
        first = bisect.bisect_right(before, start) - 1
        return await self._fetch(db, view, self._plan(view, counts, first, start - before[first], limit), typed)

    async def page_after(
        self, db: AsyncDatabase, view: DatasetView, seq: int, limit: int, typed: tuple[str, TypeMatch] | None
    ) -> list[dict[str, Any]]:
        """The ``limit`` items that follow ``seq`` in import order."""
        if not view.entries:
            return []
        counts, _ = self._counts(view, typed)
        first = max(bisect.bisect_right(view.starts, seq) - 1, 0)
        # How many items of the first block follow ``seq`` only its document can tell.
        await self._load_blocks(db, [view.entries[first]])
        block = self._blocks[view.entries[first].block_id]
        positions = _positions(block, typed)
        following = sum(1 for p in positions if block["seqs"][p] > seq)
        take = min(following, limit)
        plan: list[Part] = [(view.entries[first], len(positions) - following, take)]
        if take < limit:
            plan += self._plan(view, counts, first + 1, 0, limit - take)
        return await self._fetch(db, view, plan, typed)

    @staticmethod
    def _counts(view: DatasetView, typed: tuple[str, TypeMatch] | None) -> tuple[list[int], list[int]]:
        if typed is None:
            return [entry.items for entry in view.entries], view.before
        return view.typed(*typed)

    @staticmethod
    def _plan(view: DatasetView, counts: list[int], first: int, skip: int, limit: int) -> list[Part]:
        plan: list[Part] = []
        for index in range(first, len(view.entries)):
            if limit <= 0:
                break
            take = min(counts[index] - skip, limit)
            if take > 0:
                plan.append((view.entries[index], skip, take))
                limit -= take
            skip = 0
        return plan

    async def _fetch(
        self, db: AsyncDatabase, view: DatasetView, plan: list[Part], typed: tuple[str, TypeMatch] | None
    ) -> list[dict[str, Any]]:
        await self._load_blocks(db, [entry for entry, _, _ in plan])
        keys: list[str] = []
        for entry, skip, take in plan:
            block = self._blocks[entry.block_id]
            keys += [block["keys"][p] for p in _positions(block, typed)[skip : skip + take]]
        if not keys:
            return []
        dataset = view.head["_id"]
        ids = [item_id(dataset, key) for key in keys]
        found: dict[str, dict[str, Any]] = {}
        # Read as stored, so that a page weighing more than CATALOG_MAX_PAGE_BYTES is refused as its
        # items arrive, each decoded only once it is known to fit.
        size = 0
        async for raw in find_by_ids(_as_stored(db, ITEMS), ids, ITEM_FIELDS, budget_ms=self._budget_ms):
            size += len(raw.raw)
            if size > self._max_page_bytes:
                raise PageTooLarge(self._max_page_bytes)
            document = bson.decode(raw.raw, codec_options=db.codec_options)
            found[document["_id"]] = document
        # An item deleted since the block was read (its dataset being deleted) is left out.
        return [found[i] for i in ids if i in found]

    async def _load_blocks(self, db: AsyncDatabase, entries: list[BlockSummary]) -> None:
        missing = [e.block_id for e in entries if self._blocks.get(e.block_id, {}).get("v") != e.version]
        async for raw in find_by_ids(_as_stored(db, BLOCKS), missing, BLOCK_FIELDS, budget_ms=self._budget_ms):
            block = bson.decode(raw.raw, codec_options=db.codec_options)
            self._cached_bytes += len(raw.raw) - self._block_bytes.get(block["_id"], 0)
            self._blocks[block["_id"]] = block
            self._block_bytes[block["_id"]] = len(raw.raw)
        for entry in entries:
            if entry.block_id in self._blocks:
                self._blocks.move_to_end(entry.block_id)
        # The blocks this page needs stay, whatever they weigh.
        while len(self._blocks) > len(entries) and self._cached_bytes > CACHED_BLOCK_BYTES:
            oldest, _ = self._blocks.popitem(last=False)
            self._cached_bytes -= self._block_bytes.pop(oldest)


def _as_stored(db: AsyncDatabase, name: str) -> Any:
    """The collection read as stored (``RawBSONDocument``): a document's size is known before it is decoded."""
    return db[name].with_options(codec_options=db.codec_options.with_options(document_class=RawBSONDocument))


def _positions(block: dict[str, Any], typed: tuple[str, TypeMatch] | None) -> list[int]:
    if typed is None:
        return list(range(len(block["keys"])))
    match = typed[1]
    return sorted(itertools.chain.from_iterable(positions for value, positions in block["types"] if match(value)))
