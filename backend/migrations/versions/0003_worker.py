"""The worker's tables: nonces and sent transactions of its keys, jobs handed to Celery, sent
receipt emails, reconciliation drift and scan cursors.

Revision ID: 0003_worker
Revises: 0002_indexer
Create Date: 2025-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import backend.core.db

revision: str = "0003_worker"
down_revision: str | Sequence[str] | None = "0002_indexer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_cursors",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_cursors")),
    )
    op.create_table(
        "worker_jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("topic", sa.String(length=80), nullable=False),
        sa.Column("ref", sa.String(length=120), nullable=False),
        sa.Column("task", sa.String(length=120), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("enqueues", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_jobs")),
        sa.UniqueConstraint("topic", "ref", name="uq_worker_jobs_topic_ref"),
    )
    with op.batch_alter_table("worker_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_worker_jobs_open", ["status", "updated_at"], unique=False)

    op.create_table(
        "worker_nonces",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", backend.core.db.Address(length=42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "sender", name=op.f("pk_worker_nonces")),
    )
    op.create_table(
        "worker_reconcile_drift",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.Column("learner", backend.core.db.Address(length=42), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("db_active", sa.Boolean(), nullable=False),
        sa.Column("chain_access", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_reconcile_drift")),
    )
    with op.batch_alter_table("worker_reconcile_drift", schema=None) as batch_op:
        batch_op.create_index("ix_worker_reconcile_drift_run", ["run_id"], unique=False)

    op.create_table(
        "worker_sent_receipts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_ref", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("backend", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_sent_receipts")),
        sa.UniqueConstraint("order_ref", "kind", name="uq_worker_sent_receipts_order"),
    )
    op.create_table(
        "worker_transactions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", backend.core.db.Address(length=42), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("to_address", backend.core.db.Address(length=42), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("value", backend.core.db.TokenAmount(precision=78, scale=0), nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=False),
        sa.Column(
            "max_fee_per_gas", backend.core.db.TokenAmount(precision=78, scale=0), nullable=False
        ),
        sa.Column(
            "max_priority_fee_per_gas",
            backend.core.db.TokenAmount(precision=78, scale=0),
            nullable=False,
        ),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("broadcasts", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempted_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("mined_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_transactions")),
        sa.UniqueConstraint("chain_id", "key", name="uq_worker_transactions_chain_key"),
        sa.UniqueConstraint("chain_id", "sender", "nonce", name="uq_worker_transactions_nonce"),
    )
    with op.batch_alter_table("worker_transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_worker_transactions_live", ["chain_id", "sender", "status"], unique=False
        )

    op.create_table(
        "worker_tx_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column(
            "max_fee_per_gas", backend.core.db.TokenAmount(precision=78, scale=0), nullable=False
        ),
        sa.Column(
            "max_priority_fee_per_gas",
            backend.core.db.TokenAmount(precision=78, scale=0),
            nullable=False,
        ),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["worker_transactions.id"],
            name=op.f("fk_worker_tx_attempts_transaction_id_worker_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_tx_attempts")),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_worker_tx_attempts_tx_hash")),
    )
    with op.batch_alter_table("worker_tx_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_worker_tx_attempts_transaction_id"), ["transaction_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("worker_tx_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_tx_attempts_transaction_id"))

    op.drop_table("worker_tx_attempts")
    with op.batch_alter_table("worker_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_worker_transactions_live")

    op.drop_table("worker_transactions")
    op.drop_table("worker_sent_receipts")
    with op.batch_alter_table("worker_reconcile_drift", schema=None) as batch_op:
        batch_op.drop_index("ix_worker_reconcile_drift_run")

    op.drop_table("worker_reconcile_drift")
    op.drop_table("worker_nonces")
    with op.batch_alter_table("worker_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_worker_jobs_open")

    op.drop_table("worker_jobs")
    op.drop_table("worker_cursors")
