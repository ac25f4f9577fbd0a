"""Migration 0002_indexer creates exactly the indexer's models (and goes back down)."""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import indexer.models  # noqa: F401
from backend.core import migrate
from backend.core.db import Base, make_engine
from indexer.runner import INDEXER_TABLES


def _check(url: str, schema: str | None) -> None:
    migrate.upgrade(url, "head", schema=schema)
    args = {"options": f"-csearch_path={schema}"} if schema else {}
    engine = make_engine(url, connect_args=args)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
            assert [d for d in diff if "indexer_" in repr(d)] == []
            assert all(inspect(conn).has_table(t) for t in INDEXER_TABLES)
        migrate.downgrade(url, "0001_initial", schema=schema)
        with engine.connect() as conn:
            assert not any(inspect(conn).has_table(t) for t in INDEXER_TABLES)
    finally:
        engine.dispose()


def test_migration_matches_models_sqlite(tmp_path):
    _check(f"sqlite:///{tmp_path / 'migrated.db'}", None)


def test_migration_matches_models_postgres():
    url = os.environ.get("TUITION_TEST_DATABASE_URL")
    if not url:
        pytest.skip("TUITION_TEST_DATABASE_URL not set")
    schema = f"ixm_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        _check(url, schema)
    finally:
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
