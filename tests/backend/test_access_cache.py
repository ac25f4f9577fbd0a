"""The access cache of each API replica: every grant and revoke reaches every replica, and no
answer outlives the staleness bound when the notification channel drops or goes silent.

Two real apps (replicas) on one PostgreSQL schema, each with its own pools and listener; the
writes are committed, as in production (NOTIFY is delivered on commit).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from support.api import CERTIFICATE, CHAIN_ID, MARKET, FakeChain, make_settings
from support.db import PG_URL, MigratedDatabase, create_migrated_database, drop_migrated_database
from support.factories import account, make_course

from backend.access import service
from backend.access.cache import AccessCache
from backend.app import create_app
from backend.chain.deployment import Deployment
from backend.core.db import Database
from backend.core.ratelimit import MemoryRateLimiter
from backend.devtools.tcp_proxy import TcpProxy

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not PG_URL, reason="LISTEN/NOTIFY: PostgreSQL only"),
]

LEARNER = account("learner").address
PROVIDER = account("provider").address


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[MigratedDatabase]:
    """A private, migrated PostgreSQL schema whose writes are committed."""
    db = create_migrated_database("postgresql", tmp_path)
    try:
        yield db
    finally:
        drop_migrated_database(db)


def write(db: MigratedDatabase, fn: Callable[[Session], Any]) -> Any:
    """Run `fn` in its own committed transaction (as a request or the indexer would)."""
    with Session(db.sync_engine(), expire_on_commit=False) as session, session.begin():
        return fn(session)


def grant(db: MigratedDatabase, course_id: int) -> None:
    write(
        db,
        lambda s: service.grant_access(
            s,
            address=LEARNER,
            course_id=course_id,
            source="grant",
            order_id=None,
            actor="test",
            reason="test grant",
            on_chain=False,
        ),
    )


def revoke(db: MigratedDatabase, course_id: int) -> None:
    write(
        db,
        lambda s: service.revoke_access(
            s,
            address=LEARNER,
            course_id=course_id,
            order_id=None,
            actor="test",
            reason="test revoke",
            on_chain=False,
        ),
    )


class Replica:
    """One API process: its app, a client, and its cache."""

    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.cache: AccessCache = app.state.access_cache

    async def has_access(self, course_id: int) -> bool:
        response = await self.client.get(
            f"/api/v1/courses/{course_id}/access", params={"address": LEARNER}
        )
        assert response.status_code == 200, response.text
        return bool(response.json()["hasAccess"])

    def cached(self, course_id: int) -> bytes | None:
        return self.cache._entries.get((course_id, LEARNER))


@asynccontextmanager
async def replica(db: MigratedDatabase, **settings: Any) -> AsyncIterator[Replica]:
    """An API replica with its lifespan running (so its cache listens)."""
    database = Database.from_url(db.url, schema=db.schema, pool_size=2)
    app = create_app(
        make_settings(db.url, **settings),
        database=database,
        chain=FakeChain(),
        rate_limiter=MemoryRateLimiter(1000),
        deployment=Deployment(chain_id=CHAIN_ID, market=MARKET, certificate=CERTIFICATE),
        seed=False,
    )
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                yield Replica(app, client)
    finally:
        await database.dispose()


async def until(condition: Callable[[], Any], within: float = 5.0) -> float:
    """Wait until `condition()` is true; returns the seconds waited (fails after `within`)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def course(db: MigratedDatabase) -> int:
    return int(write(db, lambda s: make_course(s, provider=PROVIDER).id))


async def test_a_revoke_invalidates_the_cached_answer_of_every_replica(
    pg: MigratedDatabase,
) -> None:
    course_id = course(pg)
    grant(pg, course_id)
    async with replica(pg) as a, replica(pg) as b:
        await until(lambda: a.cache.proven and b.cache.proven)
        assert await a.has_access(course_id) and await b.has_access(course_id)
        assert b.cached(course_id) is not None  # B answers from its cache from now on
        assert await b.has_access(course_id)

        revoke(pg, course_id)  # committed by another process: B hears it only through NOTIFY
        await until(lambda: b.cached(course_id) is None and a.cached(course_id) is None)
        assert not await b.has_access(course_id)
        assert not await a.has_access(course_id)
        assert b.cache.proven  # dropped by the notification, not by a flush


async def test_a_grant_invalidates_a_cached_no(pg: MigratedDatabase) -> None:
    course_id = course(pg)
    async with replica(pg) as a, replica(pg) as b:
        await until(lambda: a.cache.proven and b.cache.proven)
        assert not await b.has_access(course_id)
        assert b.cached(course_id) is not None

        grant(pg, course_id)
        await until(lambda: b.cached(course_id) is None)
        assert await b.has_access(course_id)
        assert await a.has_access(course_id)


async def test_many_keys_in_one_statement_flush_every_replica(pg: MigratedDatabase) -> None:
    """A statement changing more rows than one notification names sends "*"."""
    courses = [course(pg) for _ in range(3)]
    for course_id in courses:
        grant(pg, course_id)
    async with replica(pg) as b:
        await until(lambda: b.cache.proven)
        for course_id in courses:
            assert await b.has_access(course_id)
        assert len(b.cache) == 3

        def revoke_all(session: Session) -> None:
            from sqlalchemy import text

            session.execute(text("UPDATE entitlements SET revoked_at = now()"))

        write(pg, revoke_all)
        await until(lambda: len(b.cache) == 0)
        for course_id in courses:
            assert not await b.has_access(course_id)


def _listen_url(db: MigratedDatabase, proxy: TcpProxy) -> str:
    return (
        make_url(db.url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def proxy(pg: MigratedDatabase) -> Iterator[TcpProxy]:
    """A proxy in front of PostgreSQL for the listener's connection only."""
    url = make_url(pg.url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        yield proxy
    finally:
        proxy.stop()


async def test_a_silent_channel_serves_no_cached_answer_past_the_bound(
    pg: MigratedDatabase, proxy: TcpProxy
) -> None:
    bound = 0.5
    course_id = course(pg)
    grant(pg, course_id)
    settings = {
        "database_listen_url": _listen_url(pg, proxy),
        "access_cache_max_staleness": bound,
    }
    async with replica(pg, **settings) as b:
        await until(lambda: b.cache.proven)
        assert await b.has_access(course_id)
        assert b.cached(course_id) is not None

        proxy.freeze()  # the listener hears nothing more, and nothing says so
        revoke(pg, course_id)
        revoked_at = time.monotonic()
        while True:
            if not await b.has_access(course_id):
                break
            await asyncio.sleep(0.01)
        # Within the bound, though the listener is only replaced after 3 bounds of silence.
        assert time.monotonic() - revoked_at <= bound + 0.2
        # Answers come from the database meanwhile (the entry itself was never invalidated).
        assert not b.cache.proven
        assert not await b.has_access(course_id)

        proxy.thaw()
        # The silent connection is replaced; the new one flushes what it may have missed.
        await until(lambda: b.cache.proven, within=15)
        assert b.cached(course_id) is None
        assert not await b.has_access(course_id)


async def test_a_dropped_channel_flushes_at_once_and_reconnects(
    pg: MigratedDatabase, proxy: TcpProxy
) -> None:
    course_id = course(pg)
    grant(pg, course_id)
    async with replica(pg, database_listen_url=_listen_url(pg, proxy)) as b:
        await until(lambda: b.cache.proven)
        assert await b.has_access(course_id)
        assert len(b.cache) == 1

        proxy.cut()
        await until(lambda: not b.cache.proven, within=0.5)  # seen at once, not at the bound
        assert len(b.cache) == 0
        revoke(pg, course_id)  # while no listener hears it
        assert not await b.has_access(course_id)

        await until(lambda: b.cache.proven)
        assert not await b.has_access(course_id)
        assert b.cached(course_id) is not None  # cached again, from a fresh read


# ---------------------------------------------------------------------------- the cache alone


def _proven_cache(max_entries: int = 10) -> AccessCache:
    async def no_connection() -> Any:
        raise AssertionError("not listening in this test")

    cache = AccessCache(no_connection, max_entries=max_entries, max_staleness=60)
    cache._pings[1] = time.monotonic()
    cache._notified(None, 0, "tuition_access", f"ping:{cache._token}:1")
    assert cache.proven
    return cache


def test_an_answer_read_while_a_change_was_heard_is_not_kept() -> None:
    cache = _proven_cache()
    epoch = cache.epoch  # a read starts
    cache._notified(None, 0, "tuition_access", f"7:{LEARNER}")  # a revoke is heard meanwhile
    cache.put(7, LEARNER, b"old answer", epoch)
    assert cache.get(7, LEARNER) is None
    cache.put(7, LEARNER, b"new answer", cache.epoch)
    assert cache.get(7, LEARNER) == b"new answer"


def test_other_replicas_pings_prove_nothing() -> None:
    cache = _proven_cache()
    cache._proved_at = float("-inf")
    cache._pings[2] = time.monotonic()
    cache._notified(None, 0, "tuition_access", "ping:someoneelse:2")
    assert not cache.proven


def test_the_oldest_answers_make_room() -> None:
    cache = _proven_cache(max_entries=2)
    for course_id in (1, 2, 3):
        cache.put(course_id, LEARNER, b"x", cache.epoch)
    assert cache.get(1, LEARNER) is None
    assert cache.get(2, LEARNER) == cache.get(3, LEARNER) == b"x"


def test_a_new_connection_forgets_everything_at_its_first_proof() -> None:
    cache = _proven_cache()
    cache.put(1, LEARNER, b"x", cache.epoch)
    cache._fresh = True  # as after a reconnect
    cache._pings[2] = time.monotonic()
    cache._notified(None, 0, "tuition_access", f"ping:{cache._token}:2")
    assert len(cache) == 0 and cache.proven
