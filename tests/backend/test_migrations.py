"""The schema comes from Alembic and matches the models; migrations go down and up again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from support.db import MigratedDatabase

import backend.models
from backend.access.service import entitlement_ref
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
    assert len(API_TABLES) == 18
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


def test_0008_backfills_the_on_chain_record_of_existing_entitlements(tmp_path: Path) -> None:
    """Crypto access is the chain's own fact, other active access waits for the reconciler with
    its ref, revoked access is done, and a queued card grant becomes the entitlement's grant."""
    url = f"sqlite:///{tmp_path / 'backfill.db'}"
    migrate.upgrade(url, "0007_drop_applied_logs_tx_index")
    engine = sa.create_engine(url)
    tables = sa.MetaData()
    tables.reflect(engine)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    learner = "0x" + "ab" * 20
    order_ref = "0x" + "cd" * 32
    with engine.begin() as conn:
        conn.execute(
            tables.tables["courses"].insert(),
            {"id": 1, "provider": learner, "title": "T", "description": "", "status": "published",
             "refund_window": 0, "created_at": now, "updated_at": now},
        )  # fmt: skip
        conn.execute(
            tables.tables["orders"].insert(),
            {"id": "card-1", "rail": "card", "course_id": 1, "buyer": learner,
             "recipient": learner, "amount": "4900", "currency": "usd", "fee": "0",
             "status": "paid",
             "order_ref": order_ref, "confirmed": False, "anomalies": [], "created_at": now,
             "updated_at": now},
        )  # fmt: skip
        rows = [
            (1, "crypto", None, None),
            (2, "card", "card-1", None),
            (3, "free", None, None),
            (4, "grant", None, now),
        ]
        for ent_id, source, order_id, revoked_at in rows:
            conn.execute(
                tables.tables["entitlements"].insert(),
                {"id": ent_id, "address": f"0x{ent_id:040x}", "course_id": 1, "source": source,
                 "order_id": order_id, "granted_at": now, "granted_by": "test",
                 "revoked_at": revoked_at},
            )  # fmt: skip
        conn.execute(
            tables.tables["outbox"].insert(),
            {"topic": "access.card_grant", "payload": {"orderId": "card-1"},
             "dedupe_key": "access.card_grant:2", "created_at": now, "available_at": now,
             "attempts": 0},
        )  # fmt: skip
    engine.dispose()

    migrate.upgrade(url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT id, chain_status, chain_ref FROM entitlements ORDER BY id")
        ).all()
        message = conn.execute(sa.text("SELECT topic, payload, dedupe_key FROM outbox")).one()
    engine.dispose()
    assert [tuple(r) for r in found] == [
        (1, "recorded", None),
        (2, "pending", order_ref),
        (3, "pending", entitlement_ref(3)),
        (4, "revoked", entitlement_ref(4)),
    ]
    assert message[0] == "access.chain_grant" and message[2] == "access.chain_grant:2"
    assert json.loads(message[1]) == {"entitlementId": 2}


def test_0014_to_0018_move_on_chain_facts_to_the_configured_chain(tmp_path: Path) -> None:
    """Every linked course gets its registration on the chain the deployment served (here 137,
    passed as the configured chain); listing and block go with it, unlinked courses get none;
    tokens and prices become that chain's; the rows pointing at courses are untouched."""
    url = f"sqlite:///{tmp_path / 'chains.db'}"
    migrate.upgrade(url, "0013_connect_accounts")
    engine = sa.create_engine(url)
    tables = sa.MetaData()
    tables.reflect(engine)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    provider = "0x" + "ab" * 20
    courses = [
        # id, on-chain id, listed, block
        (1, 7, True, 120),
        (2, None, None, None),
        (3, 8, False, 130),
    ]
    with engine.begin() as conn:
        for course_id, onchain_id, listed, block in courses:
            conn.execute(
                tables.tables["courses"].insert(),
                {"id": course_id, "onchain_id": onchain_id, "provider": provider,
                 "title": f"T{course_id}", "description": "", "status": "published",
                 "refund_window": 0, "certificate_mode": "mint", "listed_onchain": listed,
                 "onchain_block": block, "created_at": now, "updated_at": now},
            )  # fmt: skip
        for ent_id, source, order_id, status in (
            (1, "crypto", "o-1", "recorded"),  # the order's chain
            (2, "grant", None, "recorded"),  # written by the worker: the configured chain
            (3, "card", None, "pending"),  # not written anywhere yet
        ):
            conn.execute(
                tables.tables["entitlements"].insert(),
                {"id": ent_id, "address": f"0x{ent_id:040x}", "course_id": 1, "source": source,
                 "order_id": order_id, "granted_at": now, "granted_by": "test",
                 "chain_status": status},
            )  # fmt: skip
        conn.execute(
            tables.tables["certificates"].insert(),
            {"id": 1, "course_id": 1, "address": provider, "token_id": str(7 << 160),
             "record_hash": "0x" + "aa" * 28, "record": {}, "mode": "mint", "status": "minted",
             "requested_at": now, "updated_at": now},
        )  # fmt: skip
        conn.execute(
            tables.tables["provider_profiles"].insert(),
            {"address": provider, "name": "School", "domain": "school.example",
             "profile_hash": "0x" + "bb" * 32, "verified": False, "block_number": 3,
             "tx_hash": "0x" + "cc" * 32, "updated_at": now},
        )  # fmt: skip
        conn.execute(
            tables.tables["tokens"].insert(),
            {"address": "0x" + "00" * 20, "symbol": "POL", "decimals": 18, "name": "POL",
             "allowed": True},
        )  # fmt: skip
        conn.execute(
            tables.tables["token_prices"].insert(),
            {"course_id": 1, "token": "0x" + "00" * 20, "price": "10", "accepted": True,
             "updated_block": 120, "updated_at": now},
        )  # fmt: skip
        conn.execute(
            tables.tables["orders"].insert(),
            {"id": "o-1", "rail": "crypto", "course_id": 1, "buyer": provider,
             "recipient": provider, "amount": "10", "token": "0x" + "00" * 20, "fee": "0",
             "status": "paid", "order_ref": "0x" + "cd" * 32, "chain_id": 80002,
             "tx_hash": "0x" + "ef" * 32, "log_index": 0, "confirmed": True, "anomalies": [],
             "created_at": now, "updated_at": now},
        )  # fmt: skip
    engine.dispose()

    migrate.upgrade(url, "0018_chain_provider_records", chain_id=137)

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        registrations = conn.execute(
            sa.text(
                "SELECT course_id, chain_id, onchain_id, listed, block FROM course_chains "
                "ORDER BY course_id"
            )
        ).all()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("courses")}
        prices = conn.execute(sa.text("SELECT course_id, chain_id FROM token_prices")).all()
        tokens = conn.execute(sa.text("SELECT chain_id, symbol FROM tokens")).all()
        certificate = conn.execute(sa.text("SELECT chain_id, status FROM certificates")).one()
        profile = conn.execute(sa.text("SELECT chain_id, name FROM provider_profiles")).one()
        entitlements = conn.execute(
            sa.text("SELECT id, chain_id FROM entitlements ORDER BY id")
        ).all()
        order = conn.execute(sa.text("SELECT course_id, chain_id FROM orders")).one()
    engine.dispose()
    assert [tuple(r) for r in registrations] == [(1, 137, 7, True, 120), (3, 137, 8, False, 130)]
    assert not {"onchain_id", "listed_onchain", "onchain_block"} & columns
    assert [tuple(p) for p in prices] == [(1, 137)] and [tuple(t) for t in tokens] == [(137, "POL")]
    assert tuple(order) == (1, 80002) and tuple(certificate) == (137, "minted")
    assert [tuple(e) for e in entitlements] == [(1, 80002), (2, 137), (3, None)]
    assert tuple(profile) == (137, "School")

    # And back: the configured chain's registrations fit the old columns again.
    migrate.downgrade(url, "0013_connect_accounts", chain_id=137)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        back = conn.execute(
            sa.text("SELECT id, onchain_id, listed_onchain, onchain_block FROM courses ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in back] == [(1, 7, 1, 120), (2, None, None, None), (3, 8, 0, 130)]
