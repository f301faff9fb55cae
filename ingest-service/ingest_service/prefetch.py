"""Running an iterator one step ahead in a thread, so that producing the next item overlaps with
consuming this one (the worker parses the next batch while the store writes this one)."""

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_END = object()
# How often a blocked producer looks whether its consumer has gone away.
_POLL_SECONDS = 0.5


@contextmanager
def prefetched(
    items: Iterator[T],
    depth: int = 1,
    *,
    while_waiting: Callable[[], None] | None = None,
    every: float = _POLL_SECONDS,
) -> Iterator[Iterator[T]]:
    """``items`` produced in a daemon thread, at most ``depth`` ahead of the consumer.

    An exception raised while producing is raised to the consumer at that point. Leaving the block
    early (a cancelled import, an error) stops the producer at its next item, so no thread outlives
    its import. While the consumer waits for an item, ``while_waiting`` runs every ``every``
    seconds (the worker's heartbeat while one long record is read); what it raises ends the wait.
    """
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failed(exc))

    def consume() -> Iterator[T]:
        while True:
            try:
                item = ahead.get(timeout=every if while_waiting else None)
            except queue.Empty:
                while_waiting()
                continue
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item

    # Named after its consumer: the thread works for it (and may write for it: ``importer._prepared``).
    producer = threading.Thread(target=produce, name=f"{threading.current_thread().name} prefetch", daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        producer.join()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
