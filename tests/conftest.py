"""Shared fixtures: a migrated database per test session (SQLite always, PostgreSQL too when
TUITION_TEST_DATABASE_URL is set) and a sync session per test, rolled back afterwards.

The schema is created by the Alembic migrations (never `create_all`). On PostgreSQL each session
migrates a private schema, so parallel runs and other suites never collide.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from support.db import (
    DB_BACKENDS,
    MigratedDatabase,
    create_migrated_database,
    drop_migrated_database,
)


@pytest.fixture(scope="session", params=DB_BACKENDS)
def migrated_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MigratedDatabase]:
    """One migrated database per backend for the whole test session."""
    db = create_migrated_database(request.param, tmp_path_factory.mktemp("db"))
    try:
        yield db
    finally:
        drop_migrated_database(db)


@pytest.fixture
def sync_session(migrated_db: MigratedDatabase) -> Iterator[Session]:
    """A sync ORM session inside a transaction that is rolled back after the test.

    Code under test may commit or use savepoints: `create_savepoint` turns its transactions into
    SAVEPOINTs of the outer one (SQLAlchemy's "join an external transaction" recipe).
    """
    connection = migrated_db.sync_engine().connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()
