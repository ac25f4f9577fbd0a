"""Crypto orders remember the refund window the buyer was quoted (Trust 5).

The purchase transaction carries it (`purchase(..., quotedWindow)`) and the market refuses the
purchase when the course's window was cut below it before the purchase was mined. Existing
orders were quoted before the market checked it: NULL.

Revision ID: 0011_order_quoted_refund_window
Revises: 0010_provider_verification
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_order_quoted_refund_window"
down_revision: str | Sequence[str] | None = "0010_provider_verification"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quoted_refund_window", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("quoted_refund_window")
