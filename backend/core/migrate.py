"""Schema migrations, driven from code: `tuition db upgrade|current`, /readyz and the tests.

Alembic is the only way the schema is created. Its config is built here (no alembic.ini needed
at run time) with the scripts shipped inside the package (`backend/migrations`).
"""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from backend.core.db import make_engine, schema_connect_args

SCRIPT_LOCATION = "backend:migrations"


def make_config(
    url: str | None = None,
    *,
    schema: str | None = None,
    connection: Connection | None = None,
    chain_id: int | None = None,
) -> Config:
    """An Alembic config for `url` (default: settings' database URL) or an open connection.

    `chain_id` is the chain existing single-chain rows belong to (default: the settings').
    """
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["url"] = url
    cfg.attributes["schema"] = schema
    cfg.attributes["connection"] = connection
    cfg.attributes["chain_id"] = chain_id
    return cfg


def upgrade(
    url: str, revision: str = "head", *, schema: str | None = None, chain_id: int | None = None
) -> None:
    """Apply migrations up to `revision` on the database at `url`."""
    command.upgrade(make_config(url, schema=schema, chain_id=chain_id), revision)


def downgrade(
    url: str, revision: str, *, schema: str | None = None, chain_id: int | None = None
) -> None:
    """Revert migrations down to `revision` (tests of the migrations themselves)."""
    command.downgrade(make_config(url, schema=schema, chain_id=chain_id), revision)


def configured_chain_id() -> int:
    """Inside a migration: the chain existing single-chain rows belong to (the `chain_id` the
    caller passed, else the settings' `TUITION_CHAIN_ID`)."""
    from alembic import context

    given = context.config.attributes.get("chain_id")
    if given is not None:
        return int(given)
    from backend.core.config import get_settings

    return get_settings().chain_id


@lru_cache(maxsize=1)
def heads() -> tuple[str, ...]:
    """The head revision(s) of the migration scripts."""
    return tuple(ScriptDirectory.from_config(make_config()).get_heads())


def current_of(connection: Connection) -> tuple[str, ...]:
    """The revision(s) the database behind an open connection is at (empty: never migrated)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def current(url: str, *, schema: str | None = None) -> tuple[str, ...]:
    """The revision(s) the database at `url` is at."""
    engine = make_engine(url, connect_args=schema_connect_args(url, schema, is_async=False))
    try:
        with engine.connect() as conn:
            return current_of(conn)
    finally:
        engine.dispose()


def is_at_head(connection: Connection) -> bool:
    """Whether the database is migrated to exactly the scripts' head(s)."""
    return set(current_of(connection)) == set(heads())
