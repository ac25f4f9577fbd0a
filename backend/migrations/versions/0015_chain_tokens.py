"""Several chains: tokens and course prices belong to a chain.

- tokens: keyed by (chain id, address); the same address on two chains is two tokens.
- token_prices: a chain id; one price per (course, chain, token).

Existing rows move to the configured chain (see 0014).

Revision ID: 0015_chain_tokens
Revises: 0014_course_chains
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.core.migrate import configured_chain_id

revision: str = "0015_chain_tokens"
down_revision: str | Sequence[str] | None = "0014_course_chains"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    chain_id = configured_chain_id()
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chain_id", sa.BigInteger(), nullable=False, server_default=str(chain_id))
        )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.alter_column("chain_id", server_default=None)
        batch_op.drop_constraint("pk_tokens", type_="primary")
        batch_op.create_primary_key("pk_tokens", ["chain_id", "address"])
    with op.batch_alter_table("token_prices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chain_id", sa.BigInteger(), nullable=False, server_default=str(chain_id))
        )
    with op.batch_alter_table("token_prices", schema=None) as batch_op:
        batch_op.alter_column("chain_id", server_default=None)
        batch_op.drop_constraint("uq_token_prices_course_id_token", type_="unique")
        batch_op.create_unique_constraint(
            "uq_token_prices_course_id_chain_id_token", ["course_id", "chain_id", "token"]
        )


def downgrade() -> None:
    # Only the configured chain's tokens and prices fit the single-chain keys.
    chain_id = configured_chain_id()
    op.execute(sa.text("DELETE FROM token_prices WHERE chain_id != :c").bindparams(c=chain_id))
    op.execute(sa.text("DELETE FROM tokens WHERE chain_id != :c").bindparams(c=chain_id))
    with op.batch_alter_table("token_prices", schema=None) as batch_op:
        batch_op.drop_constraint("uq_token_prices_course_id_chain_id_token", type_="unique")
        batch_op.create_unique_constraint("uq_token_prices_course_id_token", ["course_id", "token"])
        batch_op.drop_column("chain_id")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_constraint("pk_tokens", type_="primary")
        batch_op.create_primary_key("pk_tokens", ["address"])
        batch_op.drop_column("chain_id")
