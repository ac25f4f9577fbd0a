"""Migration 0003_worker matches the worker's models, upgrades and downgrades."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from backend.core import migrate
from backend.core.db import Base, make_engine
from backend.worker import models

PG_URL = os.environ.get("TUITION_TEST_DATABASE_URL")
WORKER_TABLES = {
    table.name for table in Base.metadata.sorted_tables if table.name.startswith("worker_")
}


@pytest.fixture
def empty_db(tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """An empty database: (URL, PostgreSQL schema or None)."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'migrate.db'}", None
        return
    schema = f"wm_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield PG_URL, schema
    finally:
        with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _tables(url: str, schema: str | None) -> set[str]:
    from backend.core.db import schema_connect_args

    engine = make_engine(url, connect_args=schema_connect_args(url, schema, is_async=False))
    try:
        return set(inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def test_upgrade_creates_what_the_models_describe(empty_db: tuple[str, str | None]) -> None:
    url, schema = empty_db
    assert models.WorkerTransaction.__tablename__ in WORKER_TABLES
    migrate.upgrade(url, "head", schema=schema)
    assert _tables(url, schema) >= WORKER_TABLES

    from backend.core.db import schema_connect_args

    engine = make_engine(url, connect_args=schema_connect_args(url, schema, is_async=False))
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()

    def concerns_worker(diff: object) -> bool:
        text = repr(diff)
        return any(name in text for name in WORKER_TABLES)

    assert [d for d in diffs if concerns_worker(d)] == []


def test_downgrade_removes_the_worker_tables(empty_db: tuple[str, str | None]) -> None:
    url, schema = empty_db
    migrate.upgrade(url, "head", schema=schema)
    migrate.downgrade(url, "0002_indexer", schema=schema)
    assert not WORKER_TABLES & _tables(url, schema)
    migrate.upgrade(url, "head", schema=schema)
    assert _tables(url, schema) >= WORKER_TABLES
