"""A database restored from a backup: the indexer resumes from the restored checkpoint and
re-applies everything after it, with no gap and no duplicate (the indexer's part of the restore
drill; `tuition backup` / `tuition restore` underneath)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from support.emitter import address
from support.indexer import (
    active_entitlements,
    applied_count,
    backend_sink,
    duplicate_keys,
    make_indexer,
    orders,
)

from backend.backup.service import create_backup, restore_backup
from backend.core import migrate
from indexer.runner import make_indexer_engine

PG_URL = os.environ.get("TUITION_TEST_DATABASE_URL")
ZERO = "0x" + "00" * 20
NOREF = "0x" + "00" * 32
PROVIDER = address(0xA11CE)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own (a backup holds a whole database, not a schema)."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"tuition_restore_{uuid.uuid4().hex[:10]}"
    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Db:
    """A database as the indexer suite's helpers use it."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    dialect: str


def connect(url: str) -> Db:
    engine = make_indexer_engine(url)
    return Db(url, engine, sessionmaker(engine, expire_on_commit=False), engine.dialect.name)


def snapshot(db: Db) -> tuple[dict[tuple[int, str], int], list[tuple[str, str, int]], int]:
    return (
        active_entitlements(db),
        sorted((o.buyer, o.status, o.amount) for o in orders(db)),
        applied_count(db),
    )


def test_the_indexer_resumes_from_a_restored_checkpoint_without_gap_or_duplicate(
    database_url: str, tmp_path: Path, anvil: Any, emitter: Any
) -> None:
    migrate.upgrade(database_url)
    db = connect(database_url)
    learners = [address(0xB000 + n) for n in range(7)]
    emitter.tx("courseCreated", 9, PROVIDER, 3600, "Backups 101")
    emitter.tx("priceSet", 9, ZERO, 10**17, True)
    for learner in learners[:3]:
        emitter.tx("purchased", 9, learner, learner, ZERO, 10**17, 10**15, NOREF)

    def indexer(on: Db) -> Any:
        return make_indexer(
            on, anvil, [emitter.address], emitter.deploy_block, sink=backend_sink(anvil.chain_id)
        )

    indexer(db).catch_up()
    backed_up = snapshot(db)
    assert len(backed_up[0]) == 3
    made, _ = create_backup(database_url, tmp_path / "backups", keep=2)

    # After the backup: more purchases and a refund, indexed; then the database is lost.
    for learner in learners[3:]:
        emitter.tx("purchased", 9, learner, learner, ZERO, 10**17, 10**15, NOREF)
    emitter.tx("refunded", 9, learners[0], learners[0], ZERO, 10**17, PROVIDER)
    indexer(db).catch_up()
    before_loss = snapshot(db)
    assert len(before_loss[0]) == 6 and before_loss[2] == backed_up[2] + 5
    db.engine.dispose()

    restore_backup(database_url, made.path, force=True)
    restored = connect(database_url)
    assert snapshot(restored) == backed_up  # the backup's instant, checkpoint included
    indexer(restored).catch_up()
    assert snapshot(restored) == before_loss  # everything after it re-applied once
    assert duplicate_keys(restored) == 0
    restored.engine.dispose()
