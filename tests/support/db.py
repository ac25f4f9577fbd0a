"""Test databases migrated with Alembic: a SQLite file, or a private PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.core import migrate
from backend.core.db import (
    enable_sqlite_transactions,
    make_async_engine,
    make_engine,
    schema_connect_args,
)

PG_URL = os.environ.get("TUITION_TEST_DATABASE_URL")
DB_BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _admin_pg_url() -> str:
    assert PG_URL
    return (
        make_url(PG_URL).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    )


@dataclass
class MigratedDatabase:
    """A database migrated to head: SQLite file, or a private PostgreSQL schema."""

    backend: str
    url: str
    schema: str | None = None
    _engine: Engine | None = field(default=None, repr=False)

    def sync_engine(self) -> Engine:
        """A sync engine on this database (cached)."""
        if self._engine is None:
            self._engine = make_engine(
                self.url, connect_args=schema_connect_args(self.url, self.schema, is_async=False)
            )
            enable_sqlite_transactions(self._engine)
        return self._engine

    def async_engine(self, **kwargs: Any) -> AsyncEngine:
        """A new async engine on this database (the caller disposes it)."""
        connect_args = schema_connect_args(self.url, self.schema, is_async=True)
        engine = make_async_engine(self.url, connect_args=connect_args, **kwargs)
        enable_sqlite_transactions(engine.sync_engine)
        return engine

    def dispose(self) -> None:
        """Close the cached engine."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def create_migrated_database(backend: str, directory: Path) -> MigratedDatabase:
    """A fresh database of `backend`, migrated with Alembic to head."""
    if backend == "sqlite":
        db = MigratedDatabase("sqlite", f"sqlite:///{directory / f'api-{uuid.uuid4().hex}.db'}")
    else:
        import psycopg

        schema = f"t_api_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_admin_pg_url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        db = MigratedDatabase("postgresql", PG_URL or "", schema)
    migrate.upgrade(db.url, schema=db.schema)
    return db


def drop_migrated_database(db: MigratedDatabase) -> None:
    """Remove what `create_migrated_database` made."""
    db.dispose()
    if db.schema:
        import psycopg

        with psycopg.connect(_admin_pg_url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE')
