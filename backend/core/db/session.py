"""Sync sessions: `session_scope` (one transaction: commit or roll back), and the process's own
engine and session factory for the worker and the CLI, one per process.

Celery's prefork pool forks after import: a connection pool inherited from the parent would be
shared by several processes, so `reset_process_engine()` is called in each child (see
`backend.worker.celery_app`). Its SQLite transactions begin IMMEDIATE (worker transactions are
short and nearly all write).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.core.config import get_settings
from backend.core.db.engines import make_engine


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error (for workers and the indexer)."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_lock = threading.Lock()
_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None


def process_engine() -> Engine:
    """The process's engine on `TUITION_DATABASE_URL`."""
    global _engine, _factory
    with _lock:
        if _engine is None:
            settings = get_settings()
            _engine = make_engine(
                settings.database_url.get_secret_value(),
                pool_size=settings.database_pool_size,
                immediate=True,
            )
            _factory = sessionmaker(_engine, expire_on_commit=False)
        return _engine


def process_session_factory() -> sessionmaker[Session]:
    """The process's session factory (for `session_scope`)."""
    process_engine()
    assert _factory is not None
    return _factory


def reset_process_engine(dispose: bool = True) -> None:
    """Forget the engine (after a fork, or when tests switch databases)."""
    global _engine, _factory
    with _lock:
        if _engine is not None and dispose:
            # close=False: never close the parent's sockets from a forked child.
            _engine.dispose(close=False)
        _engine = None
        _factory = None
