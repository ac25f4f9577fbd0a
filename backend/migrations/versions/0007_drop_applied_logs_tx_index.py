"""Drop the (chain id, tx hash) index of applied logs: no query uses it, and every indexed log
paid for it (lookups go through the unique key or the (chain id, block) index).

Revision ID: 0007_drop_applied_logs_tx_index
Revises: 0006_course_certificate_mode
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_drop_applied_logs_tx_index"
down_revision: str | Sequence[str] | None = "0006_course_certificate_mode"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("indexer_applied_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_indexer_applied_logs_chain_tx")


def downgrade() -> None:
    with op.batch_alter_table("indexer_applied_logs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_indexer_applied_logs_chain_tx", ["chain_id", "tx_hash"], unique=False
        )
