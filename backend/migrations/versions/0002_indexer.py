"""The indexer's tables: checkpoints, the recent-block window, applied logs, reorg records.

Revision ID: 0002_indexer
Revises: 0001_initial
Create Date: 2025-11-22
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import backend.core.db

revision: str = "0002_indexer"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "indexer_checkpoints",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("stream", sa.String(length=120), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("levels", _json(), nullable=False),
        sa.Column("halted_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "stream", name=op.f("pk_indexer_checkpoints")),
    )
    op.create_table(
        "indexer_blocks",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("stream", sa.String(length=120), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "stream", "number", name=op.f("pk_indexer_blocks")),
    )
    op.create_table(
        "indexer_applied_logs",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("args", _json(), nullable=False),
        sa.Column("effect", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexer_applied_logs")),
        sa.UniqueConstraint(
            "chain_id",
            "block_hash",
            "tx_hash",
            "log_index",
            name=op.f("uq_indexer_applied_logs_chain_id_block_hash_tx_hash_log_index"),
        ),
    )
    with op.batch_alter_table("indexer_applied_logs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_indexer_applied_logs_chain_block", ["chain_id", "block_number"], unique=False
        )
        batch_op.create_index(
            "ix_indexer_applied_logs_chain_tx", ["chain_id", "tx_hash"], unique=False
        )
    op.create_table(
        "indexer_reorgs",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("stream", sa.String(length=120), nullable=False),
        sa.Column("detected_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("ancestor_number", sa.BigInteger(), nullable=True),
        sa.Column("old_head_number", sa.BigInteger(), nullable=False),
        sa.Column("old_head_hash", sa.String(length=66), nullable=False),
        sa.Column("new_head_number", sa.BigInteger(), nullable=False),
        sa.Column("new_head_hash", sa.String(length=66), nullable=False),
        sa.Column("orphaned_logs", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexer_reorgs")),
    )
    with op.batch_alter_table("indexer_reorgs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_indexer_reorgs_chain_detected", ["chain_id", "detected_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("indexer_reorgs")
    op.drop_table("indexer_applied_logs")
    op.drop_table("indexer_blocks")
    op.drop_table("indexer_checkpoints")
