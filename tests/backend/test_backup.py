"""`tuition backup` / `tuition restore`: one consistent snapshot with a checksum, retention, and a
restore that refuses to overwrite a database unless forced; on PostgreSQL and SQLite."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from backend.backup.service import (
    BackupError,
    create_backup,
    list_backups,
    restore_backup,
    verify,
)
from backend.cli import app
from backend.core import migrate
from backend.core.config import get_settings

PG_URL = os.environ.get("TUITION_TEST_DATABASE_URL", "")
NewDatabase = Callable[[], str]


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed)


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of empty databases (PostgreSQL when configured, else SQLite files)."""
    made: list[str] = []

    def make() -> str:
        if not PG_URL.startswith("postgresql"):
            return f"sqlite:///{tmp_path / f'db-{uuid.uuid4().hex[:8]}.sqlite'}"
        name = f"tuition_backup_{uuid.uuid4().hex[:10]}"
        admin = _engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        made.append(name)
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    if made:
        admin = _engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _seed(url: str) -> None:
    migrate.upgrade(url)
    engine = _engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO indexer_checkpoints (chain_id, stream, block_number, block_hash,"
                " levels, updated_at) VALUES (31337, 's', 41, :h, '{}', :now)"
            ),
            {"h": "0x" + "ab" * 32, "now": datetime.now(UTC)},
        )
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO outbox (topic, payload, created_at, available_at, attempts)"
                    " VALUES ('test', :p, :now, :now, 0)"
                ),
                {"p": f'{{"n": {n}}}', "now": datetime.now(UTC)},
            )
    engine.dispose()


def _count(url: str, table: str) -> int:
    engine = _engine(url)
    with engine.connect() as conn:
        n = int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    engine.dispose()
    return n


def test_backup_restores_into_an_empty_database(new_database: NewDatabase, tmp_path: Path) -> None:
    source, target = new_database(), new_database()
    _seed(source)
    made, removed = create_backup(source, tmp_path / "backups", keep=3)
    assert removed == []
    assert made.path.exists() and verify(made.path) == made.sha256
    assert made.path.with_name(made.path.name + ".sha256").read_text() == (
        f"{made.sha256}  {made.path.name}\n"
    )
    restored = restore_backup(target, made.path)
    assert restored.revision == migrate.heads()[0]
    assert restored.checkpoints == {"31337/s": 41}
    assert restored.outbox_pending == 3
    assert migrate.current(target) == migrate.heads()
    assert _count(target, "outbox") == 3


def test_restore_refuses_a_database_with_tables_unless_forced(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    source, target = new_database(), new_database()
    _seed(source)
    made, _ = create_backup(source, tmp_path / "backups", keep=3)
    migrate.upgrade(target)  # a live database: the wrong URL, say
    with pytest.raises(BackupError, match="--force"):
        restore_backup(target, made.path)
    assert _count(target, "outbox") == 0  # untouched
    restore_backup(target, made.path, force=True)
    assert _count(target, "outbox") == 3
    assert _count(target, "indexer_checkpoints") == 1


def test_a_damaged_or_unchecked_backup_is_refused(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    source, target = new_database(), new_database()
    _seed(source)
    made, _ = create_backup(source, tmp_path / "backups", keep=3)
    data = bytearray(made.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    made.path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="damaged"):
        restore_backup(target, made.path)
    made.path.with_name(made.path.name + ".sha256").unlink()
    with pytest.raises(BackupError, match="missing"):
        restore_backup(target, made.path)
    assert _count_tables(target) == 0


def _count_tables(url: str) -> int:
    from backend.backup.service import _tables

    return _tables(make_url(url))


def test_retention_keeps_the_newest(new_database: NewDatabase, tmp_path: Path) -> None:
    source = new_database()
    _seed(source)
    start = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    directory = tmp_path / "backups"
    for day in range(3):
        create_backup(source, directory, keep=5, now=start + timedelta(days=day))
    made, removed = create_backup(source, directory, keep=2, now=start + timedelta(days=3))
    assert [b.taken_at.day for b in list_backups(directory)] == [3, 4]
    assert {p.name for p in removed} == {
        f"tuition-2026120{day}T030000Z{made.path.suffix}{checksum}"
        for day in (1, 2)
        for checksum in ("", ".sha256")
    }


@pytest.mark.skipif(not PG_URL.startswith("postgresql"), reason="a PostgreSQL snapshot")
def test_a_backup_taken_during_writes_is_one_snapshot(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    # A writer moves the checkpoint and adds an outbox message in each transaction, as the
    # indexer does with its effects: a consistent backup holds block == messages.
    source, target = new_database(), new_database()
    _seed(source)
    engine = _engine(source)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox"))
        conn.execute(text("UPDATE indexer_checkpoints SET block_number = 0"))
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO outbox (topic, payload, created_at, available_at, attempts)"
                        " VALUES ('test', '{}', now(), now(), 0)"
                    )
                )
                conn.execute(text("UPDATE indexer_checkpoints SET block_number = block_number + 1"))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        made, _ = create_backup(source, tmp_path / "backups", keep=3)
    finally:
        stop.set()
        writer.join()
        engine.dispose()
    restored = restore_backup(target, made.path)
    assert restored.checkpoints["31337/s"] == _count(target, "outbox") > 0


def test_cli_backup_and_restore(
    new_database: NewDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, target = new_database(), new_database()
    _seed(source)
    runner = CliRunner()
    monkeypatch.setenv("TUITION_DATABASE_URL", source)
    monkeypatch.setenv("TUITION_BACKUP_DIR", str(tmp_path / "nightly"))
    get_settings.cache_clear()
    made = runner.invoke(app, ["backup", "--keep", "2"])
    assert made.exit_code == 0, made.output
    (backup,) = list_backups(tmp_path / "nightly")
    assert str(backup.path) in made.output and backup.sha256 in made.output

    monkeypatch.setenv("TUITION_DATABASE_URL", target)
    get_settings.cache_clear()
    done = runner.invoke(app, ["restore", str(backup.path)])
    assert done.exit_code == 0, done.output
    assert "indexer 31337/s: block 41" in done.output and "3 message(s)" in done.output
    again = runner.invoke(app, ["restore", str(backup.path)])
    assert again.exit_code == 1 and "--force" in again.output
    get_settings.cache_clear()
