"""Several chains: a provider's public record is one chain's.

- provider_profiles: keyed by (chain id, address); a provider may publish a record on each chain.
- provider_verification_requests.chain_id: the chain whose record an admin's request is about.

Existing rows move to the configured chain (see 0014).

Revision ID: 0018_chain_provider_records
Revises: 0017_chain_entitlements
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.core.migrate import configured_chain_id

revision: str = "0018_chain_provider_records"
down_revision: str | Sequence[str] | None = "0017_chain_entitlements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    chain_id = str(configured_chain_id())
    for table in ("provider_profiles", "provider_verification_requests"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("chain_id", sa.BigInteger(), nullable=False, server_default=chain_id)
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("chain_id", server_default=None)
    with op.batch_alter_table("provider_profiles", schema=None) as batch_op:
        batch_op.drop_constraint("pk_provider_profiles", type_="primary")
        batch_op.create_primary_key("pk_provider_profiles", ["chain_id", "address"])


def downgrade() -> None:
    chain_id = configured_chain_id()
    for delete in (
        "DELETE FROM provider_profiles WHERE chain_id != :c",
        "DELETE FROM provider_verification_requests WHERE chain_id != :c",
    ):
        op.execute(sa.text(delete).bindparams(c=chain_id))
    with op.batch_alter_table("provider_profiles", schema=None) as batch_op:
        batch_op.drop_constraint("pk_provider_profiles", type_="primary")
        batch_op.create_primary_key("pk_provider_profiles", ["address"])
        batch_op.drop_column("chain_id")
    with op.batch_alter_table("provider_verification_requests", schema=None) as batch_op:
        batch_op.drop_column("chain_id")
