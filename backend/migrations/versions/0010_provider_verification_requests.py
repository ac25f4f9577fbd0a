"""The admin's verification of providers from the product (Trust 3).

- provider_verification_requests: an admin's decision to verify (bound to the reviewed record's
  hash) or unverify a provider, until the worker has put it on-chain; the outcome and the
  transaction stay on the row.

Revision ID: 0010_provider_verification
Revises: 0009_certificate_lifecycle
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.core.db

revision: str = "0010_provider_verification"
down_revision: str | Sequence[str] | None = "0009_certificate_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_verification_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", backend.core.db.Address(length=42), nullable=False),
        sa.Column("verify", sa.Boolean(), nullable=False),
        sa.Column("profile_hash", sa.String(length=66), nullable=True),
        sa.Column("requested_by", backend.core.db.Address(length=42), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("requested_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("completed_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_verification_requests")),
    )
    with op.batch_alter_table("provider_verification_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_verification_requests_provider"), ["provider"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("provider_verification_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_verification_requests_provider"))
    op.drop_table("provider_verification_requests")
