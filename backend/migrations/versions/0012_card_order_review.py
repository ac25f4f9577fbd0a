"""Card orders gain two states: processing and needs_review (card rail correctness).

- processing: the Checkout Session completed with an asynchronous payment method that has not
  settled; local expiry leaves it alone.
- needs_review: Stripe took a payment that differs from the quote (amount or currency), or a
  late payment for a learner who already has access: nothing is granted, an admin decides
  (refund, or accept).

Existing rows need no change. Downgrading refuses while orders are in either new state.

Revision ID: 0012_card_order_review
Revises: 0011_order_quoted_refund_window
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_card_order_review"
down_revision: str | Sequence[str] | None = "0011_order_quoted_refund_window"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = (
    "status IN ('pending', 'paid', 'refunded', 'disputed', 'lost', 'failed', 'expired', 'reverted')"
)
NEW_STATUSES = (
    "status IN ('pending', 'paid', 'refunded', 'disputed', 'lost', 'failed', 'expired',"
    " 'reverted', 'processing', 'needs_review')"
)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch_op.create_check_constraint("status", NEW_STATUSES)


def downgrade() -> None:
    held = (
        op.get_bind()
        .execute(
            sa.text("SELECT count(*) FROM orders WHERE status IN ('processing', 'needs_review')")
        )
        .scalar_one()
    )
    if held:
        raise RuntimeError(f"cannot downgrade: {held} orders are processing or need review")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch_op.create_check_constraint("status", OLD_STATUSES)
