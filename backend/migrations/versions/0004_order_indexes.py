"""Order indexes for on-chain backfills: card references indexed only where set, and a small
index of the orders still waiting for confirmations.

Revision ID: 0004_order_indexes
Revises: 0003_worker
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_order_indexes"
down_revision: str | Sequence[str] | None = "0003_worker"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CARD_REFERENCES = (
    ("ix_orders_stripe_charge_id", "stripe_charge_id", False),
    ("ix_orders_stripe_payment_intent_id", "stripe_payment_intent_id", False),
    ("uq_orders_stripe_checkout_session_id", "stripe_checkout_session_id", True),
)


def _where(condition: str, sqlite: str | None = None) -> dict[str, sa.TextClause]:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(sqlite or condition)}


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint("uq_orders_stripe_checkout_session_id", type_="unique")
        batch_op.drop_index("ix_orders_stripe_charge_id")
        batch_op.drop_index("ix_orders_stripe_payment_intent_id")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for name, column, unique in CARD_REFERENCES:
            batch_op.create_index(name, [column], unique=unique, **_where(f"{column} IS NOT NULL"))
        batch_op.create_index(
            "ix_orders_unconfirmed_block",
            ["chain_id", "block_number"],
            unique=False,
            **_where("NOT confirmed", sqlite="confirmed = 0"),
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_unconfirmed_block")
        for name, _column, _unique in CARD_REFERENCES:
            batch_op.drop_index(name)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_stripe_charge_id", ["stripe_charge_id"], unique=False)
        batch_op.create_index(
            "ix_orders_stripe_payment_intent_id", ["stripe_payment_intent_id"], unique=False
        )
        batch_op.create_unique_constraint(
            "uq_orders_stripe_checkout_session_id", ["stripe_checkout_session_id"]
        )
