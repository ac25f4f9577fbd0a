"""Several chains: an entitlement names the chain that holds its on-chain record.

- entitlements.chain_id: a crypto purchase's is its order's chain; every other row that has
  been recorded (or was adopted) is on the configured chain (see 0014); mirrors not written yet
  stay NULL until a worker writes them.

Revision ID: 0017_chain_entitlements
Revises: 0016_chain_certificates
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.core.migrate import configured_chain_id

revision: str = "0017_chain_entitlements"
down_revision: str | Sequence[str] | None = "0016_chain_certificates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_id", sa.BigInteger(), nullable=True))
    op.execute(
        sa.text(
            "UPDATE entitlements SET chain_id = COALESCE("
            "(SELECT o.chain_id FROM orders o WHERE o.id = entitlements.order_id "
            "AND o.rail = 'crypto'), :chain_id) "
            "WHERE source = 'crypto' OR chain_status != 'pending'"
        ).bindparams(chain_id=configured_chain_id())
    )


def downgrade() -> None:
    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.drop_column("chain_id")
