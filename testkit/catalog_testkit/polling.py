"""The one poller: read something until it is what the test waits for, or fail once the time is up,
naming what was awaited and the last value seen. A blocking form, and one for tests that share the
event loop with the server under test."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

_NOTHING_YET = object()


class _Wait:
    """One wait: its deadline, and the last value (or the last ignored error) seen."""

    def __init__(self, within: float, what: str) -> None:
        self.deadline = time.monotonic() + within
        self.within = within
        self.what = what
        self.last: object = _NOTHING_YET

    def give_up_if_late(self) -> None:
        if time.monotonic() >= self.deadline:
            last = "" if self.last is _NOTHING_YET else f"; last seen: {self.last!r}"
            raise TimeoutError(f"{self.what}: not within {self.within}s{last}")


def poll(
    read: Callable[[], T],
    done: Callable[[T], object] = bool,
    *,
    within: float,
    what: str,
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Calls ``read`` until ``done(value)``, and returns that value. ``ignore``: errors that only mean
    "not yet" (a server still starting); any other error ends the wait at once."""
    wait = _Wait(within, what)
    while True:
        try:
            value = read()
        except ignore as error:
            wait.last = error
        else:
            wait.last = value
            if done(value):
                return value
        wait.give_up_if_late()
        time.sleep(interval)


async def poll_async(
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], object] = bool,
    *,
    within: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """``poll`` for a coroutine ``read``: the event loop (and a server on it) runs while it waits."""
    wait = _Wait(within, what)
    while True:
        value = await read()
        wait.last = value
        if done(value):
            return value
        wait.give_up_if_late()
        await asyncio.sleep(interval)
