"""Engines: database URLs to the right driver (psycopg / asyncpg, sqlite3 / aiosqlite), SQLite's
pragmas and transactional mode, PostgreSQL schemas for tests and benchmarks.

SQLite needs two fixes to behave like a real transactional database (see SQLAlchemy's "Enabling
non-legacy SQLite transactional modes"): the driver's own transaction handling is switched off
and SQLAlchemy emits BEGIN itself, so SAVEPOINTs work; and writers begin with BEGIN IMMEDIATE
(the execution option `SQLITE_BEGIN_OPTION`), so two concurrent writers queue on the lock
instead of one failing with "database is locked" when it upgrades a stale read snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# The execution option (on an engine or a connection) choosing BEGIN IMMEDIATE on SQLite.
SQLITE_BEGIN_OPTION = "tuition_sqlite_begin"


def sync_url(url: str) -> URL:
    """The sync-driver form of a database URL (psycopg 3 for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite")
    return parsed


def async_url(url: str) -> URL:
    """The async-driver form of a database URL (asyncpg / aiosqlite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg")
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def _prepare_sqlite_file(url: URL) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the indexer writes; the busy timeout turns lock contention
    # into a short wait instead of "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 10, immediate: bool = False, **kwargs: Any) -> Engine:
    """A sync engine for the indexer, the worker, Alembic and scripts.

    With `immediate`, SQLite transactions are SQLAlchemy's own (real SAVEPOINTs) and begin
    IMMEDIATE: for processes whose transactions nearly all write (the worker, the indexer), so
    concurrent writers queue on the busy timeout instead of failing to upgrade a read lock.
    """
    parsed = sync_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_size=pool_size, pool_pre_ping=True, **kwargs)
    _prepare_sqlite_file(parsed)
    engine = create_engine(parsed, **kwargs)
    sa_event.listen(engine, "connect", _sqlite_pragmas)
    if immediate:
        enable_sqlite_transactions(engine)
        engine = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    return engine


def make_async_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    """An async engine for the API."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_file(parsed)
        engine = create_async_engine(parsed, **kwargs)
        sa_event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # The API's hot path opts out of the ping (one round trip per checkout) and retries instead.
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(parsed, pool_size=pool_size, **kwargs)


def schema_connect_args(url: str, schema: str | None, *, is_async: bool) -> dict[str, Any]:
    """Driver arguments that put every connection on PostgreSQL `schema` (tests, benchmarks)."""
    if not schema or make_url(url).get_backend_name() != "postgresql":
        return {}
    if is_async:
        return {"server_settings": {"search_path": schema}}
    return {"options": f"-csearch_path={schema}"}


def enable_sqlite_transactions(sync_engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN (so SAVEPOINT and rollback work as documented)."""
    if sync_engine.dialect.name != "sqlite":
        return

    @event.listens_for(sync_engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # single statements, no transaction (the hot path's reader)
        mode = options.get(SQLITE_BEGIN_OPTION, "")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")
