"""The access check query: the hot path, kept to one statement of two indexed lookups."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import cache
from typing import Any

import asyncpg
import orjson
from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.access.cache import AccessCache
from backend.access.models import Entitlement
from backend.catalog.models import Course
from backend.core.db import Database

_DROPPED = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)
_courses = Course.__table__
_entitlements = Entitlement.__table__

# Built once at import. The outer join answers "unknown course" in the same round trip; the
# entitlement side is served by the partial unique index on (course_id, address) WHERE
# revoked_at IS NULL, so at most one row comes back (no LIMIT needed).
ACCESS_QUERY = (
    select(_courses.c.id, _entitlements.c.source, _entitlements.c.granted_at)
    .select_from(
        _courses.outerjoin(
            _entitlements,
            and_(
                _entitlements.c.course_id == _courses.c.id,
                _entitlements.c.address == bindparam("address"),
                _entitlements.c.revoked_at.is_(None),
            ),
        )
    )
    .where(_courses.c.id == bindparam("course_id"))
)


@cache
def _compiled_for(dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """ACCESS_QUERY compiled once for `dialect`: SQL text and the order of its parameters."""
    compiled = ACCESS_QUERY.compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup or ())


async def lookup_access(
    conn: AsyncConnection, course_id: int, address: str
) -> tuple[bool, str | None, datetime | None] | None:
    """(has access, source, since) for a checksummed address; None if the course is unknown."""
    params: dict[str, Any] = {"course_id": course_id, "address": address}
    row: Any
    if conn.dialect.driver == "asyncpg":
        # The Core statement compiled once, run on the driver (asyncpg prepares and caches it
        # per connection), skipping SQLAlchemy's per-execution result machinery.
        sql, order = _compiled_for(conn.dialect)
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        row = await driver.fetchrow(sql, *(params[name] for name in order))
    else:
        row = (await conn.execute(ACCESS_QUERY, params)).first()
    return _result(row)


def _result(row: Any) -> tuple[bool, str | None, datetime | None] | None:
    if row is None:
        return None
    source = row[1]
    return source is not None, source, row[2]


def render_access(found: tuple[bool, str | None, datetime | None]) -> bytes:
    """The access check's JSON body (the `AccessOut` schema, written directly)."""
    has_access, source, since = found
    return orjson.dumps(
        {
            "hasAccess": has_access,
            "source": source,
            "since": since.isoformat() if since else None,
        }
    )


async def access_answer(
    db: Database, cache: AccessCache | None, course_id: int, address: str
) -> bytes | None:
    """The access check's JSON body for a checksummed address; None for an unknown course.

    From this process's cache when it holds a proven answer (backend/access/cache.py), else
    from the database (and then kept, unless a change was heard meanwhile).
    """
    if cache is None:
        found = await check_access(db, course_id, address)
        return None if found is None else render_access(found)
    body = cache.get(course_id, address)
    if body is not None:
        return body
    epoch = cache.epoch
    found = await check_access(db, course_id, address)
    if found is None:
        return None
    body = render_access(found)
    cache.put(course_id, address, body, epoch)
    return body


async def check_access(
    db: Database, course_id: int, address: str
) -> tuple[bool, str | None, datetime | None] | None:
    """The access check on the cheapest path the database offers.

    PostgreSQL: the compiled statement on a plain asyncpg pool (one retry if the pooled
    connection had dropped). SQLite file: the same statement on a read-only sqlite3 connection.
    Otherwise, and in tests bound to one connection: the Core select on a reader connection.
    """
    params = {"course_id": course_id, "address": address}
    sqlite = db.sqlite_reader()
    if sqlite is not None:
        sql, order = _compiled_for(db.reader.dialect)
        found = sqlite.execute(sql, [params[name] for name in order]).fetchone()
        if found is not None and found[2] is not None:
            # SQLAlchemy stores SQLite datetimes as naive ISO text, in UTC (UTCDateTime).
            found = (found[0], found[1], datetime.fromisoformat(found[2]).replace(tzinfo=UTC))
        return _result(found)
    pool = await db.raw_pool()
    if pool is None:
        return await db.read(lambda conn: lookup_access(conn, course_id, address))
    batcher: AccessBatcher | None = db.attachments.get("access_batcher")
    if batcher is None or batcher.pool is not pool:
        batcher = db.attachments["access_batcher"] = AccessBatcher(pool)
    return _result(await batcher.lookup(course_id, address))


# One statement answers every check waiting at the same moment: each (course, address) of the
# arrays is joined like the single lookup (primary key, then the partial unique index).
BATCH_SQL = """
SELECT q.course_id, q.address, c.id, e.source, e.granted_at
FROM unnest($1::integer[], $2::varchar[]) AS q(course_id, address)
LEFT JOIN courses AS c ON c.id = q.course_id
LEFT JOIN entitlements AS e
  ON e.course_id = q.course_id AND e.address = q.address AND e.revoked_at IS NULL
"""


class AccessBatcher:
    """Coalesces concurrent access checks into one query per database round trip.

    A round trip costs this process far more CPU than the lookup costs PostgreSQL, so checks
    that arrive while others are in flight share the next query ("natural" batching, as in
    DataLoader: no timer, so a lone request is sent at once). Nothing is cached: every answer
    comes from a query sent after its request arrived, so it is exactly as fresh as a query of
    its own.

    Args:
        pool: An asyncpg pool.
        max_inflight: Batches that may run at the same time (at most the pool's size).
        max_batch: Checks per query.
    """

    def __init__(self, pool: Any, *, max_inflight: int = 4, max_batch: int = 500) -> None:
        self.pool = pool
        self.max_inflight = max_inflight
        self.max_batch = max_batch
        self._pending: list[tuple[int, str, asyncio.Future[Any]]] = []
        self._inflight = 0
        self._scheduled = False

    async def lookup(self, course_id: int, address: str) -> Any:
        """The (course id, source, granted at) row of one check, or None for an unknown course."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((course_id, address, future))
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and self._inflight < self.max_inflight:
            # After the callbacks already ready: requests parsed in this loop turn join in.
            self._scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending and self._inflight < self.max_inflight:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._inflight += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[tuple[int, str, asyncio.Future[Any]]]) -> None:
        try:
            courses = [item[0] for item in batch]
            addresses = [item[1] for item in batch]
            try:
                rows = await self.pool.fetch(BATCH_SQL, courses, addresses)
            except _DROPPED:  # the pooled connection had died (database restart): once more
                rows = await self.pool.fetch(BATCH_SQL, courses, addresses)
            found = {(row[0], row[1]): row for row in rows}
            for course_id, address, future in batch:
                if not future.done():
                    row = found.get((course_id, address))
                    future.set_result(None if row is None or row[2] is None else row[2:])
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._inflight -= 1
            if self._pending:
                self._schedule(asyncio.get_running_loop())
