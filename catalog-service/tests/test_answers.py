"""Shared answers: one computation for a question asked at once, stopped when nobody waits any more."""

import asyncio

from catalog_service.answers import SharedAnswers


async def test_a_computation_stops_when_every_request_waiting_for_it_has_gone_and_not_before():
    answers, started, stopped = SharedAnswers(), asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        started.set()
        try:
            await asyncio.sleep(0.3)
            return "done"
        except asyncio.CancelledError:
            stopped.set()
            raise

    first = asyncio.create_task(answers.get(b"q", slow))
    second = asyncio.create_task(answers.get(b"q", slow))
    await started.wait()
    first.cancel()  # one client goes away: the other still gets its answer
    assert await second == "done" and not stopped.is_set()

    lone = asyncio.create_task(answers.get(b"other", slow))
    await asyncio.sleep(0.05)
    lone.cancel()
    await asyncio.wait_for(stopped.wait(), 1)


async def test_kept_answers_stay_within_their_byte_budget_least_recently_used_first():
    answers = SharedAnswers(max_bytes=100, max_answer_bytes=60)

    async def text(n: int) -> str:
        return "x" * n

    for key in (b"a", b"b", b"c"):
        await answers.get(key, lambda: text(40))
    await answers.get(b"big", lambda: text(80))  # heavier than one answer may be: not kept
    assert answers.kept_bytes <= 100

    calls = []

    async def counted() -> str:
        calls.append(1)
        return "x" * 40

    await answers.get(b"c", counted)  # the newest is still kept
    await answers.get(b"a", counted)  # the oldest was dropped
    assert len(calls) == 1
