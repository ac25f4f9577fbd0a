"""The worker's sync engine and session factory, one per process.

Celery's prefork pool forks after import: a connection pool inherited from the parent would be
shared by several processes, so `reset()` is called in each child (see `celery_app`).

On SQLite every worker transaction starts with BEGIN IMMEDIATE: worker transactions are short
and nearly all write, and taking the write lock up front makes concurrent writers queue on the
busy timeout instead of failing when a read snapshot cannot be upgraded; SQLAlchemy (not
pysqlite) emits BEGIN so SAVEPOINTs of the backend's services work too.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.core.config import get_settings
from backend.core.database import enable_sqlite_transactions
from backend.core.db import make_engine

_lock = threading.Lock()
_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None


def get_engine() -> Engine:
    """The process's engine on `TUITION_DATABASE_URL`."""
    global _engine, _factory
    with _lock:
        if _engine is None:
            settings = get_settings()
            _engine = make_worker_engine(settings.database_url, settings.database_pool_size)
            _factory = sessionmaker(_engine, expire_on_commit=False)
        return _engine


def make_worker_engine(url: str, pool_size: int = 10) -> Engine:
    """A sync engine whose SQLite transactions begin IMMEDIATE (see the module docstring)."""
    engine = make_engine(url, pool_size=pool_size)
    if engine.dialect.name == "sqlite":
        enable_sqlite_transactions(engine)
        # The option `enable_sqlite_transactions` reads to choose BEGIN IMMEDIATE.
        engine = engine.execution_options(tuition_sqlite_begin="IMMEDIATE")
    return engine


def get_session_factory() -> sessionmaker[Session]:
    """The process's session factory (for `session_scope`)."""
    get_engine()
    assert _factory is not None
    return _factory


def reset(dispose: bool = True) -> None:
    """Forget the engine (after a fork, or when tests switch databases)."""
    global _engine, _factory
    with _lock:
        if _engine is not None and dispose:
            # close=False: never close the parent's sockets from a forked child.
            _engine.dispose(close=False)
        _engine = None
        _factory = None
