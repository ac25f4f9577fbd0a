"""The payout ledger (Released, Withdrawn) and the market's token allowlist (TokenAllowed).

Revision ID: 0005_payouts_token_allowlist
Revises: 0004_order_indexes
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.core.db

revision: str = "0005_payouts_token_allowlist"
down_revision: str | Sequence[str] | None = "0004_order_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payout_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("account", backend.core.db.Address(length=42), nullable=False),
        sa.Column("token", backend.core.db.Address(length=42), nullable=False),
        sa.Column("amount", backend.core.db.TokenAmount(precision=78, scale=0), nullable=False),
        sa.Column("fee", backend.core.db.TokenAmount(precision=78, scale=0), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('released', 'withdrawn')", name=op.f("ck_payout_entries_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_entries")),
        sa.UniqueConstraint(
            "chain_id",
            "tx_hash",
            "log_index",
            name=op.f("uq_payout_entries_chain_id_tx_hash_log_index"),
        ),
    )
    with op.batch_alter_table("payout_entries", schema=None) as batch_op:
        batch_op.create_index("ix_payout_entries_account", ["account", "id"], unique=False)
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allowed", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("allowed")
    with op.batch_alter_table("payout_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_entries_account")
    op.drop_table("payout_entries")
