"""Several chains: a certificate belongs to the chain it is issued on.

- certificates.chain_id (existing rows: the configured chain, see 0014).
- token ids are unique per chain; at most one current certificate per (chain, course, learner).

Revision ID: 0016_chain_certificates
Revises: 0015_chain_tokens
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.core.migrate import configured_chain_id

revision: str = "0016_chain_certificates"
down_revision: str | Sequence[str] | None = "0015_chain_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Not revoked, not removed (as in 0009).
CURRENT = "status NOT IN ('revoked', 'removed')"


def upgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "chain_id",
                sa.BigInteger(),
                nullable=False,
                server_default=str(configured_chain_id()),
            )
        )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.alter_column("chain_id", server_default=None)
        batch_op.drop_index("uq_certificates_current")
        batch_op.drop_index("ix_certificates_token_id")
        batch_op.create_index(
            "ix_certificates_chain_id_token_id", ["chain_id", "token_id"], unique=True
        )
        batch_op.create_index(
            "uq_certificates_current",
            ["chain_id", "course_id", "address"],
            unique=True,
            postgresql_where=sa.text(CURRENT),
            sqlite_where=sa.text(CURRENT),
        )


def downgrade() -> None:
    chain_id = configured_chain_id()
    op.execute(sa.text("DELETE FROM certificates WHERE chain_id != :c").bindparams(c=chain_id))
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index("uq_certificates_current")
        batch_op.drop_index("ix_certificates_chain_id_token_id")
        batch_op.create_index("ix_certificates_token_id", ["token_id"], unique=True)
        batch_op.create_index(
            "uq_certificates_current",
            ["course_id", "address"],
            unique=True,
            postgresql_where=sa.text(CURRENT),
            sqlite_where=sa.text(CURRENT),
        )
        batch_op.drop_column("chain_id")
