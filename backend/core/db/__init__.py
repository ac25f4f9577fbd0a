"""The database package: models' base and column types, engines, sessions, the API's `Database`.

The API uses an async engine (asyncpg / aiosqlite); the indexer, the worker and Alembic use a sync
engine (psycopg / sqlite3) on the same models. Domain functions shared by all of them take a sync
`Session`; async code calls them through `AsyncSession.run_sync`. Import from here.
"""

from backend.core.db.database import Database
from backend.core.db.engines import (
    SQLITE_BEGIN_OPTION,
    async_url,
    enable_sqlite_transactions,
    make_async_engine,
    make_engine,
    schema_connect_args,
    sync_url,
)
from backend.core.db.session import (
    process_engine,
    process_session_factory,
    reset_process_engine,
    session_scope,
)
from backend.core.db.types import (
    NAMING_CONVENTION,
    Address,
    Base,
    BigId,
    JsonType,
    TokenAmount,
    UTCDateTime,
    utcnow,
)

__all__ = [
    "NAMING_CONVENTION",
    "SQLITE_BEGIN_OPTION",
    "Address",
    "Base",
    "BigId",
    "Database",
    "JsonType",
    "TokenAmount",
    "UTCDateTime",
    "async_url",
    "enable_sqlite_transactions",
    "make_async_engine",
    "make_engine",
    "process_engine",
    "process_session_factory",
    "reset_process_engine",
    "schema_connect_args",
    "session_scope",
    "sync_url",
    "utcnow",
]
