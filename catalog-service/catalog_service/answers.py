"""Answers shared between requests: pages (from the layout or the read model) and facets.

The same question on the same state of a dataset (its view, or its table in the read model) has
the same answer, and a catalog is read far more often than it changes: a dashboard's charts, the
first page of a sort, a search many people type. So while one request computes an answer, the
requests asking the same question of the same state wait for it instead of running it again, and a
finished answer is kept until that state changes (its key names the view's number or the table's
version) or it is the least recently used one past a byte budget. Nothing is ever answered from an
older state than the one the request read.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

T = TypeVar("T")

# What all kept answers may weigh together (their JSON size), and one of them at most.
MAX_BYTES = 32 * 1024 * 1024
MAX_ANSWER_BYTES = MAX_BYTES // 16


def _weight(answer: Any) -> int:
    return len(orjson.dumps(answer, default=repr))


@dataclass
class _Flight:
    task: asyncio.Future
    waiting: int = 0


class SharedAnswers:
    def __init__(self, max_bytes: int = MAX_BYTES, max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        self._max_bytes, self._max_answer_bytes = max_bytes, max_answer_bytes
        self._kept: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._running: dict[Hashable, _Flight] = {}

    @property
    def kept_bytes(self) -> int:
        return self._bytes

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The answer to ``key``: kept, being computed by another request, or computed now. When every
        request waiting for a computation has gone away, the computation is cancelled too."""
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key][0]
        flight = self._running.get(key)
        if flight is None:
            flight = self._running[key] = _Flight(asyncio.ensure_future(compute()))
            flight.task.add_done_callback(lambda task: self._finished(key, task))
        flight.waiting += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiting -= 1
            if flight.waiting == 0 and not flight.task.done():
                flight.task.cancel()

    def _finished(self, key: Hashable, task: asyncio.Task) -> None:
        if (flight := self._running.get(key)) is not None and flight.task is task:
            del self._running[key]
        if task.cancelled() or task.exception() is not None:
            return
        answer = task.result()
        weight = _weight(answer)
        if weight > self._max_answer_bytes:
            return
        self._kept[key] = (answer, weight)
        self._bytes += weight
        while self._bytes > self._max_bytes:
            _, (_, dropped) = self._kept.popitem(last=False)
            self._bytes -= dropped
