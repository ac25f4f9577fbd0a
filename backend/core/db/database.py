"""The API's database handle: an async engine with one transaction per request, and lean
read paths for the access check (the hot path).

On SQLite, writing requests begin with BEGIN IMMEDIATE (see `engines`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from backend.core.db.engines import (
    SQLITE_BEGIN_OPTION,
    async_url,
    enable_sqlite_transactions,
    make_async_engine,
    schema_connect_args,
)

T = TypeVar("T")


async def _keep_session(_connection: Any) -> None:
    # asyncpg's default reset on release is one more round trip ("RESET ALL; UNLISTEN *; ..."):
    # the hot path's connections only ever run one autocommit SELECT, so there is nothing to
    # reset (an open transaction would still be rolled back by asyncpg itself).
    return None


class Database:
    """Sessions and connections of the API process.

    Args:
        engine: The async engine.
        bind: Tests only: an open connection inside an outer transaction. Sessions then join it
            through SAVEPOINTs and the hot path reads through it, so each test rolls back.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        bind: AsyncConnection | None = None,
        reader: AsyncEngine | None = None,
        raw_connect_args: dict[str, Any] | None = None,
        pool_size: int = 10,
    ) -> None:
        self.engine = engine
        self.bind = bind
        self.reader = reader or engine
        self.dialect = engine.dialect.name
        self._raw_connect_args = raw_connect_args
        self._raw_pool_size = pool_size
        self._raw_pool: Any = None
        self._raw_pool_lock = asyncio.Lock()
        self._sqlite_path: str | None = None
        # Per-database helpers of other modules (e.g. the access check's query batcher).
        self.attachments: dict[str, Any] = {}
        self._sqlite_local = threading.local()
        self._sqlite_connections: list[sqlite3.Connection] = []
        if bind is not None:
            self._read = self._write = async_sessionmaker(
                bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
            return
        self._read = async_sessionmaker(bind=engine, expire_on_commit=False)
        writer = (
            engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            if self.dialect == "sqlite"
            else engine
        )
        self._write = async_sessionmaker(bind=writer, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10, schema: str | None = None) -> Database:
        """Engines for `url` (async driver chosen from the URL) with SQLite fixed up.

        Sessions use a pool that pings each connection it checks out. Single reads use a small
        autocommit pool without the ping (no BEGIN/ROLLBACK/ping round trips around one SELECT)
        and retry once on a dropped connection instead. The access check goes further still:
        see `raw_pool()` and `sqlite_reader()`.
        """
        connect_args = schema_connect_args(url, schema, is_async=True)
        engine = make_async_engine(url, pool_size=pool_size, connect_args=connect_args)
        enable_sqlite_transactions(engine.sync_engine)
        reader = make_async_engine(
            url,
            # The access check itself reads through `raw_pool()` / `sqlite_reader()` where it
            # can; this pool serves the remaining single reads (readiness probes, tests).
            pool_size=2,
            connect_args=connect_args,
            pool_pre_ping=False,
            pool_recycle=3600,
            isolation_level="AUTOCOMMIT",
        )
        enable_sqlite_transactions(reader.sync_engine)
        raw_args = None
        if reader.dialect.driver == "asyncpg":
            _, kwargs = reader.dialect.create_connect_args(reader.url)
            raw_args = {**kwargs, **connect_args}
        database = cls(engine, reader=reader, raw_connect_args=raw_args, pool_size=pool_size)
        path = reader.url.database
        if reader.dialect.name == "sqlite" and path and path != ":memory:":
            database._sqlite_path = path
        return database

    @asynccontextmanager
    async def session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One transaction: commit when the block succeeds, roll back when it raises."""
        factory = self._write if write else self._read
        async with factory() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A bare autocommit connection for single read queries (no ORM session)."""
        if self.bind is not None:
            yield self.bind
            return
        async with self.reader.connect() as conn:
            yield conn

    async def read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run one read on a reader connection, once more if the connection had dropped."""
        for attempt in (1, 2):
            try:
                async with self.connect() as conn:
                    return await fn(conn)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated or self.bind is not None:
                    raise
        raise AssertionError("unreachable")

    async def raw_pool(self) -> Any:
        """PostgreSQL only: a plain asyncpg pool for the hot path's single-statement reads.

        SQLAlchemy's pool costs more CPU per checkout than asyncpg's whole query (greenlet
        hops, events, reset-on-return); the access check needs none of it. None when the
        database is not PostgreSQL or when bound to a test's connection (whose uncommitted
        data only that connection sees).
        """
        if self._raw_connect_args is None or self.bind is not None:
            return None
        if self._raw_pool is None:
            async with self._raw_pool_lock:
                if self._raw_pool is None:
                    import asyncpg

                    self._raw_pool = await asyncpg.create_pool(
                        min_size=1,
                        max_size=self._raw_pool_size,
                        reset=_keep_session,
                        **self._raw_connect_args,
                    )
        return self._raw_pool

    @property
    def can_listen(self) -> bool:
        """Whether `listen_connection` works: PostgreSQL, not bound to a test's connection."""
        return self._raw_connect_args is not None and self.bind is None

    async def listen_connection(self, url: str | None = None) -> Any:
        """PostgreSQL only: a new asyncpg connection of its own, outside every pool, for LISTEN.

        Args:
            url: Where to connect instead of the database's own URL (a direct connection when
                the usual one goes through a transaction pooler, which cannot carry LISTEN).
        """
        import asyncpg

        if self._raw_connect_args is None:
            raise RuntimeError("LISTEN needs PostgreSQL")
        args = self._raw_connect_args
        if url is not None:
            _, kwargs = self.reader.dialect.create_connect_args(async_url(url))
            args = {**kwargs, "server_settings": args.get("server_settings", {})}
        return await asyncpg.connect(**args)

    def pool_usage(self) -> dict[str, tuple[int, int]]:
        """Connections in use and the most each pool can open: "sessions" (SQLAlchemy's pool
        of the write/session engine) and "raw" (the access check's asyncpg pool, once made)."""
        usage: dict[str, tuple[int, int]] = {}
        pool = self.engine.sync_engine.pool
        if hasattr(pool, "checkedout") and hasattr(pool, "size"):
            overflow = max(0, int(getattr(pool, "_max_overflow", 0)))
            usage["sessions"] = (int(pool.checkedout()), int(pool.size()) + overflow)
        if self._raw_pool is not None:
            raw = self._raw_pool
            usage["raw"] = (raw.get_size() - raw.get_idle_size(), raw.get_max_size())
        return usage

    def sqlite_reader(self) -> sqlite3.Connection | None:
        """SQLite file databases only: a read-only sqlite3 connection of the calling thread.

        An indexed lookup in SQLite takes microseconds; aiosqlite's thread hops cost far more,
        so the hot path reads synchronously. In WAL mode (set on every connection) readers are
        never blocked by writers, so this does not stall the event loop. None in tests bound
        to one connection.
        """
        if self._sqlite_path is None or self.bind is not None:
            return None
        conn: sqlite3.Connection | None = getattr(self._sqlite_local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                f"file:{quote(self._sqlite_path)}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA busy_timeout=200")
            self._sqlite_local.conn = conn
            self._sqlite_connections.append(conn)
        return conn

    async def dispose(self) -> None:
        """Close the pools (not a test's bound connection)."""
        for conn in self._sqlite_connections:
            conn.close()
        self._sqlite_connections.clear()
        self._sqlite_local = threading.local()
        self.attachments.clear()
        if self.bind is None:
            if self._raw_pool is not None:
                await self._raw_pool.close()
                self._raw_pool = None
            await self.engine.dispose()
            if self.reader is not self.engine:
                await self.reader.dispose()
