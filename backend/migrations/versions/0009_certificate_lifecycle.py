"""A certificate's whole life and the providers' public records (ICourseCertificate, Trust 3).

- certificates: a learner may hold several certificates of a course over time (a correction
  replaces one, the holder may remove one and be certified again), at most one of them current:
  the unique (course_id, address) becomes a partial unique index over the rows that are neither
  revoked nor removed. New status "removed", `removed_at`, `replaced_by_token_id`; token ids are
  unique (the indexer looks certificates up by token id).
- provider_profiles: the name, website domain and platform verification each provider has
  on-chain (mirrored by the indexer from ProviderProfileSet / ProviderVerificationSet).

Existing rows need no change: every certificate so far is its pair's only one (generation 0).

Revision ID: 0009_certificate_lifecycle
Revises: 0008_access_on_chain
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.core.db

revision: str = "0009_certificate_lifecycle"
down_revision: str | Sequence[str] | None = "0008_access_on_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('requested', 'minting', 'minted', 'claimable', 'revoked')"
NEW_STATUSES = "status IN ('requested', 'minting', 'minted', 'claimable', 'revoked', 'removed')"
CURRENT = "status NOT IN ('revoked', 'removed')"


def upgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("removed_at", backend.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "replaced_by_token_id",
                backend.core.db.TokenAmount(precision=78, scale=0),
                nullable=True,
            )
        )
        batch_op.drop_constraint(op.f("uq_certificates_course_id_address"), type_="unique")
        batch_op.drop_constraint(op.f("ck_certificates_status"), type_="check")
        batch_op.create_check_constraint("status", NEW_STATUSES)
        batch_op.create_index("ix_certificates_token_id", ["token_id"], unique=True)
        batch_op.create_index(
            "uq_certificates_current",
            ["course_id", "address"],
            unique=True,
            postgresql_where=sa.text(CURRENT),
            sqlite_where=sa.text(CURRENT),
        )
    op.create_table(
        "provider_profiles",
        sa.Column("address", backend.core.db.Address(length=42), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("profile_hash", sa.String(length=66), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("verified_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verified_by", backend.core.db.Address(length=42), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_provider_profiles")),
    )


def downgrade() -> None:
    bind = op.get_bind()
    several = bind.execute(
        sa.text(
            "SELECT count(*) FROM (SELECT course_id, address FROM certificates "
            "GROUP BY course_id, address HAVING count(*) > 1) AS pairs"
        )
    ).scalar_one()
    removed = bind.execute(
        sa.text("SELECT count(*) FROM certificates WHERE status = 'removed'")
    ).scalar_one()
    if several or removed:
        # The old schema cannot hold them; refuse rather than drop certificates.
        raise RuntimeError(
            f"cannot downgrade: {several} learner/course pairs hold several certificates and "
            f"{removed} certificates were removed by their holders"
        )
    op.drop_table("provider_profiles")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index("uq_certificates_current")
        batch_op.drop_index("ix_certificates_token_id")
        batch_op.drop_constraint(op.f("ck_certificates_status"), type_="check")
        batch_op.create_check_constraint("status", OLD_STATUSES)
        batch_op.create_unique_constraint(
            op.f("uq_certificates_course_id_address"), ["course_id", "address"]
        )
        batch_op.drop_column("replaced_by_token_id")
        batch_op.drop_column("removed_at")
