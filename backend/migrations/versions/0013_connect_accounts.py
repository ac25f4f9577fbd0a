"""Stripe Connect: providers' Express accounts, and the destination of a card payment.

- connect_accounts: one per provider, its state kept from `account.updated` webhooks.
- orders.stripe_destination: the Connect account a card payment was a destination charge to.

Revision ID: 0013_connect_accounts
Revises: 0012_card_order_review
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_connect_accounts"
down_revision: str | Sequence[str] | None = "0012_card_order_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connect_accounts",
        sa.Column("provider", sa.String(length=42), nullable=False),
        sa.Column("stripe_account_id", sa.String(length=255), nullable=False),
        sa.Column("details_submitted", sa.Boolean(), nullable=False),
        sa.Column("charges_enabled", sa.Boolean(), nullable=False),
        sa.Column("payouts_enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "requirements_due",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_connect_accounts")),
        sa.UniqueConstraint(
            "stripe_account_id", name=op.f("uq_connect_accounts_stripe_account_id")
        ),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_destination", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("stripe_destination")
    op.drop_table("connect_accounts")
