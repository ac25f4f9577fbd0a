"""The access check's query batcher: concurrent checks share round trips, answers stay exact."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.access.repository import AccessBatcher

pytestmark = pytest.mark.anyio

SINCE = datetime(2025, 1, 1, tzinfo=UTC)


class FakePool:
    """Answers like the batch query: course 1 exists and 0xA has access; course 2 exists."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.calls: list[list[tuple[int, str]]] = []
        self.fail = fail

    async def fetch(self, sql: str, courses: list[int], addresses: list[str]) -> list[Any]:
        self.calls.append(list(zip(courses, addresses, strict=True)))
        await asyncio.sleep(0.01)  # a round trip
        if self.fail is not None:
            raise self.fail
        rows = []
        for course, address in zip(courses, addresses, strict=True):
            exists = course in (1, 2)
            entitled = course == 1 and address == "0xA"
            rows.append(
                (
                    course,
                    address,
                    course if exists else None,
                    "card" if entitled else None,
                    SINCE if entitled else None,
                )
            )
        return rows


async def test_concurrent_checks_share_queries_and_each_gets_its_own_answer() -> None:
    pool = FakePool()
    batcher = AccessBatcher(pool, max_inflight=1)
    queries = [(1, "0xA"), (1, "0xB"), (2, "0xA"), (3, "0xA")] * 5
    results = await asyncio.gather(*(batcher.lookup(c, a) for c, a in queries))
    expected = {
        (1, "0xA"): (1, "card", SINCE),
        (1, "0xB"): (1, None, None),
        (2, "0xA"): (2, None, None),
        (3, "0xA"): None,  # unknown course
    }
    assert [tuple(r) if r is not None else None for r in results] == [expected[q] for q in queries]
    assert len(pool.calls) == 1  # twenty checks, one round trip
    assert sum(len(call) for call in pool.calls) == 20


async def test_a_lone_check_is_sent_at_once_and_later_ones_queue_behind_the_inflight_batch() -> (
    None
):
    pool = FakePool()
    batcher = AccessBatcher(pool, max_inflight=1, max_batch=3)
    first = asyncio.ensure_future(batcher.lookup(1, "0xA"))
    await asyncio.sleep(0)  # the first batch leaves alone
    others = [asyncio.ensure_future(batcher.lookup(2, f"0x{i}")) for i in range(5)]
    await asyncio.gather(first, *others)
    assert [len(call) for call in pool.calls] == [1, 3, 2]


async def test_a_failed_query_fails_every_check_of_its_batch_and_the_next_batch_runs() -> None:
    pool = FakePool(fail=ConnectionRefusedError("database down"))
    batcher = AccessBatcher(pool)
    results = await asyncio.gather(
        batcher.lookup(1, "0xA"), batcher.lookup(2, "0xB"), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionRefusedError) for r in results)
    assert len(pool.calls) == 2  # the batch was retried once (a dropped connection) then failed
    pool.fail = None
    assert tuple(await batcher.lookup(1, "0xA")) == (1, "card", SINCE)


async def test_a_cancelled_check_does_not_disturb_the_others() -> None:
    pool = FakePool()
    batcher = AccessBatcher(pool)
    doomed = asyncio.ensure_future(batcher.lookup(1, "0xA"))
    kept = asyncio.ensure_future(batcher.lookup(1, "0xB"))
    await asyncio.sleep(0)
    doomed.cancel()
    assert tuple(await kept) == (1, None, None)
    assert doomed.cancelled()
