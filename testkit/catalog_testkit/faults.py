"""Faults the tests inject in-process: a function that dies on its Nth call as a killed worker would,
and threads that must all end, in time and without an error."""

import threading
import time
from collections.abc import Callable

import pytest


class Killed(BaseException):
    """The worker process dying at a chosen line: nothing after it runs, nothing is cleaned up.
    A ``BaseException``, so that no ``except Exception`` of the product catches it."""


def dies_on_call(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, call: int, *, partly: Callable | None = None
) -> None:
    """``module.name`` raises ``Killed`` on its ``call``-th call (after doing ``partly(real, *args)`` of
    the work, if given); the calls before it run the real function. ``monkeypatch.undo()`` revives it."""
    real = getattr(module, name)
    calls = 0

    def dying(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == call:
            if partly is not None:
                partly(real, *args, **kwargs)
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, dying)


def run_in_threads(calls: dict[str, Callable[[], object]], within: float) -> None:
    """Runs the calls at once, each in a thread named by its key, and fails unless every one has
    returned within ``within`` seconds: one still running, or one that raised, is named."""
    errors: dict[str, BaseException] = {}

    def run(name: str, call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as error:  # named by the assertion below, in the test's own thread
            errors[name] = error

    threads = [threading.Thread(target=run, args=item, name=item[0], daemon=True) for item in calls.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + within
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    still_running = [thread.name for thread in threads if thread.is_alive()]
    assert not still_running, f"still running after {within}s: {still_running}"
    assert not errors, errors
