"""The worker on a database restored from a backup: what the restored records say was sent is
not sent again, a transaction in flight at the backup is settled from the chain, and no nonce is
used twice (the worker's part of the restore drill)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from eth_account import Account
from sqlalchemy.engine import make_url
from support.anvil import Anvil
from support.market import KEYS
from support.worker import WorkerEnv

from backend.backup.service import create_backup, restore_backup
from backend.core import migrate
from backend.core.config import WorkerSettings
from backend.core.db import reset_process_engine
from backend.worker.models import TxStatus, WorkerTxAttempt
from backend.worker.sender import TxSender

pytestmark = pytest.mark.chain

PG_URL = os.environ.get("TUITION_TEST_DATABASE_URL")
KEY = KEYS[7]


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own (a backup holds a whole database, not a schema)."""
    if not PG_URL:
        url = f"sqlite:///{tmp_path / 'restored.db'}"
        migrate.upgrade(url)
        yield url
        return
    name = f"tuition_wrestore_{uuid.uuid4().hex[:10]}"
    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    try:
        yield url
    finally:
        reset_process_engine()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sender_of(wenv: WorkerEnv) -> TxSender:
    return TxSender(
        wenv.deployed.w3, Account.from_key(KEY), wenv.factory, settings=WorkerSettings()
    )


def test_a_restored_worker_sends_nothing_twice_and_reuses_no_nonce(
    wenv: WorkerEnv, anvil: Anvil, database_url: str, tmp_path: Path
) -> None:
    sender = sender_of(wenv)
    me = str(sender.address)
    sender.wait(sender.send("before", me, "0x"), timeout=30)
    with anvil.no_automine():
        in_flight = sender.send("in-flight", me, "0x")  # broadcast, not mined yet
        made, _ = create_backup(database_url, tmp_path / "backups", keep=2)
    sender.wait(in_flight, timeout=30)
    after = sender.wait(sender.send("after", me, "0x"), timeout=30)  # lost with the database

    reset_process_engine()  # the database is replaced underneath
    restore_backup(database_url, made.path, force=True)
    restored = sender_of(wenv)
    (row,) = wenv.transactions("in-flight")
    assert row.status in TxStatus.LIVE  # the backup's instant

    restored.recover()  # what every worker runs on start and every 30 s
    by_key = {r.key: r for r in wenv.transactions()}
    assert set(by_key) == {"before", "in-flight"}
    settled = by_key["in-flight"]
    assert settled.status == TxStatus.MINED and settled.tx_hash == in_flight.tx_hash
    # Settled from the chain, not sent again.
    assert wenv.count(WorkerTxAttempt, WorkerTxAttempt.transaction_id == settled.id) == 1

    nxt = restored.wait(restored.send("next", me, "0x"), timeout=30)
    assert nxt.mined and nxt.nonce == after.nonce + 1  # past the lost one's nonce
    assert anvil.w3.eth.get_transaction_count(me) == after.nonce + 2
