"""Alembic environment: the models' metadata, the URL from the caller or from settings.

`backend.core.migrate` builds the Alembic config programmatically and passes either a URL (and
optional PostgreSQL schema) or an open connection in `config.attributes`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

import backend.models  # noqa: F401  (registers every API table on Base.metadata)
from backend.core.config import get_settings
from backend.core.db import Base, enable_sqlite_transactions, make_engine, schema_connect_args

# Tables owned by other services live in their own packages; import them when present.
for _module in ("indexer.models", "backend.worker.models"):
    with contextlib.suppress(ModuleNotFoundError):
        importlib.import_module(_module)

logger = logging.getLogger("alembic.env")
config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # SQLite changes a table (a CHECK, a constraint) by rebuilding it, and dropping a table that
    # other tables reference fails while foreign keys are enforced. As Alembic's batch mode
    # advises, they are off during migrations (the pragma only takes effect outside a
    # transaction) and every reference is checked before the migrations commit.
    foreign_keys_off = sqlite and not connection.in_transaction()
    if foreign_keys_off:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migrations left broken foreign keys: {broken[:10]}")


def _run_offline() -> None:
    url = config.attributes.get("url") or get_settings().database_url.get_secret_value()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url: str = config.attributes.get("url") or get_settings().database_url.get_secret_value()
    schema: str | None = config.attributes.get("schema")
    kwargs: dict[str, Any] = {"connect_args": schema_connect_args(url, schema, is_async=False)}
    engine = make_engine(url, **kwargs)
    enable_sqlite_transactions(engine)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
            if conn.dialect.name == "sqlite":
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
