"""The several-chains migrations (0014-0018) on a database with a row in EVERY table: nothing is
lost, and every on-chain fact ends on the configured chain (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from support.db import DB_BACKENDS, PG_URL, _admin_pg_url

from backend.core import migrate
from backend.core.db import make_engine, schema_connect_args

BEFORE = "0013_connect_accounts"
CONFIGURED = 137  # the chain the single-chain deployment served
PURCHASE_CHAIN = 80002  # a crypto order's own chain id (kept: entitlements follow it)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ADDRESS = "0x" + "ab" * 20
HASH = "0x" + "cd" * 32

# Values the check constraints and the meaning of the data need; everything else is generic.
CHOSEN: dict[tuple[str, str], Any] = {
    ("courses", "onchain_id"): 7,
    ("courses", "status"): "published",
    ("courses", "certificate_mode"): "mint",
    ("courses", "listed_onchain"): True,
    ("courses", "onchain_block"): 120,
    ("orders", "id"): "order-1",
    ("orders", "rail"): "crypto",
    ("orders", "status"): "paid",
    ("orders", "token"): "0x" + "00" * 20,
    ("orders", "currency"): None,
    ("orders", "chain_id"): PURCHASE_CHAIN,
    ("entitlements", "order_id"): "order-1",
    ("entitlements", "source"): "crypto",
    ("entitlements", "chain_status"): "recorded",
    ("certificates", "mode"): "mint",
    ("certificates", "status"): "minted",
    ("certificates", "token_id"): 7,
    ("payout_entries", "kind"): "released",
    ("lessons", "position"): 1,
    ("worker_tx_attempts", "transaction_id"): 1,
}


def _value(table: sa.Table, column: sa.Column[Any]) -> Any:
    if (table.name, column.name) in CHOSEN:
        return CHOSEN[(table.name, column.name)]
    if column.foreign_keys:
        return 1
    if column.nullable and not column.primary_key:
        return None
    kind = column.type
    if isinstance(kind, sa.LargeBinary):
        return b"{}"
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.DateTime):
        return NOW
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.Integer | sa.Numeric):
        return 1
    length = getattr(kind, "length", None) or 66
    return (HASH if length >= 66 else ADDRESS if length >= 42 else "x")[:length]


@pytest.fixture(params=DB_BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chains.db'}", None
        return
    import psycopg

    schema = f"t_mig_{uuid.uuid4().hex[:12]}"
    admin = _admin_pg_url().replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield PG_URL or "", schema
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_every_table_keeps_its_rows_and_on_chain_facts_move_to_the_configured_chain(
    database: tuple[str, str | None],
) -> None:
    url, schema = database
    migrate.upgrade(url, BEFORE, schema=schema, chain_id=CONFIGURED)
    engine = make_engine(url, connect_args=schema_connect_args(url, schema, is_async=False))
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        filled = [t for t in tables.sorted_tables if t.name != "alembic_version"]
        with engine.begin() as conn:
            for table in filled:
                conn.execute(table.insert(), {c.name: _value(table, c) for c in table.columns})
        counts_before = _counts(engine, [t.name for t in filled])

        migrate.upgrade(url, schema=schema, chain_id=CONFIGURED)

        assert _counts(engine, [t.name for t in filled]) == counts_before, "rows were lost"
        with engine.connect() as conn:

            def one(sql: str) -> tuple[Any, ...]:
                return tuple(conn.execute(sa.text(sql)).one())

            assert one(
                "SELECT course_id, chain_id, onchain_id, listed, block FROM course_chains"
            ) == (
                1,
                CONFIGURED,
                7,
                True,
                120,
            )
            for table in ("tokens", "token_prices", "certificates", "provider_profiles"):
                assert one(f"SELECT chain_id FROM {table}") == (CONFIGURED,), table
            assert one("SELECT chain_id FROM provider_verification_requests") == (CONFIGURED,)
            # The purchase's access follows the order's own chain; chain-keyed rows are as
            # they were.
            assert one("SELECT chain_id FROM entitlements") == (PURCHASE_CHAIN,)
            assert one("SELECT chain_id FROM orders") == (PURCHASE_CHAIN,)
            for table in ("indexer_checkpoints", "worker_nonces", "payout_entries"):
                assert one(f"SELECT chain_id FROM {table}") == (1,), table
    finally:
        engine.dispose()


def _counts(engine: sa.Engine, names: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in names
        }
