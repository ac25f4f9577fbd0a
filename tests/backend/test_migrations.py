"""The schema comes from Alembic and matches the models; migrations go down and up again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from db_support import MigratedDatabase

import backend.models
from backend.core import migrate
from backend.core.db import Base

API_TABLES = {
    model.__tablename__
    for model in (getattr(backend.models, name) for name in backend.models.__all__)
    if isinstance(getattr(model, "__tablename__", None), str)
}


def _table_of(diff: Any) -> str | None:
    """The table a compare_metadata() difference is about."""
    if isinstance(diff, list):  # modify_* differences come grouped per column
        return _table_of(diff[0])
    kind, *rest = diff
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(rest[1])  # (kind, schema, table name, ...)
    obj = rest[0]
    if kind.endswith("_table"):
        return str(obj.name)
    table = getattr(obj, "table", None)
    return str(table.name) if table is not None else None


def test_first_revision_is_0001_initial_and_head_is_reached(migrated_db: MigratedDatabase) -> None:
    assert "0001_initial" in {rev.revision for rev in _script().walk_revisions()}
    with migrated_db.sync_engine().connect() as conn:
        assert migrate.is_at_head(conn)


def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.make_config())


def test_models_match_the_migrated_schema(migrated_db: MigratedDatabase) -> None:
    with migrated_db.sync_engine().connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = compare_metadata(context, Base.metadata)
    assert len(API_TABLES) == 15
    ours = [d for d in diffs if _table_of(d) in API_TABLES]
    assert ours == []


def test_migrations_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.heads()
    migrate.downgrade(url, "base")
    assert migrate.current(url) == ()
    migrate.upgrade(url, "0001_initial")
    assert migrate.current(url) == ("0001_initial",)
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.heads()
